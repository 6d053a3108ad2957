/** The hop to Bedrock (or the configured upstream): HTTP/1.1 with kept-alive connections. */
import http from "node:http";
import https from "node:https";
import type { CallScope } from "./callScope";
import type { UpstreamTarget } from "./sigv4";

const agents = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: 256 }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: 256 }),
};

export function upstreamTarget(upstreamEndpoint: string | undefined, region: string): UpstreamTarget {
  const url = new URL(upstreamEndpoint ?? `https://bedrock-runtime.${region}.amazonaws.com`);
  const protocol = url.protocol === "http:" ? "http:" : "https:";
  return { protocol, hostname: url.hostname, port: url.port ? Number(url.port) : protocol === "https:" ? 443 : 80 };
}

export class UpstreamError extends Error {
  constructor(
    message: string,
    /** True when the request certainly never reached the upstream, so nothing can have been charged. */
    readonly notSent: boolean,
  ) {
    super(message);
  }
}

const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT"]);

export function sendUpstream(input: {
  target: UpstreamTarget;
  method: string;
  rawPath: string;
  headers: Record<string, string>;
  body: Uint8Array;
  signal: AbortSignal;
  /** The request's scope: the exchange is destroyed when the gateway stops it. */
  scope?: CallScope;
}): Promise<http.IncomingMessage> {
  const { target, scope } = input;
  const transport = target.protocol === "https:" ? https : http;
  // The gateway is stopping: this call never leaves, so it costs nothing.
  if (scope?.stopped) return Promise.reject(new UpstreamError(scope.stopped.message, true));
  scope?.forwarding();
  return new Promise((resolve, reject) => {
    const req = transport.request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: input.method,
        path: input.rawPath,
        headers: input.headers,
        agent: agents[target.protocol],
        signal: input.signal,
      },
      (response) => {
        // The relay adds its own listeners; this one keeps an error that comes before them (or
        // after they are gone) from being thrown out of the event emitter, which would end the process.
        response.on("error", () => undefined);
        scope?.track(response);
        resolve(response);
      },
    );
    scope?.track(req);
    // `on`, not `once`: a second 'error' with no listener would be thrown and end the process.
    req.on("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? "";
      reject(new UpstreamError(`${code || err.name}: ${err.message}`, NOT_SENT_CODES.has(code)));
    });
    req.end(input.body);
  });
}
