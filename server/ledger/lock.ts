/**
 * One writer per ledger folder: two gateways appending to one journal would each "recover" the
 * other's calls in flight. The lock file holds the owner's pid; a lock whose process is gone is
 * stale and taken over.
 */
import { mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

const LOCK_FILE = "gateway.lock";

export class LedgerLocked extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`the ledger in ${dir} is in use by another Bedrock Budget gateway (pid ${pid}); use that one, or give this one another ledgerDir`);
  }
}

export interface LedgerLock {
  /** Records where the owner serves, so another window can find and follow it. */
  advertise(url: string): Promise<void>;
  release(): Promise<void>;
}

/** The lock file holds the owner's pid and, once it listens, its URL (one per line). */
export async function lockLedger(dir: string): Promise<LedgerLock> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return {
        advertise: async (url) => {
          if ((await ownerOf(file)) === process.pid) await writeFile(file, `${process.pid}\n${url}\n`);
        },
        release: async () => {
          if ((await ownerOf(file)) === process.pid) await rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = await ownerOf(file);
      // Our own pid counts as taken too: a second gateway in this process must not share the journal.
      if (owner !== undefined && isAlive(owner)) throw new LedgerLocked(dir, owner);
      await rm(file, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not lock the ledger in ${dir}`);
}

/** The live gateway that owns this ledger folder and where it serves, if any. */
export async function ledgerOwner(dir: string): Promise<{ pid: number; url?: string } | undefined> {
  const owner = await readLock(path.join(dir, LOCK_FILE));
  return owner && isAlive(owner.pid) ? owner : undefined;
}

async function ownerOf(file: string): Promise<number | undefined> {
  return (await readLock(file))?.pid;
}

async function readLock(file: string): Promise<{ pid: number; url?: string } | undefined> {
  try {
    const [pidLine = "", url] = (await readFile(file, "utf8")).split("\n");
    const pid = Number(pidLine.trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return url?.trim() ? { pid, url: url.trim() } : { pid };
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
