/** The ledger's files are repaired to 0600 on open, the price file and the team writer id among them (server/ledger/privateFiles.ts). */
import assert from "node:assert/strict";
import { chmod, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Journal, JournalWriteError } from "../../../server/ledger/journal";
import { repairLedgerModes, syncDir } from "../../../server/ledger/privateFiles";
import type { ReserveEntry } from "../../../server/ledger/types";

describe("small fixes: ledger file modes", function () {
  if (process.platform === "win32") return;
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-smallfix-modes-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a world-readable aws-prices.json (and its temp file) and team-writer-id are made 0600 when the ledger is repaired; the user's config.json is left as it is", async () => {
    const files = ["aws-prices.json", "aws-prices.json.1a2b3c4d.tmp", "team-writer-id", "config.json"];
    for (const f of files) {
      await writeFile(path.join(dir, f), "{}\n");
      await chmod(path.join(dir, f), 0o644);
    }
    await repairLedgerModes(dir);
    const modes = Object.fromEntries(await Promise.all(files.map(async (f) => [f, ((await stat(path.join(dir, f))).mode & 0o777).toString(8)])));
    assert.deepEqual(modes, { "aws-prices.json": "600", "aws-prices.json.1a2b3c4d.tmp": "600", "team-writer-id": "600", "config.json": "644" });
  });
});

describe("a folder's fsync (syncDir)", () => {
  let dir: string;
  let restore: (() => void) | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-syncdir-"));
  });
  afterEach(async () => {
    restore?.();
    restore = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** Makes every FileHandle's sync() fail with `code` (folders and files alike) until restored. */
  async function failSync(code: string): Promise<void> {
    const fh = await open(dir, "r");
    const proto = Object.getPrototypeOf(fh) as { sync: () => Promise<void> };
    await fh.close();
    const original = proto.sync;
    proto.sync = () => Promise.reject(Object.assign(new Error(`${code}: injected`), { code }));
    restore = () => void (proto.sync = original);
  }

  it("a disk error (EIO) fails the journal's first append to a new month file, which then goes through once the disk answers", async () => {
    const journal = await Journal.open(dir);
    await failSync("EIO");
    await assert.rejects(journal.append(entry("first")), (err: Error) => err instanceof JournalWriteError && /EIO/.test(err.message));
    restore!();
    restore = undefined;
    await journal.append(entry("again"));
    await journal.close();
    const ids = (await readFile(path.join(dir, "journal", "2026-11.jsonl"), "utf8")).trim().split("\n").map((l) => (JSON.parse(l) as { id: string }).id);
    assert.deepEqual(ids, ["again"], "the refused line was not left in the file");
  });

  it("a platform that cannot fsync a folder (EINVAL, EPERM) does not stop the journal", async () => {
    for (const code of ["EINVAL", "EPERM"]) {
      await failSync(code);
      await syncDir(dir);
      restore!();
      restore = undefined;
    }
    const journal = await Journal.open(dir);
    await failSync("EINVAL");
    await journal.append(entry("one"));
    await journal.close();
  });
});

function entry(id: string): ReserveEntry {
  return { type: "reserve", id, at: "2026-11-22T10:00:00.000Z", user: "u", tool: "t", operation: "Converse", modelId: "m", worstCasePicos: "5000", capIds: [] };
}
