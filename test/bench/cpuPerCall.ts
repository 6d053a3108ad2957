/**
 * CPU per call of the gateway process against the bare proxy's, in one run: both serve the same
 * load (N clients of small InvokeModel), and each process's user+system time is read from
 * /proc/<pid>/stat around the measured calls. Throughput on 2 shared cores hides where the gap
 * is; CPU per call says how much work each hop does.
 * Run: npx tsx test/bench/cpuPerCall.ts [--clients N] [--proto h1|h2c] [--calls N] [--rounds N] [--against DIR] [--redis] [--floor] [--stream] [--build DIR]
 * `--against DIR`: compare with another build of the gateway instead of the bare proxy (DIR holds
 * its cli.js, e.g. a copy of out/ made before a change, kept inside the checkout so its requires
 * resolve): an A/B of one change, both builds under the same load in one run.
 * `--redis`: the gateway has a team cap in a redis-server of its own, as the bench's (d); compared
 * with the other build under the same cap (`--against`), or else with itself without the team cap
 * (what the Redis engine costs per call).
 * `--build DIR`: the gateway under test is DIR/cli.js instead of out/cli.js (e.g. two builds made
 * outside the checkout, each from one commit, while the checkout's out/ holds others' work).
 * `--stream`: InvokeModelWithResponseStream (20 frames per stream) instead of InvokeModel; each
 * round then gives each hop's median time to the stream's first byte too, and the run the median
 * of its ratio per round, as it does for the p50.
 * `--floor`: a third hop beside the gateway and the bare proxy, the metering floor (bareProxy.ts
 * `--metering-floor`: SigV4 verified, body and answer parsed, two journal lines): both the gateway
 * and the floor are read against the bare proxy, so the gap splits into what any metering gateway
 * must add and what this one adds beyond that.
 * Each round also gives this process's CPU per call (the load and the upstream): with a hop's, what
 * one call costs the 2 cores as a whole.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { CLI, cliEnv } from "../support/cliProcess";
import { benchGatewayConfig, startBareProxy, runCell, startUpstream, type Proto } from "./load";
import { startRedis, stopRedis, type RedisProcess } from "../server/teamSupport";
import { median } from "./lenses.bench";
import { option } from "./args";

/** User and system CPU of a process so far, in ms (clock ticks are 10 ms on Linux). */
async function cpuMs(pid: number): Promise<{ user: number; sys: number }> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).replace(/^.*\) /, "").split(" ");
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 }; // utime, stime (fields 14 and 15 of stat)
}

async function started(child: ChildProcess, pattern: RegExp): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("did not start within 20 s")), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m.slice(1));
      }
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const clients = Number(option("--clients") ?? 16);
  const proto = (option("--proto") ?? "h1") as Proto;
  const calls = Number(option("--calls") ?? 5000);
  const rounds = Number(option("--rounds") ?? 3);
  const kind = process.argv.includes("--stream") ? "stream" : "invoke";
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-cpu-"));
  const upstream = await startUpstream(20);
  const children: ChildProcess[] = [];
  let redis: RedisProcess | undefined;
  try {
    const configOf = async (name: string, team?: string) => {
      const file = path.join(dir, `${name}.json`);
      await writeFile(file, JSON.stringify(benchGatewayConfig(team ? { teamLedger: redis!.url, team } : {})));
      return file;
    };
    if (process.argv.includes("--redis")) redis = await startRedis();
    const gateway = async (cli: string, ledger: string, team?: string) => {
      const config = await configOf(ledger, team);
      const child = spawn(process.execPath, [cli, "serve", "--config", config, "--port", "0", "--ledger", path.join(dir, ledger), "--upstream", `http://127.0.0.1:${upstream.h1}`], { env: cliEnv(), stdio: ["ignore", "pipe", "inherit"] });
      children.push(child);
      const [port] = await started(child, /^listening on http:\/\/127\.0\.0\.1:(\d+)$/m);
      return { pid: child.pid!, port: Number(port) };
    };
    const bareProxy = async (meteringFloor?: string) => {
      const { child, port } = await startBareProxy(dir, `http://127.0.0.1:${upstream.h1}`, meteringFloor ? { meteringFloor } : {});
      children.push(child);
      return { pid: child.pid!, port: port[proto] };
    };
    const against = option("--against");
    const build = option("--build");
    // Each gateway its own team in the one redis-server: their windows do not mix.
    const other = against ? "other build" : redis ? "without Redis" : "bare";
    const floor = process.argv.includes("--floor");
    if (floor && (against || redis)) throw new Error("--floor compares with the bare proxy: leave out --against and --redis");
    // The last hop is the one every other is read against.
    const hops: Record<string, { pid: number; port: number }> = {
      gateway: await gateway(build ? path.resolve(build, "cli.js") : CLI, "ledger", redis ? "bench-a" : undefined),
      ...(floor ? { floor: await bareProxy(path.join(dir, "floor.jsonl")) } : {}),
      [other]: against ? await gateway(path.resolve(against, "cli.js"), "ledger-other", redis ? "bench-b" : undefined) : redis ? await gateway(CLI, "ledger-other") : await bareProxy(),
    };
    const compared = Object.keys(hops).filter((name) => name !== other);
    for (const hop of Object.values(hops)) await runCell(hop.port, proto, kind, clients, 3000); // warm-up (JIT)
    const rows: string[] = [];
    const ratios: Record<string, number[]> = Object.fromEntries(compared.map((name) => [name, []]));
    // A stream's time to first byte and every call's p50, as ratios per round too (the latency targets).
    const p50s: Record<string, number[]> = Object.fromEntries(compared.map((name) => [name, []]));
    const firsts: Record<string, number[]> = Object.fromEntries(compared.map((name) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      const per: Record<string, { cpu: number; sys: number; tput: number; p50: number; first: number; rest: number }> = {};
      // Which hop goes first alternates: a drift of the machine within a round favours neither.
      const order = Object.entries(hops);
      if (round % 2 === 1) order.reverse();
      for (const [name, hop] of order) {
        const before = await cpuMs(hop.pid);
        const mine = process.cpuUsage();
        const r = await runCell(hop.port, proto, kind, clients, calls);
        if (r.errors) throw new Error(`${name}: ${r.errors} errors`);
        const after = await cpuMs(hop.pid);
        const spent = process.cpuUsage(mine);
        per[name] = { cpu: (after.user + after.sys - before.user - before.sys) / calls, sys: (after.sys - before.sys) / calls, tput: r.throughput, p50: median(r.latency), first: kind === "stream" ? median(r.firstByte) : NaN, rest: (spent.user + spent.system) / 1000 / calls };
      }
      const show = (p: { cpu: number; sys: number; tput: number; p50: number; first: number }) => `${(p.cpu * 1000).toFixed(0)} µs/call (system ${(p.sys * 1000).toFixed(0)}; ${p.tput.toFixed(0)}/s, p50 ${p.p50.toFixed(2)} ms${kind === "stream" ? `, first byte p50 ${p.first.toFixed(3)} ms` : ""})`;
      // This process is the load and the upstream: with it, what a call costs the machine as a whole.
      const rest = (p: { rest: number }) => (p.rest * 1000).toFixed(0);
      const base = per[other]!;
      const vsBase = (name: string) => `${name} ${show(per[name]!)}: CPU ×${(per[name]!.cpu / base.cpu).toFixed(2)}, throughput ×${(per[name]!.tput / base.tput).toFixed(2)}`;
      rows.push(`round ${round + 1}: ${compared.map(vsBase).join("; ")}; ${other} ${show(base)}; load and upstream ${Object.keys(hops).map((name) => rest(per[name]!)).join(" / ")} µs/call`);
      for (const name of compared) {
        ratios[name]!.push(per[name]!.cpu / base.cpu);
        p50s[name]!.push(per[name]!.p50 / base.p50);
        firsts[name]!.push(per[name]!.first / base.first);
      }
    }
    const spread = (xs: number[]) => `×${median(xs).toFixed(2)} (rounds ×${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
    const medians = compared.map((name) => `${name} ×${median(ratios[name]!).toFixed(2)}; p50 ${spread(p50s[name]!)}${kind === "stream" ? `; first byte p50 ${spread(firsts[name]!)}` : ""}`).join(", ");
    console.log(`${clients} ${proto} client(s), ${calls} ${kind === "stream" ? "streams" : "calls"} per round (gateway: ${build ?? path.relative(process.cwd(), CLI)}${against ? `; other build: ${against}` : ""}${redis ? "; team cap in Redis" : ""})\n${rows.join("\n")}\nmedian CPU ratio against ${other}: ${medians}`);
  } finally {
    // The gateway writes its checkpoint as it stops: wait for every hop before removing the directory.
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((resolve) => c.once("exit", resolve).kill("SIGTERM")))));
    await upstream.close();
    await stopRedis(redis);
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
