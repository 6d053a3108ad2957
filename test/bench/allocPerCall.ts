/**
 * Bytes allocated per call by the gateway and by the bare proxy, in one run, and where the
 * gateway's allocations come from. Allocation drives the garbage collector's share of the CPU and
 * the heap a process grows to under load; CPU profiles do not show it.
 * Run: npx tsx test/bench/allocPerCall.ts [--clients N] [--proto h1|h2c] [--calls N] [--top N]
 * Each hop runs with a preload that samples allocations through the inspector's heap profiler,
 * keeping objects the GC has already collected (`--heap-prof` keeps only what is still alive),
 * from when it is told to start until it is told to stop: around the measured calls only.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { cliEnv, serve } from "../support/cliProcess";
import { benchGatewayConfig, runCell, startBareProxy, startUpstream, type Proto } from "./load";

/** The preload. `<dir>/<pid>.start` starts sampling, `<dir>/<pid>.stop` writes `<dir>/<pid>.heapprofile`. */
const SAMPLER = `
const inspector = require("node:inspector");
const fs = require("node:fs");
const at = (ext) => require("node:path").join(process.env.BB_ALLOC_DIR, process.pid + ext);
const session = new inspector.Session();
session.connect();
let state = "waiting";
const poll = setInterval(() => {
  if (state === "waiting" && fs.existsSync(at(".start"))) {
    state = "sampling";
    session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  } else if (state === "sampling" && fs.existsSync(at(".stop"))) {
    state = "done";
    clearInterval(poll);
    session.post("HeapProfiler.stopSampling", (err, r) => fs.writeFileSync(at(".heapprofile"), JSON.stringify(err ? { error: String(err) } : r.profile)));
  }
}, 50);
poll.unref();
`;

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Sampled bytes by allocating function (name, file and line), largest first. */
function bySite(head: SamplingNode): { total: number; sites: [string, number][] } {
  const sites = new Map<string, number>();
  let total = 0;
  const walk = (n: SamplingNode) => {
    total += n.selfSize;
    if (n.selfSize) {
      const f = n.callFrame;
      const site = `${f.functionName || "(anonymous)"} ${f.url ? `${f.url.replace(/^.*\//, "")}:${f.lineNumber + 1}` : "(native)"}`;
      sites.set(site, (sites.get(site) ?? 0) + n.selfSize);
    }
    n.children.forEach(walk);
  };
  walk(head);
  return { total, sites: [...sites].sort((a, b) => b[1] - a[1]) };
}

async function main(): Promise<void> {
  const clients = Number(option("--clients") ?? 16);
  const proto = (option("--proto") ?? "h1") as Proto;
  const calls = Number(option("--calls") ?? 10_000);
  const top = Number(option("--top") ?? 25);
  if (!(clients >= 1 && calls >= 1 && top >= 0 && (proto === "h1" || proto === "h2c"))) throw new Error("usage: allocPerCall.ts [--clients N] [--proto h1|h2c] [--calls N] [--top N]");
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-alloc-"));
  const upstream = await startUpstream(20);
  const children: ChildProcess[] = [];
  try {
    const sampler = path.join(dir, "sampler.js");
    await writeFile(sampler, SAMPLER);
    const preload = ["--require", sampler];
    const env = { ...cliEnv(), BB_ALLOC_DIR: dir };
    const config = path.join(dir, "config.json");
    await writeFile(config, JSON.stringify(benchGatewayConfig()));
    const gateway = await serve(["--config", config, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", `http://127.0.0.1:${upstream.h1}`], env, 15_000, preload);
    children.push(gateway.child);
    const bare = await startBareProxy(dir, `http://127.0.0.1:${upstream.h1}`, { nodeArgs: preload, env: { ...process.env, BB_ALLOC_DIR: dir } });
    children.push(bare.child);
    const hops = { gateway: { pid: gateway.child.pid!, port: gateway.port }, bare: { pid: bare.child.pid!, port: bare.port[proto] } };
    const results: Record<string, ReturnType<typeof bySite>> = {};
    for (const [name, hop] of Object.entries(hops)) {
      await runCell(hop.port, proto, "invoke", clients, 3000); // warm-up (JIT, pools)
      await writeFile(path.join(dir, `${hop.pid}.start`), "");
      await new Promise((r) => setTimeout(r, 300)); // the preload polls every 50 ms
      const r = await runCell(hop.port, proto, "invoke", clients, calls);
      if (r.errors) throw new Error(`${name}: ${r.errors} calls not answered 200`);
      await writeFile(path.join(dir, `${hop.pid}.stop`), "");
      let profile: { head?: SamplingNode; error?: string } | undefined;
      for (let i = 0; i < 120 && !profile; i++) {
        await new Promise((r) => setTimeout(r, 250));
        profile = await readFile(path.join(dir, `${hop.pid}.heapprofile`), "utf8").then((s) => JSON.parse(s) as { head?: SamplingNode; error?: string }, () => undefined); // absent or still being written
      }
      if (!profile?.head) throw new Error(`${name}: no allocation profile (${profile?.error ?? "none written within 30 s"})`);
      results[name] = bySite(profile.head);
    }
    const perCall = (name: string) => results[name]!.total / calls;
    const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
    console.log(`${clients} ${proto} client(s), ${calls} calls each: gateway ${kb(perCall("gateway"))} per call, bare proxy ${kb(perCall("bare"))} (×${(perCall("gateway") / perCall("bare")).toFixed(2)})`);
    console.log(`-- the gateway's allocating functions, per call (sampled every 4 KB on average)`);
    for (const [site, bytes] of results.gateway!.sites.slice(0, top)) console.log(`${kb(bytes / calls).padStart(9)}  ${site}`);
  } finally {
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r).kill("SIGTERM")))));
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
