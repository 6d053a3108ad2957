/**
 * Bytes allocated per call by the gateway and by the bare proxy, in one run, and where the
 * gateway's allocations come from. Allocation drives the garbage collector's share of the CPU and
 * the heap a process grows to under load; CPU profiles do not show it.
 * Run: npx tsx test/bench/allocPerCall.ts [--clients N] [--proto h1|h2c] [--calls N] [--top N] [--floor] [--async]
 * Each hop runs with a preload that samples allocations through the inspector's heap profiler,
 * keeping objects the GC has already collected (`--heap-prof` keeps only what is still alive),
 * from when it is told to start until it is told to stop: around the measured calls only.
 * `--floor`: the metering floor (bareProxy.ts `--metering-floor`) as a third hop.
 * `--async`: counts the async resources each hop creates per call, by type (promises, timers,
 * `nextTick` records…), through an `async_hooks` init hook instead of sampling the heap.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { cliEnv, serve } from "../support/cliProcess";
import { benchGatewayConfig, runCell, startBareProxy, startUpstream, type Proto } from "./load";
import { option } from "./args";

/**
 * The preload. `<dir>/<pid>.start` starts sampling (or counting), `<dir>/<pid>.stop` writes
 * `<dir>/<pid>.heapprofile` (or `<dir>/<pid>.async`, counts by async resource type).
 */
const SAMPLER = `
const inspector = require("node:inspector");
const fs = require("node:fs");
const at = (ext) => require("node:path").join(process.env.BB_ALLOC_DIR, process.pid + ext);
const countAsync = process.env.BB_ALLOC_MODE === "async";
const session = new inspector.Session();
session.connect();
let state = "waiting";
const counts = {};
// The hook slows promises down; it is enabled only when counting.
if (countAsync) require("node:async_hooks").createHook({ init(id, type) { if (state === "sampling") counts[type] = (counts[type] || 0) + 1; } }).enable();
const poll = setInterval(() => {
  if (state === "waiting" && fs.existsSync(at(".start"))) {
    state = "sampling";
    if (!countAsync) session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  } else if (state === "sampling" && fs.existsSync(at(".stop"))) {
    state = "done";
    clearInterval(poll);
    if (countAsync) fs.writeFileSync(at(".async"), JSON.stringify(counts));
    else session.post("HeapProfiler.stopSampling", (err, r) => fs.writeFileSync(at(".heapprofile"), JSON.stringify(err ? { error: String(err) } : r.profile)));
  }
}, 50);
poll.unref();
`;

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
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

/** The JSON a hop's preload writes once told to stop, polled for up to 30 s; undefined if none came. */
async function written(file: string): Promise<unknown> {
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const got = await readFile(file, "utf8").then((s) => JSON.parse(s) as unknown, () => undefined); // absent or still being written
    if (got !== undefined) return got;
  }
  return undefined;
}

async function main(): Promise<void> {
  const clients = Number(option("--clients") ?? 16);
  const proto = (option("--proto") ?? "h1") as Proto;
  const calls = Number(option("--calls") ?? 10_000);
  const top = Number(option("--top") ?? 25);
  const withFloor = process.argv.includes("--floor");
  const countAsync = process.argv.includes("--async");
  if (!(clients >= 1 && calls >= 1 && top >= 0 && (proto === "h1" || proto === "h2c"))) throw new Error("usage: allocPerCall.ts [--clients N] [--proto h1|h2c] [--calls N] [--top N] [--floor] [--async]");
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-alloc-"));
  const upstream = await startUpstream(20);
  const children: ChildProcess[] = [];
  try {
    const sampler = path.join(dir, "sampler.js");
    await writeFile(sampler, SAMPLER);
    const preload = ["--require", sampler];
    const preloadEnv = { BB_ALLOC_DIR: dir, BB_ALLOC_MODE: countAsync ? "async" : "heap" };
    const config = path.join(dir, "config.json");
    await writeFile(config, JSON.stringify(benchGatewayConfig()));
    const upstreamUrl = `http://127.0.0.1:${upstream.h1}`;
    const gateway = await serve(["--config", config, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", upstreamUrl], cliEnv(preloadEnv), 15_000, preload);
    children.push(gateway.child);
    const hops: Record<string, { pid: number; port: number }> = { gateway: { pid: gateway.child.pid!, port: gateway.port } };
    if (withFloor) {
      const floor = await startBareProxy(dir, upstreamUrl, { nodeArgs: preload, env: { ...process.env, ...preloadEnv }, meteringFloor: path.join(dir, "floor.jsonl") });
      children.push(floor.child);
      hops.floor = { pid: floor.child.pid!, port: floor.port[proto] };
    }
    const bare = await startBareProxy(dir, upstreamUrl, { nodeArgs: preload, env: { ...process.env, ...preloadEnv } });
    children.push(bare.child);
    hops.bare = { pid: bare.child.pid!, port: bare.port[proto] };
    const profiles: Record<string, ReturnType<typeof bySite>> = {};
    const asyncCounts: Record<string, Record<string, number>> = {};
    for (const [name, hop] of Object.entries(hops)) {
      await runCell(hop.port, proto, "invoke", clients, 3000); // warm-up (JIT, pools)
      await writeFile(path.join(dir, `${hop.pid}.start`), "");
      await new Promise((r) => setTimeout(r, 300)); // the preload polls every 50 ms
      const r = await runCell(hop.port, proto, "invoke", clients, calls);
      if (r.errors) throw new Error(`${name}: ${r.errors} calls not answered 200`);
      await writeFile(path.join(dir, `${hop.pid}.stop`), "");
      const out = await written(path.join(dir, `${hop.pid}.${countAsync ? "async" : "heapprofile"}`));
      if (countAsync) {
        if (!out) throw new Error(`${name}: no async resource counts written within 30 s`);
        asyncCounts[name] = out as Record<string, number>;
      } else {
        const profile = out as { head?: SamplingNode; error?: string } | undefined;
        if (!profile?.head) throw new Error(`${name}: no allocation profile (${profile?.error ?? "none written within 30 s"})`);
        profiles[name] = bySite(profile.head);
      }
    }
    const names = Object.keys(hops);
    const label = (name: string) => ({ gateway: "gateway", floor: "metering floor", bare: "bare proxy" })[name] ?? name;
    if (countAsync) {
      console.log(`${clients} ${proto} client(s), ${calls} calls each: async resources created per call, by type`);
      console.log(`${"type".padEnd(22)}${names.map((n) => label(n).padStart(16)).join("")}`);
      const types = [...new Set(names.flatMap((n) => Object.keys(asyncCounts[n]!)))].sort((a, b) => (asyncCounts.gateway![b] ?? 0) - (asyncCounts.gateway![a] ?? 0));
      for (const type of types) console.log(`${type.padEnd(22)}${names.map((n) => ((asyncCounts[n]![type] ?? 0) / calls).toFixed(2).padStart(16)).join("")}`);
      return;
    }
    const perCall = (name: string) => profiles[name]!.total / calls;
    const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
    const against = (name: string) => (name === "bare" ? "" : ` (×${(perCall(name) / perCall("bare")).toFixed(2)} the bare proxy's)`);
    console.log(`${clients} ${proto} client(s), ${calls} calls each, bytes allocated per call: ${names.map((n) => `${label(n)} ${kb(perCall(n))}${against(n)}`).join(", ")}`);
    console.log(`-- the gateway's allocating functions, per call (sampled every 4 KB on average)`);
    for (const [site, bytes] of profiles.gateway!.sites.slice(0, top)) console.log(`${kb(bytes / calls).padStart(9)}  ${site}`);
  } finally {
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r).kill("SIGTERM")))));
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
