// The checkpoint names every journal month file, however long its last line: a month it left out would be read whole by every start on top of totals that already count it.
import assert from "node:assert/strict";
import { appendFile, cp, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CAPS_CHECKPOINT } from "../../../server/budget/capCheckpoint";
import { Caps, LocalCapStore } from "../../../server/budget/caps";
import { BudgetEngine } from "../../../server/budget/engine";
import { windowBounds } from "../../../server/budget/windows";
import type { CapConfig } from "../../../server/config/schema";
import { openTallies } from "../../../server/gateway/openTallies";
import { Journal } from "../../../server/ledger/journal";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, ReserveEntry } from "../../../server/ledger/types";
import { QUOTAS_CHECKPOINT, countsTowardQuota } from "../../../server/policy/quotaCheckpoint";
import { planCaller, RateLimiter } from "../../../server/policy/rateLimit";

const NOW = new Date("2026-03-02T05:30:00.000Z");
const TZ = "UTC";
const CAPS: CapConfig[] = [
  { scope: "personal", id: "today", window: "day", limitUsd: 1000 },
  { scope: "personal", id: "month", window: "month", limitUsd: 1000 },
];
const BIG = "x".repeat((1 << 20) + 4096); // a tag value making its line longer than 1 MiB

function reserve(id: string, at: string, o: Partial<ReserveEntry> = {}): ReserveEntry {
  return { type: "reserve", id, at, user: "ana", tool: "t", operation: "InvokeModel", modelId: "m1", baseModelId: "m1", worstCasePicos: "5000", capIds: [], caller: "k1", callerProfile: "k1", ...o };
}

function settle(id: string, at: string, o: Partial<CallRecord> = {}): CallRecord {
  return {
    type: "settle", id, at, startedAt: at, user: "ana", tool: "t", operation: "InvokeModel", modelId: "m1", baseModelId: "m1",
    usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1000000", worstCasePicos: "5000000", outcome: "ok", status: 200, latencyMs: 1, caller: "k1", callerProfile: "k1", tags: {}, ...o,
  };
}

async function writeLines(dir: string, month: string, entries: object[]): Promise<void> {
  await appendFile(path.join(dir, "journal", `${month}.jsonl`), entries.map((e) => JSON.stringify(e) + "\n").join(""));
}

/** One gateway start: the ledger, the caps and quota counts from it, then a clean stop. */
async function start(dir: string): Promise<{ spent: Record<string, bigint>; quotas: { day: number; month: number }; rollups: unknown; fromCheckpoint: boolean }> {
  const ledger = await Ledger.open(dir, { now: () => NOW, timeZone: TZ, durability: "process" });
  const engine = new BudgetEngine([], TZ);
  const all = new Caps(new LocalCapStore(engine, () => TZ, () => NOW));
  const tallies = await openTallies(all, engine.setCaps(CAPS), ledger, { timeZone: TZ, now: NOW, quotaApplies: true });
  ledger.addCheckpointPart(CAPS_CHECKPOINT, tallies.caps);
  ledger.addCheckpointPart(QUOTAS_CHECKPOINT, tallies.quotas!);
  const limiter = new RateLimiter();
  limiter.restoreCounts(tallies.quotas!.counts());
  const got = {
    spent: Object.fromEntries(engine.status(NOW).map((s) => [s.id, s.spentPicos])),
    quotas: limiter.used(planCaller({ caller: "k1", callerProfile: "k1" }), NOW, TZ),
    rollups: structuredClone(ledger.rollups()),
    fromCheckpoint: ledger.fromCheckpoint,
  };
  await ledger.close();
  return got;
}

/** The reference: the journal replayed whole (no state.json). */
async function fullReplay(dir: string): Promise<{ spent: Record<string, bigint>; quotas: { day: number; month: number }; rollups: unknown }> {
  const copy = await mkdtemp(path.join(os.tmpdir(), "bb-ends-ref-"));
  try {
    await cp(path.join(dir, "journal"), path.join(copy, "journal"), { recursive: true });
    const ledger = await Ledger.open(copy, { now: () => NOW, timeZone: TZ });
    const engine = new BudgetEngine(CAPS, TZ);
    await new Caps(new LocalCapStore(engine, () => TZ, () => NOW)).replay((since) => ledger.settledSince(since));
    const limiter = new RateLimiter();
    const since = windowBounds("month", TZ, NOW).start;
    for await (const c of ledger.settledSince(since)) if (countsTowardQuota(c) && new Date(c.startedAt) >= since) limiter.count(planCaller(c), new Date(c.startedAt), TZ);
    const rollups = structuredClone(ledger.rollups());
    await ledger.close();
    return {
      spent: Object.fromEntries(engine.status(NOW).map((s) => [s.id, s.spentPicos])),
      quotas: limiter.used(planCaller({ caller: "k1", callerProfile: "k1" }), NOW, TZ),
      rollups,
    };
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

describe("journal ends: a month file whose last line is over 1 MiB", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-journal-ends-"));
    await Ledger.open(dir, { now: () => NOW, timeZone: TZ }).then((l) => l.close()); // the journal folder
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("restarts keep the cap totals, rollups and quota counts of a full replay (the month is not counted again on each start)", async function () {
    this.timeout(60_000);
    const at = "2026-03-02T05:00:00.000Z";
    await writeLines(dir, "2026-03", [reserve("a", at), settle("a", at), reserve("big", at), settle("big", at, { tags: { note: BIG } })]);
    const want = await fullReplay(dir);
    assert.equal(want.spent.today, 2_000_000n, "the two calls, once each");
    assert.deepEqual(want.quotas, { day: 2, month: 2 });
    for (let i = 1; i <= 3; i++) {
      const got = await start(dir);
      assert.deepEqual({ spent: got.spent, quotas: got.quotas, rollups: got.rollups }, want, `start ${i}`);
      if (i > 1) assert.equal(got.fromCheckpoint, true, "the checkpoint covers the month: only the journal past it is read");
    }
  });

  it("also in a month before the current one, and with a long line the gateway appended itself", async function () {
    this.timeout(60_000);
    const feb = "2026-02-27T10:00:00.000Z";
    await writeLines(dir, "2026-02", [reserve("f", feb), settle("f", feb, { tags: { note: BIG } })]);
    const want = await fullReplay(dir);
    assert.equal(want.spent.month, 0n, "February's call is outside March's windows");
    const first = await start(dir);
    // A call recorded live whose settle line is over 1 MiB: the checkpoint names where it ends.
    const ledger = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    const at = "2026-03-02T05:10:00.000Z";
    await ledger.reserve(reserve("live", at));
    await ledger.settle(settle("live", at, { tags: { note: BIG } }));
    await ledger.close();
    const want2 = await fullReplay(dir);
    assert.equal(want2.spent.today, 1_000_000n);
    for (let i = 1; i <= 2; i++) {
      const got = await start(dir);
      assert.deepEqual({ spent: got.spent, quotas: got.quotas, rollups: got.rollups }, want2, `start ${i}`);
      assert.equal(got.fromCheckpoint, true);
    }
    assert.deepEqual(first.rollups, want.rollups);
  });

  it("a month file replaced by a shorter one ending in the same long line is read whole, not added again", async function () {
    this.timeout(60_000);
    const at = "2026-03-02T05:00:00.000Z";
    const lines = [reserve("a", at), settle("a", at), reserve("big", at), settle("big", at, { tags: { note: BIG } })];
    await writeLines(dir, "2026-03", lines);
    await start(dir);
    await start(dir);
    const file = path.join(dir, "journal", "2026-03.jsonl");
    const text = await readFile(file, "utf8");
    await rm(file);
    await writeLines(dir, "2026-03", lines.slice(2)); // call "a" gone (a restored backup)
    assert.ok(text.endsWith(JSON.stringify(lines[3]) + "\n"));
    const got = await start(dir);
    const want = await fullReplay(dir);
    assert.equal(want.spent.today, 1_000_000n);
    assert.deepEqual({ spent: got.spent, quotas: got.quotas, rollups: got.rollups }, want);
  });

  it("ends() and lineEndingAt name a long last line alike, by its length and digest, without keeping its text", async function () {
    this.timeout(60_000);
    const at = "2026-03-02T05:00:00.000Z";
    await writeLines(dir, "2026-03", [settle("a", at), settle("big", at, { tags: { note: BIG } })]);
    const journal = await Journal.open(dir);
    const ends = await journal.ends();
    const end = ends.get("2026-03");
    assert.ok(end, "the month is named");
    assert.ok(end.line.length < 200, "state.json keeps a digest, not the line");
    assert.equal(await journal.lineEndingAt("2026-03", end.end), end.line);
    assert.equal(await journal.endsWith("2026-03", end.end, end.line), true);
    const short = await journal.lineEndingAt("2026-03", JSON.stringify(settle("a", at)).length + 1);
    assert.equal(short, JSON.stringify(settle("a", at)), "a short line is named by its text");
    await journal.close();
  });

  it("ends() names a month file whose end it cannot read with a line no file ends in (the next start replays the journal whole, never adds the month again)", async () => {
    await writeLines(dir, "2026-02", [settle("f", "2026-02-27T10:00:00.000Z")]);
    await appendFile(path.join(dir, "journal", "2026-02.jsonl"), '{"type":"settle"'); // being written (a reader sees it torn)
    const journal = await Journal.open(dir, { readOnly: true });
    const end = (await journal.ends()).get("2026-02");
    assert.ok(end, "the month is named");
    assert.equal(await journal.endsWith("2026-02", end.end, end.line), false);
    await journal.close();
  });
});
