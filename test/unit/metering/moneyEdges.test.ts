// Edges of exact money: rounding of negative amounts (refunds) and a zero multiplier.
import assert from "node:assert/strict";
import { applyBasisPoints, ceilDiv } from "../../../server/metering/money";

describe("money: edges", () => {
  it("ceilDiv rounds a negative amount toward zero (its ceiling), never away from it", () => {
    assert.equal(ceilDiv(-10n, 3n), -3n);
    assert.equal(ceilDiv(-9n, 3n), -3n);
    assert.equal(ceilDiv(-1n, 1_000_000n), 0n);
  });

  it("a multiplier of 0 basis points is allowed and gives exactly zero", () => {
    assert.equal(applyBasisPoints(12_345n, 0), 0n);
  });
});
