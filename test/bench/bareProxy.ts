/**
 * The bench's floor, run as its own process like the gateway: a bare Node pass-through proxy that
 * re-signs and forwards, nothing else. HTTP/1.1 and h2c in (two ports), HTTP/1.1 out.
 * Bundled and started by load.ts's startBareProxy, run as `node <bundle> <upstream url>`; prints
 * `{"h1":port,"h2":port}` (`node --import tsx test/bench/bareProxy.ts <upstream url>` runs it unbundled).
 *
 * `node <bundle> <upstream url> --metering-floor <journal file>`: the least any gateway that meters
 * as this one does must add to that, for buffered calls (cpuPerCall.ts --floor): the caller's
 * SigV4 verified, its body parsed, a line journaled before forwarding, the answer read whole and
 * its usage parsed, a second line journaled before answering (headers relayed by the gateway's
 * relayHeaders). Journal lines are group-committed per turn with one write(), as the gateway's
 * journal does. No estimate, caps or policies: what the
 * gateway spends beyond this floor is its own to cut.
 */
import { randomUUID } from "node:crypto";
import { openSync, writeSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { forwardableHeaders, parseAuthorization, sha256Hex, signUpstream, verifySignature, type UpstreamTarget } from "../../server/gateway/sigv4";
import { readAll, relayHeaders } from "../../server/gateway/relay";
import { UPSTREAM_POOL } from "../../server/gateway/upstream";
import { CREDENTIALS } from "../support/harness";

/** Response headers HTTP/2 forbids (and that belong to the upstream hop anyway). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"]);

const u = new URL(process.argv[2] ?? "");
const target: UpstreamTarget = { protocol: "http:", hostname: u.hostname, port: Number(u.port) };
// The gateway's own upstream pool settings.
const agent = new http.Agent(UPSTREAM_POOL);

const floorAt = process.argv.indexOf("--metering-floor");
const journalFd = floorAt > 0 ? openSync(process.argv[floorAt + 1] ?? "", "a", 0o600) : undefined;

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

function handle(req: Req, res: Res): void {
  const parts: Buffer[] = [];
  req.on("data", (c: Buffer) => parts.push(c));
  if (journalFd !== undefined) {
    req.on("end", () => void meteringFloor(req, res, Buffer.concat(parts), journalFd).catch((err: unknown) => fail(res, err)));
    return;
  }
  req.on("end", () => {
    const body = Buffer.concat(parts);
    const method = req.method ?? "POST";
    const rawPath = req.url ?? "/";
    let headers: Record<string, string>;
    try {
      headers = signUpstream({ method, rawPath, headers: forwardableHeaders(req.headers), body, target, region: "us-east-1", credentials: CREDENTIALS });
    } catch (err) {
      return fail(res, err);
    }
    const up = http.request({ hostname: target.hostname, port: target.port, method, path: rawPath, headers, agent }, (upRes) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res as NodeJS.WritableStream);
    });
    up.once("error", (err) => fail(res, err));
    res.once("close", () => up.destroy());
    up.end(body);
  });
}

/** The lines of this turn, written together once its I/O callbacks have run (the gateway's group commit). */
let pendingLines: string[] = [];
let committed: Promise<void> | undefined;

function journal(fd: number, line: object): Promise<void> {
  pendingLines.push(`${JSON.stringify(line)}\n`);
  committed ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      const buf = Buffer.from(pendingLines.join(""), "utf8");
      pendingLines = [];
      committed = undefined;
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      resolve();
    }),
  );
  return committed;
}

async function meteringFloor(req: Req, res: Res, body: Buffer, fd: number): Promise<void> {
  const method = req.method ?? "POST";
  const rawPath = req.url ?? "/";
  const parsed = parseAuthorization(typeof req.headers.authorization === "string" ? req.headers.authorization : undefined);
  if (parsed.kind !== "sigv4") throw new Error("the floor takes SigV4 calls only");
  const bodySha256 = sha256Hex(body);
  const problem = verifySignature({ method, rawPath, headers: req.headers, body, auth: parsed.auth, credentials: CREDENTIALS, now: new Date(), bodySha256 });
  if (problem) throw new Error(problem);
  const json = JSON.parse(body.toString("utf8")) as { max_tokens?: number };
  const id = randomUUID();
  const startedAt = new Date().toISOString();
  await journal(fd, { type: "reserve", id, startedAt, path: rawPath, maxTokens: json.max_tokens });
  const headers = signUpstream({ method, rawPath, headers: forwardableHeaders(req.headers), body, target, region: parsed.auth.region, credentials: CREDENTIALS, bodySha256 });
  const upRes = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const up = http.request({ hostname: target.hostname, port: target.port, method, path: rawPath, headers, agent }, resolve);
    up.once("error", reject);
    up.end(body);
  });
  const answer = await readAll(upRes);
  const usage = (JSON.parse(answer.toString("utf8")) as { usage?: unknown }).usage;
  await journal(fd, { type: "settle", id, startedAt, at: new Date().toISOString(), status: upRes.statusCode, usage });
  res.writeHead(upRes.statusCode ?? 502, relayHeaders(upRes));
  res.end(answer);
}

function fail(res: Res, err: unknown): void {
  process.stderr.write(`bare proxy: ${(err as Error).message}\n`); // loud: a bench that measures errors measures nothing
  if (!res.headersSent) res.writeHead(502, { "x-amzn-errortype": "BareProxyError" });
  res.end();
}

async function listen(server: http.Server | http2.Http2Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

async function main(): Promise<void> {
  const h1 = await listen(http.createServer({ keepAliveTimeout: 5000 }, handle));
  const h2 = await listen(http2.createServer(handle));
  process.stdout.write(`${JSON.stringify({ h1, h2 })}\n`);
  process.once("SIGTERM", () => process.exit(0)); // exit cleanly, so `--cpu-prof` writes its profile
}

void main();
