/**
 * The ledger is the user's alone: its folders are 0700 and its files 0600, whatever the umask, and
 * a ledger created by an older version (0755 / 0644) is repaired on start. POSIX only: on Windows
 * chmod changes little and the folder's ACL (under the user's profile) is what protects it.
 */
import { chmod, mkdir, open, readdir } from "node:fs/promises";
import path from "node:path";

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/** Files of the ledger folder itself; the journal folder's files are all the ledger's. */
const LEDGER_FILES = /^(gateway\.lock.*|gateway\.secret.*|state\.json.*|\.state\.json\.tmp|profiles\.json.*|alerts\.jsonl.*|aws-prices\.json.*|team-writer-id)$/;

/** Creates `dir` (and parents) if missing; `dir` itself ends 0700 either way. */
export async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  await chmodOwn(dir, DIR_MODE);
}

/** Makes an existing ledger private: the folder, its journal folder, and the ledger's own files. */
export async function repairLedgerModes(dir: string): Promise<void> {
  await privateDir(dir);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (LEDGER_FILES.test(name)) await chmodOwn(path.join(dir, name), FILE_MODE);
  }
  const journal = path.join(dir, "journal");
  const names = await readdir(journal).catch(() => undefined);
  if (!names) return;
  await chmodOwn(journal, DIR_MODE);
  for (const name of names) await chmodOwn(path.join(journal, name), FILE_MODE);
}

async function chmodOwn(file: string, mode: number): Promise<void> {
  if (process.platform === "win32") return;
  try {
    await chmod(file, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return; // removed meanwhile
    if (code === "EPERM") {
      throw new Error(`${file} belongs to another user: the ledger must be yours alone (set ledgerDir to a folder you own)`, { cause: err });
    }
    throw err;
  }
}

/**
 * What fsync of a folder fails with when the disk did not take the entry: the new file's name may
 * not survive a crash, so the caller must not report it written. Any other failure means the
 * platform cannot fsync a folder (Windows: EPERM; some network and FUSE file systems: EINVAL,
 * ENOTSUP): the entry is as durable as the platform makes it.
 */
const DIR_SYNC_FAILURES = new Set(["EIO", "ENOSPC", "EDQUOT", "EROFS"]);

/** Makes a new or renamed entry in `dir` durable; some platforms (Windows) cannot fsync a folder. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } catch (err) {
    if (DIR_SYNC_FAILURES.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
  } finally {
    await fh.close();
  }
}
