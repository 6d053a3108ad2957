/** The hop to Bedrock (or the configured upstream): HTTP/1.1 with kept-alive connections. */
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
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
 * A corporate proxy, as HTTPS_PROXY / NO_PROXY name it (curl's and the AWS CLI's rules): HTTPS
 * upstreams are reached through a CONNECT tunnel, so TLS (and its certificate check) still runs
 * end to end with Bedrock. Loopback is never proxied; nor is a plain-HTTP upstream (a local
 * simulator or test double). Read once, as the environment of a running process does not change.
 */
interface ProxySettings {
  proxy: URL | undefined;
  /** Why HTTPS_PROXY cannot be used (every proxied call is refused, unsent, saying so). */
  problem: string | undefined;
  noProxy: string[];
}
let proxySettings: ProxySettings | undefined;

/** Reads HTTPS_PROXY / NO_PROXY from `env` (the process's own by default; tests pass theirs). */
export function configureUpstreamProxy(env: NodeJS.ProcessEnv = process.env): void {
  const raw = (env.https_proxy ?? env.HTTPS_PROXY ?? "").trim();
  const noProxy = (env.no_proxy ?? env.NO_PROXY ?? "").split(/[\s,]+/).map((e) => e.trim().toLowerCase()).filter(Boolean);
  let proxy: URL | undefined;
  let problem: string | undefined;
  if (raw) {
    try {
      proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
      if (proxy.protocol !== "http:" && proxy.protocol !== "https:") problem = `HTTPS_PROXY uses ${proxy.protocol.slice(0, 16)}, but only http:// and https:// proxies are supported`;
    } catch {
      problem = "HTTPS_PROXY is not a URL (such as http://proxy.example.com:3128)";
    }
  }
  proxySettings = { proxy: problem ? undefined : proxy, problem, noProxy };
  tunnelAgents.clear();
}

/** The proxy URL's host only: its user name and password never reach a log or an answer. */
const proxyName = (proxy: URL) => `${proxy.protocol}//${proxy.host}`;

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/** Whether NO_PROXY (entries `*`, `host`, `.domain`, `*.domain`, each optionally `:port`) exempts this host. */
export function exemptFromProxy(hostname: string, port: number, noProxy: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (LOOPBACK.test(host)) return true;
  return noProxy.some((entry) => {
    if (entry === "*") return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry)!;
    if (m[2] !== undefined && Number(m[2]) !== port) return false;
    const name = m[1]!.replace(/^\*?\./, "").replace(/\.$/, "");
    return name !== "" && (host === name || host.endsWith(`.${name}`));
  });
}

/**
 * An HTTPS agent whose connections are CONNECT tunnels through the proxy. A socket is handed to
 * the request only once TLS with the upstream is established, so any failure before (the proxy
 * refusing, a certificate the proxy substituted) happens before a request byte could leave: the
 * call is known unsent and charged nothing.
 */
class TunnelAgent extends https.Agent {
  constructor(readonly proxy: URL) {
    super(UPSTREAM_POOL);
  }

  override createConnection(options: http.ClientRequestArgs, done?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const proxy = this.proxy;
    const hostname = String(options.hostname ?? options.host);
    const authority = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${options.port ?? 443}`;
    const headers: Record<string, string> = { host: authority };
    if (proxy.username || proxy.password) {
      headers["proxy-authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}`;
    }
    let settled = false;
    let tunnel: Duplex | undefined;
    // A proxy that takes the connection but never answers would hold the call forever (unsent, so free).
    const timer = setTimeout(() => {
      connect.destroy();
      tunnel?.destroy();
      fail(`no tunnel to ${authority} within ${TUNNEL_TIMEOUT_MS / 1000} s`);
    }, TUNNEL_TIMEOUT_MS);
    const fail = (message: string) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      // Node's agent takes an error alone here (no socket): the request then fails with it.
      done?.(Object.assign(new Error(`through the proxy ${proxyName(proxy)} (HTTPS_PROXY): ${message}`), { code: "EPROXY" }), undefined as unknown as Duplex);
    };
    const refused = (res: http.IncomingMessage) =>
      fail(
        `the proxy answered ${res.statusCode} ${res.statusMessage ?? ""} to CONNECT ${authority}`.trim() +
          (res.statusCode === 407
            ? "; put its user name and password in HTTPS_PROXY (http://user:password@host:port)"
            : `; if ${hostname} is to be reached without the proxy, name it in NO_PROXY`),
      );
    const connect = (proxy.protocol === "https:" ? https : http).request({
      hostname: proxy.hostname.replace(/^\[|\]$/g, ""),
      port: proxy.port || (proxy.protocol === "https:" ? 443 : 80),
      method: "CONNECT",
      path: authority,
      headers,
      agent: false,
    });
    connect.once("connect", (res, socket, head) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return refused(res);
      }
      if (head.length > 0) socket.unshift(head);
      const tls = super.createConnection({ ...options, socket } as never) as unknown as TLSSocket;
      tunnel = tls;
      const failed = (err: NodeJS.ErrnoException) => {
        tls.destroy();
        fail(`${err.code ?? err.name}: ${err.message}`);
      };
      tls.once("error", failed);
      tls.once("secureConnect", () => {
        tls.off("error", failed);
        clearTimeout(timer);
        if (settled) return void tls.destroy();
        settled = true;
        done?.(null, tls);
      });
    });
    connect.once("error", (err: NodeJS.ErrnoException) => fail(`${err.code ?? err.name}: ${err.message}`));
    // A refusal (407, 403, 502 …) is an ordinary response, not a 'connect'.
    connect.once("response", (res) => {
      res.resume();
      refused(res);
    });
    connect.end();
    return undefined;
  }
}
const tunnelAgents = new Map<string, TunnelAgent>();
/** The proxy's answer to CONNECT and the TLS handshake through it, together. */
const TUNNEL_TIMEOUT_MS = 30_000;

/** The agent for a call to `target`, or why it cannot be sent (a broken HTTPS_PROXY: fail closed, not direct). */
function agentFor(target: UpstreamTarget): http.Agent | string {
  if (target.protocol !== "https:") return agents["http:"];
  if (!proxySettings) configureUpstreamProxy();
  const { proxy, problem, noProxy } = proxySettings!;
  if ((!proxy && !problem) || exemptFromProxy(target.hostname, target.port, noProxy)) return agents["https:"];
  if (problem) return `${problem}; fix it, or name ${target.hostname} in NO_PROXY to reach it directly`;
  let agent = tunnelAgents.get(proxy!.href);
  if (!agent) tunnelAgents.set(proxy!.href, (agent = new TunnelAgent(proxy!)));
  return agent;
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
          hostname: target.hostname,
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
