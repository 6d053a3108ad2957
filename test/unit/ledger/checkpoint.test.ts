// Start-up from the ledger's checkpoint: only the journal past it is read, and the rollups, open reservations, cap totals and quota counts are those of a full replay, whatever happened in between.
import assert from "node:assert/strict";
import { appendFile, cp, mkdtemp, readFile, rename, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { CAPS_CHECKPOINT } from "../../../server/budget/capCheckpoint";
import { Caps, LocalCapStore } from "../../../server/budget/caps";
import { BudgetEngine } from "../../../server/budget/engine";
import { windowBounds } from "../../../server/budget/windows";
import type { CapConfig } from "../../../server/config/schema";
import { openTallies } from "../../../server/gateway/openTallies";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, Outcome, ReserveEntry } from "../../../server/ledger/types";
import { QUOTAS_CHECKPOINT, countsTowardQuota } from "../../../server/policy/quotaCheckpoint";
import { planCaller, RateLimiter } from "../../../server/policy/rateLimit";

const NOW = new Date("2026-03-02T05:30:00.000Z"); // a month, a week and a day boundary within the journals below

interface Spec {
  i: number; // made unique per journal by the test
  ageMin: number; // minutes before NOW the call started
  settleAfterMin: number;
  cost: number;
  model: "m1" | "m2";
  caller?: "k1" | "k2";
  team?: "a" | "b";
  outcome: Outcome;
}

function reserve(id: string, at: string, o: Partial<ReserveEntry> = {}): ReserveEntry {
  return { type: "reserve", id, at, user: "ana", tool: "t", operation: "InvokeModel", modelId: "m1", baseModelId: "m1", worstCasePicos: "5000", capIds: [], ...o };
}

function settle(id: string, startedAt: string, at: string, o: Partial<CallRecord> = {}): CallRecord {
  return {
    type: "settle", id, at, startedAt, user: "ana", tool: "t", operation: "InvokeModel", modelId: "m1", baseModelId: "m1",
    usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1000", worstCasePicos: "5000", outcome: "ok", status: 200, latencyMs: 1, tags: {}, ...o,
  };
}

function callOf(s: Spec, prefix: string): { r: ReserveEntry; c: CallRecord } {
  const id = `${prefix}${s.i}`;
  const started = new Date(NOW.getTime() - s.ageMin * 60_000).toISOString();
  const at = new Date(NOW.getTime() - s.ageMin * 60_000 + s.settleAfterMin * 60_000).toISOString();
  const tags: Record<string, string> = s.team ? { team: s.team } : {};
  // Each caller signs with its own `callers` profile (named like its key): two plans (planCaller).
  const subject = { modelId: s.model, baseModelId: s.model, ...(s.caller ? { caller: s.caller, callerProfile: s.caller } : {}), tags };
  return { r: reserve(id, started, subject), c: settle(id, started, at, { ...subject, costPicos: String(s.cost), outcome: s.outcome }) };
}

/** Calls spread over the 40 days before NOW (two journal months), some free, some throttled. */
const specs = fc.array(
  fc.record({
    i: fc.nat(),
    ageMin: fc.integer({ min: 1, max: 40 * 24 * 60 }),
    settleAfterMin: fc.integer({ min: 0, max: 1 }),
    cost: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_000_000 })),
    model: fc.constantFrom("m1" as const, "m2" as const),
    caller: fc.option(fc.constantFrom("k1" as const, "k2" as const), { nil: undefined }),
    team: fc.option(fc.constantFrom("a" as const, "b" as const), { nil: undefined }),
    outcome: fc.constantFrom<Outcome>("ok", "ok", "ok", "refused", "throttled", "interrupted"),
  }),
  { maxLength: 40 },
);

const capSpec = fc.record({
  id: fc.constantFrom("c1", "c2", "c3", "c4"),
  window: fc.constantFrom("day" as const, "week" as const, "month" as const),
  model: fc.option(fc.constantFrom("m1", "m*"), { nil: undefined }),
  callers: fc.option(fc.constantFrom(["k1"], ["k1", "k2"]), { nil: undefined }),
  tags: fc.option(fc.constantFrom({ team: "a" }, { team: "b" }), { nil: undefined }),
  limitUsd: fc.constantFrom(1, 1000),
});

function capsOf(list: { id: string; window: CapConfig["window"]; model?: string; callers?: readonly string[]; tags?: Readonly<Record<string, string>>; limitUsd: number }[]): CapConfig[] {
  const byId = new Map(list.map((c) => [c.id, c]));
  return [...byId.values()].map((c) => ({
    scope: "personal",
    id: c.id,
    window: c.window,
    limitUsd: c.limitUsd,
    ...(c.model ? { model: c.model } : {}),
    ...(c.callers ? { callers: [...c.callers] } : {}),
    ...(c.tags ? { tags: { ...c.tags } } : {}),
  }));
}

/** Writes calls straight to the journal file of their month (no checkpoint sees them). */
async function writeRaw(dir: string, calls: { r: ReserveEntry; c: CallRecord }[], withSettle = true): Promise<void> {
  for (const { r, c } of calls) {
    await appendFile(path.join(dir, "journal", `${r.at.slice(0, 7)}.jsonl`), JSON.stringify(r) + "\n");
    if (withSettle) await appendFile(path.join(dir, "journal", `${c.at.slice(0, 7)}.jsonl`), JSON.stringify(c) + "\n");
  }
}

/** One gateway run as far as the checkpoint goes: the ledger, the caps from it, the parts registered. */
async function run(dir: string, caps: CapConfig[], tz: string, quota: boolean): Promise<{ ledger: Ledger; engine: BudgetEngine; quotaCounts: ReturnType<RateLimiter["countsSnapshot"]> }> {
  const ledger = await Ledger.open(dir, { now: () => NOW, timeZone: tz, durability: "process" });
  const engine = new BudgetEngine([], tz);
  const all = new Caps(new LocalCapStore(engine, () => tz, () => NOW));
  const fresh = engine.setCaps(caps);
  const { caps: capTally, quotas: tally } = await openTallies(all, fresh, ledger, { timeZone: tz, now: NOW, quotaApplies: quota });
  ledger.addCheckpointPart(CAPS_CHECKPOINT, capTally);
  if (tally) ledger.addCheckpointPart(QUOTAS_CHECKPOINT, tally);
  return { ledger, engine, quotaCounts: tally ? tally.counts() : [] };
}

/** The reference: the same journal replayed whole (no state.json), by the replay loops of caps and quotas. */
async function fullReplay(dir: string, caps: CapConfig[], tz: string): Promise<{ spent: Record<string, bigint>; rollups: unknown; quotas: Record<string, { day: number; month: number }> }> {
  const copy = await mkdtemp(path.join(os.tmpdir(), "bb-cp-ref-"));
  try {
    await cp(path.join(dir, "journal"), path.join(copy, "journal"), { recursive: true });
    const ledger = await Ledger.open(copy, { now: () => NOW, timeZone: tz });
    const engine = new BudgetEngine(caps, tz);
    await new Caps(new LocalCapStore(engine, () => tz, () => NOW)).replay((since) => ledger.settledSince(since));
    const limiter = new RateLimiter();
    const since = windowBounds("month", tz, NOW).start;
    for await (const c of ledger.settledSince(since)) if (countsTowardQuota(c) && new Date(c.startedAt) >= since) limiter.count(planCaller(c), new Date(c.startedAt), tz);
    const rollups = structuredClone(ledger.rollups());
    await ledger.close();
    return { spent: spentOf(engine), rollups, quotas: usedOf(limiter, tz) };
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

function spentOf(engine: BudgetEngine): Record<string, bigint> {
  return Object.fromEntries(engine.status(NOW).map((s) => [s.id, s.spentPicos]));
}

function usedOf(limiter: RateLimiter, tz: string): Record<string, { day: number; month: number }> {
  return Object.fromEntries(["k1", "k2"].map((k) => [k, limiter.used(planCaller({ caller: k, callerProfile: k }), NOW, tz)]));
}

describe("ledger: start-up from the checkpoint", () => {
  let dir: string;
  const TZ = "UTC";

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-checkpoint-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function record(ledger: Ledger, calls: { r: ReserveEntry; c: CallRecord }[]): Promise<void> {
    for (const { r, c } of calls) {
      await ledger.reserve(r);
      await ledger.settle(c);
    }
  }

  const calls = (n: number, prefix: string, ageMin = 60) =>
    Array.from({ length: n }, (_, i) => callOf({ i, ageMin: ageMin + i, settleAfterMin: 0, cost: 1000 + i, model: "m1", outcome: "ok" }, prefix));

  it("reads only the journal past the checkpoint, and gives the rollups, recent calls and open reservations of a full replay", async () => {
    let l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    await record(l, calls(200, "a"));
    await l.reserve(calls(1, "open")[0]!.r);
    await l.close();
    l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    assert.equal(l.journal.stats.linesRead, 0, "nothing past the checkpoint: nothing read");
    await record(l, calls(5, "b"));
    await l.journal.close(); // killed: these five calls are past the last checkpoint
    l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    assert.equal(l.journal.stats.linesRead, 10, "the five calls past the checkpoint, nothing before");
    assert.deepEqual((await l.recentCalls({ limit: 3 })).calls.map((c) => c.id), ["b4", "b3", "b2"]);
    const interrupted = (await l.recentCalls({ limit: 1000, outcome: "interrupted" })).calls.map((c) => c.id);
    assert.deepEqual(interrupted, ["open0"], "the reservation open at the checkpoint is charged once, as interrupted");
    const rollups = structuredClone(l.rollups());
    await l.close();
    assert.deepEqual(rollups, (await fullReplay(dir, [], TZ)).rollups);
  });

  it("replays the journal whole when it is shorter than the checkpoint says, or was replaced", async () => {
    let l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    await record(l, calls(20, "a"));
    await l.close();
    const file = path.join(dir, "journal", `${NOW.toISOString().slice(0, 7)}.jsonl`);
    const text = await readFile(file, "utf8");
    await truncate(file, text.length - text.split("\n").at(-2)!.length - 1); // the last settle lost (a restored backup)
    l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    assert.equal(l.journal.stats.linesRead, 39, "shorter than the checkpoint: read whole");
    const calls19 = Object.values(l.rollups()).flatMap((d) => Object.values(d)).reduce((n, r) => n + r.calls + r.refused, 0);
    assert.equal(calls19, 20, "the call whose settle was lost is charged as interrupted, never dropped");
    await l.close();

    // Replaced by another journal as long or longer: its line at the checkpoint's offset differs.
    await writeFile(file, text.replace('"costPicos":"1019"', '"costPicos":"9999"'));
    l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    assert.equal(l.journal.stats.linesRead, 40, "replaced: read whole");
    const rollups = structuredClone(l.rollups());
    await l.close();
    assert.deepEqual(rollups, (await fullReplay(dir, [], TZ)).rollups);
  });

  it("a month file newer than the checkpoint's months (the gateway killed after a new month's first lines) is read past the checkpoint, not the journal whole", async () => {
    let l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    await record(l, calls(4, "feb", 3000)); // 28 February
    await l.close();
    await writeRaw(dir, calls(3, "mar")); // March's file, which the checkpoint does not name
    l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    assert.equal(l.fromCheckpoint, true);
    assert.equal(l.journal.stats.linesRead, 6, "March's three calls, not February's");
    const rollups = structuredClone(l.rollups());
    await l.close();
    assert.deepEqual(rollups, (await fullReplay(dir, [], TZ)).rollups);
  });

  it("an archived month file put back, older than a month the checkpoint names, is not read on its own: a reservation of it settled in the covered lines is not charged again", async () => {
    // Reserved on 28 February (its line in February's file), settled on 1 March (in March's).
    const split = callOf({ i: 0, ageMin: 2000, settleAfterMin: 1500, cost: 1000, model: "m1", outcome: "ok" }, "split");
    let l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    // January's file stays named: February's sits between two months the checkpoint names.
    await record(l, [...calls(1, "jan", 40 * 24 * 60), { r: { ...split.r, worstCasePicos: "900000000" }, c: split.c }, ...calls(2, "mar")]);
    await l.close();
    const want = (await fullReplay(dir, [], TZ)).rollups;
    const feb = path.join(dir, "journal", "2026-02.jsonl");
    await rename(feb, `${feb}.archived`); // archived while the gateway was stopped: the next start replays without it
    await Ledger.open(dir, { now: () => NOW, timeZone: TZ }).then((x) => x.close());
    await rename(`${feb}.archived`, feb); // and put back
    l = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
    const interrupted = (await l.recentCalls({ limit: 10, outcome: "interrupted" })).calls;
    const rollups = structuredClone(l.rollups());
    const whole = !l.fromCheckpoint;
    await l.close();
    assert.deepEqual(interrupted, [], "no call charged its worst case as interrupted");
    assert.deepEqual(rollups, want);
    assert.ok(whole, "the journal is replayed whole");
  });

  it("a start reads the journal once for the caps and the quota: the month without a checkpoint, only the lines past it with one", async () => {
    // A day cap reads from today, the quota from the month's start: the pass from the earlier serves both.
    const caps: CapConfig[] = [{ scope: "personal", id: "today", window: "day", limitUsd: 1000 }];
    const spread = (n: number, prefix: string, stepMin: number) =>
      Array.from({ length: n }, (_, i) => callOf({ i, ageMin: 10 + i * stepMin, settleAfterMin: 0, cost: 1000 + i, model: "m1", caller: i % 2 ? "k1" : "k2", outcome: "ok" }, prefix));
    const month = spread(30, "a", 90); // 4 today, 20 this month, 10 in February's file
    await Ledger.open(dir, { now: () => NOW, timeZone: TZ }).then((l) => l.close());
    await writeRaw(dir, month);
    await rm(path.join(dir, "state.json"));
    const open = async () => {
      const ledger = await Ledger.open(dir, { now: () => NOW, timeZone: TZ });
      const engine = new BudgetEngine([], TZ);
      const all = new Caps(new LocalCapStore(engine, () => TZ, () => NOW));
      const before = ledger.journal.stats.linesRead;
      const tallies = await openTallies(all, engine.setCaps(caps), ledger, { timeZone: TZ, now: NOW, quotaApplies: true });
      const limiter = new RateLimiter();
      limiter.restoreCounts(tallies.quotas!.counts());
      ledger.addCheckpointPart(CAPS_CHECKPOINT, tallies.caps);
      ledger.addCheckpointPart(QUOTAS_CHECKPOINT, tallies.quotas!);
      return { ledger, read: ledger.journal.stats.linesRead - before, got: { spent: spentOf(engine), quotas: usedOf(limiter, TZ) } };
    };

    let r = await open();
    assert.equal(r.ledger.fromCheckpoint, false);
    assert.equal(r.read, 40, "March's file once: a reserve and a settle line for each of its 20 calls");
    await r.ledger.close();
    let want = await fullReplay(dir, caps, TZ);
    assert.deepEqual(r.got, { spent: want.spent, quotas: want.quotas });
    assert.equal(want.spent.today, 4006n, "the four calls of today");

    await writeRaw(dir, spread(3, "b", 1)); // past the checkpoint, as after a kill -9
    r = await open();
    assert.equal(r.ledger.fromCheckpoint, true);
    assert.equal(r.read, 6, "the three calls past the checkpoint, once");
    await r.ledger.close();
    want = await fullReplay(dir, caps, TZ);
    assert.deepEqual(r.got, { spent: want.spent, quotas: want.quotas });
    assert.equal(want.spent.today, 4006n + 3003n);
  });

  it("a clock set back into the month before the quota counts began: that month's calls are counted again at the restart, not taken as none (the quota stays used up)", async () => {
    // k1's three calls late on 28 February; the gateway first counts quotas on 2 March (from 1 March), then the clock goes back to 28 February.
    const feb = Array.from({ length: 3 }, (_, i) => callOf({ i, ageMin: 1800 + i, settleAfterMin: 0, cost: 1000, model: "m1", caller: "k1", outcome: "ok" }, "f"));
    await Ledger.open(dir, { now: () => NOW, timeZone: TZ }).then((l) => l.close());
    await writeRaw(dir, feb);
    await rm(path.join(dir, "state.json")); // the first start with quotas counts the journal
    const usedAt = async (now: Date) => {
      const ledger = await Ledger.open(dir, { now: () => now, timeZone: TZ });
      const engine = new BudgetEngine([], TZ);
      const tallies = await openTallies(new Caps(new LocalCapStore(engine, () => TZ, () => now)), engine.setCaps([]), ledger, { timeZone: TZ, now, quotaApplies: true });
      ledger.addCheckpointPart(CAPS_CHECKPOINT, tallies.caps);
      ledger.addCheckpointPart(QUOTAS_CHECKPOINT, tallies.quotas!);
      const limiter = new RateLimiter();
      limiter.restoreCounts(tallies.quotas!.counts());
      const fromCheckpoint = ledger.fromCheckpoint;
      await ledger.close();
      return { fromCheckpoint, used: limiter.used(planCaller({ caller: "k1", callerProfile: "k1" }), now, TZ) };
    };
    assert.deepEqual(await usedAt(NOW), { fromCheckpoint: false, used: { day: 0, month: 0 } }, "in March, none of k1's calls");
    const back = new Date(NOW.getTime() - 1790 * 60_000); // 28 February, 23:40
    assert.deepEqual(await usedAt(back), { fromCheckpoint: true, used: { day: 3, month: 3 } }, "February's calls, which the checkpoint's counts (from 1 March) never held");
  });

  it("a restart gives the cap totals and quota counts of a full replay, across random journals, cap edits and crashes", async function () {
    this.timeout(120_000);
    await fc.assert(
      fc.asyncProperty(
        specs, specs, specs, fc.array(capSpec, { minLength: 1, maxLength: 4 }), fc.array(capSpec, { maxLength: 4 }),
        fc.constantFrom("UTC", "America/New_York", "Asia/Kolkata"), fc.boolean(), fc.boolean(),
        async (before, during, afterCrash, caps1, edits, tz, quota, crash) => {
          const d = await mkdtemp(path.join(os.tmpdir(), "bb-checkpoint-prop-"));
          try {
            await Ledger.open(d, { now: () => NOW, timeZone: tz }).then((l) => l.close()); // the journal folder
            await writeRaw(d, before.map((s, i) => callOf({ ...s, i }, "p")));
            const first = capsOf(caps1);
            // Run 1: full replay (no checkpoint yet), calls recorded live, a clean stop (checkpoint).
            let r = await run(d, first, tz, quota);
            for (const { r: res, c } of during.map((s, i) => callOf({ ...s, i }, "d"))) {
              await r.ledger.reserve(res);
              await r.ledger.settle(c);
            }
            await r.ledger.close();
            // Between runs: more lines the checkpoint does not cover (a kill -9 after the journal write), and the caps edited.
            if (crash) await writeRaw(d, afterCrash.map((s, i) => callOf({ ...s, i }, "x")), afterCrash.length % 2 === 0);
            const second = capsOf([...caps1, ...edits]);
            r = await run(d, second, tz, quota);
            const limiter = new RateLimiter();
            limiter.restoreCounts(r.quotaCounts);
            const got = { spent: spentOf(r.engine), quotas: usedOf(limiter, tz) };
            const rollups = structuredClone(r.ledger.rollups());
            await r.ledger.close();
            const want = await fullReplay(d, second, tz);
            assert.deepEqual(got.spent, want.spent);
            if (quota) assert.deepEqual(got.quotas, want.quotas);
            assert.deepEqual(rollups, want.rollups);
          } finally {
            await rm(d, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
