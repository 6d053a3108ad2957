import assert from "node:assert/strict";
import { callNotice, crossingMessage, keysCovered, newCrossings, pruneNotified } from "../../../client/alertModel";
import type { CallRecord, CapStatusDto, StatusResponse } from "../../../server/protocol";

const THRESHOLDS = [50, 80, 90, 100];
function status(spentUsd: number, windowStart = "2026-11-22T00:00:00.000Z", reservedUsd = 0): StatusResponse {
  const cap: CapStatusDto = {
    id: "daily", scope: "personal", window: "day", limitUsd: 10, spentUsd, reservedUsd, limitExact: "10", spentExact: "", reservedExact: "",
    windowStart, resetsAt: "2026-11-23T00:00:00.000Z",
  };
  return { user: "u", endpoint: "", timeZone: "UTC", caps: [cap], today: { calls: 0, costUsd: 0, costExact: "0" }, todayByModel: {}, inFlight: 0 };
}

describe("cap threshold alerts", () => {
  it("reports a threshold the first time it is crossed, and never again in that window", () => {
    const notified = new Set<string>();
    assert.deepEqual(newCrossings(status(4.99), THRESHOLDS, notified), []);
    const [first] = newCrossings(status(5), THRESHOLDS, notified);
    assert.equal(first!.threshold, 50);
    for (const k of keysCovered(first!, THRESHOLDS)) notified.add(k);
    assert.deepEqual(newCrossings(status(6), THRESHOLDS, notified), []);
    const [next] = newCrossings(status(8.5), THRESHOLDS, notified);
    assert.equal(next!.threshold, 80);
  });

  it("reports only the highest threshold when one call jumps several, and covers the lower ones", () => {
    const crossings = newCrossings(status(9.5), THRESHOLDS, new Set());
    assert.equal(crossings.length, 1);
    assert.equal(crossings[0]!.threshold, 90);
    assert.deepEqual(keysCovered(crossings[0]!, THRESHOLDS).map((k) => k.split("#")[1]), ["50", "80", "90"]);
  });

  it("alerts again in a new window", () => {
    const notified = new Set(keysCovered(newCrossings(status(10), THRESHOLDS, new Set())[0]!, THRESHOLDS));
    assert.equal(newCrossings(status(10, "2026-11-23T00:00:00.000Z"), THRESHOLDS, notified)[0]!.threshold, 100);
    assert.deepEqual(pruneNotified(notified, status(0, "2026-11-23T00:00:00.000Z")), [], "ended windows are forgotten");
  });

  it("counts spent money, not reservations of calls in flight", () => {
    assert.deepEqual(newCrossings(status(1, undefined, 9), THRESHOLDS, new Set()), []);
  });

  it("says what happened in words", () => {
    assert.equal(crossingMessage(newCrossings(status(8), THRESHOLDS, new Set())[0]!), 'Bedrock Budget: cap "daily" has passed 80%: $8.00 of $10.00 today.');
    assert.match(crossingMessage(newCrossings(status(10), THRESHOLDS, new Set())[0]!), /is used up: \$10\.00 of \$10\.00 today\. Calls that could cost more are refused/);
  });
});

describe("call notices", () => {
  const settled = (r: Partial<CallRecord>): CallRecord => ({
    type: "settle", id: "c1", at: "2026-11-22T10:00:00.000Z", startedAt: "2026-11-22T10:00:00.000Z", user: "u", tool: "aws-sdk-js", operation: "Converse",
    modelId: "m", baseModelId: "m", usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1", worstCasePicos: "1", outcome: "ok", status: 200, latencyMs: 1, tags: {}, ...r,
  });

  it("a call a warn cap let through past its limit shows a warning naming the cap", () => {
    const n = callNotice(settled({ actions: [{ capId: "soft-daily", action: "warn", detail: "past its limit" }] }));
    assert.equal(n?.level, "warning");
    assert.match(n!.message, /cap "soft-daily" is past the limit; a call to m was let through \(action warn\)/);
    assert.equal(n!.quietKey, "warn:soft-daily", "one toast per cap a minute");
  });

  it("says which model answered a downgraded call, and what a clamp lowered", () => {
    const down = callNotice(settled({ answeredBy: "haiku", actions: [{ capId: "d", action: "downgrade", detail: "m -> haiku" }] }));
    assert.equal(down?.level, "info");
    assert.match(down!.message, /cap "d" sent it to haiku/);
    const clamp = callNotice(settled({ actions: [{ capId: "c", action: "clamp", detail: "maxTokens=4096->100" }] }));
    assert.match(clamp!.message, /cap "c" lowered its output limit \(maxTokens=4096->100\)/);
  });

  it("refusals and cuts as before; a plain call says nothing", () => {
    assert.equal(callNotice(settled({ outcome: "refused", refusedBy: "daily", message: "refused!" }))?.level, "error");
    assert.equal(callNotice(settled({ outcome: "cut" }))?.level, "warning");
    assert.equal(callNotice(settled({})), undefined);
  });
});
