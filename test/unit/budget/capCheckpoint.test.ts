/** The cap totals read back from a ledger checkpoint: money as the journal writes it, or none taken (the caps then count the journal whole). */
import assert from "node:assert/strict";
import { parseCapTotals } from "../../../server/budget/capCheckpoint";

const total = (spent: unknown) => [{ id: "daily", key: "daily|day|personal|UTC", windowStart: Date.parse("2026-11-22T00:00:00Z"), spent }];

describe("cap checkpoint totals", () => {
  it("takes a total written as whole pico-dollars, any number of digits, leading zeros too", () => {
    assert.deepEqual(parseCapTotals(total("4006")), total("4006"));
    assert.deepEqual(parseCapTotals(total("0")), total("0"));
    assert.deepEqual(parseCapTotals(total("0070")), total("0070"));
    const long = "9".repeat(40);
    assert.deepEqual(parseCapTotals(total(long)), total(long));
  });

  it("takes no total from a checkpoint whose figure is not money (a sign, a point, an exponent, spaces, a number, empty): every cap counts the journal whole", () => {
    for (const spent of ["-1", "+1", "12.5", "1e3", " 12", "12 ", "", "0x10", 12, null]) {
      assert.deepEqual(parseCapTotals(total(spent)), [], JSON.stringify(spent));
    }
    assert.deepEqual(parseCapTotals(undefined), []);
  });
});
