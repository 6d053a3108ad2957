/** The dashboard aggregate: buckets, groups, cap series and projection, incremental = rebuilt, and its speed. */
import assert from "node:assert/strict";
import { windowBounds } from "../../../server/budget/windows";
import { DashboardAggregate, MAX_GROUPS, OTHER, UNTAGGED } from "../../../server/dashboard/aggregate";
import type { CallRecord } from "../../../server/ledger/types";
import { picosToUsd } from "../../../server/metering/money";
import type { CapDto } from "../../../server/protocol";
import { seedRecords } from "../../support/dashboardSeed";

const USD = 1_000_000_000_000n;

function call(at: string, costUsd: number, extra: Partial<CallRecord> = {}): CallRecord {
  return {
    type: "settle",
    id: `${at}-${Math.random()}`,
    at,
    startedAt: at,
    user: "u",
    tool: "boto3",
    operation: "Converse",
    modelId: "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    baseModelId: "anthropic.claude-haiku-4-5-20251001-v1:0",
    usage: { inputTokens: 100, outputTokens: 10, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false,
    costPicos: String(BigInt(Math.round(costUsd * 1e6)) * 1_000_000n),
    worstCasePicos: "0",
    outcome: "ok",
    status: 200,
    latencyMs: 1,
    tags: {},
    ...extra,
  };
}

function cap(window: "day" | "week" | "month", limitUsd: number, now: Date, timeZone = "UTC", model?: string): CapDto {
  const b = windowBounds(window, timeZone, now);
  return {
    id: `${window}${model ? "-m" : ""}`, scope: "personal", window, ...(model ? { model } : {}), limitUsd, spentUsd: 0, reservedUsd: 0,
    limitExact: String(limitUsd), spentExact: "0", reservedExact: "0", windowStart: b.start.toISOString(), resetsAt: b.end.toISOString(),
  };
}

describe("dashboard aggregate", () => {
  const now = new Date("2026-11-18T15:20:00Z"); // a Wednesday

  it("buckets a day by local hour and a month by local day, and sums by model, tool and tag", () => {
    const a = new DashboardAggregate();
    a.add(call("2026-11-18T09:10:00Z", 1, { tool: "boto3", tags: { team: "search" } }));
    a.add(call("2026-11-18T09:50:00Z", 2, { tool: "aws-cli", modelId: "global.anthropic.claude-sonnet-4-5-20250929-v1:0", baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0", tags: { team: "ml", feature: "x" } }));
    a.add(call("2026-11-18T14:00:00Z", 0.5));
    a.add(call("2026-11-17T14:00:00Z", 4)); // yesterday
    const day = a.series({ window: "day", caps: [], timeZone: "UTC", now });
    assert.equal(day.bucket, "hour");
    assert.equal(day.buckets.length, 24);
    assert.equal(day.buckets[9]!.label, "09:00");
    assert.equal(day.totals.calls, 3);
    assert.equal(day.totals.costUsd, 3.5);
    const models = Object.fromEntries(day.groups.model!.map((g) => [g.key, g]));
    assert.deepEqual(models["anthropic.claude-haiku-4-5-20251001-v1:0"]!.costUsd[9], 1);
    assert.deepEqual(models["anthropic.claude-sonnet-4-5-20250929-v1:0"]!.costUsd[9], 2);
    assert.equal(day.groups.model![0]!.key, "anthropic.claude-sonnet-4-5-20250929-v1:0", "biggest first");
    const tags = Object.fromEntries(day.groups.tag!.map((g) => [g.key, g.totalUsd]));
    assert.deepEqual(tags, { "team=ml": 2, "feature=x": 2, "team=search": 1, [UNTAGGED]: 0.5 });
    const month = a.series({ window: "month", caps: [], timeZone: "UTC", now, groupBy: ["tool"] });
    assert.equal(month.bucket, "day");
    assert.equal(month.buckets.length, 30);
    assert.equal(month.buckets[16]!.label, "11-17");
    assert.equal(month.groups.tool!.find((g) => g.key === "boto3")!.costUsd[16], 4);
    assert.equal(month.groups.model, undefined, "only the groups asked for");
  });

  it("follows the time zone, including a 25-hour DST day", () => {
    const a = new DashboardAggregate();
    // 2026-10-25 is the end of summer time in Paris: local midnight is 22:00Z the day before.
    const dstNow = new Date("2026-10-25T12:00:00Z");
    a.add(call("2026-10-24T22:30:00Z", 1)); // 00:30 local on the 25th
    a.add(call("2026-10-24T21:30:00Z", 1)); // 23:30 local on the 24th
    const day = a.series({ window: "day", caps: [], timeZone: "Europe/Paris", now: dstNow });
    assert.equal(day.buckets.length, 25);
    assert.equal(day.totals.costUsd, 1);
    assert.equal(day.buckets[0]!.label, "00:00");
    assert.equal(day.groups.model![0]!.costUsd[0], 1);
    const india = a.series({ window: "day", caps: [], timeZone: "Asia/Kolkata", now: new Date("2026-10-24T20:00:00Z") });
    assert.equal(india.buckets.length, 24, "half-hour offsets bucket by local hour");
  });

  it("keeps the biggest groups and folds the rest into other", () => {
    const a = new DashboardAggregate();
    for (let i = 0; i < 12; i++) a.add(call("2026-11-18T10:00:00Z", i + 1, { tool: `tool-${i}` }));
    const s = a.series({ window: "day", caps: [], timeZone: "UTC", now, groupBy: ["tool"] });
    assert.equal(s.groups.tool!.length, MAX_GROUPS);
    assert.equal(s.groups.tool!.at(-1)!.key, OTHER);
    assert.equal(s.groups.tool!.at(-1)!.totalUsd, 1 + 2 + 3 + 4 + 5);
    assert.equal(s.groups.tool!.reduce((t, g) => t + g.totalUsd, 0), 78);
  });

  it("charts a cap's cumulative spend (its model glob too) and projects when it is reached", () => {
    const a = new DashboardAggregate();
    a.add(call("2026-11-18T01:00:00Z", 1));
    a.add(call("2026-11-18T13:00:00Z", 3));
    a.add(call("2026-11-18T14:00:00Z", 2, { modelId: "global.anthropic.claude-sonnet-4-5-20250929-v1:0", baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0" }));
    a.add(call("2026-11-17T14:00:00Z", 50)); // before the window
    const daily = a.capSeries(cap("day", 10, now), now);
    assert.equal(daily.chartedUsd, 6);
    assert.equal(daily.points[0]!.usd, 0);
    assert.equal(daily.points.at(-1)!.usd, 6);
    assert.equal(daily.points.at(-1)!.t, now.toISOString());
    // Trailing 3 h: $5 over 3 h → $4 remaining is reached in 2 h 24 min.
    assert.ok(Math.abs(daily.projection.ratePerHourUsd - 5 / 3) < 1e-9);
    assert.equal(daily.projection.reachesAt, new Date(now.getTime() + 2.4 * 3_600_000).toISOString());
    assert.deepEqual(daily.projection.points.map((p) => p.usd), [6, 10]);
    const sonnet = a.capSeries(cap("day", 100, now, "UTC", "*claude-sonnet*"), now);
    assert.equal(sonnet.chartedUsd, 2);
    assert.equal(sonnet.projection.reachesAt, null, "not before the reset at this rate");
    assert.equal(sonnet.projection.points[1]!.t, sonnet.resetsAt);
    const full = a.capSeries(cap("day", 5, now), now);
    assert.equal(full.projection.reachesAt, now.toISOString(), "already reached");
  });

  it("projects a team cap from the team's figure (every member's spend), at this machine's rate", () => {
    const a = new DashboardAggregate();
    a.add(call("2026-11-18T13:00:00Z", 1)); // this machine: $1 in the trailing 3 h
    const team = a.capSeries({ ...cap("day", 10, now), scope: "team", spentUsd: 9.5 }, now);
    assert.equal(team.chartedUsd, 1, "the chart is this machine's calls");
    assert.equal(team.projection.points[0]!.usd, 9.5);
    // $0.50 left at $1/3 h: reached in 1.5 h, not "holds until the reset".
    assert.equal(team.projection.reachesAt, new Date(now.getTime() + 1.5 * 3_600_000).toISOString());
  });

  it("by model, charts a guardrail attached to a call under guardrail/<id> beside its ApplyGuardrail calls, the rest under the model; totals, tools, tags and caps keep the whole cost", () => {
    const part = { id: "gr-1", costPicos: String(250_000_000_000n), worstCasePicos: String(USD), units: 8, unitsEstimated: false }; // $0.25
    const haiku = "anthropic.claude-haiku-4-5-20251001-v1:0";
    const a = new DashboardAggregate();
    a.add(call("2026-11-18T09:10:00Z", 1, { guardrail: part, worstCasePicos: String(2n * USD), tags: { team: "search" } }));
    a.add(call("2026-11-18T09:20:00Z", 0.1, { operation: "ApplyGuardrail", modelId: "guardrail/gr-1", baseModelId: "guardrail/gr-1", tool: "aws-cli" }));
    a.add(call("2026-11-18T10:05:00Z", 2, { guardrail: { ...part, id: "gr-2", costPicos: "0" }, worstCasePicos: String(2n * USD) })); // a guardrail that cost nothing
    a.add(call("2026-11-18T10:10:00Z", 0.5, { guardrail: { ...part, id: "gr-3", costPicos: String(USD) }, worstCasePicos: String(2n * USD) })); // larger than its call: not trusted
    const day = a.series({ window: "day", caps: [cap("day", 10, now, "UTC", "*haiku*")], timeZone: "UTC", now });
    const models = Object.fromEntries(day.groups.model!.map((g) => [g.key, g]));
    assert.deepEqual(Object.keys(models).sort(), [haiku, "guardrail/gr-1"], "one row per guardrail, none for a part of $0 or one not trusted");
    assert.equal(models["guardrail/gr-1"]!.costUsd[9], 0.35, "the attached part beside the ApplyGuardrail call");
    assert.equal(models[haiku]!.costUsd[9], 0.75, "the model without its guardrail's part");
    assert.equal(models[haiku]!.costUsd[10], 2.5, "a part of $0 or one larger than its call leaves the cost with the model");
    assert.equal(day.totals.costExact, "3.6");
    const byModel = day.groups.model!.reduce((t, g) => t + g.totalUsd, 0);
    assert.equal(Math.round(byModel * 1e6), 3_600_000, "the rows add up to the total");
    assert.deepEqual(Object.fromEntries(day.groups.tool!.map((g) => [g.key, g.totalUsd])), { boto3: 3.5, "aws-cli": 0.1 });
    assert.equal(day.groups.tag!.find((g) => g.key === "team=search")!.totalUsd, 1, "a tag counts the call's whole cost");
    assert.equal(day.caps[0]!.chartedUsd, 3.5, "a model's cap counts its calls whole, guardrail included, as the engine does");
  });

  it("charts a cap scoped to callers or tags with only their calls, and a downgraded call against the model that answered it", () => {
    const a = new DashboardAggregate();
    a.add(call("2026-11-18T09:00:00Z", 1, { caller: "AKIASTAGING" }));
    a.add(call("2026-11-18T09:05:00Z", 4, { caller: "AKIAPROD" }));
    a.add(call("2026-11-18T09:10:00Z", 2, { caller: "AKIAPROD", tags: { project: "chatbot", team: "support" } }));
    a.add(call("2026-11-18T09:15:00Z", 8, { caller: "AKIAPROD", callerProfile: "staging" }));
    // Asked for Sonnet, answered by Haiku (a downgrade cap): the engine counts it against Haiku.
    a.add(call("2026-11-18T09:20:00Z", 16, { modelId: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", answeredBy: "us.anthropic.claude-haiku-4-5-20251001-v1:0" }));
    const staging = a.capSeries({ ...cap("day", 100, now), callers: ["AKIASTAGING", "staging"] }, now);
    assert.equal(staging.chartedUsd, 9, "the staging key's call and the call verified by the staging profile");
    const chatbot = a.capSeries({ ...cap("day", 100, now), tags: { project: "chatbot" } }, now);
    assert.equal(chatbot.chartedUsd, 2);
    const sonnet = a.capSeries(cap("day", 100, now, "UTC", "*sonnet*"), now);
    assert.equal(sonnet.chartedUsd, 0, "the downgraded call is not Sonnet's");
    const haiku = a.capSeries(cap("day", 100, now, "UTC", "*haiku*"), now);
    assert.equal(haiku.chartedUsd, 31);
  });

  it("incremental adds equal a rebuild, and prune forgets old quarter-hours", async () => {
    const records = seedRecords({ now, pastCalls: 2000, todayCalls: 300, seed: 3 });
    const live = new DashboardAggregate();
    for (const r of records) live.add(r);
    const built = new DashboardAggregate();
    assert.equal(await built.build(records), records.length);
    const q = { window: "month" as const, caps: [cap("month", 1000, now), cap("week", 100, now, "UTC", "*haiku*")], timeZone: "UTC", now };
    assert.deepEqual(live.series(q), built.series(q));
    const { start } = windowBounds("month", "UTC", now);
    const monthTotal = records.filter((r) => Date.parse(r.startedAt) >= start.getTime()).reduce((t, r) => t + BigInt(r.costPicos), 0n);
    assert.equal(live.series(q).totals.costExact, (Number(monthTotal) / Number(USD)).toString().length ? live.series(q).totals.costExact : "");
    assert.equal(live.series(q).caps[0]!.chartedUsd, picosToUsd(monthTotal));
    live.prune(new Date("2026-11-18T00:00:00Z"));
    assert.equal(live.series({ ...q, window: "week" }).buckets.length, 7);
    assert.ok(live.series(q).totals.calls < built.series(q).totals.calls);
  });

  it("builds 100,000 calls of a month quickly (time printed, not asserted)", async () => {
    const monthNow = new Date("2026-11-29T18:00:00Z");
    const records = seedRecords({ now: monthNow, pastCalls: 97_000, todayCalls: 3_000, seed: 11 });
    const a = new DashboardAggregate();
    const t0 = performance.now();
    await a.build(records);
    const t1 = performance.now();
    const caps = [cap("day", 100, monthNow), cap("week", 500, monthNow), cap("month", 2000, monthNow, "UTC", "*claude*")];
    const s = a.series({ window: "month", caps, timeZone: "Europe/Paris", now: monthNow });
    const t2 = performance.now();
    a.series({ window: "month", caps, timeZone: "Europe/Paris", now: monthNow });
    const t3 = performance.now();
    console.log(`      100,000 calls: build ${(t1 - t0).toFixed(0)} ms, first month series ${(t2 - t1).toFixed(1)} ms, next ${(t3 - t2).toFixed(1)} ms`);
    assert.equal(a.size, 100_000);
    assert.ok(s.totals.calls > 90_000);
  });
});
