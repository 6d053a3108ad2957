/** The ledger is the user's alone: folders 0700, files 0600, for a new ledger and one made world-readable before. */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import { lockLedger } from "../../../server/ledger/lock";

const mode = async (p: string) => (await stat(p)).mode & 0o777;

/** Every folder and file of the ledger with its mode, as "relative/path 0NNN". */
async function modes(dir: string): Promise<string[]> {
  const out = [`. ${(await mode(dir)).toString(8)}`];
  for (const name of (await readdir(dir)).sort()) {
    out.push(`${name} ${(await mode(path.join(dir, name))).toString(8)}`);
    if (name === "journal") for (const f of (await readdir(path.join(dir, name))).sort()) out.push(`journal/${f} ${(await mode(path.join(dir, name, f))).toString(8)}`);
  }
  return out;
}

describe("ledger: private modes", function () {
  if (process.platform === "win32") return;
  let root: string;
  let dir: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-modes-"));
    dir = path.join(root, "ledger");
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function useLedger(): Promise<void> {
    const lock = await lockLedger(dir);
    const ledger = await Ledger.open(dir, { timeZone: "UTC" });
    await ledger.reserve({ type: "reserve", id: "r1", at: new Date().toISOString(), user: "u", tool: "t", operation: "Converse", modelId: "m", worstCasePicos: "5", capIds: [] });
    await lock.advertise("http://127.0.0.1:1234");
    await ledger.journal.close(); // as after a crash: the lock and an open reservation stay
    await ledger.close().catch(() => undefined);
    await lock.release();
  }

  it("creates a new ledger 0700 with its journal, lock, state and secret 0600", async () => {
    const old = process.umask(0o022); // the usual umask: without care, 0755 folders and 0644 files
    try {
      const lock = await lockLedger(dir);
      const ledger = await Ledger.open(dir, { timeZone: "UTC" });
      await ledger.reserve({ type: "reserve", id: "r1", at: new Date().toISOString(), user: "u", tool: "t", operation: "Converse", modelId: "m", worstCasePicos: "5", capIds: [] });
      await ledger.close();
      const month = new Date().toISOString().slice(0, 7);
      assert.deepEqual(await modes(dir), [
        ". 700",
        "gateway.lock 600",
        "gateway.secret 600",
        "journal 700",
        `journal/${month}.jsonl 600`,
        "state.json 600",
      ]);
      await lock.release();
    } finally {
      process.umask(old);
    }
  });

  it("repairs a ledger left world-readable (0755 / 0644) when it opens", async () => {
    await useLedger();
    const month = new Date().toISOString().slice(0, 7);
    await writeFile(path.join(dir, "journal", `${month}.jsonl.torn`), "{\"type\":\"res\n");
    await chmod(dir, 0o755);
    await chmod(path.join(dir, "journal"), 0o755);
    for (const f of ["gateway.secret", "state.json"]) await chmod(path.join(dir, f), 0o644);
    for (const f of [`${month}.jsonl`, `${month}.jsonl.torn`]) await chmod(path.join(dir, "journal", f), 0o644);
    await mkdir(path.join(root, "unrelated"), { mode: 0o755 });

    const ledger = await Ledger.open(dir, { timeZone: "UTC" });
    await ledger.close();
    assert.deepEqual(await modes(dir), [
      ". 700",
      "gateway.secret 600",
      "journal 700",
      `journal/${month}.jsonl 600`,
      `journal/${month}.jsonl.torn 600`,
      "state.json 600",
    ]);
    assert.equal(await mode(path.join(root, "unrelated")), 0o755, "nothing outside the ledger is touched");
  });
});
