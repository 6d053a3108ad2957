/** Fills a (small, test-mounted) filesystem: the disk-full tests of the ledger and of the reliability suite. */
import { closeSync, openSync, writeSync } from "node:fs";

/** Appends to `file` until the filesystem refuses (ENOSPC), at most about `maxBytes`; returns the bytes written. */
export function fillDisk(file: string, maxBytes: number): number {
  const fd = openSync(file, "a");
  let written = 0;
  try {
    // Big chunks first, then smaller ones, so the last few free bytes are taken too.
    for (const size of [256 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x61);
      while (written <= maxBytes) {
        try {
          written += writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}
