/**
 * Profiles the gateway process (not the load) under the bench's load: `node --cpu-prof` on
 * `bedrock-budget serve`, 16 clients of InvokeModel over h2c, then a summary of where its CPU went.
 * Run: npx tsx test/bench/profileGateway.ts [durability] (writes the .cpuprofile under os.tmpdir()).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { CLI, cliEnv } from "../support/cliProcess";
import { runCell, startUpstream } from "./load";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/** Self time by source file (node_modules grouped by package), share of all samples. */
export function summarize(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }, top = 20): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFile = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const t = profile.timeDeltas[i] ?? 0;
    total += t;
    const url = n.callFrame.url;
    const file = url ? url.replace(/^.*\/node_modules\/((@[^/]+\/)?[^/]+).*$/, "npm:$1").replace(/^file:\/\/.*\/(server|out)\//, "$1/") : n.callFrame.functionName;
    byFile.set(file, (byFile.get(file) ?? 0) + t);
  });
  return [...byFile]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f, t]) => `${((100 * t) / total).toFixed(1).padStart(5)} %  ${f}`)
    .join("\n");
}

async function main(): Promise<void> {
  const durability = process.argv[2]; // unset: the config says nothing (also for builds that predate the key)
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-profile-"));
  const upstream = await startUpstream(20);
  try {
    const config = path.join(dir, "config.json");
    await writeFile(config, JSON.stringify({ timeZone: "UTC", logLevel: "warn", ...(durability ? { durability } : {}), caps: [{ id: "bench", window: "day", limitUsd: 1_000_000 }] }));
    const profDir = path.join(dir, "prof");
    // Like cliProcess.serve, with --cpu-prof (which NODE_OPTIONS does not take).
    const child = spawn(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${profDir}`, CLI, "serve", "--config", config, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", `http://127.0.0.1:${upstream.h1}`], { env: cliEnv(), stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      void exited.then(() => reject(new Error("the gateway exited before listening")));
    });
    await runCell(port, "h2c", "invoke", 16, 300); // warm-up
    const r = await runCell(port, "h2c", "invoke", 16, 3000);
    child.kill("SIGTERM");
    await exited;
    const file = (await readdir(profDir)).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error("no profile written");
    const out = path.join(os.tmpdir(), `gateway-${durability ?? "default"}.cpuprofile`);
    await writeFile(out, await readFile(path.join(profDir, file)));
    console.log(`durability ${durability ?? "(default)"}: ${Math.round(r.throughput)} calls/s, ${r.errors} errors; profile ${out}\n${summarize(JSON.parse(await readFile(out, "utf8")))}`);
  } finally {
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
