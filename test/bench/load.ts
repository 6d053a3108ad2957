/**
 * The bench's load side: a canned upstream that answers like Bedrock at almost no cost, and a
 * load generator of pre-signed InvokeModel calls over HTTP/1.1 (keep-alive) or h2c (a session per
 * client), measuring per-call latency, time to first byte of streams and throughput.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { build } from "esbuild";
import { signUpstream } from "../../server/gateway/sigv4";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, CREDENTIALS, SONNET_45 } from "../support/harness";

export type Proto = "h1" | "h2c";
export type Kind = "invoke" | "stream";

/**
 * The config of a gateway under test (the bench's (c), or (d) given a Redis URL): a personal day
 * cap every call passes, and with Redis a team day cap in it too (team `team`, default "bench").
 * The benches and profilers all use it, so they measure the same gateway.
 */
export function benchGatewayConfig(o: { teamLedger?: string; team?: string; durability?: string } = {}): Record<string, unknown> {
  const caps: Record<string, unknown>[] = [{ id: "bench", window: "day", limitUsd: 1_000_000 }];
  if (o.teamLedger) caps.push({ id: "bench-team", scope: "team", window: "day", limitUsd: 1_000_000 });
  return {
    timeZone: "UTC",
    logLevel: "warn",
    ...(o.durability ? { durability: o.durability } : {}),
    caps,
    ...(o.teamLedger ? { teamLedger: o.teamLedger, team: o.team ?? "bench" } : {}),
  };
}

/**
 * Starts the bare proxy (bareProxy.ts) in front of `upstream`, bundled into `dir` as one plain JS
 * file and run with node alone, as the gateway's bundle is: not under tsx, whose loader thread
 * would count in its memory and its CPU. `nodeArgs` go before the bundle (e.g. a `--require`d
 * preload), `env` replaces this process's environment. `meteringFloor`: a journal file, and the
 * proxy runs as the metering floor (bareProxy.ts `--metering-floor`).
 */
export async function startBareProxy(dir: string, upstream: string, o: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv; meteringFloor?: string } = {}): Promise<{ child: ChildProcess; port: Record<Proto, number> }> {
  const outfile = path.join(dir, "bareProxy.js");
  // jsonc-parser's UMD main cannot be bundled (esbuild.js aliases it the same way); the harness's config loader imports it.
  await build({ entryPoints: [path.join(__dirname, "bareProxy.ts")], bundle: true, platform: "node", target: "node20", format: "cjs", outfile, logLevel: "warning", alias: { "jsonc-parser": "jsonc-parser/lib/esm/main.js" } });
  const floor = o.meteringFloor !== undefined ? ["--metering-floor", o.meteringFloor] : [];
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), outfile, upstream, ...floor], { env: o.env, stdio: ["ignore", "pipe", "inherit"] });
  const ports = await new Promise<{ h1: number; h2: number }>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("bare proxy did not start within 20 s")), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(JSON.parse(out.split("\n")[0]!) as { h1: number; h2: number });
      }
    });
    child.once("exit", (code) => reject(new Error(`bare proxy exited with ${code}`)));
  });
  return { child, port: { h1: ports.h1, h2c: ports.h2 } };
}

export const BODY = Buffer.from(anthropicBody("Benchmark: say hello.", 64));
export const PATHS: Record<Kind, string> = {
  invoke: `/model/${encodeURIComponent(SONNET_45)}/invoke`,
  stream: `/model/${encodeURIComponent(SONNET_45)}/invoke-with-response-stream`,
};
const DROP = new Set(["connection", "keep-alive", "transfer-encoding", "date", "content-length"]);

interface Canned {
  status: number;
  headers: Record<string, string>;
  chunks: Buffer[];
}

/** One real answer of each kind from the tests' fake Bedrock (which checks SigV4 and speaks the wire formats). */
async function capture(frames: number): Promise<Record<Kind, Canned>> {
  const fake = await FakeBedrock.start({ credentials: CREDENTIALS });
  try {
    fake.behave(() => ({ kind: "ok", usage: { input: 20, output: 40 }, chunks: frames }));
    const port = Number(new URL(fake.url).port);
    const out = {} as Record<Kind, Canned>;
    for (const kind of ["invoke", "stream"] as const) {
      const headers = signUpstream({ method: "POST", rawPath: PATHS[kind], headers: { "content-type": "application/json" }, body: BODY, target: { protocol: "http:", hostname: "127.0.0.1", port }, region: "us-east-1", credentials: CREDENTIALS });
      out[kind] = await new Promise<Canned>((resolve, reject) => {
        const req = http.request({ hostname: "127.0.0.1", port, method: "POST", path: PATHS[kind], headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const h: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string" && !DROP.has(k)) h[k] = v;
            resolve({ status: res.statusCode ?? 0, headers: h, chunks });
          });
        });
        req.once("error", reject);
        req.end(BODY);
      });
      if (out[kind].status !== 200 || fake.hits.some((x) => !x.signatureValid)) throw new Error(`capture ${kind}: status ${out[kind].status}`);
    }
    return out;
  } finally {
    await fake.close();
  }
}

export interface Upstream {
  h1: number;
  h2: number;
  close(): Promise<void>;
}

/** Replays the captured answers: the first chunk at once, the others one event-loop turn apart. */
export async function startUpstream(frames: number): Promise<Upstream> {
  const canned = await capture(frames);
  const handle = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    req.resume();
    req.on("end", () => {
      const c = canned[(req.url ?? "").endsWith("/invoke") ? "invoke" : "stream"];
      res.writeHead(c.status, c.headers);
      let i = 0;
      const next = () => {
        if (i < c.chunks.length) (res as NodeJS.WritableStream).write(c.chunks[i++]!);
        if (i < c.chunks.length) setImmediate(next);
        else res.end();
      };
      next();
    });
  };
  const h1 = http.createServer({ keepAliveTimeout: 5000 }, handle);
  const h2 = http2.createServer(handle);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  for (const s of [h1, h2]) await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return {
    h1: (h1.address() as AddressInfo).port,
    h2: (h2.address() as AddressInfo).port,
    async close() {
      for (const s of sessions) s.destroy();
      h1.closeAllConnections();
      await Promise.all([new Promise((r) => h1.close(r)), new Promise((r) => h2.close(r))]);
    },
  };
}

export interface CellResult {
  latency: number[]; // ms per call
  firstByte: number[]; // ms to the first body byte (streams)
  throughput: number; // calls per second
  errors: number;
  /** Non-200 answers by status (e.g. 503: the gateway shedding load past its inbound limits). */
  statuses: Record<number, number>;
}

/**
 * `clients` loops calling until `calls` calls are done, over one protocol to `port`. Requests are
 * signed once for this run (a signature stays valid 15 minutes) so the load side costs little.
 * Unpaced, each client sends its next call as soon as the last is answered (the most the target
 * can do). With `pace` (calls/s, all clients together) call i is due `i ÷ pace` s after the start
 * and waits for it: an offered load below what the target can do, spread over the clients, whose
 * connections are opened by a first call each, not timed. A call that found every client busy at
 * its time counts its latency from that time.
 */
export async function runCell(port: number, proto: Proto, kind: Kind, clients: number, calls: number, pace?: number): Promise<CellResult> {
  const signed = signUpstream({ method: "POST", rawPath: PATHS[kind], headers: { "content-type": "application/json" }, body: BODY, target: { protocol: "http:", hostname: "127.0.0.1", port }, region: "us-east-1", credentials: CREDENTIALS });
  const result: CellResult = { latency: [], firstByte: [], throughput: 0, errors: 0, statuses: {} };
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const sessions: http2.ClientHttp2Session[] = [];
  const once = (n: number, due?: number): Promise<void> => {
    const start = Math.min(due ?? Infinity, performance.now());
    let first = 0;
    const done = (status: number) => {
      if (status !== 200) {
        result.errors++;
        result.statuses[status] = (result.statuses[status] ?? 0) + 1;
      }
      result.latency.push(performance.now() - start);
      if (kind === "stream") result.firstByte.push(first - start);
    };
    if (proto === "h1") {
      return new Promise<void>((resolve, reject) => {
        const req = http.request({ hostname: "127.0.0.1", port, method: "POST", path: PATHS[kind], headers: signed, agent }, (res) => {
          res.on("data", () => (first ||= performance.now()));
          res.on("end", () => {
            done(res.statusCode ?? 0);
            resolve();
          });
          res.once("error", reject);
        });
        req.once("error", reject);
        req.end(BODY);
      });
    }
    const session = sessions[n % clients]!;
    const { host, ...rest } = signed;
    return new Promise<void>((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": PATHS[kind], ":authority": host!, ...rest });
      let status = 0;
      req.on("response", (h) => (status = Number(h[":status"])));
      req.on("data", () => (first ||= performance.now()));
      req.on("end", () => {
        done(status);
        resolve();
      });
      req.once("error", reject);
      req.end(BODY);
    });
  };
  if (proto === "h2c") {
    for (let i = 0; i < clients; i++) {
      const s = http2.connect(`http://127.0.0.1:${port}`);
      await new Promise<void>((resolve, reject) => s.once("connect", () => resolve()).once("error", reject));
      sessions.push(s);
    }
  }
  try {
    if (pace !== undefined) {
      // Paced: a call's own tail on open connections, as an SDK client keeps them. Each client's
      // first call (its connection's set-up) is made first and left out of the latencies.
      await Promise.all(Array.from({ length: clients }, (_, c) => once(c)));
      result.latency.length = 0;
      result.firstByte.length = 0;
    }
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        while (next < calls) {
          const i = next++;
          if (pace === undefined) {
            await once(c);
            continue;
          }
          const due = start + (i * 1000) / pace;
          const wait = due - performance.now();
          // A free client waits for the call's time, and its latency counts from the send (a
          // timer's own lateness is the load side's); a call no client was free for counts its wait.
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          await once(c, wait > 0 ? undefined : due);
        }
      }),
    );
    result.throughput = calls / ((performance.now() - start) / 1000);
  } finally {
    agent.destroy();
    for (const s of sessions) s.destroy();
  }
  return result;
}
