/**
 * Who listens on a local TCP port, for an error message that names what holds it: on Linux the
 * owner's uid from /proc/net/tcp{,6}; elsewhere nothing is known.
 */
import { readFile } from "node:fs/promises";

const LISTEN = "0A";

/** The uid of the process listening on `port`, when the system tells. */
export async function listenerUid(port: number): Promise<number | undefined> {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    const uid = uidInTable(text, port);
    if (uid !== undefined) return uid;
  }
  return undefined;
}

/** Pure: the uid column of the first LISTEN row whose local port is `port`. */
export function uidInTable(table: string, port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const line of table.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8 || cols[3] !== LISTEN || cols[1]?.split(":")[1] !== hexPort) continue;
    const uid = Number(cols[7]);
    if (Number.isInteger(uid)) return uid;
  }
  return undefined;
}

/** "your own user" / "another user (uid 1001)" / undefined. */
export async function describeListener(port: number): Promise<string | undefined> {
  const uid = await listenerUid(port);
  if (uid === undefined) return undefined;
  return isOwnUid(uid) ? "a process of your own user" : `a process of another user (uid ${uid})`;
}

/** True when `uid` is this process's user. */
export function isOwnUid(uid: number): boolean {
  return typeof process.getuid === "function" && uid === process.getuid();
}

/**
 * A Bedrock Budget gateway holds `port` but cannot prove it holds this ledger's secret: it serves
 * another ledger. `who`: its pid and user, as known. The CLI and the language server say it in the
 * same words, then their own fix.
 */
export function gatewayOnAnotherLedger(port: number, pid: number | undefined, owner: string | undefined): string {
  const who = [pid ? `pid ${pid}` : undefined, owner].filter(Boolean).join(", ");
  return `port ${port} is already in use by another Bedrock Budget gateway on another ledger${who ? ` (${who})` : ""}`;
}

/** What a gateway of this user on another ledger usually is. */
export const OWN_GATEWAY_ON_ANOTHER_LEDGER = "probably your own `bedrock-budget serve --ledger …` or `serve --simulate`";
