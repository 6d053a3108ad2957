import assert from "node:assert/strict";
import {
  PICOS_PER_USD,
  applyBasisPoints,
  ceilDiv,
  formatUsd,
  perMillionToPicosPerToken,
  picosToDecimalString,
  picosToUsd,
  usdToPicos,
} from "../../../server/metering/money";

describe("money: usdToPicos", () => {
  it("converts decimal amounts exactly, where binary floats drift", () => {
    assert.equal(usdToPicos(0.1) + usdToPicos(0.2), usdToPicos(0.3));
    assert.equal(usdToPicos(0.1 + 0.2), 300_000_000_000n); // 0.30000000000000004 rounds to the pico
    assert.equal(usdToPicos(0.3), 300_000_000_000n);
    assert.equal(usdToPicos("0.1"), 100_000_000_000n);
    assert.equal(usdToPicos(1.1) * 3n, usdToPicos("3.3"));
    // Ten cents ten times is exactly one dollar.
    let sum = 0n;
    for (let i = 0; i < 10; i++) sum += usdToPicos(0.1);
    assert.equal(sum, PICOS_PER_USD);
  });

  it("reads numbers and decimal strings alike, down to one pico-dollar", () => {
    assert.equal(usdToPicos(0), 0n);
    assert.equal(usdToPicos("0"), 0n);
    assert.equal(usdToPicos(5), 5_000_000_000_000n);
    assert.equal(usdToPicos("3.42"), 3_420_000_000_000n);
    assert.equal(usdToPicos(" 0.035 "), 35_000_000_000n);
    assert.equal(usdToPicos("0.000000000001"), 1n);
    assert.equal(usdToPicos(0.000000000001), 1n);
    assert.equal(usdToPicos("1.500000000000000"), 1_500_000_000_000n); // zeros past the pico are fine
    assert.equal(usdToPicos("123456789.123456789012"), 123_456_789_123_456_789_012n);
    assert.equal(usdToPicos(1_000_000_000), 1_000_000_000n * PICOS_PER_USD);
  });

  it("keeps the sign of negative amounts", () => {
    assert.equal(usdToPicos("-1.5"), -1_500_000_000_000n);
    assert.equal(usdToPicos(-0.1), -100_000_000_000n);
  });

  it("refuses amounts finer than a pico-dollar given as text", () => {
    assert.throws(() => usdToPicos("0.0000000000001"), /finer than one pico-dollar/);
    assert.throws(() => usdToPicos("1.1234567890125"), /finer than one pico-dollar/);
  });

  it("refuses what is not a decimal dollar amount", () => {
    for (const bad of ["", "abc", "$1.00", "1,000", "1e3", ".5", "5.", "+1", "1.2.3", "--1"]) {
      assert.throws(() => usdToPicos(bad), /not a decimal dollar amount/, JSON.stringify(bad));
    }
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.throws(() => usdToPicos(bad), /not a finite dollar amount/, String(bad));
    }
  });
});

describe("money: perMillionToPicosPerToken", () => {
  it("maps AWS per-million prices to whole pico-dollars per token", () => {
    assert.equal(perMillionToPicosPerToken(0.035), 35_000n); // Nova Micro input
    assert.equal(perMillionToPicosPerToken("3"), 3_000_000n); // Sonnet input
    assert.equal(perMillionToPicosPerToken(15), 15_000_000n);
    assert.equal(perMillionToPicosPerToken("22.50"), 22_500_000n);
    assert.equal(perMillionToPicosPerToken("0.30"), 300_000n);
    assert.equal(perMillionToPicosPerToken(0), 0n);
    // 1M tokens at the per-token rate cost exactly the list price.
    assert.equal(perMillionToPicosPerToken(0.035) * 1_000_000n, usdToPicos("0.035"));
  });

  it("rounds a price finer than a pico per token up, so caps stay safe", () => {
    assert.equal(perMillionToPicosPerToken("0.0000005"), 1n);
    assert.equal(perMillionToPicosPerToken("0.0000015"), 2n);
  });
});

describe("money: helpers", () => {
  it("ceilDiv rounds up for positive amounts and refuses non-positive divisors", () => {
    assert.equal(ceilDiv(10n, 3n), 4n);
    assert.equal(ceilDiv(9n, 3n), 3n);
    assert.equal(ceilDiv(0n, 3n), 0n);
    assert.throws(() => ceilDiv(1n, 0n), /non-positive divisor/);
  });

  it("applyBasisPoints adds 10% exactly and rounds up", () => {
    assert.equal(applyBasisPoints(usdToPicos("0.0105"), 11_000), usdToPicos("0.01155"));
    assert.equal(applyBasisPoints(1n, 11_000), 2n);
    assert.throws(() => applyBasisPoints(1n, 1.5), /bad basis points/);
    assert.throws(() => applyBasisPoints(1n, -1), /bad basis points/);
  });

  it("picosToUsd gives a number for display", () => {
    assert.equal(picosToUsd(usdToPicos("3.42")), 3.42);
    assert.equal(picosToUsd(-usdToPicos("0.5")), -0.5);
  });
});

describe("money: picosToDecimalString", () => {
  it("writes the exact decimal with trailing zeros trimmed", () => {
    assert.equal(picosToDecimalString(42_000_000n), "0.000042");
    assert.equal(picosToDecimalString(1n), "0.000000000001");
    assert.equal(picosToDecimalString(0n), "0");
    assert.equal(picosToDecimalString(123n * PICOS_PER_USD), "123");
    assert.equal(picosToDecimalString(usdToPicos("1.50")), "1.5");
    assert.equal(picosToDecimalString(-1_500_000_000_000n), "-1.5");
    assert.equal(picosToDecimalString(-1n), "-0.000000000001");
  });

  it("round-trips through usdToPicos", () => {
    for (const s of ["0.01155", "1234.000000000001", "0.3", "-7.25"]) assert.equal(picosToDecimalString(usdToPicos(s)), s);
  });
});

describe("money: formatUsd", () => {
  it("shows cents for amounts of a cent or more", () => {
    assert.equal(formatUsd(usdToPicos("3.42")), "$3.42");
    assert.equal(formatUsd(usdToPicos("3.4")), "$3.40");
    assert.equal(formatUsd(usdToPicos("1234.5")), "$1234.50");
    assert.equal(formatUsd(usdToPicos("0.01")), "$0.01");
    assert.equal(formatUsd(0n), "$0.00");
  });

  it("keeps amounts under a cent non-zero with two significant digits", () => {
    assert.equal(formatUsd(usdToPicos("0.0042")), "$0.0042");
    assert.equal(formatUsd(usdToPicos("0.004")), "$0.004");
    assert.equal(formatUsd(usdToPicos("0.0001234")), "$0.00012");
    assert.equal(formatUsd(usdToPicos("0.000035")), "$0.000035");
  });

  it("drops every trailing zero when rounding carries a sub-cent amount up to a round figure", () => {
    // $0.00999 at two significant digits rounds to 0.0100: shown as "$0.01", not "$0.010".
    assert.equal(formatUsd(usdToPicos("0.00999")), "$0.01");
    assert.equal(formatUsd(usdToPicos("0.0000999")), "$0.0001");
  });

  it("puts the minus sign before the dollar sign", () => {
    assert.equal(formatUsd(-usdToPicos("1.5")), "-$1.50");
    assert.equal(formatUsd(-usdToPicos("0.0042")), "-$0.0042");
  });

  it("never shows exponent notation for tiny amounts", () => {
    assert.equal(formatUsd(35_000n), "$0.000000035");
    assert.equal(formatUsd(usdToPicos("0.0000001")), "$0.0000001");
  });
});
