/**
 * One writer per ledger folder: two gateways appending to one journal would each "recover" the
 * other's calls in flight. The lock file names its owner's process instance: pid, the machine, and
 * on Linux the boot it runs in and its start time, so a lock left by a process that is gone, by
 * another boot, or whose pid now belongs to another process is stale and taken over. A lock from
 * another machine (a ledger folder on a network share) is never taken as stale: this machine
 * cannot tell whether that gateway runs, and two writers would each admit calls up to every cap.
 * A lock file appears complete (linked into place, never half-written), and the take-over of a
 * stale one is decided by an exclusive claim file named after that exact lock, linked into place
 * complete too, so two takers cannot both win and a fresh lock is never removed.
 */
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import { link, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { FILE_MODE, privateDir } from "./privateFiles";

const LOCK_FILE = "gateway.lock";

/** The lock file of the ledger in `dir`. */
export function lockFileOf(dir: string): string {
  return path.join(dir, LOCK_FILE);
}
/** Claims of a stale lock whose claimer died before finishing: each level is a fresh exclusive create. */
const CLAIM_LEVELS = 4;

export class LedgerLocked extends Error {
  constructor(readonly dir: string, readonly pid: number, readonly host?: string) {
    super(
      host === undefined
        ? `the ledger in ${dir} is in use by another Bedrock Budget gateway (pid ${pid}); use that one, or give this one another ledgerDir. ` +
            `If pid ${pid} is not a Bedrock Budget gateway (a lock left by one that crashed, its pid since reused), remove ${path.join(dir, LOCK_FILE)}`
        : `the ledger in ${dir} is in use by a Bedrock Budget gateway on another machine (${JSON.stringify(host)}, pid ${pid}), and this machine cannot tell whether it still runs. ` +
            `Give each machine its own ledgerDir (a team shares spend through teamLedger); if no gateway runs there any more, remove ${path.join(dir, LOCK_FILE)}`,
    );
  }
}

/** LedgerLocked for `owner`, naming its machine when that is not this one. */
function lockedBy(dir: string, owner: LockOwner): LedgerLocked {
  return new LedgerLocked(dir, owner.pid, isForeign(owner) ? (owner.host ?? owner.machine ?? "unknown") : undefined);
}

export interface LedgerLock {
  /** Records where the owner serves, so another window can find and follow it. */
  advertise(url: string): Promise<void>;
  release(): Promise<void>;
}

/** A process instance as the lock file records it. */
export interface LockOwner {
  pid: number;
  url?: string;
  /** Linux boot id of the owner's boot. */
  boot?: string;
  /** The owner's start time (clock ticks since boot, /proc/<pid>/stat field 22). */
  start?: string;
  /** Random per lock: tells this process's own lock from a later one. */
  id?: string;
  /** The machine's id (/etc/machine-id), where the system has one. */
  machine?: string;
  /** The machine's host name. */
  host?: string;
}

/** The lock file: pid, URL (empty until it listens), then `key=value` lines (older readers see pid and URL). */
export function formatLock(owner: LockOwner): string {
  const extra = (["boot", "start", "id", "machine", "host"] as const).flatMap((k) => (owner[k] ? [`${k}=${owner[k]}`] : []));
  return [String(owner.pid), owner.url ?? "", ...extra].join("\n") + "\n";
}

export function parseLock(text: string): LockOwner | undefined {
  const [pidLine = "", url = "", ...rest] = text.split("\n");
  const pid = Number(pidLine.trim());
  if (!/^\d+$/.test(pidLine.trim()) || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const owner: LockOwner = { pid };
  if (url.trim()) owner.url = url.trim();
  for (const line of rest) {
    const m = /^(boot|start|id|machine|host)=(\S+)$/.exec(line.trim());
    if (m) owner[m[1] as "boot" | "start" | "id" | "machine" | "host"] = m[2]!;
  }
  return owner;
}

export async function lockLedger(dir: string): Promise<LedgerLock> {
  await privateDir(dir);
  const file = path.join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, ...instanceOf(process.pid), id: randomUUID() };
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await createComplete(file, me)) {
      await removeClaims(dir); // left by a take-over that crashed half-way
      return held(file, me);
    }
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text === undefined) continue; // released meanwhile: create it
    const owner = parseLock(text);
    // Our own pid counts as taken too: a second gateway in this process must not share the journal.
    if (owner && !isStale(owner)) throw lockedBy(dir, owner);
    if (await takeOver(file, text, me)) {
      await removeClaims(dir);
      return held(file, me);
    }
    // Another process is taking it over: it holds the lock next time round, or died and left it stale.
    await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
  }
  const owner = await readLockFile(file);
  if (owner) throw lockedBy(dir, owner);
  throw new Error(`could not lock the ledger in ${dir}: its lock file ${file} keeps changing`);
}

/**
 * The live gateway on this machine that owns this ledger folder and where it serves, if any. One
 * on another machine serves that machine's loopback address: nothing here to follow.
 */
export async function ledgerOwner(dir: string): Promise<LockOwner | undefined> {
  const owner = await readLockFile(path.join(dir, LOCK_FILE));
  return owner && !isForeign(owner) && !isStale(owner) ? owner : undefined;
}

/** Whether a live gateway holds the ledger in `dir` now, on this machine or another. */
export async function isLockHeld(dir: string): Promise<boolean> {
  const owner = await readLockFile(path.join(dir, LOCK_FILE));
  return owner !== undefined && !isStale(owner);
}

/**
 * Stale: its process is gone, it ran in another boot, or its pid now names another process. Never
 * a lock from another machine: its pid, boot and start time say nothing here.
 */
export function isStale(owner: LockOwner): boolean {
  if (isForeign(owner)) return false;
  const boot = bootId();
  if (owner.boot && boot && owner.boot !== boot) return true;
  if (!isAlive(owner.pid)) return true;
  const start = startTime(owner.pid);
  return owner.start !== undefined && start !== undefined && owner.start !== start;
}

function held(file: string, me: LockOwner): LedgerLock {
  const mine = async () => (await readLockFile(file))?.id === me.id;
  return {
    advertise: async (url) => {
      if (await mine()) await replaceLock(file, { ...me, url });
    },
    release: async () => {
      if (await mine()) await rm(file, { force: true });
    },
  };
}

/**
 * Links a complete file naming `me` into place at `file` (the lock, or a take-over claim); false
 * when one is there already. Linked, so nobody ever reads it empty or half-written.
 */
async function createComplete(file: string, me: LockOwner): Promise<boolean> {
  const tmp = await writeTemp(file, me);
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    if (!["EPERM", "ENOTSUP", "ENOSYS", "EXDEV"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
    // No hard links on this file system: an exclusive create (written at once, small) instead;
    // a reader takes a claim still empty for one being written (unreadableIsRecent).
    try {
      const fh = await open(file, "wx", FILE_MODE);
      await fh.writeFile(formatLock(me));
      await fh.close();
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw e;
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * How long a claim that cannot be read may be one still being written (an exclusive create on a
 * file system without hard links) rather than one its claimer died writing.
 */
const UNREADABLE_CLAIM_MS = 5_000;

/**
 * Replaces the stale lock whose content is `stale`, if this process wins the exclusive claim on it
 * and the lock still holds that content. A claim whose claimer died before finishing is passed
 * over to the next level, which is again won by exactly one taker.
 */
async function takeOver(file: string, stale: string, me: LockOwner): Promise<boolean> {
  const tag = createHash("sha256").update(stale).digest("hex").slice(0, 16);
  for (let level = 0; level < CLAIM_LEVELS; level++) {
    const claim = `${file}.takeover-${tag}-${level}`;
    if (!(await createComplete(claim, me))) {
      const claimer = await readLockFile(claim);
      // A live process is taking it over; so may one whose claim cannot be read yet. Passing over
      // a claim read while it was being written let two takers both win.
      if (claimer ? !isStale(claimer) : await unreadableIsRecent(claim)) return false;
      continue;
    }
    // Won the claim: no other taker replaces this content now. Still there?
    if ((await readFile(file, "utf8").catch(() => undefined)) !== stale) {
      await rm(claim, { force: true });
      return false;
    }
    await replaceLock(file, me);
    return (await readLockFile(file))?.id === me.id; // verify after taking
  }
  return false;
}

/** True while an unreadable claim is young enough to be one still being written (or already gone). */
async function unreadableIsRecent(claim: string): Promise<boolean> {
  const since = await stat(claim).then((st) => Date.now() - st.mtimeMs, () => 0);
  return since < UNREADABLE_CLAIM_MS;
}

/** Claims are only needed while a take-over runs; the new owner clears them, and temp files of dead processes. */
async function removeClaims(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const tmpOf = /^gateway\.lock\.(\d+)\.[0-9a-f-]{8}\.tmp$/.exec(name);
    if (name.startsWith(`${LOCK_FILE}.takeover-`) || (tmpOf && !isAlive(Number(tmpOf[1])))) await rm(path.join(dir, name), { force: true });
  }
}

/** Atomically replaces the lock file with `owner` (rename of a complete temp file). */
async function replaceLock(file: string, owner: LockOwner): Promise<void> {
  const tmp = await writeTemp(file, owner);
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** A complete temp file beside `file`, named for this process alone (removeClaims clears only dead processes' ones). */
async function writeTemp(file: string, owner: LockOwner): Promise<string> {
  const tmp = path.join(path.dirname(file), `${LOCK_FILE}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
  const fh = await open(tmp, "wx", FILE_MODE);
  try {
    await fh.writeFile(formatLock(owner));
  } finally {
    await fh.close();
  }
  return tmp;
}

async function readLockFile(file: string): Promise<LockOwner | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  return text === undefined ? undefined : parseLock(text);
}

/** This machine, this boot and the process's start time, where the system tells them. */
function instanceOf(pid: number): Pick<LockOwner, "boot" | "start" | "machine" | "host"> {
  const boot = bootId();
  const start = startTime(pid);
  const machine = machineId();
  const host = hostName();
  return { ...(boot ? { boot } : {}), ...(start ? { start } : {}), ...(machine ? { machine } : {}), ...(host ? { host } : {}) };
}

/**
 * Written by another machine: by its machine id where both have one, else by its host name. Not
 * by host name on macOS, which renames the host as the network changes: a lock left by a gateway
 * there would then look foreign and lock its own machine out. Locks from before these fields
 * existed carry neither and are judged as before.
 */
function isForeign(owner: LockOwner): boolean {
  const machine = machineId();
  if (owner.machine && machine) return owner.machine !== machine;
  const host = hostName();
  return process.platform !== "darwin" && !!owner.host && !!host && owner.host !== host;
}

let cachedMachine: string | null | undefined;
/** systemd's machine id (the D-Bus one on older systems); a lock file's line takes no spaces. */
function machineId(): string | undefined {
  if (cachedMachine === undefined) {
    cachedMachine = null;
    for (const file of ["/etc/machine-id", "/var/lib/dbus/machine-id"]) {
      try {
        const id = readFileSync(file, "utf8").trim();
        if (/^[0-9a-f]{32}$/i.test(id)) {
          cachedMachine = id.toLowerCase();
          break;
        }
      } catch {
        // not there: the next one, else none
      }
    }
  }
  return cachedMachine ?? undefined;
}

/** The host name, as a lock file line takes it (no white space). */
function hostName(): string | undefined {
  const host = os.hostname().replace(/\s+/g, "");
  return host || undefined;
}

let cachedBoot: string | null | undefined;
function bootId(): string | undefined {
  if (cachedBoot === undefined) {
    try {
      cachedBoot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || null;
    } catch {
      cachedBoot = null;
    }
  }
  return cachedBoot ?? undefined;
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = fields[22 - 3];
    return start && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
