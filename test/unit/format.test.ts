/** The dashboard's money formatting (webview/format.ts): what a user reads in the call log, the calculator, the caps and the charts. */
import assert from "node:assert/strict";
import { NO_AMOUNT, usd, usdPrecise } from "../../webview/format";

describe("dashboard money formatting", () => {
  it("shows sub-micro-dollar amounts (a one-token call) in plain decimals, never exponent notation", () => {
    assert.equal(usdPrecise(2.5e-7), "$0.00000025");
    assert.equal(usdPrecise(4.9e-7), "$0.00000049");
    assert.equal(usdPrecise(1.23e-9), "$0.00000000123");
    assert.equal(usd(1e-7), "$0.00000010");
    assert.equal(usd(2.5e-7), "$0.00000025");
    for (const v of [1e-12, 3.3e-8, 7e-7]) {
      assert.doesNotMatch(usd(v), /e/i, `usd(${v}) = ${usd(v)}`);
      assert.doesNotMatch(usdPrecise(v), /e/i, `usdPrecise(${v}) = ${usdPrecise(v)}`);
    }
    // Unchanged above a micro-dollar.
    assert.equal(usd(0.0042), "$0.0042");
    assert.equal(usdPrecise(0.00123456), "$0.00123");
    assert.equal(usdPrecise(1.5), "$1.50");
  });

  it("keeps the minus sign of a negative amount in the precise format, as usd() does", () => {
    assert.equal(usdPrecise(-0.5), "-$0.50");
    assert.equal(usdPrecise(-0.004), "-$0.004");
    assert.equal(usd(-0.5), "-$0.50");
  });

  it("shows n/a, not $NaN or $∞, for a figure that is no amount", () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      assert.equal(usd(v), NO_AMOUNT);
      assert.equal(usdPrecise(v), NO_AMOUNT);
    }
  });
});
