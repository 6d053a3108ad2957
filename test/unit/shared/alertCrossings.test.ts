import assert from "node:assert/strict";
import { crossingMessage, keysCovered, newCrossings, pruneNotified } from "../../../server/shared/alertCrossings";
import type { CapStatusDto, StatusResponse } from "../../../server/protocol";
import { BudgetEngine } from "../../../server/budget/engine";
import { capStatusDto } from "../../../server/gateway/localApi";

const THRESHOLDS = [50, 80, 90, 100];
function status(spentUsd: number, windowStart = "2026-11-22T00:00:00.000Z", reservedUsd = 0, limitUsd = 10): StatusResponse {
  const cap: CapStatusDto = {
    id: "daily", scope: "personal", window: "day", limitUsd, spentUsd, reservedUsd, limitExact: String(limitUsd), spentExact: String(spentUsd), reservedExact: String(reservedUsd),
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

  it("reports a threshold reached exactly, even where a float division falls short of it ($2.40 of $3 is 80%)", () => {
    const [crossing] = newCrossings(status(2.4, undefined, 0, 3), THRESHOLDS, new Set());
    assert.equal(crossing?.threshold, 80);
    assert.deepEqual(newCrossings(status(2.39, undefined, 0, 3), THRESHOLDS, new Set()).map((c) => c.threshold), [50]);
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
    const nextDay = (start: string, spentUsd = 0): StatusResponse => ({ ...status(spentUsd, start), caps: [{ ...status(spentUsd, start).caps[0]!, resetsAt: new Date(Date.parse(start) + 86_400_000).toISOString() }] });
    assert.deepEqual(pruneNotified(notified, nextDay("2026-11-23T00:00:00.000Z")), [...notified], "the window just ended is kept (a timeZone change can make it current again)");
    assert.deepEqual(pruneNotified(notified, nextDay("2026-11-24T00:00:00.000Z")), [], "older windows are forgotten");
  });

  it("a timeZone change made after the window ended under the old zone does not notify its thresholds again", () => {
    // 80% notified on 22 November (UTC); at 02:00 UTC on the 23rd a new UTC day began and the editor pruned its keys.
    let notified = new Set(keysCovered(newCrossings(status(8), THRESHOLDS, new Set())[0]!, THRESHOLDS));
    const utcNextDay: StatusResponse = { ...status(0, "2026-11-23T00:00:00.000Z"), caps: [{ ...status(0).caps[0]!, windowStart: "2026-11-23T00:00:00.000Z", resetsAt: "2026-11-24T00:00:00.000Z" }] };
    notified = new Set(pruneNotified(notified, utcNextDay));
    // Then the user sets timeZone America/New_York: it is still the 22nd there, the same day's $8.
    const newYork: StatusResponse = { ...status(8), caps: [{ ...status(8).caps[0]!, windowStart: "2026-11-22T05:00:00.000Z", resetsAt: "2026-11-23T05:00:00.000Z" }] };
    assert.deepEqual(newCrossings(newYork, THRESHOLDS, notified), []);
  });

  it("counts spent money, not reservations of calls in flight", () => {
    assert.deepEqual(newCrossings(status(1, undefined, 9), THRESHOLDS, new Set()), []);
  });

  it("says what happened in words", () => {
    assert.equal(crossingMessage(newCrossings(status(8), THRESHOLDS, new Set())[0]!), 'Bedrock Budget: cap "daily" has passed 80%: $8.00 of $10.00 today.');
    assert.match(crossingMessage(newCrossings(status(10), THRESHOLDS, new Set())[0]!), /is used up: \$10\.00 of \$10\.00 today\. Calls that could cost more are refused/);
  });

  it("at 100% says what the cap's action really does: a warn cap lets calls through, a clamp cap lowers them", () => {
    const at100 = (action: CapStatusDto["action"]) => {
      const s = status(10);
      s.caps[0] = { ...s.caps[0]!, ...(action ? { action } : {}) };
      return crossingMessage(newCrossings(s, THRESHOLDS, new Set())[0]!);
    };
    assert.match(at100("warn"), /is used up: \$10\.00 of \$10\.00 today\. Calls still go through \(action warn\) and are counted past the limit/);
    assert.doesNotMatch(at100("warn"), /refused/);
    assert.match(at100("clamp"), /output limit lowered to fit/);
    assert.match(at100(undefined), /Calls that could cost more are refused until it resets\.$/);
  });

  it("the gateway's /status carries a cap's action from the settings (absent for block)", () => {
    const engine = new BudgetEngine([
      { id: "soft", scope: "personal", window: "day", limitUsd: 1, action: "warn" },
      { id: "wall", scope: "personal", window: "day", limitUsd: 1 },
    ], "UTC");
    const caps = engine.status(new Date("2026-11-22T10:00:00Z")).map(capStatusDto);
    assert.deepEqual(caps.map((c) => [c.id, c.action]), [["soft", "warn"], ["wall", undefined]]);
  });

  it("a timeZone change (the window's start moves by hours, the window does not end) does not notify the same thresholds again", () => {
    const inZone = (spentUsd: number, windowStart: string, resetsAt: string): StatusResponse => ({ ...status(spentUsd), caps: [{ ...status(spentUsd).caps[0]!, window: "month", windowStart, resetsAt }] });
    const utc = inZone(8, "2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z");
    let notified = new Set(keysCovered(newCrossings(utc, THRESHOLDS, new Set())[0]!, THRESHOLDS));
    const paris = inZone(8.5, "2026-10-31T23:00:00.000Z", "2026-11-30T23:00:00.000Z");
    assert.deepEqual(newCrossings(paris, THRESHOLDS, notified), [], "80% was said in this month already");
    notified = new Set(pruneNotified(notified, paris)); // as the editor stores it
    assert.deepEqual([...notified].sort(), ["daily@2026-10-31T23:00:00.000Z#50", "daily@2026-10-31T23:00:00.000Z#80"]);
    assert.deepEqual(newCrossings(paris, THRESHOLDS, notified), []);
    assert.equal(newCrossings(inZone(9, "2026-10-31T23:00:00.000Z", "2026-11-30T23:00:00.000Z"), THRESHOLDS, notified)[0]?.threshold, 90);
    // December in Paris overlaps November in UTC by an hour: a new window all the same.
    const december = inZone(8, "2026-11-30T23:00:00.000Z", "2026-12-31T23:00:00.000Z");
    assert.equal(newCrossings(december, THRESHOLDS, new Set(keysCovered(newCrossings(utc, THRESHOLDS, new Set())[0]!, THRESHOLDS)))[0]?.threshold, 80);
  });
});
