/** A small price table for unit tests: one Anthropic row in us-east-1 ($3 / $15 per 1M) and a dearer eu-* row ($4 / $20). */
import type { PriceTable } from "../../server/metering/prices";

export const CLAUDE_X_TABLE: PriceTable = {
  regionalPremiumBasisPoints: 11_000,
  regions: {
    "eu-*": { "anthropic.claude-x": { inputPer1M: 4, outputPer1M: 20, source: "https://example.invalid/claude-eu", checked: "2026-11-02" } },
  },
  serviceTiers: { standard: { basisPoints: 10_000, source: "std-doc" } },
  models: [
    {
      id: "anthropic.claude-x", patterns: ["anthropic.claude-x*"], displayName: "Claude X", provider: "anthropic",
      inputPer1M: 3, outputPer1M: 15, maxOutputTokens: 64_000,
      source: "https://example.invalid/claude", checked: "2026-11-01",
    },
  ],
};
