/** What-if (pure): seeded months replayed through the real RateLimiter, decideCapActions and BudgetEngine, with hand-computed counts and cost per policy. */
import assert from "node:assert/strict";
import { capsStep, formatWhatIf, historyStart, whatIf, whatIfDto, worstCaseOfRecord, type WhatIfResult } from "../../../server/policy/whatif";
import type { CallRecord } from "../../../server/ledger/types";
import { PriceBook } from "../../../server/metering/prices";
import { whatIfSteps } from "../../../server/policy/whatifRun";
import { capsInForce } from "../../../server/policy/plans";
import { usdText } from "../../../server/shared/whatIfLabel";

const prices = new PriceBook();

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
    const r = whatIf([], month, [capsStep(caps, "UTC", prices)]);
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
    assert.match(text, /Approximate: a throttled call is counted, not stopped/);
  });

  it("says that team caps count only this ledger's calls: the replay cannot see other machines' spend", () => {
    const team = [{ id: "team-month", scope: "team" as const, window: "month" as const, limitUsd: 100 }];
    const text = formatWhatIf(whatIfDto(whatIf([], [call("2026-11-03T09:00:00Z", 3)], [capsStep(team, "UTC", prices)]), "2026-11", "UTC"), "proposed.json");
    assert.match(text, /Approximate: .*team caps count this ledger's calls only/);
  });

  it("says that a downgrade the gateway would refuse for the request's fields is replayed as made: the journal keeps no request", () => {
    const cheaper = [{ id: "to-haiku", scope: "personal" as const, window: "day" as const, limitUsd: 100, action: "downgrade" as const, downgradeTo: "anthropic.claude-haiku-4-5-20251001-v1:0", downgradeAt: 0 }];
    const text = formatWhatIf(whatIfDto(whatIf([], [call("2026-11-03T09:00:00Z", 3)], [capsStep(cheaper, "UTC", prices)]), "2026-11", "UTC"), "proposed.json");
    assert.match(text, /downgraded by cap to-haiku: 1 call/);
    assert.match(text, /Approximate: .*a downgrade the gateway refuses for what the request asks \(thinking, sampling, tools, images, documents.*\) is replayed as made/);
  });

  it("with no caps nothing is stopped and the month costs what it cost", () => {
    const r = whatIf([], month, [capsStep([], "UTC", prices)]);
    assert.equal(r.stopped.calls, 0);
    assert.equal(r.wouldCostPicos, r.actualPicos);
  });

  it("spend before the month counts in a window that began before it (a week starting in October)", () => {
    // Sunday Nov 1 2026 is in the week that began Monday Oct 26.
    const week = [{ id: "weekly", scope: "personal" as const, window: "week" as const, limitUsd: 5 }];
    const from = new Date("2026-11-01T00:00:00Z");
    assert.equal(historyStart(week, "UTC", from).toISOString(), "2026-10-26T00:00:00.000Z");
    const history = [call("2026-10-30T09:00:00Z", 4, { worstUsd: 4 })];
    const r = whatIf(history, [call("2026-11-01T09:00:00Z", 2, { worstUsd: 2 })], [capsStep(week, "UTC", prices)]);
    assert.equal(r.stopped.calls, 1, "4 spent in the week + 2 > 5");
    assert.equal(r.replayed, 1, "history is replayed but not counted");
    assert.equal(r.actualPicos, 2n * USD);
  });
});

/**
 * Calls priced as the price book prices them, so downgrades and clamps can be hand-computed:
 * us.* Sonnet 4.5 is $3.30 / $16.50 per million input / output tokens, us.* Haiku 4.5 $1.10 / $5.50
 * (the geographic profile's +10%). 1000 in + 1000 out on Sonnet: $0.0198; its worst case with an
 * output limit of 2000: $0.0363. The same usage on Haiku: $0.0066.
 */
const SONNET = { modelId: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0" };
const HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
const PICO = (usd: string) => BigInt(Math.round(Number(usd) * 1e6)) * 1_000_000n; // exact for the 6-decimal amounts used here
function sonnet(start: string, o: Partial<CallRecord> & { seconds?: number } = {}): CallRecord {
  return call(start, 0, { ...SONNET, usage: { inputTokens: 1000, outputTokens: 1000, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 }, costPicos: String(PICO("0.0198")), worstCasePicos: String(PICO("0.0363")), ...o });
}
const groups = (t: WhatIfResult["stopped"]) => t.groups.map((g) => [g.policy, g.outcome, g.by, g.calls, g.savedPicos]);

describe("policy/whatif: every policy replayed (usage plans, warn, downgrade, clamp, scoped caps)", () => {
  it("usage plans: the token bucket driven by each call's start throttles (counted, not stopped, its retry using quota); a day's quota stops the rest", () => {
    // Tier basic: 1 request/s, burst 2, 3 requests a day. AKIAA on basic; AKIAB on no plan; one old line has no caller.
    const config = { caps: [], callers: { AKIAA: "basic" }, tiers: { basic: { rateLimit: { requestsPerSecond: 1, burst: 2, requestsPerDay: 3 } } } };
    const a = (t: string) => sonnet(t, { caller: "AKIAA", seconds: 1 });
    const month = [
      a("2026-11-03T09:00:00.000Z"), // bucket 2 → 1; day count 1
      a("2026-11-03T09:00:00.100Z"), // 1.1 → 0.1; count 2
      a("2026-11-03T09:00:00.200Z"), // 0.2 < 1: throttled; the SDK retries it and it goes through: counted, cost kept, count 3
      a("2026-11-03T09:00:05.000Z"), // 3 of 3 used today: quota-exceeded, stopped ($0.0198 saved)
      a("2026-11-03T09:00:10.000Z"), // quota-exceeded too
      a("2026-11-04T09:00:00.000Z"), // a new day: admitted
      ...["00.000", "00.010", "00.020", "00.030"].map((s) => sonnet(`2026-11-03T10:00:${s}Z`, { caller: "AKIAB" })), // no plan
      sonnet("2026-11-03T11:00:00.000Z"), // no caller: whose plan is unknown
    ];
    const r = whatIf([], month, whatIfSteps(config, "UTC", prices));
    assert.equal(r.replayed, 11);
    assert.deepEqual(groups(r.stopped), [["rate limits and request quotas", "quota-exceeded", 'tier "basic" rateLimit.requestsPerDay', 2, 2n * PICO("0.0198")]]);
    assert.deepEqual(groups(r.changed), [["rate limits and request quotas", "throttled", 'tier "basic" rateLimit', 1, 0n]]);
    assert.equal(r.wouldCostPicos, 9n * PICO("0.0198"));
    assert.deepEqual(r.policies.map((p) => [p.name, p.stopped, p.changed, p.savedPicos]), [
      ["rate limits and request quotas", 2, 1, 2n * PICO("0.0198")],
      ["caps and their actions", 0, 0, 0n],
    ]);
    const text = formatWhatIf(whatIfDto(r, "2026-11", "UTC"), "proposed.json");
    assert.match(text, /throttled by tier "basic" rateLimit: 1 call, \$0\n/);
    assert.match(text, /quota-exceeded by tier "basic" rateLimit\.requestsPerDay: 2 calls, \$0\.0396/);
    assert.match(text, /the SDK retries it after Retry-After/);
  });

  it("usage plans: a burst of calls throttled against a small quota: the retries use it up, the rest are refused", () => {
    // 1 request/s, burst 1, 5 a day; ten calls in one second. Live, the SDK retries each throttled
    // call until the quota runs out: 5 go through, 5 are refused.
    const config = { caps: [], rateLimit: { requestsPerSecond: 1, burst: 1, requestsPerDay: 5 } };
    const month = Array.from({ length: 10 }, (_, i) => sonnet(`2026-11-03T09:00:00.${String(i * 100).padStart(3, "0")}Z`, { caller: "AKIAA" }));
    const r = whatIf([], month, whatIfSteps(config, "UTC", prices));
    assert.deepEqual(groups(r.stopped), [["rate limits and request quotas", "quota-exceeded", "top-level rateLimit.requestsPerDay", 5, 5n * PICO("0.0198")]]);
    assert.deepEqual(groups(r.changed), [["rate limits and request quotas", "throttled", "top-level rateLimit", 4, 0n]]);
  });

  it("the gateway's own settings (tier caps already expanded beside their tiers, as the dashboard passes them) replay each tier cap once", () => {
    const config = { caps: [], tiers: { pro: { caps: [{ id: "pro-day", scope: "personal" as const, window: "day" as const, limitUsd: 10, action: "warn" as const }] } }, callers: { AKIA1: "pro" } };
    const month = ["09", "10", "11", "12"].map((hour) => call(`2026-11-03T${hour}:00:00Z`, 3, { caller: "AKIA1", worstUsd: 6 }));
    const proposed = whatIf([], month, whatIfSteps(config, "UTC", prices));
    const inForce = whatIf([], month, whatIfSteps({ ...config, caps: capsInForce(config) }, "UTC", prices));
    // $3 each, worst case $6: the 3rd ($6 spent + $6) and the 4th ($9 + $6) could pass $10 and are warned, once each.
    assert.deepEqual(groups(proposed.changed).map((g) => g.slice(0, 4)), [["caps and their actions", "warned", "pro-day@AKIA1", 2]]);
    assert.deepEqual(groups(inForce.changed), groups(proposed.changed));
  });

  it("warn: calls past the limit are let through, counted and marked; nothing saved", () => {
    // $0.05 a day, warn. 1st: 0 + 0.0363 fits. 2nd: 0.0198 + 0.0363 > 0.05: warned. 3rd: 0.0396 + 0.0363: warned.
    const caps = [{ id: "soft", scope: "personal" as const, window: "day" as const, limitUsd: 0.05, action: "warn" as const }];
    const r = whatIf([], [sonnet("2026-11-03T09:00:00Z"), sonnet("2026-11-03T10:00:00Z"), sonnet("2026-11-03T11:00:00Z")], [capsStep(caps, "UTC", prices)]);
    assert.equal(r.stopped.calls, 0);
    assert.deepEqual(groups(r.changed), [["caps and their actions", "warned", "soft", 2, 0n]]);
    assert.equal(r.wouldCostPicos, 3n * PICO("0.0198"));
  });

  it("downgrade: from downgradeAt of the limit, the call's usage is re-priced at the cheaper model, which the cap no longer counts", () => {
    // Sonnet $0.10 a month, downgrade to Haiku at 50% ($0.05). 1st: 0 + 0.0363 < 0.05: Sonnet ($0.0198).
    // 2nd: 0.0198 + 0.0363 ≥ 0.05: Haiku, $0.0066 (saves $0.0132); Haiku is not "*sonnet*", so the cap stays at 0.0198. 3rd: the same.
    const caps = [{ id: "sonnet-month", scope: "personal" as const, window: "month" as const, limitUsd: 0.1, model: "*sonnet*", action: "downgrade" as const, downgradeTo: HAIKU, downgradeAt: 0.5 }];
    const r = whatIf([], [sonnet("2026-11-03T09:00:00Z"), sonnet("2026-11-04T09:00:00Z"), sonnet("2026-11-05T09:00:00Z")], [capsStep(caps, "UTC", prices)]);
    assert.equal(r.actualPicos, PICO("0.0594"));
    assert.deepEqual(groups(r.changed), [["caps and their actions", "downgraded", "sonnet-month", 2, PICO("0.0264")]]);
    assert.equal(r.changed.calls, 2);
    assert.equal(r.wouldCostPicos, PICO("0.033"));
  });

  it("downgrade of an InvokeModel call to a model that reads another body format: refused, as the gateway refuses it, not counted as a saving", () => {
    // The same month as above, through InvokeModel: Nova cannot read Claude's Messages body, so the gateway answers the 2nd and 3rd calls 400.
    const toNova = [{ id: "sonnet-month", scope: "personal" as const, window: "month" as const, limitUsd: 0.1, model: "*sonnet*", action: "downgrade" as const, downgradeTo: "us.amazon.nova-micro-v1:0", downgradeAt: 0.5 }];
    const invoke = (start: string) => sonnet(start, { operation: "InvokeModel" });
    const r = whatIf([], [invoke("2026-11-03T09:00:00Z"), invoke("2026-11-04T09:00:00Z"), invoke("2026-11-05T09:00:00Z")], [capsStep(toNova, "UTC", prices)]);
    assert.deepEqual(groups(r.stopped), [["caps and their actions", "refused", "sonnet-month", 2, PICO("0.0396")]]);
    assert.equal(r.changed.calls, 0);
    assert.equal(r.wouldCostPicos, PICO("0.0198"));
    // To Haiku (the same Messages body), and through Converse to Nova (one format for every model), they are downgraded.
    const toHaiku = [{ ...toNova[0]!, downgradeTo: HAIKU }];
    const viaHaiku = whatIf([], [invoke("2026-11-03T09:00:00Z"), invoke("2026-11-04T09:00:00Z")], [capsStep(toHaiku, "UTC", prices)]);
    assert.equal(viaHaiku.stopped.calls, 0);
    assert.equal(viaHaiku.changed.calls, 1);
    const converse = whatIf([], [sonnet("2026-11-03T09:00:00Z"), sonnet("2026-11-04T09:00:00Z")], [capsStep(toNova, "UTC", prices)]);
    assert.equal(converse.stopped.calls, 0);
    assert.deepEqual(groups(converse.changed).map((g) => g.slice(0, 4)), [["caps and their actions", "downgraded", "sonnet-month", 1]]);
  });

  it("a downgraded call's output limit above the answering model's maximum is lowered to it, as at the gateway: its reservation fits a cap the original limit would not", () => {
    // Sonnet 4.5 with a 32,000-token limit (worst case $0.483) downgraded to Claude 3 Haiku, which writes at most 4,096 tokens:
    // the gateway reserves 1,000 × $0.25/1M + 4,096 × $1.25/1M = $0.00537, inside Haiku's $0.02 cap (32,000 tokens would be $0.04).
    const caps = [
      { id: "sonnet", scope: "personal" as const, window: "month" as const, limitUsd: 100, model: "*sonnet*", action: "downgrade" as const, downgradeTo: "anthropic.claude-3-haiku-20240307-v1:0", downgradeAt: 0 },
      { id: "haiku", scope: "personal" as const, window: "month" as const, limitUsd: 0.02, model: "*haiku*" },
    ];
    const big = call("2026-11-03T09:00:00Z", 0, { ...SONNET, usage: { inputTokens: 1000, outputTokens: 100, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 }, costPicos: String(PICO("0.0045")), worstCasePicos: String(PICO("0.483")) });
    const r = whatIf([], [big], [capsStep(caps, "UTC", prices)]);
    assert.equal(r.stopped.calls, 0, JSON.stringify(groups(r.stopped), (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
    assert.deepEqual(groups(r.changed).map((g) => g.slice(0, 4)), [["caps and their actions", "downgraded", "sonnet", 1]]);
  });

  it("a downgrade to a dearer model saves less than nothing: the text shows -$…, never $-…", () => {
    const toOpus = [{ id: "sonnet-month", scope: "personal" as const, window: "month" as const, limitUsd: 0.1, model: "*sonnet*", action: "downgrade" as const, downgradeTo: "us.anthropic.claude-opus-4-1-20250805-v1:0", downgradeAt: 0.5 }];
    const r = whatIf([], [sonnet("2026-11-03T09:00:00Z"), sonnet("2026-11-04T09:00:00Z")], [capsStep(toOpus, "UTC", prices)]);
    assert.ok(r.changed.savedPicos < 0n, `saved ${r.changed.savedPicos}`);
    const text = formatWhatIf(whatIfDto(r, "2026-11", "UTC"), "proposed.json");
    assert.doesNotMatch(text, /\$-/);
    assert.match(text, /Would be changed: 1 call, saving -\$0\.\d+/);
    assert.match(text, /downgraded by cap sonnet-month: 1 call, -\$0\.\d+/);
    assert.match(text, /Actual cost: {6}\$0\.0396\n/);
    // The dashboard card's figures, two decimals at least.
    assert.equal(usdText("-0.0132", 2), "-$0.0132");
    assert.equal(usdText("0.5", 2), "$0.50");
    assert.equal(usdText("0", 2), "$0.00");
  });

  it("clamp: the output limit is lowered so the worst case fits; the answer is cut to it; refused when not even one token fits", () => {
    // $0.05 a day, clamp. Input costs $0.0033, an output token $0.0000165.
    // 1st: fits, $0.0198. 2nd: room 0.05 − 0.0198 − 0.0033 = 0.0269 → 1630 tokens ≥ the 1000 used: clamped, same cost, reserves 0.030195.
    // 3rd: room 0.05 − 0.0396 − 0.0033 = 0.0071 → 430 tokens: cost 0.0033 + 430 × 0.0000165 = $0.010395 (saves $0.009405).
    // 4th: 0.049995 spent leaves less than the input: refused ($0.0198 saved).
    const caps = [{ id: "tight", scope: "personal" as const, window: "day" as const, limitUsd: 0.05, action: "clamp" as const }];
    const r = whatIf([], ["09", "10", "11", "12"].map((h) => sonnet(`2026-11-03T${h}:00:00Z`)), [capsStep(caps, "UTC", prices)]);
    assert.deepEqual(groups(r.changed), [["caps and their actions", "clamped", "tight", 2, PICO("0.009405")]]);
    assert.deepEqual(groups(r.stopped), [["caps and their actions", "refused", "tight", 1, PICO("0.0198")]]);
    assert.equal(r.wouldCostPicos, PICO("0.049995"));
    assert.equal(r.actualPicos - r.stopped.savedPicos - r.changed.savedPicos, r.wouldCostPicos);
  });

  it("caps scoped to callers and tags apply only to their calls (the one capMatch rule), tier caps once per caller", () => {
    // staging: $0.05 a day for AKIASTAGING; chatbot: $0.05 a day for project=chatbot; tier "agent": $0.03 a day per caller.
    const config = {
      caps: [
        { id: "staging", scope: "personal" as const, window: "day" as const, limitUsd: 0.05, callers: ["AKIASTAGING"] },
        { id: "chatbot", scope: "personal" as const, window: "day" as const, limitUsd: 0.05, tags: { project: "chatbot" } },
      ],
      callers: { AKIAAGENT1: "agent", AKIAAGENT2: "agent" },
      tiers: { agent: { caps: [{ id: "per-agent", scope: "personal" as const, window: "day" as const, limitUsd: 0.04 }] } },
    };
    const month = [
      sonnet("2026-11-03T09:00:00Z", { caller: "AKIASTAGING" }),
      sonnet("2026-11-03T09:10:00Z", { caller: "AKIASTAGING" }), // 0.0198 + 0.0363 > 0.05: refused by staging
      sonnet("2026-11-03T09:20:00Z", { caller: "AKIAPROD" }), // no cap applies: admitted
      sonnet("2026-11-03T09:30:00Z", { caller: "AKIAPROD" }),
      sonnet("2026-11-03T09:40:00Z", { caller: "AKIAPROD", tags: { project: "chatbot" } }),
      sonnet("2026-11-03T09:50:00Z", { caller: "AKIAPROD", tags: { project: "chatbot" } }), // refused by chatbot
      sonnet("2026-11-03T10:00:00Z", { caller: "AKIAAGENT1" }), // 0.0363 ≤ 0.04
      sonnet("2026-11-03T10:10:00Z", { caller: "AKIAAGENT1" }), // 0.0198 + 0.0363 > 0.04: refused by per-agent@AKIAAGENT1
      sonnet("2026-11-03T10:20:00Z", { caller: "AKIAAGENT2" }), // its own wall: admitted
    ];
    const r = whatIf([], month, whatIfSteps(config, "UTC", prices));
    assert.deepEqual(groups(r.stopped).map((g) => [g[2], g[3]]).sort(), [["chatbot", 1], ["per-agent@AKIAAGENT1", 1], ["staging", 1]]);
    assert.equal(r.wouldCostPicos, 6n * PICO("0.0198"));
  });
});

describe("policy/whatif: calls through ids that name no model, with a cap that has an action", () => {
  const micro = prices.rates("amazon.nova-micro-v1:0");
  // 100,000 input and 200 output tokens at Nova Micro's rates; the gateway reserved 1,000 output tokens.
  const usage = { inputTokens: 100_000, outputTokens: 200, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 };
  const cost = 100_000n * micro.input + 200n * micro.output;
  const worst = 100_000n * micro.input + 1_000n * micro.output;
  const opaque = (modelId: string, baseModelId: string, hour: number) =>
    call(`2026-11-03T${String(hour).padStart(2, "0")}:00:00Z`, 0, { modelId, baseModelId, usage, costPicos: String(cost), worstCasePicos: String(worst) });
  const capsWith = (extra: object[]) => [{ id: "daily", scope: "personal" as const, window: "day" as const, limitUsd: 1 }, ...extra] as Parameters<typeof capsStep>[0];
  const soft = { id: "soft", scope: "personal" as const, window: "month" as const, limitUsd: 1000, action: "warn" as const };

  it("an application inference profile's calls are weighed as the model the journal recorded behind it: a warn cap elsewhere does not turn them into refusals", () => {
    const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123def456";
    const calls = [9, 10, 11].map((h) => opaque(arn, "amazon.nova-micro-v1:0", h));
    for (const caps of [capsWith([]), capsWith([soft])]) {
      const r = whatIf([], calls, [capsStep(caps, "UTC", prices)]);
      assert.equal(r.stopped.calls, 0, caps.map((c) => c.id).join("+"));
      assert.equal(r.wouldCostPicos, 3n * cost);
    }
    // A clamp cap with room for the input and 100 output tokens at Nova Micro's rates: the answer is cut to 100 tokens.
    const room = 100_000n * micro.input + 100n * micro.output;
    const tight = { id: "tight", scope: "personal" as const, window: "day" as const, limitUsd: Number(room) / 1e12, action: "clamp" as const };
    const clamped = whatIf([], calls.slice(0, 1), [capsStep([tight], "UTC", prices)]);
    assert.equal(clamped.stopped.calls, 0);
    assert.deepEqual(clamped.changed.groups.map((g) => [g.outcome, g.by, g.calls, g.savedPicos]), [["clamped", "tight", 1, 100n * micro.output]]);
    assert.equal(clamped.wouldCostPicos, room);
  });

  it("an id whose model is unknown is never weighed above the worst case the gateway reserved for it", () => {
    const custom = "arn:aws:bedrock:us-east-1:123456789012:custom-model/my-model/abc123";
    const calls = [9, 10, 11].map((h) => opaque(custom, custom, h));
    const r = whatIf([], calls, [capsStep(capsWith([soft]), "UTC", prices)]);
    assert.equal(r.stopped.calls, 0);
    assert.equal(r.wouldCostPicos, 3n * cost);
  });
});

describe("policy/whatif: a call with an attached guardrail", () => {
  // The Sonnet call above with a guardrail attached: $0.003 of its cost and $0.005 of its worst case are the guardrail's.
  const guardrail = { id: "gr-1", costPicos: String(PICO("0.003")), worstCasePicos: String(PICO("0.005")), units: 6, unitsEstimated: false };
  const guarded = (start: string) => sonnet(start, { costPicos: String(PICO("0.0228")), worstCasePicos: String(PICO("0.0413")), guardrail });

  it("a downgrade keeps the guardrail's part in the call's cost: the guardrail evaluates the same text whichever model answers", () => {
    // $0.10 a month, downgrade at 50%. 1st: 0 + 0.0413 < 0.05: Sonnet ($0.0228). 2nd and 3rd: Haiku $0.0066 + the guardrail's $0.003.
    const caps = [{ id: "sonnet-month", scope: "personal" as const, window: "month" as const, limitUsd: 0.1, model: "*sonnet*", action: "downgrade" as const, downgradeTo: HAIKU, downgradeAt: 0.5 }];
    const r = whatIf([], [guarded("2026-11-03T09:00:00Z"), guarded("2026-11-04T09:00:00Z"), guarded("2026-11-05T09:00:00Z")], [capsStep(caps, "UTC", prices)]);
    assert.deepEqual(groups(r.changed), [["caps and their actions", "downgraded", "sonnet-month", 2, PICO("0.0264")]]);
    assert.equal(r.wouldCostPicos, PICO("0.042"));
  });

  it("the guardrail's worst case is not read as output tokens the model could have written", () => {
    const record = guarded("2026-11-03T09:00:00Z");
    const worst = worstCaseOfRecord({ record, modelId: record.modelId, amount: BigInt(record.worstCasePicos) }, prices);
    assert.equal(worst.maxOutputTokens, 2000);
    assert.equal(worst.worstCasePicos, PICO("0.0413"));
    assert.equal(worst.fixedPicos, PICO("0.0083"), "the input ($0.0033) and the guardrail ($0.005)");
  });
});
