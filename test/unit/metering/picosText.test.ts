/** The one rule for money written as text (journal, call records, spend files): whole pico-dollars in decimal digits. */
import assert from "node:assert/strict";
import { isPicosText, PICOS_TEXT, picosOfText } from "../../../server/metering/money";

describe("money: pico-dollars written as text", () => {
  it("reads whole numbers of pico-dollars exactly, leading zeros and figures past 2^64 included", () => {
    assert.equal(picosOfText("0"), 0n);
    assert.equal(picosOfText("12"), 12n);
    assert.equal(picosOfText("007"), 7n);
    assert.equal(picosOfText("123456789012345678901234567890123"), 123456789012345678901234567890123n, "33 digits: no bound unless asked");
    assert.ok(PICOS_TEXT.test("42"));
  });

  it("refuses anything else: sign, point, exponent, spaces, empty, a number, a list", () => {
    for (const v of ["", "-1", "+1", "12.5", "1e3", " 12", "12 ", "12\n", "1_000", "١٢", "0x1", 12, 12n, ["12"], null, undefined, {}]) {
      assert.equal(isPicosText(v), false, JSON.stringify(String(v)));
      assert.equal(picosOfText(v), undefined, JSON.stringify(String(v)));
    }
  });

  it("holds a figure to at most maxDigits digits when asked (a spend file's 30)", () => {
    const thirty = "9".repeat(30);
    assert.equal(picosOfText(thirty, 30), 10n ** 30n - 1n);
    assert.equal(isPicosText(`1${"0".repeat(30)}`, 30), false, "31 digits: $10^18 or more");
    assert.equal(picosOfText(`1${"0".repeat(30)}`, 30), undefined);
    assert.equal(isPicosText("1", 1), true);
    assert.equal(isPicosText("12", 1), false);
  });
});
