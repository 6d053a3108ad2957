/** Journal lines with bad fields: moved aside, counted, never blocking the ledger's start, spend never lower. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, ReserveEntry } from "../../../server/ledger/types";

const TZ = "UTC";

function reserve(id: string, at: string, worst: string): ReserveEntry {
  return { type: "reserve", id, at, user: "u", tool: "cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1", worstCasePicos: worst, capIds: ["d"] };
}

function settle(id: string, at: string, cost: string, worst: string): CallRecord {
  return {
    type: "settle", id, at, startedAt: at, user: "u", tool: "cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1",
    usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: cost, worstCasePicos: worst, outcome: "ok", status: 200, latencyMs: 12, tags: {},
  };
}

describe("ledger: journal lines with bad fields", () => {
  let dir: string;
  let file: string;
  const clock = new Date("2026-11-22T12:00:00.000Z");
  const open = () => Ledger.open(dir, { now: () => clock, timeZone: TZ });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-quarantine-"));
    await mkdir(path.join(dir, "journal"));
    file = path.join(dir, "journal", "2026-11.jsonl");
    const { costPicos: _drop, ...noCost } = settle("d", "2026-11-22T09:03:00.000Z", "1", "1");
    void _drop;
    await writeFile(
      file,
      [
        // a: its reservation is valid, its settle has a bad time (the start-up RangeError of issue #9)
        JSON.stringify(reserve("a", "2026-11-22T09:00:00.000Z", "5000")),
        JSON.stringify({ ...settle("a", "2026-11-22T09:00:01.000Z", "900", "5000"), at: "not-a-date" }),
        // b: valid
        JSON.stringify(reserve("b", "2026-11-22T09:01:00.000Z", "4000")),
        JSON.stringify(settle("b", "2026-11-22T09:01:02.000Z", "1000", "4000")),
        // c: a reservation with a bad time and no settle: its worst case is still readable
        JSON.stringify({ ...reserve("c", "2026-11-22T09:02:00.000Z", "7000"), at: "yesterday-ish" }),
        // d: a settle without costPicos or worstCasePicos and no reservation: its amount is unknown
        JSON.stringify({ ...noCost, worstCasePicos: undefined }),
        // e: not JSON at all (complete line, not a torn tail)
        "{this is not json",
        "",
      ].join("\n"),
    );
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("opens, moves the bad lines aside (never deleted), counts them, and charges what they could have cost", async () => {
    const ledger = await open(); // threw RangeError: Invalid time value before the quarantine
    try {
      assert.deepEqual(ledger.journal.quarantine, {
        lines: 4,
        unknownAmountLines: 2,
        files: [`${file}.bad`, `${file}.bad-unknown-amount`],
      });
      const bad = (await readFile(`${file}.bad`, "utf8")).trimEnd().split("\n");
      assert.deepEqual(bad.map((l) => JSON.parse(l).id), ["a", "c"]);
      const unknown = (await readFile(`${file}.bad-unknown-amount`, "utf8")).trimEnd().split("\n");
      assert.equal(unknown.length, 2);
      assert.equal(JSON.parse(unknown[0]!).id, "d");
      assert.equal(unknown[1], "{this is not json");
      assert.doesNotMatch(await readFile(file, "utf8"), /not-a-date|yesterday-ish|this is not json/, "the journal keeps only valid lines");

      // Spend never lower: a is charged its reservation's worst case, c the amount its line names.
      const calls = (await ledger.recentCalls({ limit: 10 })).calls;
      const byId = new Map(calls.map((c) => [c.id, c]));
      assert.equal(byId.get("a")?.outcome, "interrupted");
      assert.equal(byId.get("a")?.costPicos, "5000");
      assert.equal(byId.get("b")?.costPicos, "1000");
      assert.equal(byId.get("c")?.outcome, "interrupted");
      assert.equal(byId.get("c")?.costPicos, "7000");
      assert.match(byId.get("c")!.message!, /moved aside/);
      assert.equal(ledger.todayTotals(clock).costPicos, 13_000n);
      const settled: string[] = [];
      for await (const r of ledger.settledSince(new Date("2026-11-22T00:00:00.000Z"))) settled.push(`${r.id}:${r.costPicos}`);
      assert.deepEqual(settled.sort(), ["a:5000", "b:1000", "c:7000"], "what the engine replays after a restart");
    } finally {
      await ledger.close();
    }

    // Reopened: nothing moved again, nothing charged twice, and the warning stays.
    const again = await open();
    try {
      assert.equal(again.journal.quarantine.lines, 4);
      assert.equal(again.journal.quarantine.unknownAmountLines, 2);
      const ids = (await again.recentCalls({ limit: 10 })).calls.map((c) => c.id).sort();
      assert.deepEqual(ids, ["a", "b", "c"]);
      assert.equal(again.todayTotals(clock).costPicos, 13_000n);
    } finally {
      await again.close();
    }
  });

  it("a bad line of a call that also settled validly costs nothing more", async () => {
    await writeFile(
      file,
      [
        JSON.stringify({ ...reserve("x", "2026-11-22T09:00:00.000Z", "5000"), capIds: "not-a-list" }),
        JSON.stringify(settle("x", "2026-11-22T09:00:01.000Z", "900", "5000")),
        JSON.stringify({ ...settle("x", "2026-11-22T09:00:01.000Z", "900", "5000"), usage: null }),
        "",
      ].join("\n"),
    );
    const ledger = await open();
    try {
      assert.equal(ledger.journal.quarantine.lines, 2);
      assert.equal(ledger.journal.quarantine.unknownAmountLines, 0);
      assert.deepEqual((await ledger.recentCalls({ limit: 10 })).calls.map((c) => `${c.id}:${c.outcome}:${c.costPicos}`), ["x:ok:900"]);
    } finally {
      await ledger.close();
    }
  });
});
