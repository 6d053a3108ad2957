/**
 * Profiles the gateway process (not the load) under the bench's load: `node --cpu-prof` on
 * `bedrock-budget serve`, 16 clients of InvokeModel over h2c, then a summary of where its CPU went.
 * Run: npx tsx test/bench/profileGateway.ts [durability] [--clients N] [--proto h1|h2c] [--calls N] [--redis] [--stream] [--build DIR]
 * (--redis: with a team cap in a redis-server of its own, as the bench's (d); --stream:
 * InvokeModelWithResponseStream of 20 frames instead of InvokeModel; --build: the gateway is
 * DIR/cli.js instead of out/cli.js, e.g. a dev build made outside the checkout)
 * (writes the .cpuprofile under os.tmpdir()). The summary: busy CPU by source file, then by
 * function (self, and inclusive for the gateway's own functions: the bundle is one file).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { cliEnv, serve } from "../support/cliProcess";
import { benchGatewayConfig, runCell, startUpstream, type Proto } from "./load";
import { startRedis, stopRedis } from "../server/teamSupport";
import { option } from "./args";
import { median } from "./lenses.bench";

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

/** Where busy (non-idle) CPU went by function: self time, and inclusive time of the gateway's own code (out/ or server/). */
export function summarizeFunctions(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }, top = Number(option("--top") ?? 30)): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\//, "")}`;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const t = profile.timeDeltas[i] ?? 0;
    if (n.callFrame.functionName === "(idle)") return;
    busy += t;
    self.set(name(n), (self.get(name(n)) ?? 0) + t);
    const seen = new Set<string>(); // a recursive function counts once per sample
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur)!;
      const key = name(node);
      if (seen.has(key) || !/\/(out|server)\//.test(node.callFrame.url)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + t);
    }
  });
  const list = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([f, t]) => `${((100 * t) / busy).toFixed(1).padStart(5)} %  ${f}`).join("\n");
  return `busy CPU ${(busy / 1000).toFixed(0)} ms\n-- self, share of busy CPU\n${list(self)}\n-- inclusive (the gateway's functions), share of busy CPU\n${list(inclusive)}`;
}

/** As serve(), for a bundle other than out/cli.js. */
async function serveBuild(cli: string, args: string[], nodeArgs: string[]): Promise<{ child: ChildProcess; port: number; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [...nodeArgs, cli, "serve", ...args], { env: cliEnv(), stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`${cli} exited with ${code} before listening`)));
  });
  return { child, port, exited };
}

async function main(): Promise<void> {
  const positional = process.argv[2];
  const durability = positional && !positional.startsWith("--") ? positional : undefined; // unset: the config says nothing (also for builds that predate the key)
  const clients = Number(option("--clients") ?? 16);
  const proto = (option("--proto") ?? "h2c") as Proto;
  const calls = Number(option("--calls") ?? 3000);
  const withRedis = process.argv.includes("--redis");
  const kind = process.argv.includes("--stream") ? "stream" : "invoke";
  if (!(clients >= 1 && calls >= 1 && (proto === "h1" || proto === "h2c"))) throw new Error("usage: profileGateway.ts [durability] [--clients N] [--proto h1|h2c] [--calls N] [--redis] [--stream]");
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-profile-"));
  const upstream = await startUpstream(20);
  // --redis: a team cap in a redis-server of its own, as the bench's (d).
  const redis = withRedis ? await startRedis() : undefined;
  try {
    const config = path.join(dir, "config.json");
    await writeFile(config, JSON.stringify(benchGatewayConfig({ teamLedger: redis?.url, durability })));
    const profDir = path.join(dir, "prof");
    const build = option("--build");
    const args = ["--config", config, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", `http://127.0.0.1:${upstream.h1}`];
    const prof = ["--cpu-prof", `--cpu-prof-dir=${profDir}`];
    const { child, port, exited } = build ? await serveBuild(path.resolve(build, "cli.js"), args, prof) : await serve(args, cliEnv(), 15_000, prof);
    await runCell(port, proto, kind, clients, 300); // warm-up
    const r = await runCell(port, proto, kind, clients, calls);
    child.kill("SIGTERM");
    await exited;
    const file = (await readdir(profDir)).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error("no profile written");
    const out = path.join(os.tmpdir(), `gateway-${durability ?? "default"}-${proto}-${clients}${redis ? "-redis" : ""}${kind === "stream" ? "-stream" : ""}.cpuprofile`);
    await writeFile(out, await readFile(path.join(profDir, file)));
    const profile = JSON.parse(await readFile(out, "utf8"));
    console.log(`${kind}, durability ${durability ?? "(default)"}${redis ? ", team cap in Redis" : ""}, ${clients} ${proto} client(s): ${Math.round(r.throughput)} calls/s, p50 ${median(r.latency).toFixed(2)} ms, ${r.errors} errors; profile ${out}\n${summarize(profile)}\n${summarizeFunctions(profile)}`);
  } finally {
    await upstream.close();
    await stopRedis(redis);
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
