// The service-tier note a user sees with a price: said when the tier has a source to cite, silent when the table says it changes nothing.
import assert from "node:assert/strict";
import { PriceBook, type PriceTable } from "../../../server/metering/prices";

const table = (standardSource: string): PriceTable => ({
  regionalPremiumBasisPoints: 11_000,
  regions: {},
  serviceTiers: { standard: { basisPoints: 10_000, source: standardSource }, priority: { basisPoints: 17_500, source: "prio-doc" } },
  models: [
    { id: "amazon.nova-y", patterns: ["amazon.nova-y*"], displayName: "Nova Y", provider: "amazon", inputPer1M: 0.8, outputPer1M: 3.2, maxOutputTokens: 10_000, source: "https://example.invalid/nova", checked: "2026-10-01" },
  ],
});

describe("PriceBook: service tier notes", () => {
  it("the standard tier adds no note when the table says it changes nothing, and cites its source otherwise", () => {
    const silent = new PriceBook({}, table("no change")).rates("amazon.nova-y-v1:0", { serviceTier: "standard" });
    assert.deepEqual([silent.input, silent.notes], [800_000n, []]);
    const cited = new PriceBook({}, table("std-doc")).rates("amazon.nova-y-v1:0", { serviceTier: "standard" });
    assert.deepEqual([cited.input, cited.notes], [800_000n, ["service tier standard: std-doc"]]);
  });
});
