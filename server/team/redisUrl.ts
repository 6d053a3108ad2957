/**
 * `teamLedger` as a Redis address. Pure.
 *
 *   redis://[user[:password]@]host[:port][/db]                       one Redis
 *   rediss://…                                                        the same over TLS
 *   redis://[user[:password]@]h1:26379,h2:26379[/db]?sentinel=master  Sentinel (master name)
 *   redis://[user[:password]@]h1:7000,h2:7001?cluster=true           Redis Cluster (seed nodes)
 *
 * User name and password are the Redis ACL user (or the `requirepass` password alone); with
 * Sentinel they authenticate to the master, and `sentinelPassword=` (query) to the sentinels.
 */
export interface RedisTarget {
  kind: "single" | "sentinel" | "cluster";
  nodes: { host: string; port: number }[];
  tls: boolean;
  username?: string;
  password?: string;
  db?: number;
  sentinelName?: string;
  sentinelPassword?: string;
}

export function isRedisUrl(value: string): boolean {
  return /^rediss?:\/\//i.test(value);
}

export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(rediss?):\/\/(?:([^@/?#]*)@)?([^/?#]+)(?:\/(\d*))?(?:\?([^#]*))?$/i.exec(url.trim());
  if (!m) throw new Error(`not a redis URL: ${JSON.stringify(url.replace(/\/\/[^@]*@/, "//***@"))}`);
  const [, scheme, auth, hosts, db, query] = m;
  const tls = scheme!.toLowerCase() === "rediss";
  const defaultPort = 6379;
  const nodes = hosts!.split(",").map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h.trim());
    if (!hm) throw new Error(`bad host in redis URL: ${JSON.stringify(h)}`);
    const port = hm[2] === undefined ? defaultPort : Number(hm[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port in redis URL: ${hm[2]}`);
    return { host: hm[1]!.replace(/^\[|\]$/g, ""), port };
  });
  const params = new URLSearchParams(query ?? "");
  const target: RedisTarget = { kind: "single", nodes, tls };
  if (auth !== undefined && auth !== "") {
    const i = auth.indexOf(":");
    const user = decodeUserInfo(i < 0 ? "" : auth.slice(0, i));
    const password = decodeUserInfo(i < 0 ? auth : auth.slice(i + 1));
    if (user) target.username = user;
    if (password) target.password = password;
  }
  if (db !== undefined && db !== "") target.db = Number(db);
  const sentinel = params.get("sentinel");
  const cluster = params.get("cluster");
  if (sentinel && cluster && cluster !== "false") throw new Error("a redis URL names either a sentinel master or a cluster, not both");
  if (sentinel) {
    target.kind = "sentinel";
    target.sentinelName = sentinel;
    const sp = params.get("sentinelPassword");
    if (sp) target.sentinelPassword = sp;
  } else if (cluster === "true" || cluster === "1") {
    target.kind = "cluster";
    if (target.db !== undefined && target.db !== 0) throw new Error("Redis Cluster has only database 0");
  } else if (nodes.length > 1) {
    throw new Error("several hosts in a redis URL need ?sentinel=<master name> or ?cluster=true");
  }
  return target;
}

/**
 * A %-escaped user name or password. decodeURIComponent's own error ("URI malformed") names
 * neither the URL nor the fix; this one does, without repeating the password.
 */
function decodeUserInfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Error("the user name or password in a redis URL has a bad %-escape: write % itself as %25");
  }
}

/**
 * What is wrong with a redis URL, or undefined: parseRedisUrl's own checks, so that the settings
 * are refused when read (naming the key) rather than when the team store connects.
 */
export function redisUrlProblem(url: string): string | undefined {
  try {
    parseRedisUrl(url);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** All keys of one team share a hash tag, so they live in one Cluster slot and one Lua script can touch them all. */
export function teamKeyPrefix(team: string): string {
  return `{bb:${team}}`;
}
