import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { STATE_WRITE_BYTES_PER_S, StateStore, stateWriteDelayMs, type StateData } from "../../../server/ledger/state";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("state.json writes are paced by its size", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-state-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const open = (debounceMs: number) => StateStore.open(dir, { timeZone: "UTC", debounceMs, stamp: (d: StateData) => (d.savedAt = new Date().toISOString()) });

  /** About `bytes` of rollups: a year of days over many models. */
  const fill = (store: StateStore, bytes: number) => {
    const row = { calls: 1, refused: 0, costPicos: "123456789", inputTokens: 1000, outputTokens: 500 };
    const models = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`model-${i}`, row]));
    const perDay = JSON.stringify(models, null, 2).length;
    for (let d = 0; d * perDay < bytes; d++) store.data.days[`day-${String(d).padStart(5, "0")}`] = models;
  };

  it("the wait is the debounce up to 2 s of the write budget, then grows with the file: a 6.7 MB file is rewritten every ~27 s, not every 2 s", () => {
    assert.equal(stateWriteDelayMs(2000, 0), 2000);
    assert.equal(stateWriteDelayMs(2000, 40_000), 2000, "a small file: the debounce");
    assert.equal(stateWriteDelayMs(2000, 2 * STATE_WRITE_BYTES_PER_S), 2000, "2 s worth of the budget: still the debounce");
    assert.equal(stateWriteDelayMs(2000, 3 * STATE_WRITE_BYTES_PER_S), 3000);
    assert.equal(stateWriteDelayMs(2000, 6_700_000), Math.ceil(6_700_000_000 / STATE_WRITE_BYTES_PER_S));
    assert.ok(stateWriteDelayMs(2000, 6_700_000) > 25_000);
    assert.equal(stateWriteDelayMs(50, 1), 50, "a test's short debounce stays");
  });

  it("a big state.json is not rewritten on the debounce after a change, a small one is; an explicit flush always writes", async () => {
    const small = await open(10);
    small.markDirty();
    for (let i = 0; i < 100 && small.writes === 0; i++) await sleep(20);
    assert.equal(small.writes, 1, "a small file is written once the 10 ms debounce passes");
    await small.close();

    const big = await open(10);
    fill(big, 1_500_000); // ~6 s of the budget
    await big.flush();
    assert.equal(big.writes, 1);
    assert.ok((await stat(big.file)).size > 1_500_000);
    big.markDirty();
    await sleep(400); // 40 debounces
    assert.equal(big.writes, 1, "not rewritten within 400 ms: the next write waits ~6 s");
    await big.flush(); // close and checkpoints at shutdown do not wait
    assert.equal(big.writes, 2);

    // The size read at open paces too: a restart does not rewrite a big file every debounce either.
    const again = await open(10);
    assert.ok(Object.keys(again.data.days).length > 0, "the file read back");
    again.markDirty();
    await sleep(400);
    assert.equal(again.writes, 0);
    assert.ok(JSON.parse(await readFile(again.file, "utf8")), "state.json stays plain JSON");
    await again.close();
  });
});
