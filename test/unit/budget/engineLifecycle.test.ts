// BudgetEngine across cap changes, releases and window rollovers: what each cap shows afterwards, to the pico-dollar.
import assert from "node:assert/strict";
import { BudgetEngine, type CapStatus } from "../../../server/budget/engine";
import type { CapConfig } from "../../../server/config/schema";
import { usdToPicos as usd } from "../../../server/metering/money";

const TZ = "Europe/Paris";
const NOON = new Date("2026-11-22T11:00:00Z"); // Sunday 12:00 in Paris
const LATE = new Date("2026-11-22T22:50:00Z"); // Sunday 23:50 in Paris
const NEXT = new Date("2026-11-22T23:05:00Z"); // Monday 00:05 in Paris
const cap = (c: Partial<CapConfig> & Pick<CapConfig, "window" | "limitUsd">): CapConfig => ({ scope: "personal", ...c });
const byId = (e: BudgetEngine, now: Date): Record<string, CapStatus> => Object.fromEntries(e.status(now).map((s) => [s.id, s]));
const figures = (e: BudgetEngine, now: Date) =>
  Object.fromEntries(e.status(now).map((s) => [s.id, { spent: s.spentPicos, reserved: s.reservedPicos }]));

describe("budget/engine: lifecycle", () => {
  it("status names each cap's scope, window, model (only when set) and limit", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 2.5 }), cap({ id: "t", scope: "team", window: "week", limitUsd: 40, model: "*opus*" })], TZ);
    const [d, t] = e.status(NOON);
    assert.deepEqual(d, {
      id: "d",
      scope: "personal",
      window: "day",
      limitPicos: 2_500_000_000_000n,
      spentPicos: 0n,
      reservedPicos: 0n,
      windowStart: new Date("2026-11-21T23:00:00Z"),
      resetsAt: new Date("2026-11-22T23:00:00Z"),
    });
    assert.equal("model" in d!, false);
    assert.equal(t!.model, "*opus*");
    assert.equal(t!.scope, "team");
    assert.equal(t!.windowStart.toISOString(), "2026-11-15T23:00:00.000Z"); // Monday 16 November
    assert.equal(t!.resetsAt.toISOString(), "2026-11-22T23:00:00.000Z");
  });

  it("setCaps says which caps start from zero: new ones, and those whose window or model changed", () => {
    const e = new BudgetEngine([], TZ);
    assert.deepEqual(e.setCaps([cap({ id: "d", window: "day", limitUsd: 1 }), cap({ id: "m", window: "month", limitUsd: 5, model: "*a*" })]), ["d", "m"]);
    assert.deepEqual(e.setCaps([cap({ id: "d", window: "day", limitUsd: 3 }), cap({ id: "m", window: "month", limitUsd: 5, model: "*a*" })]), []);
    assert.deepEqual(e.setCaps([cap({ id: "d", window: "week", limitUsd: 3 }), cap({ id: "m", window: "month", limitUsd: 5, model: "*a*" })]), ["d"]);
    assert.deepEqual(e.setCaps([cap({ id: "d", window: "week", limitUsd: 3 }), cap({ id: "m", window: "month", limitUsd: 5, model: "*b*" })]), ["m"]);
    assert.deepEqual(e.setCaps([cap({ id: "m", window: "month", limitUsd: 5, model: "*b*" })]), []);
  });

  it("a cap whose window changes starts from zero, apart from the calls running now, which count when they settle", () => {
    const e = new BudgetEngine([cap({ id: "c", window: "day", limitUsd: 1 }), cap({ id: "keep", window: "month", limitUsd: 10 })], TZ);
    e.recordSpent({ modelId: "m", amount: usd("0.7"), at: NOON });
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd("0.2"), now: NOON }).ok);
    e.setCaps([cap({ id: "c", window: "week", limitUsd: 1 }), cap({ id: "keep", window: "month", limitUsd: 10 })]);
    assert.deepEqual(figures(e, NOON), { c: { spent: 0n, reserved: usd("0.2") }, keep: { spent: usd("0.7"), reserved: usd("0.2") } });
    e.settle("a", usd("0.15"), NOON);
    assert.deepEqual(figures(e, NOON), { c: { spent: usd("0.15"), reserved: 0n }, keep: { spent: usd("0.85"), reserved: 0n } });
  });

  it("a cap whose model glob changes starts from zero too, holding the running calls its new glob matches", () => {
    const e = new BudgetEngine([cap({ id: "c", window: "day", limitUsd: 1, model: "*nova*" })], TZ);
    assert.ok(e.reserve({ callId: "a", modelId: "amazon.nova-pro-v1:0", amount: usd("0.4"), now: NOON }).ok);
    assert.ok(e.reserve({ callId: "b", modelId: "anthropic.claude-x", amount: usd("0.1"), now: NOON }).ok); // no cap applied to it
    e.setCaps([cap({ id: "c", window: "day", limitUsd: 1, model: "*claude*" })]);
    assert.deepEqual(figures(e, NOON), { c: { spent: 0n, reserved: usd("0.1") } });
    e.release("a");
    e.release("b");
    assert.deepEqual(figures(e, NOON), { c: { spent: 0n, reserved: 0n } });
    assert.ok(e.reserve({ callId: "c", modelId: "anthropic.claude-x", amount: usd(1), now: NOON }).ok); // the whole limit is free
  });

  it("a cap added while calls run takes on their reservations, grown ones at their size, and charges them when they settle", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 10 })], TZ);
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd("0.3"), now: NOON }).ok);
    assert.ok(e.extend("a", usd("0.2"), NOON).ok); // a stream that outgrew its estimate
    assert.ok(e.reserve({ callId: "b", modelId: "m", amount: usd("0.1"), now: NOON }).ok);
    assert.deepEqual(e.setCaps([cap({ id: "d", window: "day", limitUsd: 10 }), cap({ id: "new", window: "month", limitUsd: 0.7 })]), ["new"]);
    assert.deepEqual(e.heldCallIds(), new Set(["a", "b"]));
    assert.deepEqual(figures(e, NOON).new, { spent: 0n, reserved: usd("0.6") });
    // The new cap walls from now on, counting what runs: 0.6 held of 0.7.
    assert.equal(e.reserve({ callId: "c", modelId: "m", amount: usd("0.2"), now: NOON }).ok, false);
    assert.equal(e.extend("a", usd("0.2"), NOON).ok, false);
    e.settle("a", usd("0.45"), NOON);
    e.release("b");
    assert.deepEqual(figures(e, NOON), { d: { spent: usd("0.45"), reserved: 0n }, new: { spent: usd("0.45"), reserved: 0n } });
    assert.deepEqual(e.heldCallIds(), new Set());
  });

  it("a new time zone moves every cap's window: each starts from zero, the history of its new window counts again, and the calls running then count once", () => {
    // Kiritimati is UTC+14: its day of 23 November runs 22 Nov 10:00Z to 23 Nov 10:00Z.
    const at = (hhmm: string) => new Date(`2026-11-22T${hhmm}:00Z`);
    const caps = [cap({ id: "d", window: "day", limitUsd: 1 }), cap({ id: "m", window: "month", limitUsd: 10 })];
    const e = new BudgetEngine(caps, "UTC");
    const history = [{ modelId: "x", amount: usd("0.3"), at: at("09:00") }, { modelId: "x", amount: usd("0.2"), at: at("11:00") }];
    for (const r of history) e.recordSpent(r);
    assert.ok(e.reserve({ callId: "early", modelId: "x", amount: usd("0.05"), now: at("09:30") }).ok);
    assert.ok(e.reserve({ callId: "late", modelId: "x", amount: usd("0.1"), now: at("11:30") }).ok);
    assert.deepEqual(e.setCaps(caps, "Pacific/Kiritimati"), ["d", "m"]);
    const d = byId(e, at("12:00")).d!;
    assert.deepEqual([d.windowStart.toISOString(), d.resetsAt.toISOString()], ["2026-11-22T10:00:00.000Z", "2026-11-23T10:00:00.000Z"]);
    assert.equal(byId(e, at("12:00")).m!.windowStart.toISOString(), "2026-10-31T10:00:00.000Z"); // 1 November, 00:00 in Kiritimati
    // The call started at 09:30Z belongs to the day before in Kiritimati: only the month holds it.
    assert.deepEqual(figures(e, at("12:00")), { d: { spent: 0n, reserved: usd("0.1") }, m: { spent: 0n, reserved: usd("0.15") } });
    for (const r of history) e.recordSpent(r); // the replay of the journal (the running calls left out)
    assert.deepEqual(figures(e, at("12:00")), { d: { spent: usd("0.2"), reserved: usd("0.1") }, m: { spent: usd("0.5"), reserved: usd("0.15") } });
    e.settle("late", usd("0.08"), at("12:00"));
    e.settle("early", usd("0.04"), at("12:00"));
    assert.deepEqual(figures(e, at("12:00")), { d: { spent: usd("0.28"), reserved: 0n }, m: { spent: usd("0.62"), reserved: 0n } });
    // In UTC the day cap would hold 0.62 spent; in Kiritimati 0.28, so 0.72 more fits and 0.73 does not.
    assert.equal(e.reserve({ callId: "no", modelId: "x", amount: usd("0.73"), now: at("12:00") }).ok, false);
    assert.ok(e.reserve({ callId: "yes", modelId: "x", amount: usd("0.72"), now: at("12:00") }).ok);
    // It resets at Kiritimati's midnight, not UTC's.
    assert.equal(e.reserve({ callId: "still", modelId: "x", amount: usd("0.01"), now: new Date("2026-11-23T09:59:00Z") }).ok, false);
    assert.ok(e.reserve({ callId: "next", modelId: "x", amount: usd("0.01"), now: new Date("2026-11-23T10:00:00Z") }).ok);
    // Later changes keep the new zone: nothing starts from zero.
    assert.deepEqual(e.setCaps(caps), []);
    assert.deepEqual(e.setCaps(caps, "Pacific/Kiritimati"), []);
    assert.equal(byId(e, new Date("2026-11-23T10:00:00Z")).d!.windowStart.toISOString(), "2026-11-23T10:00:00.000Z");
  });

  for (const order of [["late", "next", "midnight"], ["next", "midnight", "late"]]) {
    it(`a cap added after midnight does not take on a call that started the day before (it belongs to that day's window), calls reserved ${order.join(", ")}`, () => {
      const e = new BudgetEngine([], TZ);
      const calls: Record<string, [string, Date]> = { late: ["0.3", LATE], next: ["0.1", NEXT], midnight: ["0.01", new Date("2026-11-22T23:00:00Z")] }; // Monday 00:00 sharp
      for (const id of order) assert.ok(e.reserve({ callId: id, modelId: "m", amount: usd(calls[id]![0]), now: calls[id]![1] }).ok);
      e.setCaps([cap({ id: "d", window: "day", limitUsd: 1 }), cap({ id: "m", window: "month", limitUsd: 1 })]);
      assert.deepEqual(figures(e, NEXT), { d: { spent: 0n, reserved: usd("0.11") }, m: { spent: 0n, reserved: usd("0.41") } });
      e.settle("late", usd("0.2"), NEXT);
      e.settle("next", usd("0.05"), NEXT);
      e.settle("midnight", usd("0.01"), NEXT);
      assert.deepEqual(figures(e, NEXT), { d: { spent: usd("0.06"), reserved: 0n }, m: { spent: usd("0.26"), reserved: 0n } });
    });
  }

  it("release gives a reservation back without charging; twice, or for an unknown call, changes nothing", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd("0.6"), now: NOON }).ok);
    assert.ok(e.reserve({ callId: "b", modelId: "m", amount: usd("0.3"), now: NOON }).ok);
    e.release("a");
    assert.deepEqual(figures(e, NOON), { d: { spent: 0n, reserved: usd("0.3") } });
    e.release("a");
    e.release("never");
    assert.deepEqual(figures(e, NOON), { d: { spent: 0n, reserved: usd("0.3") } });
    e.settle("a", usd(1), NOON); // released: nothing left to settle
    assert.deepEqual(figures(e, NOON), { d: { spent: 0n, reserved: usd("0.3") } });
  });

  it("releasing a reservation of a closed window leaves the new window's reservations alone", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    assert.ok(e.reserve({ callId: "old", modelId: "m", amount: usd("0.5"), now: LATE }).ok);
    assert.ok(e.reserve({ callId: "new", modelId: "m", amount: usd("0.25"), now: NEXT }).ok);
    e.release("old");
    assert.deepEqual(figures(e, NEXT), { d: { spent: 0n, reserved: usd("0.25") } });
  });

  it("releasing after the cap was removed and added back leaves the new cap alone", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd("0.5"), now: NOON }).ok);
    e.setCaps([]);
    e.setCaps([cap({ id: "d", window: "day", limitUsd: 1 })]);
    assert.ok(e.reserve({ callId: "b", modelId: "m", amount: usd("0.25"), now: NOON }).ok);
    e.release("a");
    e.settle("a", usd(1), NOON);
    assert.deepEqual(figures(e, NOON), { d: { spent: 0n, reserved: usd("0.25") } });
  });

  it("a stream that grows past midnight is checked and booked only on the caps whose window it started in", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 }), cap({ id: "mo", window: "month", limitUsd: 5 })], TZ);
    assert.ok(e.reserve({ callId: "s", modelId: "m", amount: usd("0.9"), now: LATE }).ok);
    // After midnight the day cap has rolled: 0.5 more would break a fresh $1 day only with the old 0.9, which belongs to Sunday.
    assert.deepEqual(e.extend("s", usd("0.5"), NEXT), { ok: true, capIds: ["mo"] });
    assert.deepEqual(figures(e, NEXT), { d: { spent: 0n, reserved: 0n }, mo: { spent: 0n, reserved: usd("1.4") } });
    e.settle("s", usd("1.2"), NEXT);
    assert.deepEqual(figures(e, NEXT), { d: { spent: 0n, reserved: 0n }, mo: { spent: usd("1.2"), reserved: 0n } });
  });

  it("extend is refused by the month cap with what it was asked for, and books nothing", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 10 }), cap({ id: "mo", window: "month", limitUsd: 1 })], TZ);
    e.recordSpent({ modelId: "m", amount: usd("0.5"), at: NOON });
    assert.ok(e.reserve({ callId: "s", modelId: "m", amount: usd("0.25"), now: NOON }).ok);
    const r = e.extend("s", usd("0.26"), NOON);
    assert.deepEqual(r, {
      ok: false,
      refusal: {
        capId: "mo",
        scope: "personal",
        window: "month",
        limitPicos: usd(1),
        spentPicos: usd("0.5"),
        reservedPicos: usd("0.25"),
        worstCasePicos: usd("0.26"),
        resetsAt: new Date("2026-11-30T23:00:00Z"),
      },
    });
    assert.deepEqual(figures(e, NOON), { d: { spent: usd("0.5"), reserved: usd("0.25") }, mo: { spent: usd("0.5"), reserved: usd("0.25") } });
    assert.deepEqual(e.extend("s", usd("0.25"), NOON), { ok: true, capIds: ["d", "mo"] }); // exactly to the limit
    e.settle("s", usd("0.5"), NOON);
    assert.deepEqual(figures(e, NOON), { d: { spent: usd(1), reserved: 0n }, mo: { spent: usd(1), reserved: 0n } });
  });

  it("a call with no cap that applies is admitted with no cap ids and books nothing", () => {
    const e = new BudgetEngine([cap({ id: "o", window: "day", limitUsd: 1, model: "*opus*" })], TZ);
    assert.deepEqual(e.reserve({ callId: "a", modelId: "amazon.nova-micro-v1:0", amount: usd(50), now: NOON }), { ok: true, capIds: [] });
    e.settle("a", usd(50), NOON);
    assert.deepEqual(figures(e, NOON), { o: { spent: 0n, reserved: 0n } });
  });

  it("refuses nonsense: negative amounts, a call id reserved twice", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    assert.throws(() => e.reserve({ callId: "a", modelId: "m", amount: -1n, now: NOON }), /reserve: negative amount/);
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: 0n, now: NOON }).ok);
    assert.throws(() => e.reserve({ callId: "a", modelId: "m", amount: 1n, now: NOON }), /reserve: call a already holds a reservation/);
    assert.throws(() => e.extend("a", -1n, NOON), /extend: negative amount/);
    assert.throws(() => e.extend("zz", 1n, NOON), /extend: no reservation for call zz/);
    assert.deepEqual(figures(e, NOON), { d: { spent: 0n, reserved: 0n } });
  });

  it("external spend counts for the named cap only; an unknown cap id is ignored", () => {
    const e = new BudgetEngine([cap({ id: "a", window: "day", limitUsd: 1 }), cap({ id: "b", window: "day", limitUsd: 1 })], TZ);
    e.recordExternalSpent("b", NOON, usd("0.4"));
    e.recordExternalSpent("zz", NOON, usd("0.4"));
    assert.deepEqual(figures(e, NOON), { a: { spent: 0n, reserved: 0n }, b: { spent: usd("0.4"), reserved: 0n } });
    // Spend at the very first instant of the window counts; one millisecond before does not.
    e.recordExternalSpent("a", new Date("2026-11-21T23:00:00.000Z"), usd("0.1"));
    e.recordExternalSpent("a", new Date("2026-11-21T22:59:59.999Z"), usd("0.2"));
    assert.equal(byId(e, NOON).a!.spentPicos, usd("0.1"));
  });
  it("settling twice charges once", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd("0.5"), now: NOON }).ok);
    e.settle("a", usd("0.25"), NOON);
    e.settle("a", usd("0.25"), NOON);
    assert.deepEqual(figures(e, NOON), { d: { spent: usd("0.25"), reserved: 0n } });
  });

  it("a stream may grow by nothing", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd(1), now: NOON }).ok);
    assert.deepEqual(e.extend("a", 0n, NOON), { ok: true, capIds: ["d"] });
  });

  it("local midnight exactly is already the new day", () => {
    const e = new BudgetEngine([cap({ id: "d", window: "day", limitUsd: 1 })], TZ);
    e.recordSpent({ modelId: "m", amount: usd("0.9"), at: LATE });
    const midnight = new Date("2026-11-22T23:00:00.000Z");
    assert.ok(e.reserve({ callId: "a", modelId: "m", amount: usd("0.5"), now: midnight }).ok);
    assert.equal(byId(e, midnight).d!.windowStart.toISOString(), "2026-11-22T23:00:00.000Z");
  });

  it("model globs match case-insensitively", () => {
    const e = new BudgetEngine([cap({ id: "o", window: "day", limitUsd: 1, model: "*opus*" })], TZ);
    assert.deepEqual(e.applicableCaps("anthropic.claude-OPUS-4-v1:0"), ["o"]);
    assert.deepEqual(e.applicableCaps("x", "anthropic.claude-Opus-4"), ["o"]);
  });

  it("a reservation made before a window change and a rollover never counts again, in either order", () => {
    const tomorrow = new Date("2026-11-23T11:00:00Z");
    // window change, then rollover
    const a = new BudgetEngine([cap({ id: "c", window: "day", limitUsd: 1 })], TZ);
    assert.ok(a.reserve({ callId: "old", modelId: "m", amount: usd("0.5"), now: NOON }).ok);
    a.setCaps([cap({ id: "c", window: "week", limitUsd: 1 })]);
    a.setCaps([cap({ id: "c", window: "day", limitUsd: 1 })]);
    assert.ok(a.reserve({ callId: "new", modelId: "m", amount: usd("0.25"), now: tomorrow }).ok);
    a.release("old");
    assert.deepEqual(figures(a, tomorrow), { c: { spent: 0n, reserved: usd("0.25") } });
    // rollover, then a model change
    const b = new BudgetEngine([cap({ id: "c", window: "day", limitUsd: 1 })], TZ);
    assert.ok(b.reserve({ callId: "old", modelId: "m", amount: usd("0.5"), now: NOON }).ok);
    assert.deepEqual(figures(b, tomorrow), { c: { spent: 0n, reserved: 0n } });
    b.setCaps([cap({ id: "c", window: "day", limitUsd: 1, model: "*" })]);
    assert.ok(b.reserve({ callId: "new", modelId: "m", amount: usd("0.25"), now: tomorrow }).ok);
    b.settle("old", usd("0.5"), tomorrow);
    assert.deepEqual(figures(b, tomorrow), { c: { spent: 0n, reserved: usd("0.25") } });
  });
});
