// The ledger's replay on open, at its edges: a crash after the last snapshot, a month boundary, an old open reservation, a snapshot it cannot trust, and recent calls kept in memory.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, ReserveEntry } from "../../../server/ledger/types";

function call(id: string, at: string, costPicos: string): CallRecord {
  return {
    type: "settle", id, at, startedAt: at, user: "ana", tool: "aws-cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1",
    usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos, worstCasePicos: "9000", outcome: "ok", status: 200, latencyMs: 12, tags: {},
  };
}

function reserve(id: string, at: string, worst: string): ReserveEntry {
  return { type: "reserve", id, at, user: "ana", tool: "aws-cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1", worstCasePicos: worst, capIds: ["d"] };
}

describe("ledger: replay on open, at its edges", () => {
  let dir: string;
  let clock: Date;
  const open = (o: { recentLimit?: number; stateDebounceMs?: number } = {}) => Ledger.open(dir, { now: () => clock, timeZone: "UTC", ...o });
  /** Cost per day of the rollups (model m1), as the dashboard's history shows it. */
  const days = (l: Ledger) => Object.fromEntries(Object.entries(l.rollups()).map(([d, byModel]) => [d, byModel.m1?.costPicos]));

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-replay-edges-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("counts a call settled after the last state snapshot (the gateway died before writing state.json)", async () => {
    clock = new Date("2026-11-22T10:00:00.000Z");
    const l1 = await open({ stateDebounceMs: 3_600_000 }); // the open writes the snapshot; the settle below only schedules one
    clock = new Date("2026-11-22T10:30:00.000Z");
    await l1.settle(call("after-snapshot", "2026-11-22T10:30:00.000Z", "2500"));
    await l1.journal.close(); // the crash: state.json still says nothing was spent today

    clock = new Date("2026-11-22T10:45:00.000Z");
    const l2 = await open();
    try {
      assert.deepEqual(l2.todayTotals(clock), { calls: 1, costPicos: 2500n, byModel: { m1: { calls: 1, costPicos: 2500n } } });
      assert.deepEqual(days(l2), { "2026-11-22": "2500" });
    } finally {
      await l2.close();
    }
  });

  it("keeps the last day of the previous month when the snapshot was taken just after midnight on the 1st", async () => {
    clock = new Date("2026-10-31T23:00:00.000Z");
    const l1 = await open();
    await l1.settle(call("halloween", "2026-10-31T23:00:00.000Z", "700"));
    clock = new Date("2026-11-01T00:30:00.000Z");
    await l1.close(); // snapshot: savedAt Nov 1 00:30, no reservation open

    for (const at of ["2026-11-01T00:30:00.000Z", "2026-11-01T06:00:00.000Z"]) {
      clock = new Date(at);
      const l = await open();
      try {
        assert.deepEqual(days(l), { "2026-10-31": "700" }, `reopened at ${at}`);
        assert.deepEqual(l.todayTotals(new Date("2026-10-31T23:30:00.000Z")).costPicos, 700n);
      } finally {
        await l.close();
      }
    }
  });

  it("charges a reservation left open in an earlier month, and still lists calls of months it did not replay", async () => {
    clock = new Date("2026-09-10T08:00:00.000Z");
    const l1 = await open();
    await l1.settle(call("september", "2026-09-10T08:00:00.000Z", "300"));
    clock = new Date("2026-10-30T10:00:00.000Z");
    await l1.reserve(reserve("stuck", "2026-10-30T10:00:00.000Z", "64000"));
    clock = new Date("2026-11-22T10:00:00.000Z");
    await l1.close(); // its reservation was never settled (the call hung, then the gateway stopped)

    const l2 = await open();
    try {
      const calls = (await l2.recentCalls({ limit: 10 })).calls;
      assert.deepEqual(calls.map((c) => [c.id, c.outcome, c.costPicos]), [
        ["stuck", "interrupted", "64000"],
        ["september", "ok", "300"],
      ]);
      assert.equal(l2.todayTotals(clock).costPicos, 64000n);
    } finally {
      await l2.close();
    }
    const l3 = await open(); // and once charged, never again
    try {
      assert.deepEqual((await l3.recentCalls({ limit: 10 })).calls.map((c) => c.id), ["stuck", "september"]);
      assert.equal(l3.todayTotals(clock).costPicos, 64000n);
    } finally {
      await l3.close();
    }
  });

  it("rebuilds from the journal, once, when state.json names no time it was saved at", async () => {
    clock = new Date("2026-11-22T10:00:00.000Z");
    const l1 = await open();
    await l1.settle(call("one", "2026-11-22T09:00:00.000Z", "1000"));
    await l1.close();
    const file = path.join(dir, "state.json");
    const state = JSON.parse(await readFile(file, "utf8")) as { savedAt: string };
    assert.equal(state.savedAt, "2026-11-22T10:00:00.000Z", "the test edits the file the ledger writes");
    await writeFile(file, JSON.stringify({ ...state, savedAt: "" }));

    const l2 = await open();
    try {
      assert.deepEqual(days(l2), { "2026-11-22": "1000" }, "the snapshot's rollups are not added to the journal's");
      assert.equal(l2.todayTotals(clock).calls, 1);
    } finally {
      await l2.close();
    }
  });

  it("lists every call after a rebuild that holds more than recentLimit in memory", async () => {
    clock = new Date("2026-11-22T10:00:00.000Z");
    const l1 = await open();
    for (const [i, id] of ["c1", "c2", "c3"].entries()) await l1.settle(call(id, `2026-11-22T09:0${i}:00.000Z`, "100"));
    await l1.close();
    await rm(path.join(dir, "state.json")); // lost: the whole journal is replayed

    const l2 = await open({ recentLimit: 2 });
    try {
      assert.deepEqual((await l2.recentCalls({ limit: 10 })).calls.map((c) => c.id), ["c3", "c2", "c1"]);
      const first = await l2.recentCalls({ limit: 2 });
      assert.deepEqual([first.calls.map((c) => c.id), first.next], [["c3", "c2"], "c2"]);
      assert.deepEqual((await l2.recentCalls({ limit: 2, before: "c2" })).calls.map((c) => c.id), ["c1"]);
      assert.equal(l2.todayTotals(clock).costPicos, 300n);
    } finally {
      await l2.close();
    }
  });
});
