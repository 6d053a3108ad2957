/** The ledger's files are repaired to 0600 on open, the price file and the team writer id among them (server/ledger/privateFiles.ts). */
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { repairLedgerModes } from "../../../server/ledger/privateFiles";

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
