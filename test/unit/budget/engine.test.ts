import assert from "node:assert/strict";
import { BudgetEngine, refusalMessage, type CapStatus } from "../../../server/budget/engine";
import type { CapConfig } from "../../../server/config/schema";
import { usdToPicos } from "../../../server/metering/money";

const TZ = "Europe/Paris";
const usd = usdToPicos;
const at = (iso: string) => new Date(iso);
const NOON = at("2026-11-22T11:00:00Z"); // a Sunday, 12:00 in Paris

function cap(c: Partial<CapConfig> & Pick<CapConfig, "window" | "limitUsd">): CapConfig {
  return { scope: "personal", ...c };
}

function byId(engine: BudgetEngine, now: Date): Record<string, CapStatus> {
  return Object.fromEntries(engine.status(now).map((s) => [s.id, s]));
}

describe("budget/engine", () => {
  const caps: CapConfig[] = [
    cap({ id: "daily", window: "day", limitUsd: 10 }),
    cap({ id: "claude", window: "day", limitUsd: 1, model: "*claude*" }),
    cap({ id: "monthly", window: "month", limitUsd: 100, scope: "team" }),
  ];

  it("applies model-glob caps by requested id or base id (ARNs included)", () => {
    const e = new BudgetEngine(caps, TZ);
    assert.deepEqual(e.applicableCaps("amazon.nova-pro-v1:0"), ["daily", "monthly"]);
    assert.deepEqual(e.applicableCaps("us.anthropic.claude-sonnet-4-v1:0"), ["daily", "claude", "monthly"]);
    assert.deepEqual(e.applicableCaps("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", "anthropic.claude-3-haiku"), [
      "daily",
      "claude",
      "monthly",
    ]);
    assert.deepEqual(e.applicableCaps("arn:aws:bedrock:us-east-1:1:inference-profile/eu.anthropic.claude-x"), ["daily", "claude", "monthly"]);
  });

  it("reserves all-or-nothing: one refusing cap leaves every cap untouched", () => {
    const e = new BudgetEngine(caps, TZ);
    const before = e.status(NOON);
    const r = e.reserve({ callId: "a", modelId: "x", baseModelId: "anthropic.claude-3", amount: usd("1.01"), now: NOON });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.refusal.capId, "claude");
    assert.equal(r.refusal.worstCasePicos, usd("1.01"));
    assert.deepEqual(e.status(NOON), before);
    // The refused id holds nothing: settling or releasing it changes nothing.
    e.settle("a", usd(5), NOON);
    assert.deepEqual(e.status(NOON), before);

    const ok = e.reserve({ callId: "b", modelId: "amazon.nova-pro-v1:0", amount: usd(2), now: NOON });
    assert.deepEqual(ok, { ok: true, capIds: ["daily", "monthly"] });
    const s = byId(e, NOON);
    assert.equal(s.daily!.reservedPicos, usd(2));
    assert.equal(s.monthly!.reservedPicos, usd(2));
    assert.equal(s.claude!.reservedPicos, 0n);
  });

  it("counts spent and reserved of other calls against the limit, admitting exactly up to it", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    assert.ok(e.reserve({ callId: "1", modelId: "m", amount: usd("0.4"), now: NOON }).ok);
    e.settle("1", usd("0.3"), NOON);
    assert.ok(e.reserve({ callId: "2", modelId: "m", amount: usd("0.5"), now: NOON }).ok);
    const refused = e.reserve({ callId: "3", modelId: "m", amount: usd("0.2") + 1n, now: NOON });
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      assert.equal(refused.refusal.spentPicos, usd("0.3"));
      assert.equal(refused.refusal.reservedPicos, usd("0.5"));
    }
    assert.ok(e.reserve({ callId: "3", modelId: "m", amount: usd("0.2"), now: NOON }).ok);
  });

  it("1,000 reserve/settle cycles with odd amounts leave reserved exactly 0 and spent exactly the sum", () => {
    const e = new BudgetEngine(
      [cap({ id: "daily", window: "day", limitUsd: 1000 }), cap({ id: "claude", window: "day", limitUsd: 1, model: "*claude*" }), cap({ id: "monthly", window: "month", limitUsd: 5000 })],
      TZ,
    );
    let expected = 0n;
    let open: [string, bigint][] = [];
    for (let i = 0; i < 1000; i++) {
      const id = `c${i}`;
      const amount = 1_234_567n + BigInt(i) * 7_777_777_7n + 13n; // odd, pico-level amounts
      assert.ok(e.reserve({ callId: id, modelId: "amazon.nova-lite", amount, now: NOON }).ok, `cycle ${i}`);
      if (i % 7 === 3) assert.ok(e.extend(id, 999n, NOON).ok);
      open.push([id, amount]);
      if (open.length === 5 || i === 999) {
        for (const [k, [callId, amount]] of open.entries()) {
          if (k === 2) {
            e.release(callId);
            continue;
          }
          const actual = (amount * BigInt(k + 1)) / 3n + 1n;
          e.settle(callId, actual, NOON);
          expected += actual;
        }
        open = [];
      }
    }
    const s = byId(e, NOON);
    for (const id of ["daily", "monthly"]) {
      assert.equal(s[id]!.reservedPicos, 0n, id);
      assert.equal(s[id]!.spentPicos, expected, id);
    }
    assert.equal(s.claude!.spentPicos, 0n);
  });

  it("extend is refused at the limit and changes nothing when refused", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 }), cap({ id: "m", window: "month", limitUsd: 50 })], TZ);
    assert.ok(e.reserve({ callId: "s", modelId: "m", amount: usd("0.6"), now: NOON }).ok);
    assert.deepEqual(e.extend("s", usd("0.4"), NOON), { ok: true, capIds: ["d", "m"] }); // exactly at the limit
    const r = e.extend("s", 1n, NOON);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.refusal.capId, "d");
      assert.equal(r.refusal.reservedPicos, usd(1));
      assert.equal(r.refusal.worstCasePicos, 1n);
    }
    assert.equal(byId(e, NOON).m!.reservedPicos, usd(1));
    e.settle("s", usd("0.99"), NOON);
    const s = byId(e, NOON);
    assert.equal(s.d!.reservedPicos, 0n);
    assert.equal(s.d!.spentPicos, usd("0.99"));
    assert.throws(() => e.extend("unknown", 1n, NOON));
  });

  it("rolls windows over lazily: spend resets, a settle after rollover does not charge the new window", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 }), cap({ id: "mo", window: "month", limitUsd: 5 })], TZ);
    const late = at("2026-11-22T22:50:00Z"); // 23:50 Paris
    e.recordSpent({ modelId: "m", amount: usd("0.9"), at: at("2026-11-22T08:00:00Z") });
    assert.equal(e.reserve({ callId: "x", modelId: "m", amount: usd("0.2"), now: late }).ok, false);
    assert.ok(e.reserve({ callId: "y", modelId: "m", amount: usd("0.1"), now: late }).ok);
    const next = at("2026-11-22T23:05:00Z"); // 00:05 Paris, Monday
    e.settle("y", usd("0.05"), next);
    const s = byId(e, next);
    assert.equal(s.d!.spentPicos, 0n);
    assert.equal(s.d!.reservedPicos, 0n);
    assert.equal(s.d!.windowStart.toISOString(), "2026-11-22T23:00:00.000Z");
    assert.equal(s.d!.resetsAt.toISOString(), "2026-11-23T23:00:00.000Z");
    // The month has not rolled: it was charged in the window it reserved in.
    assert.equal(s.mo!.spentPicos, usd("0.95"));
    assert.equal(s.mo!.reservedPicos, 0n);
    // Spend replayed for an older window is ignored by the day cap, counted by the month cap.
    e.recordSpent({ modelId: "m", amount: usd("0.5"), at: late });
    const s2 = byId(e, next);
    assert.equal(s2.d!.spentPicos, 0n);
    assert.equal(s2.mo!.spentPicos, usd("1.45"));
    assert.ok(e.reserve({ callId: "z", modelId: "m", amount: usd(1), now: next }).ok);
  });

  it("replays history from a clean start (windows set by the first timestamp) and accepts external spend", () => {
    const e = new BudgetEngine([cap({ id: "team-week", scope: "team", window: "week", limitUsd: 20 })], TZ);
    e.recordSpent({ modelId: "m", amount: usd(3), at: at("2026-11-10T10:00:00Z") }); // previous week
    e.recordSpent({ modelId: "m", amount: usd(4), at: at("2026-11-17T10:00:00Z") }); // this week: rolls forward
    e.recordExternalSpent("team-week", at("2026-11-18T10:00:00Z"), usd(10));
    e.recordExternalSpent("team-week", at("2026-11-12T10:00:00Z"), usd(99)); // older week: ignored
    const s = byId(e, NOON);
    assert.equal(s["team-week"]!.spentPicos, usd(14));
    assert.equal(s["team-week"]!.windowStart.toISOString(), "2026-11-15T23:00:00.000Z");
    const r = e.reserve({ callId: "q", modelId: "m", amount: usd(7), now: NOON });
    assert.equal(r.ok, false);
  });

  it("setCaps keeps spend and reservations of caps whose id persists; a new cap holds the calls running", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 }), cap({ id: "gone", window: "day", limitUsd: 1 })], TZ);
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd("0.5"), now: NOON }).ok);
    e.setCaps([cap({ id: "d", window: "day", limitUsd: 2 }), cap({ id: "new", window: "day", limitUsd: 1 })]);
    let s = byId(e, NOON);
    assert.equal(s.d!.reservedPicos, usd("0.5"));
    assert.equal(s.d!.limitPicos, usd(2));
    assert.equal(s.new!.reservedPicos, usd("0.5"));
    e.settle("a", usd("0.25"), NOON);
    s = byId(e, NOON);
    assert.equal(s.d!.reservedPicos, 0n);
    assert.equal(s.d!.spentPicos, usd("0.25"));
    assert.equal(s.new!.reservedPicos, 0n);
    assert.equal(s.new!.spentPicos, usd("0.25")); // it ran when the cap came: a replay of the journal would not have seen it
  });

  it("writes a refusal message a person can act on", () => {
    const e = new BudgetEngine([cap({ id: "daily", window: "day", limitUsd: 10 })], TZ);
    e.recordSpent({ modelId: "m", amount: usd("9.8"), at: NOON });
    const r = e.reserve({ callId: "a", modelId: "m", amount: usd("0.42"), now: NOON });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(
      refusalMessage(r.refusal, TZ),
      'Bedrock Budget refused this call: it could cost up to $0.42, and cap "daily" (personal, day) has $9.80 spent and $0.00 reserved of $10.00. The cap resets at 2026-11-23 00:00 Europe/Paris.',
    );
    assert.match(refusalMessage(r.refusal, "America/New_York"), /resets at 2026-11-22 18:00 America\/New_York\.$/);
  });
});
