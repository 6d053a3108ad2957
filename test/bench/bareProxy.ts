/**
 * The bench's floor, run as its own process like the gateway: a bare Node pass-through proxy that
 * re-signs and forwards, nothing else. HTTP/1.1 and h2c in (two ports), HTTP/1.1 out.
 * Bundled and started by load.ts's startBareProxy, run as `node <bundle> <upstream url>`; prints
 * `{"h1":port,"h2":port}` (`node --import tsx test/bench/bareProxy.ts <upstream url>` runs it unbundled).
 */
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { forwardableHeaders, signUpstream, type UpstreamTarget } from "../../server/gateway/sigv4";
import { UPSTREAM_POOL } from "../../server/gateway/upstream";
import { CREDENTIALS } from "../support/harness";

/** Response headers HTTP/2 forbids (and that belong to the upstream hop anyway). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"]);

const u = new URL(process.argv[2] ?? "");
const target: UpstreamTarget = { protocol: "http:", hostname: u.hostname, port: Number(u.port) };
// The gateway's own upstream pool settings.
const agent = new http.Agent(UPSTREAM_POOL);

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

function handle(req: Req, res: Res): void {
  const parts: Buffer[] = [];
  req.on("data", (c: Buffer) => parts.push(c));
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
