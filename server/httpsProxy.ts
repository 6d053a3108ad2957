/**
 * A corporate proxy, as HTTPS_PROXY / NO_PROXY name it (curl's and the AWS CLI's rules), for every
 * HTTPS call the gateway makes: model calls (server/gateway/upstream.ts), price updates, alerts and
 * Cost Explorer. HTTPS targets are reached through a CONNECT tunnel, so TLS (and its certificate
 * check) still runs end to end with AWS. Loopback is never proxied; nor is plain HTTP (a local
 * simulator, fake or relay). Read once, as the environment of a running process does not change.
 * Deliberately not `https-proxy-agent`: its 7.0.6 replays a proxy's refusal as if it were the
 * upstream's answer.
 */
import http from "node:http";
import https from "node:https";
import { BlockList, isIP } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";

interface ProxySettings {
  proxy: URL | undefined;
  /** Why HTTPS_PROXY cannot be used (every proxied call is refused, unsent, saying so). */
  problem: string | undefined;
  noProxy: string[];
}
let proxySettings: ProxySettings | undefined;

const nonEmpty = (value: string | undefined) => (value?.trim() ? value : undefined);

/** Reads HTTPS_PROXY / NO_PROXY from `env` (the process's own by default; tests pass theirs). */
export function configureHttpsProxy(env: NodeJS.ProcessEnv = process.env): void {
  // As curl: a variable set but empty counts as unset, so `https_proxy=` does not hide HTTPS_PROXY
  // (and send every call around the proxy a company requires).
  const raw = (nonEmpty(env.https_proxy) ?? nonEmpty(env.HTTPS_PROXY) ?? "").trim();
  const noProxy = (nonEmpty(env.no_proxy) ?? nonEmpty(env.NO_PROXY) ?? "").split(/[\s,]+/).map((e) => e.trim().toLowerCase()).filter(Boolean);
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

/**
 * Loopback addresses in every spelling: 127.0.0.0/8 and ::1, which the BlockList also matches
 * written out (`0:0:0:0:0:0:0:1`) or IPv4-mapped (`::ffff:127.0.0.1`, which a URL turns into `::ffff:7f00:1`).
 */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");
const isLoopback = (host: string) => host === "localhost" || (isIP(host) !== 0 && LOOPBACK.check(host, familyOf(host)));

/** One NO_PROXY entry, read once: everything, an address or block of addresses, or a name (with its subdomains). */
type NoProxyRule = { kind: "all" } | { kind: "ip"; addresses: BlockList; port?: number } | { kind: "name"; name: string; port?: number };

const familyOf = (address: string) => (isIP(address) === 6 ? "ipv6" : "ipv4");

/**
 * Reads an entry as curl (7.86 and later) and Go's net/http do, with Node's own ranges besides:
 * `*`; an IPv4 or IPv6 address, bare (`::1`) or bracketed (`[::1]`, `[::1]:8080`); a CIDR block
 * (`10.0.0.0/8`, `fd00::/8`); a range (`10.0.0.1-10.0.0.9`); else a name, `.domain` or `*.domain`,
 * each optionally `:port`. An entry that fits none (`fd00::/200`) matches nothing.
 */
function noProxyRule(entry: string): NoProxyRule | undefined {
  if (entry === "*") return { kind: "all" };
  const addresses = new BlockList();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) {
    if (isIP(bracketed[1]!) !== 6) return undefined;
    addresses.addAddress(bracketed[1]!, "ipv6");
    return { kind: "ip", addresses, ...(bracketed[2] !== undefined ? { port: Number(bracketed[2]) } : {}) };
  }
  const block = /^\[?([^\]/]+)\]?\/(\d{1,3})$/.exec(entry);
  if (block) {
    const family = isIP(block[1]!);
    if (family === 0 || Number(block[2]) > (family === 4 ? 32 : 128)) return undefined;
    addresses.addSubnet(block[1]!, Number(block[2]), familyOf(block[1]!));
    return { kind: "ip", addresses };
  }
  const range = /^([^-]+)-([^-]+)$/.exec(entry);
  if (range && isIP(range[1]!) !== 0 && isIP(range[1]!) === isIP(range[2]!)) {
    try {
      addresses.addRange(range[1]!, range[2]!, familyOf(range[1]!));
    } catch {
      return undefined; // its start is after its end
    }
    return { kind: "ip", addresses };
  }
  // A bare IPv6 address has colons of its own: none of them is a port (as curl and Go read it).
  if (isIP(entry) === 6) {
    addresses.addAddress(entry, "ipv6");
    return { kind: "ip", addresses };
  }
  const m = /^(.*?)(?::(\d+))?$/.exec(entry)!;
  const port = m[2] !== undefined ? { port: Number(m[2]) } : {};
  if (isIP(m[1]!) === 4) {
    addresses.addAddress(m[1]!, "ipv4");
    return { kind: "ip", addresses, ...port };
  }
  const name = m[1]!.replace(/^\*?\./, "").replace(/\.$/, "");
  return name === "" ? undefined : { kind: "name", name, ...port };
}

/** By list: the process's own is read once per configuration, not per call. */
const noProxyRules = new WeakMap<readonly string[], NoProxyRule[]>();

/**
 * Whether NO_PROXY exempts this host (entries as noProxyRule reads them). An address matches
 * address entries only, a name name entries only: no name is resolved to compare it with a block.
 */
export function exemptFromProxy(hostname: string, port: number, noProxy: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (isLoopback(host)) return true;
  let rules = noProxyRules.get(noProxy);
  if (!rules) noProxyRules.set(noProxy, (rules = noProxy.map(noProxyRule).filter((r) => r !== undefined)));
  const isAddress = isIP(host) !== 0;
  const family = familyOf(host);
  return rules.some((rule) => {
    if (rule.kind === "all") return true;
    if (rule.port !== undefined && rule.port !== port) return false;
    if (rule.kind === "ip") return isAddress && rule.addresses.check(host, family);
    return !isAddress && (host === rule.name || host.endsWith(`.${rule.name}`));
  });
}

/** The proxy and the answer to CONNECT and the TLS handshake through it, together. */
const TUNNEL_TIMEOUT_MS = 30_000;

/**
 * Opens a CONNECT tunnel to the request's host through `proxy` and runs TLS over it (`startTls`,
 * the agent's own TLS with the request's options). The socket is handed to the request only once
 * TLS with the target is established, so any failure before (the proxy refusing, a certificate the
 * proxy substituted) happens before a request byte could leave.
 */
function openTunnel(proxy: URL, options: http.ClientRequestArgs, done: ((err: Error | null, stream: Duplex) => void) | undefined, startTls: (socket: Duplex) => TLSSocket): undefined {
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
    done?.(proxyError(proxy, message), undefined as unknown as Duplex);
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
    const tls = startTls(socket);
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

const proxyError = (proxy: URL, message: string) => Object.assign(new Error(`through the proxy ${proxyName(proxy)} (HTTPS_PROXY): ${message}`), { code: "EPROXY" });

/** An HTTPS agent whose connections are all CONNECT tunnels through one proxy. */
class TunnelAgent extends https.Agent {
  constructor(
    readonly proxy: URL,
    pool: http.AgentOptions,
  ) {
    super(pool);
  }

  override createConnection(options: http.ClientRequestArgs, done?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return openTunnel(this.proxy, options, done, (socket) => super.createConnection({ ...options, socket } as never) as unknown as TLSSocket);
  }
}
/** By pool options (each caller's own), then by proxy URL. */
const tunnelAgents = new Map<http.AgentOptions, Map<string, TunnelAgent>>();

/** How an HTTPS call to `hostname:port` goes: a tunnel, or why it cannot be sent (a broken HTTPS_PROXY). */
function route(hostname: string, port: number): URL | "direct" | { problem: string } {
  if (!proxySettings) configureHttpsProxy();
  const { proxy, problem, noProxy } = proxySettings!;
  if ((!proxy && !problem) || exemptFromProxy(hostname, port, noProxy)) return "direct";
  // Fail closed: a broken HTTPS_PROXY never means going around it.
  if (problem) return { problem: `${problem}; fix it, or name ${hostname} in NO_PROXY to reach it directly` };
  return proxy!;
}

/**
 * The agent for an HTTPS call to `hostname:port`: a tunnel agent pooled with `pool` when the proxy
 * applies, undefined when the call goes direct, or why it cannot be sent.
 */
export function httpsProxyAgent(hostname: string, port: number, pool: http.AgentOptions): https.Agent | undefined | string {
  const how = route(hostname, port);
  if (how === "direct") return undefined;
  if (!(how instanceof URL)) return how.problem;
  let byProxy = tunnelAgents.get(pool);
  if (!byProxy) tunnelAgents.set(pool, (byProxy = new Map()));
  let agent = byProxy.get(how.href);
  if (!agent) byProxy.set(how.href, (agent = new TunnelAgent(how, pool)));
  return agent;
}

/**
 * An HTTPS agent for the gateway's other calls (AWS SDK clients, the alert webhook): each
 * connection goes through the proxy or direct by HTTPS_PROXY / NO_PROXY, host by host (an SDK
 * client picks its endpoint itself). Give each client its own: the SDK destroys the agent with the client.
 */
export class OutboundHttpsAgent extends https.Agent {
  constructor(options: https.AgentOptions = { keepAlive: true, maxSockets: 50 }) {
    super(options);
  }

  override createConnection(options: http.ClientRequestArgs, done?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const hostname = String(options.hostname ?? options.host ?? "localhost").replace(/^\[|\]$/g, "");
    const how = route(hostname, Number(options.port ?? 443));
    if (how === "direct") return super.createConnection(options, done);
    if (!(how instanceof URL)) {
      // Refused before any connection: reported through the request, as a tunnel's failure is.
      process.nextTick(() => done?.(Object.assign(new Error(how.problem), { code: "EPROXY" }), undefined as unknown as Duplex));
      return undefined;
    }
    return openTunnel(how, options, done, (socket) => super.createConnection({ ...options, socket } as never) as unknown as TLSSocket);
  }
}
