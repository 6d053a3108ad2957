/**
 * Reads a file of the shared team folder only when it is a regular file within a size limit:
 * anyone with write access to the folder can put a symlink, FIFO, device or huge file there, and
 * reading one must neither follow it, nor block (a FIFO's open waits for a writer), nor fill memory.
 */
import { constants, type Stats } from "node:fs";
import { lstat, open, type FileHandle } from "node:fs/promises";

export type RegularFileRead = { kind: "text"; text: string } | { kind: "absent" } | { kind: "refused"; why: string };

/** 1 MiB: far above any real team.json. */
export const TEAM_FILE_MAX_BYTES = 1024 * 1024;
/** 256 KiB: a spend file holds a few windows per team cap. */
export const SPEND_FILE_MAX_BYTES = 256 * 1024;

// O_NOFOLLOW and O_NONBLOCK close the race between lstat and open (a link or FIFO swapped in
// meanwhile); they are undefined on Windows, where lstat and the handle's fstat still check.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** The file's text, `absent` when it does not exist, `refused` (with why) when it is not a regular file or too big. Other I/O errors throw. */
export async function readRegularFile(file: string, maxBytes: number): Promise<RegularFileRead> {
  let st: Stats;
  try {
    st = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
    throw err;
  }
  const bad = check(st, maxBytes);
  if (bad) return { kind: "refused", why: bad };
  let handle: FileHandle;
  try {
    handle = await open(file, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { kind: "absent" };
    if (code === "ELOOP") return { kind: "refused", why: "a symbolic link" };
    throw err;
  }
  try {
    const opened = check(await handle.stat(), maxBytes);
    if (opened) return { kind: "refused", why: opened };
    // Read up to one byte past the limit: a file that grew since fstat is refused, never truncated.
    const chunks: Buffer[] = [];
    let total = 0;
    for (let i = 0; i < 1_000 && total <= maxBytes; i++) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, total);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total > maxBytes) return { kind: "refused", why: `larger than the ${maxBytes}-byte limit` };
    return { kind: "text", text: Buffer.concat(chunks, total).toString("utf8") };
  } finally {
    await handle.close();
  }
}

function check(st: Stats, maxBytes: number): string | undefined {
  if (!st.isFile()) return `not a regular file (${kindOf(st)})`;
  if (st.size > maxBytes) return `${st.size} bytes, over the ${maxBytes}-byte limit`;
  return undefined;
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a FIFO";
  if (st.isDirectory()) return "a directory";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a file";
}
