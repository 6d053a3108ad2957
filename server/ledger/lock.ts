/**
 * One writer per ledger folder: two gateways appending to one journal would each "recover" the
 * other's calls in flight. The lock file holds the owner's pid; a lock whose process is gone is
 * stale and taken over.
 */
import { mkdir, open, readFile, rm } from "node:fs/promises";
import path from "node:path";

export class LedgerLocked extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`the ledger in ${dir} is in use by another Bedrock Budget gateway (pid ${pid}); use that one, or give this one another ledgerDir`);
  }
}

export async function lockLedger(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, "gateway.lock");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return async () => {
        if ((await ownerOf(file)) === process.pid) await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = await ownerOf(file);
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) throw new LedgerLocked(dir, owner);
      await rm(file, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not lock the ledger in ${dir}`);
}

async function ownerOf(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, "utf8")).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
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
