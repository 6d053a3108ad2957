/** The dashboard aggregate kept in the ledger's checkpoint: snapshot + the journal past it answers every series as a build from the whole journal does. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { windowBounds, type CapWindow } from "../../../server/budget/windows";
import { DashboardAggregate } from "../../../server/dashboard/aggregate";
import type { CallRecord, Outcome } from "../../../server/ledger/types";
import type { CapDto, SeriesWindow } from "../../../server/protocol";

const NOW = new Date("2026-11-18T15:20:00Z");
const MONTH_START = Date.parse("2026-10-25T00:00:00Z"); // this week may start last month: a margin before the month
const OUTCOMES: Outcome[] = ["ok", "refused", "upstream-error", "cut", "client-aborted", "upstream-failed", "interrupted", "throttled", "quota-exceeded"];
const MODELS = [
  ["us.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"],
  ["global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"],
  ["us.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"],
] as const;
const ZONES = ["UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"];

/** A settled call as the journal holds it: every field the aggregate reads drawn at random. */
const callArb = fc
  .record({
    // Anywhere since before the month, or within the last half hour (calls sharing quarter-hours).
    started: fc.oneof(fc.integer({ min: MONTH_START, max: NOW.getTime() - 1 }), fc.integer({ min: NOW.getTime() - 1_800_000, max: NOW.getTime() - 1 })),
    latency: fc.integer({ min: 0, max: 3 * 3_600_000 }),
    model: fc.constantFrom(...MODELS),
    answeredBy: fc.option(fc.constantFrom(...MODELS.map((m) => m[0])), { nil: undefined }),
    user: fc.constantFrom("ana", "bo"),
    tool: fc.constantFrom("boto3", "aws-cli", ""),
    caller: fc.option(fc.constantFrom("AKIA1", "AKIA2", ""), { nil: undefined }),
    callerProfile: fc.option(fc.constantFrom("dev", "prod"), { nil: undefined }),
    tags: fc.dictionary(fc.constantFrom("team", "feature"), fc.constantFrom("search", "ml", "x=y")),
    outcome: fc.constantFrom(...OUTCOMES),
    cost: fc.bigInt({ min: 0n, max: 10n ** 15n }),
    // An attached guardrail: its share of the cost in thousandths (above 1,000: a part larger than the call, not trusted).
    guardrail: fc.option(fc.record({ id: fc.constantFrom("gr-1", "gr-2"), share: fc.integer({ min: 0, max: 1_200 }) }), { nil: undefined }),
    tokens: fc.array(fc.nat({ max: 100_000 }), { minLength: 6, maxLength: 6 }),
  })
  .map(({ started, latency, model, answeredBy, user, tool, caller, callerProfile, tags, outcome, cost, guardrail, tokens }, ): Omit<CallRecord, "id"> => ({
    type: "settle",
    at: new Date(Math.min(started + latency, NOW.getTime() - 1)).toISOString(),
    startedAt: new Date(started).toISOString(),
    user,
    tool,
    operation: "Converse",
    modelId: model[0],
    baseModelId: model[1],
    usage: { inputTokens: tokens[0]!, outputTokens: tokens[1]!, cacheReadInputTokens: tokens[2]!, cacheWrite5mInputTokens: tokens[3]!, cacheWrite1hInputTokens: tokens[4]! },
    usageEstimated: false,
    costPicos: String(cost),
    worstCasePicos: String(cost),
    outcome,
    status: 200,
    latencyMs: latency,
    tags,
    ...(caller !== undefined ? { caller } : {}),
    ...(callerProfile !== undefined ? { callerProfile } : {}),
    ...(answeredBy !== undefined ? { answeredBy } : {}),
    ...(guardrail !== undefined
      ? { guardrail: { id: guardrail.id, costPicos: String((cost * BigInt(guardrail.share)) / 1000n), worstCasePicos: "0", units: 1, unitsEstimated: false } }
      : {}),
  }));

/** A journal: calls in the order they settled. */
const journalArb = fc.array(callArb, { maxLength: 120 }).map((calls) =>
  calls.map((c, i): CallRecord => ({ ...c, id: `c${i}` })).sort((a, b) => Date.parse(a.at) - Date.parse(b.at)),
);

function cap(id: string, window: CapWindow, timeZone: string, scope: Pick<CapDto, "model" | "callers" | "tags"> = {}): CapDto {
  const b = windowBounds(window, timeZone, NOW);
  return {
    id, scope: "personal", window, ...scope, limitUsd: 50, spentUsd: 0, reservedUsd: 0,
    limitExact: "50", spentExact: "0", reservedExact: "0", windowStart: b.start.toISOString(), resetsAt: b.end.toISOString(),
  };
}

/** Everything the dashboard shows of an aggregate: every window, grouping and kind of cap scope. */
function shown(a: DashboardAggregate, timeZone: string): unknown {
  const caps = [
    cap("all-day", "day", timeZone),
    cap("sonnet-week", "week", timeZone, { model: "*sonnet*" }),
    cap("search-month", "month", timeZone, { tags: { team: "search" } }),
    cap("akia1-month", "month", timeZone, { callers: ["AKIA1"] }),
    cap("haiku-dev-day", "day", timeZone, { model: "us.anthropic.claude-haiku*", callers: ["dev"] }),
  ];
  const windows: SeriesWindow[] = ["day", "week", "month"];
  return windows.map((window) => a.series({ window, caps, timeZone, now: NOW }));
}

/** The old computation: every call of the journal folded into a fresh aggregate. */
function built(records: CallRecord[]): DashboardAggregate {
  const a = new DashboardAggregate();
  for (const r of records) a.add(r);
  return a;
}

describe("dashboard aggregate snapshot", () => {
  it("a snapshot (its JSON text, as the checkpoint stores it) plus the calls after it shows what the whole journal shows", () => {
    fc.assert(
      fc.property(journalArb, fc.nat(), fc.nat(), fc.constantFrom(...ZONES), (records, cut, earlier, timeZone) => {
        const k = records.length === 0 ? 0 : cut % (records.length + 1);
        const j = k === 0 ? 0 : earlier % (k + 1);
        // An earlier snapshot of the same aggregate first: the next one re-encodes only what changed since.
        const before = built(records.slice(0, j));
        before.snapshot();
        for (const r of records.slice(j, k)) before.add(r);
        const restored = DashboardAggregate.restore(before.snapshot());
        assert.ok(restored, "the snapshot restores");
        for (const r of records.slice(k)) restored.add(r);
        assert.equal(restored.size, records.length);
        assert.deepEqual(shown(restored, timeZone), shown(built(records), timeZone));
      }),
      { numRuns: 150 },
    );
  });

  it("keeps exact pico-dollar sums beyond a double's precision", () => {
    const base = { type: "settle", at: "2026-11-18T10:00:00Z", startedAt: "2026-11-18T10:00:00Z", user: "u", tool: "t", operation: "Converse", modelId: "m", baseModelId: "m", usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 }, usageEstimated: false, worstCasePicos: "0", outcome: "ok", status: 200, latencyMs: 1, tags: {} } as const;
    const a = new DashboardAggregate();
    a.add({ ...base, id: "1", costPicos: "9007199254740993" }); // 2^53 + 1
    a.add({ ...base, id: "2", costPicos: "1" });
    const restored = DashboardAggregate.restore(a.snapshot())!;
    const day = restored.series({ window: "day", caps: [], timeZone: "UTC", now: NOW });
    assert.equal(day.totals.costExact, "9007.199254740994"); // pico-dollars: 2^53 + 2 of them
  });

  it("does not use a snapshot that is not one: absent, cut short, another version, edited sums (a point, a sign), an unknown outcome, a short slot or a subject it does not hold", () => {
    const a = built([
      { type: "settle", id: "1", at: "2026-11-18T10:00:00Z", startedAt: "2026-11-18T10:00:00Z", user: "u", tool: "t", operation: "Converse", modelId: "m", baseModelId: "m", usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 }, usageEstimated: false, costPicos: "5", worstCasePicos: "5", outcome: "ok", status: 200, latencyMs: 1, tags: {} },
    ]);
    const good = JSON.parse(a.snapshot()) as { v: number; slots: unknown[][]; subjects: unknown[] };
    assert.ok(DashboardAggregate.restore(good));
    assert.equal(DashboardAggregate.restore(a.snapshot().slice(0, -1)), undefined, "cut short");
    assert.equal(DashboardAggregate.restore(undefined), undefined);
    assert.equal(DashboardAggregate.restore(null), undefined);
    assert.equal(DashboardAggregate.restore({ ...good, v: 1 }), undefined, "an older version's (its sums meant something else)");
    assert.equal(DashboardAggregate.restore({ ...good, v: 3 }), undefined, "a newer version's");
    assert.equal(DashboardAggregate.restore({ ...good, slots: [[...good.slots[0]!.slice(0, 2), "5.5", ...good.slots[0]!.slice(3)]] }), undefined);
    assert.equal(DashboardAggregate.restore({ ...good, slots: [[...good.slots[0]!.slice(0, 2), "-5", ...good.slots[0]!.slice(3)]] }), undefined, "a negative cost");
    assert.equal(DashboardAggregate.restore({ ...good, slots: [[...good.slots[0]!.slice(0, 6), [["m\u0000m", "-5"]], ...good.slots[0]!.slice(7)]] }), undefined, "a negative sum by model");
    assert.equal(DashboardAggregate.restore({ ...good, subjects: [] }), undefined);
    assert.equal(DashboardAggregate.restore({ ...good, slots: [[...good.slots[0]!.slice(0, 5), [["bogus", 1]], ...good.slots[0]!.slice(6)]] }), undefined);
    assert.equal(DashboardAggregate.restore({ ...good, slots: [good.slots[0]!.slice(0, 9)] }), undefined);
  });
});
