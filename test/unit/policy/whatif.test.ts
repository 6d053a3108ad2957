/** What-if (pure): a seeded month replayed through the real BudgetEngine, with hand-computed refusals and cost. */
import assert from "node:assert/strict";
import { capsStep, formatWhatIf, historyStart, whatIf, whatIfDto } from "../../../server/policy/whatif";
import type { CallRecord } from "../../../server/ledger/types";

const USD = 1_000_000_000_000n;
let n = 0;
/** A settled call: started at `start` (ISO), lasting `seconds`, costing `usd`, with worst case `worstUsd`. */
function call(start: string, usd: number, o: Partial<CallRecord> & { seconds?: number; worstUsd?: number } = {}): CallRecord {
  const { seconds = 10, worstUsd = usd * 2, ...rest } = o;
  const started = new Date(start);
  return {
    type: "settle", id: `w${++n}`, startedAt: started.toISOString(), at: new Date(started.getTime() + seconds * 1000).toISOString(),
    user: "ana", tool: "boto3", operation: "Converse", modelId: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0",
    usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: String(BigInt(Math.round(usd * 100)) * (USD / 100n)), worstCasePicos: String(BigInt(Math.round(worstUsd * 100)) * (USD / 100n)),
    outcome: "ok", status: 200, latencyMs: seconds * 1000, tags: {}, ...rest,
  };
}

describe("policy/whatif: a month replayed against proposed caps", () => {
  // November 2026, UTC. Proposed: $10 a day on every model, $4 a day on Haiku.
  const caps = [
    { id: "daily", scope: "personal" as const, window: "day" as const, limitUsd: 10 },
    { id: "haiku-daily", scope: "personal" as const, window: "day" as const, limitUsd: 4, model: "*haiku*" },
  ];
  const haiku = { modelId: "us.anthropic.claude-haiku-4-5-20251001-v1:0", baseModelId: "anthropic.claude-haiku-4-5-20251001-v1:0" };
  const month = [
    // Nov 3: $3 + $3 + $3 settled (worst case $6 each): each fits when it starts ($0+6, $3+6, $6+6 > 10 → the third is refused).
    call("2026-11-03T09:00:00Z", 3),
    call("2026-11-03T10:00:00Z", 3),
    call("2026-11-03T11:00:00Z", 3), // refused by daily: 6 spent + 6 worst case > 10
    call("2026-11-03T12:00:00Z", 1, { worstUsd: 1 }), // 6 + 1 = 7 ≤ 10: admitted
    // Nov 4, a new day: two Haiku calls overlap; the second starts while the first holds its $3 worst case.
    call("2026-11-04T09:00:00Z", 1.5, { ...haiku, worstUsd: 3, seconds: 600 }),
    call("2026-11-04T09:05:00Z", 1.5, { ...haiku, worstUsd: 3 }), // refused by haiku-daily: 3 reserved + 3 > 4
    call("2026-11-04T10:00:00Z", 2, { ...haiku, worstUsd: 2 }), // 1.5 spent + 2 ≤ 4: admitted
    // A call refused for real is not replayed (its cost is unknown).
    call("2026-11-05T09:00:00Z", 0, { outcome: "refused", refusedBy: "daily", worstUsd: 50 }),
  ];

  it("counts the refusals by cap, the dollars saved, and what the month would have cost", () => {
    const r = whatIf([], month, [capsStep(caps, "UTC")]);
    assert.equal(r.replayed, 7);
    assert.equal(r.notReplayed, 1);
    assert.equal(r.actualPicos, 15n * USD);
    assert.equal(r.stopped.calls, 2);
    assert.equal(r.stopped.savedPicos, 45n * USD / 10n);
    assert.deepEqual(r.stopped.groups.map((g) => [g.outcome, g.by, g.calls, g.savedPicos]), [
      ["refused", "daily", 1, 3n * USD],
      ["refused", "haiku-daily", 1, 15n * USD / 10n],
    ]);
    assert.equal(r.wouldCostPicos, 105n * USD / 10n);
    const dto = whatIfDto(r, "2026-11", "UTC");
    assert.deepEqual([dto.actualUsd, dto.wouldCostUsd, dto.stopped.savedUsd], ["15", "10.5", "4.5"]);
    const text = formatWhatIf(dto, "proposed.json");
    assert.match(text, /Would be stopped: 2 calls, saving \$4\.5/);
    assert.match(text, /refused by cap daily: 1 call, \$3/);
    assert.match(text, /Would have cost: +\$10\.5/);
    assert.match(text, /Not replayed: rate limits and request quotas, and cap actions warn \/ downgrade \/ clamp/);
  });

  it("with no caps nothing is stopped and the month costs what it cost", () => {
    const r = whatIf([], month, [capsStep([], "UTC")]);
    assert.equal(r.stopped.calls, 0);
    assert.equal(r.wouldCostPicos, r.actualPicos);
  });

  it("spend before the month counts in a window that began before it (a week starting in October)", () => {
    // Sunday Nov 1 2026 is in the week that began Monday Oct 26.
    const week = [{ id: "weekly", scope: "personal" as const, window: "week" as const, limitUsd: 5 }];
    const from = new Date("2026-11-01T00:00:00Z");
    assert.equal(historyStart(week, "UTC", from).toISOString(), "2026-10-26T00:00:00.000Z");
    const history = [call("2026-10-30T09:00:00Z", 4, { worstUsd: 4 })];
    const r = whatIf(history, [call("2026-11-01T09:00:00Z", 2, { worstUsd: 2 })], [capsStep(week, "UTC")]);
    assert.equal(r.stopped.calls, 1, "4 spent in the week + 2 > 5");
    assert.equal(r.replayed, 1, "history is replayed but not counted");
    assert.equal(r.actualPicos, 2n * USD);
  });
});
