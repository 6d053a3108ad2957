/** The hop to Bedrock (or the configured upstream): HTTP/1.1 with kept-alive connections. */
import http from "node:http";
import https from "node:https";
import { httpsProxyAgent } from "../httpsProxy";
import type { CallScope } from "./callScope";
import type { UpstreamTarget } from "./sigv4";

/**
 * Idle kept-alive connections are dropped after 4 s, or 1 s before the upstream's own announced
 * keep-alive timeout when that is shorter (Node applies the hint only once `timeout` is set). A
 * call written onto a connection the upstream is closing at that moment is reset unanswered, and
 * as Bedrock may have read it, it must be charged its worst case. (undici keeps 4 s too, Node 20's
 * global agent 5 s; a TLS handshake after a pause is cheap beside a model call.)
 * (On a connection in use the timeout only emits an event nobody acts on; long pauses in a stream
 * are Bedrock's to end.)
 */
export const UPSTREAM_POOL: http.AgentOptions = { keepAlive: true, maxSockets: 256, timeout: 4_000 };
const agents = {
  "http:": new http.Agent(UPSTREAM_POOL),
  "https:": new https.Agent(UPSTREAM_POOL),
};

/**
 * A corporate proxy (HTTPS_PROXY / NO_PROXY): its rules and its CONNECT tunnel are the shared ones
 * (server/httpsProxy.ts), which price updates, alerts and Cost Explorer use too.
 */
export { configureHttpsProxy as configureUpstreamProxy, exemptFromProxy } from "../httpsProxy";

/** The agent for a call to `target`, or why it cannot be sent (a broken HTTPS_PROXY: fail closed, not direct). */
function agentFor(target: UpstreamTarget): http.Agent | string {
  if (target.protocol !== "https:") return agents["http:"];
  return httpsProxyAgent(target.hostname, target.port, UPSTREAM_POOL) ?? agents["https:"];
}

/** Targets by endpoint (or region): parsing a URL on every call cost ~1 % of the gateway's CPU. A few entries in practice; bounded. */
const targets = new Map<string, UpstreamTarget>();

/**
 * The DNS suffix of a region's partition, as the AWS SDK's endpoint rules have it: Bedrock in China,
 * the European Sovereign Cloud and the isolated regions is not under amazonaws.com, and a call the
 * caller signed for such a region must go where the SDK itself would have sent it.
 */
const PARTITION_SUFFIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^cn-/, "amazonaws.com.cn"],
  [/^eusc-/, "amazonaws.eu"],
  [/^us-iso-/, "c2s.ic.gov"],
  [/^us-isob-/, "sc2s.sgov.gov"],
  [/^us-isof-/, "csp.hci.ic.gov"],
  [/^eu-isoe-/, "cloud.adc-e.uk"],
];

/** Bedrock Runtime's own endpoint for a region (the one the AWS SDK uses without an endpoint override). */
export function bedrockEndpoint(region: string): string {
  const suffix = PARTITION_SUFFIXES.find(([pattern]) => pattern.test(region))?.[1] ?? "amazonaws.com";
  return `https://bedrock-runtime.${region}.${suffix}`;
}

export function upstreamTarget(upstreamEndpoint: string | undefined, region: string): UpstreamTarget {
  const endpoint = upstreamEndpoint ?? bedrockEndpoint(region);
  let target = targets.get(endpoint);
  if (!target) {
    const url = new URL(endpoint);
    // Calls go to Bedrock's own paths (/model/…) on this host, as signed: a base path the SDK would
    // have put in front (an API gateway's /bedrock) would be dropped without a word. Refused instead.
    if (url.pathname !== "/" && url.pathname !== "") {
      throw new Error(`upstreamEndpoint ${url.origin}${url.pathname} has a path (${url.pathname}), which the gateway cannot send calls under; set it to the scheme, host and port alone (${url.origin})`);
    }
    const protocol = url.protocol === "http:" ? "http:" : "https:";
    target = Object.freeze({ protocol, hostname: url.hostname, port: url.port ? Number(url.port) : protocol === "https:" ? 443 : 80 });
    if (targets.size >= 64) targets.clear();
    targets.set(endpoint, target);
  }
  return target;
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

/** Codes that can only come before a connection exists (kept besides the socket's state, which decides the rest). */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "CERT_HAS_EXPIRED", "DEPTH_ZERO_SELF_SIGNED_CERT"]);

/**
 * The event after which a request byte may be on the wire. Node holds a request's bytes until a
 * new socket connects, and over TLS writes none before the handshake completed and the certificate
 * verified ('secureConnect'): a failure before it (any certificate error, a reset or a non-TLS
 * answer during the handshake, as behind a TLS-inspecting proxy) cannot have reached Bedrock.
 */
const READY_EVENT = { "http:": "connect", "https:": "secureConnect" } as const;

export function sendUpstream(input: {
  target: UpstreamTarget;
  method: string;
  rawPath: string;
  headers: Record<string, string>;
  body: Uint8Array;
  /** Absent: the exchange runs to completion (a buffered call settles at what Bedrock reports); one less listener per call. */
  signal?: AbortSignal;
  /** The request's scope: the exchange is destroyed when the gateway stops it. */
  scope?: CallScope;
}): Promise<http.IncomingMessage> {
  const { target, scope } = input;
  const transport = target.protocol === "https:" ? https : http;
  // The gateway is stopping: this call never leaves, so it costs nothing.
  if (scope?.stopped) return Promise.reject(new UpstreamError(scope.stopped.message, true));
  const agent = agentFor(target);
  if (typeof agent === "string") return Promise.reject(new UpstreamError(agent, true));
  scope?.forwarding();
  return new Promise((resolve, reject) => {
    // Whether a byte of this request may have left the machine: decided by the socket, never by
    // the error (money must not be lost: anything unsure counts as sent).
    let maybeSent = false;
    let req: http.ClientRequest;
    try {
      req = transport.request(
        {
          protocol: target.protocol,
          // An IPv6 endpoint's hostname is bracketed, as its Host header and signature need; Node would look the brackets up in DNS (ENOTFOUND).
          hostname: target.hostname.startsWith("[") ? target.hostname.slice(1, -1) : target.hostname,
          port: target.port,
          method: input.method,
          path: input.rawPath,
          headers: input.headers,
          agent,
          ...(input.signal ? { signal: input.signal } : {}),
        },
        (response) => {
          // The relay adds its own listeners; this one keeps an error that comes before them (or
          // after they are gone) from being thrown out of the event emitter, which would end the process.
          response.on("error", () => undefined);
          scope?.track(response);
          resolve(response);
        },
      );
    } catch (err) {
      // Refused while being built (a header or path Node will not send): no socket was asked for.
      reject(new UpstreamError(`${(err as NodeJS.ErrnoException).code ?? (err as Error).name}: ${(err as Error).message}`, true));
      return;
    }
    req.once("socket", (socket) => {
      // A kept-alive socket (or one somehow connected already, its handshake unknown): the upstream
      // may read whatever is written to it, so a failure on it is charged.
      if (req.reusedSocket || !socket.pending) {
        maybeSent = true;
        return;
      }
      socket.once(READY_EVENT[target.protocol], () => (maybeSent = true));
    });
    scope?.track(req);
    // `on`, not `once`: a second 'error' with no listener would be thrown and end the process.
    req.on("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? "";
      reject(new UpstreamError(`${code || err.name}: ${err.message}`, !maybeSent || NOT_SENT_CODES.has(code)));
    });
    try {
      req.end(input.body);
    } catch (err) {
      // Thrown before the socket is handed over (that happens on a later tick): nothing was written.
      req.destroy();
      reject(new UpstreamError(`${(err as NodeJS.ErrnoException).code ?? (err as Error).name}: ${(err as Error).message}`, true));
    }
  });
}
