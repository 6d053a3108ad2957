/**
 * Benchmark (not a test: nothing here asserts on time). `npm run bench`
 *
 * What the gateway adds to a Bedrock call, measured against a bare pass-through proxy in front of
 * the same fake upstream, with the real SDK client (default handler: HTTP/2 cleartext) on both.
 * Absolute times on a shared machine mean little, so the two targets run in interleaved rounds
 * (bare, gateway, gateway, bare, …) and the report puts medians and their ratio side by side.
 *
 *   bare     SDK ─h2c→ minimal proxy (re-sign only) ─HTTP/1.1→ fake Bedrock
 *   gateway  SDK ─h2c→ Bedrock Budget (verify, price, reserve, journal, re-sign, relay, settle) ─HTTP/1.1→ fake Bedrock
 *
 * Everything runs in this one process (as the tests do), so CPU the gateway spends competes with
 * the client and the fake (under load the event loop is the bottleneck, so the throughput ratio is
 * mostly the gateway's CPU per call); the journal's fdatasync runs on libuv's thread pool. The
 * ledger goes to a fresh folder under os.tmpdir(): TMPDIR=/dev/shm shows the gateway without disk
 * syncs. Per call, both targets see a new h2c connection (the Bedrock Runtime client's default
 * handler isolates every request in its own session) and the proxies a new upstream connection
 * (the fake announces keep-alive timeout=1, which Node's agent declines to reuse); the report
 * counts the bare proxy's.
 */
import { mkdtemp, open, readdir, readFile, rm, statfs } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import {
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  type BedrockRuntimeClient,
} from "@aws-sdk/client-bedrock-runtime";
import { forwardableHeaders, signUpstream, type UpstreamTarget } from "../../server/gateway/sigv4";
import type { Behavior, FakeCredentials } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

// The SDK's "Node 20 support ends" notice is not about the bench; silence only that one.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

/**
 * Short rounds, many of them: on a shared machine the noise drifts within seconds, so the finer
 * the interleaving, the more equally both targets meet it.
 */
const PLAN = {
  warmupCalls: 40,
  warmupStreams: 10,
  latency: { rounds: 30, calls: 20 },
  throughput: { rounds: 5, callers: 32, calls: 400 },
  stream: { rounds: 12, calls: 10, chunks: 20 },
  fsyncProbes: 100,
};

const REGION = "us-east-1";
const INVOKE_BODY = anthropicBody("Benchmark: say hello.", 64);

type TargetName = "bare" | "gateway";
interface Target {
  name: TargetName;
  client: BedrockRuntimeClient;
}

// -----------------------------------------------------------------------------------------
// The bare proxy: h2c in, HTTP/1.1 out, re-signed, nothing else.

interface BareProxy {
  url: string;
  /** Inbound h2c sessions, upstream TCP connections, requests: shows what each call costs in connections. */
  readonly counts: { sessions: number; upstreamSockets: number; requests: number };
  close(): Promise<void>;
}

/** Response headers HTTP/2 forbids (and that belong to the upstream hop anyway). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"]);

async function startBareProxy(upstreamUrl: string, credentials: FakeCredentials): Promise<BareProxy> {
  const u = new URL(upstreamUrl);
  const target: UpstreamTarget = { protocol: "http:", hostname: u.hostname, port: Number(u.port) };
  // Same upstream pool settings as the gateway's (server/gateway/upstream.ts), but its own pool.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const counts = { sessions: 0, upstreamSockets: 0, requests: 0 };
  const seenSockets = new WeakSet<object>();
  server.on("session", (s) => {
    counts.sessions++;
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });

  server.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    counts.requests++;
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const body = Buffer.concat(parts);
      const method = req.method;
      const rawPath = req.url;
      // The body must be whole before signing: SigV4 covers its hash.
      signUpstream({ method, rawPath, headers: forwardableHeaders(req.headers), body, target, region: REGION, credentials })
        .then((headers) => {
          const up = http.request({ hostname: target.hostname, port: target.port, method, path: rawPath, headers, agent }, (upRes) => {
            const out: http.OutgoingHttpHeaders = {};
            for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
            res.writeHead(upRes.statusCode ?? 502, out);
            upRes.pipe(res);
          });
          up.once("socket", (socket) => {
            if (!seenSockets.has(socket)) counts.upstreamSockets++;
            seenSockets.add(socket);
          });
          up.once("error", (err) => fail(res, err));
          res.once("close", () => up.destroy());
          up.end(body);
        })
        .catch((err: unknown) => fail(res, err));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.destroy();
      await closed;
      agent.destroy();
    },
  };
}

function fail(res: http2.Http2ServerResponse, err: unknown): void {
  // Loud: a bench that quietly measures errors measures nothing.
  console.error(`bare proxy: ${(err as Error).message}`);
  if (!res.headersSent) res.writeHead(502, { "x-amzn-errortype": "BareProxyError" });
  res.end();
}

// -----------------------------------------------------------------------------------------
// Workloads

async function invoke(t: Target): Promise<void> {
  const out = await t.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: INVOKE_BODY, contentType: "application/json" }));
  if (!out.body || out.body.byteLength === 0) throw new Error(`${t.name}: empty InvokeModel body`);
}

/** Sequential calls: wall milliseconds per call, and this process's CPU milliseconds for all of them. */
async function sequential(t: Target, n: number): Promise<{ times: number[]; cpuMs: number }> {
  const times: number[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await invoke(t);
    times.push(performance.now() - start);
  }
  const used = process.cpuUsage(cpu);
  return { times, cpuMs: (used.user + used.system) / 1000 };
}

/** `callers` loops sharing one client, `total` calls in all; calls per second. */
async function concurrent(t: Target, callers: number, total: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < total) {
        next++;
        await invoke(t);
      }
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

/** Sequential streams; time to the first chunk and to the end, ms. */
async function streams(t: Target, n: number, expectChunks: number): Promise<{ first: number[]; total: number[] }> {
  const first: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const out = await t.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: INVOKE_BODY, contentType: "application/json" }));
    let chunks = 0;
    let firstAt = 0;
    for await (const part of out.body!) {
      if (!part.chunk) continue;
      if (chunks++ === 0) firstAt = performance.now();
    }
    const end = performance.now();
    if (chunks < expectChunks) throw new Error(`${t.name}: stream ended after ${chunks} chunks`);
    first.push(firstAt - start);
    total.push(end - start);
  }
  return { first, total };
}

// -----------------------------------------------------------------------------------------
// Statistics and output

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}
const median = (xs: number[]) => quantile(xs, 0.5);

const ms = (x: number) => `${x.toFixed(2)} ms`;
const perSec = (x: number) => `${Math.round(x)} calls/s`;

function row(
  label: string,
  bare: number,
  gateway: number,
  fmt: (x: number) => string,
  opts: { added?: boolean; ratio?: number; note?: string } = {},
): string {
  const delta = gateway - bare;
  const extra = (opts.added === false ? "" : `  added ${delta >= 0 ? "+" : ""}${fmt(delta)}`) + (opts.note ? `  ${opts.note}` : "");
  const ratio = opts.ratio ?? gateway / bare;
  return `${label.padEnd(44)} bare ${fmt(bare).padStart(14)}   gateway ${fmt(gateway).padStart(14)}   ratio ${ratio.toFixed(2)}x${extra}`;
}

const FS_NAMES: Record<number, string> = { 0xef53: "ext4", 0x01021994: "tmpfs", 0x794c7630: "overlayfs", 0x58465342: "xfs", 0x9123683e: "btrfs", 0x6969: "nfs" };

/** fdatasync of a small append on the ledger's file system: the floor under every journal commit. */
async function fsyncProbe(n: number): Promise<{ p50: number; fs: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-fsync-"));
  try {
    const fh = await open(path.join(dir, "probe.jsonl"), "a");
    const line = Buffer.from(`${JSON.stringify({ type: "settle", pad: "x".repeat(300) })}\n`);
    const times: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const start = performance.now();
        await fh.write(line);
        await fh.datasync();
        times.push(performance.now() - start);
      }
    } finally {
      await fh.close();
    }
    const type = (await statfs(dir)).type;
    return { p50: median(times), fs: FS_NAMES[type] ?? `fs 0x${type.toString(16)}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function journalLines(ledgerDir: string): Promise<{ reserve: number; settle: number }> {
  const dir = path.join(ledgerDir, "journal");
  const counts = { reserve: 0, settle: 0 };
  for (const name of await readdir(dir)) {
    if (!name.endsWith(".jsonl")) continue;
    for (const line of (await readFile(path.join(dir, name), "utf8")).split("\n")) {
      if (line.includes('"type":"reserve"')) counts.reserve++;
      else if (line.includes('"type":"settle"')) counts.settle++;
    }
  }
  return counts;
}

// -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const began = performance.now();
  let h: Harness | undefined;
  let bare: BareProxy | undefined;
  let bareClient: BedrockRuntimeClient | undefined;
  try {
    // A cap no bench run can reach: nothing is refused, but every call is still reserved and settled.
    h = await startHarness({ caps: [{ id: "bench", window: "day", limitUsd: 1_000_000 }] });
    const fake = h.fake;
    const behavior = (): Behavior => ({ kind: "ok", usage: { input: 20, output: 40 }, chunks: PLAN.stream.chunks });
    fake.behave(behavior);
    bare = await startBareProxy(fake.url, CREDENTIALS);
    bareClient = clientFor(bare.url);
    const targets: Target[] = [
      { name: "bare", client: bareClient },
      { name: "gateway", client: h.client },
    ];
    const gatewayCalls = { n: 0 };

    /** Alternates which target goes first, so neither always runs on a warmer (or noisier) machine. */
    const interleave = async (rounds: number, run: (t: Target) => Promise<void>) => {
      for (let r = 0; r < rounds; r++) {
        for (const t of r % 2 === 0 ? targets : [...targets].reverse()) {
          const before = fake.hits.length;
          await run(t);
          // Not a timing check: that every call really went through, correctly re-signed.
          const hits = fake.hits.slice(before);
          if (hits.some((x) => !x.signatureValid)) throw new Error(`${t.name}: the fake saw a bad signature`);
          if (t.name === "gateway") gatewayCalls.n += hits.length;
          fake.reset();
          fake.behave(behavior);
        }
      }
    };

    await interleave(1, async (t) => {
      await sequential(t, PLAN.warmupCalls);
      await concurrent(t, PLAN.throughput.callers, PLAN.throughput.callers * 2);
      await streams(t, PLAN.warmupStreams, PLAN.stream.chunks);
    });

    const lat: Record<TargetName, number[]> = { bare: [], gateway: [] };
    const cpu: Record<TargetName, number> = { bare: 0, gateway: 0 };
    await interleave(PLAN.latency.rounds, async (t) => {
      const r = await sequential(t, PLAN.latency.calls);
      lat[t.name].push(...r.times);
      cpu[t.name] += r.cpuMs;
    });

    const tput: Record<TargetName, number[]> = { bare: [], gateway: [] };
    await interleave(PLAN.throughput.rounds, async (t) => void tput[t.name].push(await concurrent(t, PLAN.throughput.callers, PLAN.throughput.calls)));

    const first: Record<TargetName, number[]> = { bare: [], gateway: [] };
    const total: Record<TargetName, number[]> = { bare: [], gateway: [] };
    await interleave(PLAN.stream.rounds, async (t) => {
      const s = await streams(t, PLAN.stream.calls, PLAN.stream.chunks);
      first[t.name].push(...s.first);
      total[t.name].push(...s.total);
    });

    const fsync = await fsyncProbe(PLAN.fsyncProbes);
    const journal = await journalLines(h.ledgerDir);

    const L = PLAN.latency;
    const perCall = (total: number) => total / (L.rounds * L.calls);
    const c = bare.counts;
    const T = PLAN.throughput;
    const S = PLAN.stream;
    const out = [
      `Bedrock Budget gateway vs bare pass-through proxy (same fake upstream over HTTP/1.1; SDK client over h2c)`,
      `node ${process.version}, ${os.cpus().length} CPUs, ledger under ${os.tmpdir()} (${fsync.fs}); rounds interleaved bare/gateway, medians pooled over rounds`,
      ``,
      row(`latency, sequential InvokeModel, p50`, median(lat.bare), median(lat.gateway), ms),
      row(`latency, sequential InvokeModel, p95`, quantile(lat.bare, 0.95), quantile(lat.gateway, 0.95), ms),
      row(`CPU per sequential call (whole process)`, perCall(cpu.bare), perCall(cpu.gateway), ms),
      // Each gateway round against the bare round next to it in time, so slow drifts cancel.
      row(`throughput, ${T.callers} callers, median of ${T.rounds} rounds`, median(tput.bare), median(tput.gateway), perSec, {
        added: false,
        ratio: median(tput.gateway.map((g, i) => g / tput.bare[i]!)),
        note: "(ratio: median over paired rounds)",
      }),
      row(`stream (${S.chunks} chunks), first chunk, p50`, median(first.bare), median(first.gateway), ms),
      row(`stream (${S.chunks} chunks), total, p50`, median(total.bare), median(total.gateway), ms),
      ``,
      `samples per target: latency ${L.rounds} rounds × ${L.calls} calls, throughput ${T.rounds} × ${T.calls} calls, streams ${S.rounds} × ${S.calls}`,
      `connections: the bare proxy took ${c.sessions} h2c sessions and opened ${c.upstreamSockets} upstream TCP connections for ${c.requests} calls`,
      `journal: ${journal.reserve} reserve + ${journal.settle} settle lines for ${gatewayCalls.n} gateway calls (incl. warm-up); each line is fdatasync'ed before the call moves on`,
      `         (reserve before forwarding, settle before answering), group-committed when calls overlap; one fdatasync here: p50 ${ms(fsync.p50)}`,
      `total ${((performance.now() - began) / 1000).toFixed(1)} s`,
    ];
    console.log(out.join("\n"));
  } finally {
    bareClient?.destroy();
    await bare?.close();
    await h?.close(); // also removes the ledger folder
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
