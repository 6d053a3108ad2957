/** The engine's checkpoint totals (what a restart takes instead of replaying the month), its copy, window roll-over, warn caps and the scope fields a status shows. */
import assert from "node:assert/strict";
import { BudgetEngine, capScopeFields, scopeKey } from "../../../server/budget/engine";
import type { CapConfig } from "../../../server/config/schema";

const NOW = new Date("2026-11-29T10:00:00.000Z");
const DAY_MS = 86_400_000;
const cap = (extra: Partial<CapConfig> = {}): CapConfig => ({ id: "daily", scope: "personal", window: "day", limitUsd: 10, ...extra });
const spentOf = (e: BudgetEngine, at: Date) => e.status(at)[0]!.spentPicos;

function engineWithSpend(c: CapConfig, amount: bigint, at = NOW): BudgetEngine {
  const e = new BudgetEngine([c], "UTC");
  e.recordSpent({ modelId: "m", amount, at, ...(c.callers ? { caller: c.callers[0]! } : {}), ...(c.tags ? { tags: c.tags } : {}) });
  return e;
}

describe("budget/engine checkpoint totals", () => {
  it("a fresh engine restores a cap's spend from the totals of one with the same cap", () => {
    const before = engineWithSpend(cap(), 3_000n);
    const totals = before.totals();
    assert.equal(totals.length, 1);
    const after = new BudgetEngine([cap()], "UTC");
    assert.deepEqual([...after.restoreTotals(totals, NOW)], ["daily"]);
    assert.equal(spentOf(after, NOW), 3_000n);
  });

  it("a cap that has no window yet has no total", () => {
    assert.deepEqual(new BudgetEngine([cap()], "UTC").totals(), []);
  });

  it("a total of an earlier window restores the cap at zero; one ahead of now (a clock set back) is not taken", () => {
    const yesterday = engineWithSpend(cap(), 3_000n, new Date(NOW.getTime() - DAY_MS)).totals();
    const e = new BudgetEngine([cap()], "UTC");
    assert.deepEqual([...e.restoreTotals(yesterday, NOW)], ["daily"], "nothing of yesterday counts today: restored, at 0");
    assert.equal(spentOf(e, NOW), 0n);
    const tomorrow = engineWithSpend(cap(), 3_000n, new Date(NOW.getTime() + DAY_MS)).totals();
    const back = new BudgetEngine([cap()], "UTC");
    assert.deepEqual([...back.restoreTotals(tomorrow, NOW)], [], "a window after now is replayed whole instead");
    assert.equal(spentOf(back, NOW), 0n);
  });

  it("a cap that already counts spend or holds a reservation is not overwritten by a total", () => {
    const totals = engineWithSpend(cap(), 3_000n).totals();
    const spent = engineWithSpend(cap(), 1_000n);
    assert.deepEqual([...spent.restoreTotals(totals, NOW)], []);
    assert.equal(spentOf(spent, NOW), 1_000n);
    const held = new BudgetEngine([cap()], "UTC");
    assert.equal(held.reserve({ callId: "c", modelId: "m", amount: 500n, now: NOW }).ok, true);
    assert.deepEqual([...held.restoreTotals(totals, NOW)], []);
    assert.equal(spentOf(held, NOW), 0n);
  });

  it("a total applies only to the same cap: a changed scope or time zone starts afresh; the order of callers or tags does not matter", () => {
    const scoped = cap({ callers: ["b", "a"], tags: { team: "t", project: "p" } });
    const totals = engineWithSpend(scoped, 2_000n).totals();
    const same = new BudgetEngine([cap({ callers: ["a", "b"], tags: { project: "p", team: "t" } })], "UTC");
    assert.deepEqual([...same.restoreTotals(totals, NOW)], ["daily"]);
    assert.equal(spentOf(same, NOW), 2_000n);
    for (const changed of [cap({ callers: ["a"], tags: { team: "t", project: "p" } }), cap({ callers: ["b", "a"], tags: { project: "q", team: "t" } }), cap({ callers: ["b", "a"], tags: { team: "t", project: "p" }, model: "*x*" })]) {
      assert.deepEqual([...new BudgetEngine([changed], "UTC").restoreTotals(totals, NOW)], [], JSON.stringify(changed));
    }
    assert.deepEqual([...new BudgetEngine([scoped], "Asia/Tokyo").restoreTotals(totals, NOW)], [], "another time zone: other windows");
    assert.equal(scopeKey(cap({ callers: ["b", "a"] })), scopeKey(cap({ callers: ["a", "b"] })));
    assert.notEqual(scopeKey(cap({ callers: ["a"] })), scopeKey(cap()));
    assert.notEqual(scopeKey(cap({ tags: { p: "1" } })), scopeKey(cap({ tags: { p: "2" } })));
  });
});

describe("budget/engine copy and windows", () => {
  it("after a live change of time zone, the totals and a copy are the new zone's: a start in the old zone takes none of them", () => {
    const e = engineWithSpend(cap(), 3_000n); // 10:00Z: in UTC and in Kiritimati (UTC+14) alike
    const oldZone = e.totals();
    e.setCaps([cap()], "Pacific/Kiritimati");
    e.recordSpent({ modelId: "m", amount: 3_000n, at: NOW }); // the recount of the journal
    assert.deepEqual([...new BudgetEngine([cap()], "Pacific/Kiritimati").restoreTotals(oldZone, NOW)], [], "no total of the old zone is taken");
    const restored = new BudgetEngine([cap()], "Pacific/Kiritimati");
    assert.deepEqual([...restored.restoreTotals(e.totals(), NOW)], ["daily"]);
    assert.deepEqual([...new BudgetEngine([cap()], "UTC").restoreTotals(e.totals(), NOW)], []);
    for (const twin of [restored, e.copy()]) assert.equal(twin.status(NOW)[0]!.windowStart.toISOString(), "2026-11-29T10:00:00.000Z");
  });

  it("a copy keeps the caps, windows and spend, without the reservations", () => {
    const e = engineWithSpend(cap(), 3_000n);
    assert.equal(e.reserve({ callId: "c", modelId: "m", amount: 500n, now: NOW }).ok, true);
    const twin = e.copy();
    const [s] = twin.status(NOW);
    assert.deepEqual([s!.spentPicos, s!.reservedPicos, s!.windowStart.toISOString()], [3_000n, 0n, "2026-11-29T00:00:00.000Z"]);
  });

  it("the next day starts a new window at zero", () => {
    const e = engineWithSpend(cap(), 3_000n);
    const next = new Date(NOW.getTime() + DAY_MS);
    const [s] = e.status(next);
    assert.deepEqual([s!.spentPicos, s!.windowStart.toISOString()], [0n, "2026-11-30T00:00:00.000Z"]);
  });

  it("a warn cap lets a reservation past its limit through and counts it; a block cap refuses it", () => {
    const over = 11_000_000_000_000n; // $11 of a $10 cap
    const warn = new BudgetEngine([cap({ action: "warn" })], "UTC");
    assert.equal(warn.reserve({ callId: "w", modelId: "m", amount: over, now: NOW }).ok, true);
    assert.equal(warn.status(NOW)[0]!.reservedPicos, over);
    assert.equal(new BudgetEngine([cap()], "UTC").reserve({ callId: "b", modelId: "m", amount: over, now: NOW }).ok, false);
  });

  it("a status names a cap's action unless block, and copies of its callers and tags", () => {
    const c = cap({ action: "clamp", model: "*claude*", callers: ["a"], tags: { project: "p" } });
    const fields = capScopeFields(c);
    assert.deepEqual(fields, { action: "clamp", model: "*claude*", callers: ["a"], tags: { project: "p" } });
    assert.notEqual(fields.callers, c.callers, "a copy, not the settings' array");
    assert.notEqual(fields.tags, c.tags);
    assert.deepEqual(capScopeFields(cap()), {});
  });
});
