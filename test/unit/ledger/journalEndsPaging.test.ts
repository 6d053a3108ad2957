// The call log's paging into the journal (GET /calls?before=): a cursor's month is found without parsing the journal, only the months from it on are read, and memory stays at a page.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, Outcome } from "../../../server/ledger/types";

const NOW = new Date("2026-12-03T10:00:00.000Z");

function call(id: string, at: string, o: Partial<CallRecord> = {}): CallRecord {
  return {
    type: "settle", id, at, startedAt: at, user: "ana", tool: "t", operation: "InvokeModel", modelId: "m1", baseModelId: "m1",
    usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1000", worstCasePicos: "5000", outcome: "ok", status: 200, latencyMs: 1, tags: {}, ...o,
  };
}

describe("journal ends: the call log's paging into the journal", () => {
  let dir: string;
  const open = () => Ledger.open(dir, { now: () => NOW, timeZone: "UTC", recentLimit: 3 });
  const outcomes: Outcome[] = ["ok", "refused", "cut"];
  // 20 calls in each of September, October and November.
  const ids = Array.from({ length: 60 }, (_, i) => `c${i}`);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-paging-"));
    const l = await open();
    for (let i = 0; i < 60; i++) {
      const at = new Date(Date.UTC(2026, 8 + Math.floor(i / 20), 1 + (i % 20), 12)).toISOString();
      await l.settle(call(ids[i]!, at, { outcome: outcomes[i % 3]!, modelId: i % 2 ? "us.m1" : "m2", baseModelId: i % 2 ? "m1" : "m2" }));
    }
    await l.close();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("an unknown cursor answers an empty page without parsing the journal", async () => {
    const l = await open();
    try {
      const before = l.journal.stats.linesRead;
      assert.deepEqual(await l.recentCalls({ limit: 10, before: "no-such-id" }), { calls: [] });
      assert.equal(l.journal.stats.linesRead - before, 0, "no journal entry parsed for an id no line holds");
    } finally {
      await l.close();
    }
  });

  it("a cursor in the oldest month reads only that month, and the pages across months are those of the whole journal, newest first", async () => {
    const l = await open();
    try {
      const pageAll = async (q: { model?: string; outcome?: Outcome }, limit: number) => {
        const got: string[] = [];
        let before: string | undefined;
        for (let n = 0; n < 100; n++) {
          const page = await l.recentCalls({ limit, ...q, ...(before ? { before } : {}) });
          assert.ok(page.calls.length <= limit);
          got.push(...page.calls.map((c) => c.id));
          if (!page.next) return got;
          before = page.next;
        }
        throw new Error("paging did not end");
      };
      const want = (pred: (i: number) => boolean) => Array.from({ length: 60 }, (_, i) => 59 - i).filter(pred).map((i) => `c${i}`);
      for (const limit of [1, 4, 7, 25, 100]) {
        assert.deepEqual(await pageAll({}, limit), want(() => true), `limit ${limit}`);
        assert.deepEqual(await pageAll({ outcome: "refused" }, limit), want((i) => i % 3 === 1));
        assert.deepEqual(await pageAll({ model: "m1", outcome: "ok" }, limit), want((i) => i % 2 === 1 && i % 3 === 0));
      }
      const before = l.journal.stats.linesRead;
      const page = await l.recentCalls({ limit: 5, before: "c15" }); // September's
      assert.deepEqual(page.calls.map((c) => c.id), ["c14", "c13", "c12", "c11", "c10"]);
      assert.equal(page.next, "c10");
      assert.equal(l.journal.stats.linesRead - before, 20, "September's lines only, not October's or November's");
    } finally {
      await l.close();
    }
  });
});
