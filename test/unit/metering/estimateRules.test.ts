// Worst-case estimates on a price table of their own: which rate input is reserved at, which tier a body asks for, and the notes.
import assert from "node:assert/strict";
import { estimateFromParts, estimateRequest, worstCaseCost } from "../../../server/metering/estimate";
import { PriceBook, type PriceTable } from "../../../server/metering/prices";
import type { Rates } from "../../../server/metering/types";

const TABLE: PriceTable = {
  regionalPremiumBasisPoints: 11_000,
  regions: {}, // us-east-1 rates only
  serviceTiers: { priority: { basisPoints: 17_500, source: "prio-doc" } },
  models: [
    {
      id: "amazon.nova-y", patterns: ["amazon.nova-y*"], displayName: "Nova Y", provider: "amazon",
      inputPer1M: 0.8, outputPer1M: 3.2, maxOutputTokens: 10_000, latencyOptimized: { inputPer1M: 1, outputPer1M: 4 },
      source: "https://example.invalid/nova", checked: "2026-10-01",
    },
  ],
};
const NOVA = "amazon.nova-y-v1:0";
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const rateCard = (r: Partial<Rates>): Rates => ({
  requestedModelId: "m", baseModelId: "m", displayName: "m", known: true,
  input: 0n, output: 0n, cacheRead: 0n, cacheWrite5m: 0n, cacheWrite1h: 0n, maxOutputTokens: 1, source: "test", notes: [], ...r,
});

describe("estimate rules (own table)", () => {
  it("with prompt caching, input is reserved at the dearest of input, 5-minute and 1-hour write rates, whichever that is", () => {
    assert.equal(worstCaseCost(10, 2, rateCard({ input: 5n, cacheWrite5m: 7n, cacheWrite1h: 3n, output: 100n }), true), 270n); // 10 × 7 + 2 × 100
    assert.equal(worstCaseCost(10, 2, rateCard({ input: 5n, cacheWrite5m: 4n, cacheWrite1h: 3n, output: 100n }), true), 250n); // 10 × 5 + 2 × 100
    assert.equal(worstCaseCost(10, 2, rateCard({ input: 5n, cacheWrite5m: 6n, cacheWrite1h: 9n, output: 100n }), true), 290n);
    assert.equal(worstCaseCost(10, 2, rateCard({ input: 5n, cacheWrite5m: 6n, cacheWrite1h: 9n, output: 100n }), false), 250n);
  });

  it("keeps the caller's notes first, notes caching, and an output limit equal to the model's maximum is not 'clamped'", () => {
    const e = estimateFromParts({ modelId: NOVA, inputTokens: 1_000, maxOutputTokens: 10_000, usesPromptCache: true, notes: ["from the lens"] }, new PriceBook({}, TABLE));
    assert.deepEqual(e.notes, ["from the lens", "prompt caching requested: input reserved at the cache-write rate"]);
    assert.equal(e.worstCasePicos, 1_000n * 800_000n + 10_000n * 3_200_000n);
    assert.deepEqual([e.maxOutputTokens, e.outputFromRequest, e.usesPromptCache], [10_000, true, true]);
    const plain = estimateFromParts({ modelId: NOVA, inputTokens: 1_000, maxOutputTokens: 50 }, new PriceBook({}, TABLE));
    assert.deepEqual(plain.notes, []);
    assert.equal(plain.worstCasePicos, 1_000n * 800_000n + 50n * 3_200_000n);
  });

  it("a tier the gateway was asked for applies to any operation; a native body's own serviceTier field does not", () => {
    const book = new PriceBook({}, TABLE);
    const body = enc({ messages: [{ role: "user", content: [{ text: "Hello" }] }], inferenceConfig: { maxTokens: 100 }, serviceTier: "priority" });
    const plain = estimateRequest("InvokeModel", NOVA, body, book);
    assert.equal(plain.worstCasePicos, BigInt(plain.inputTokens) * 800_000n + 100n * 3_200_000n);
    const asked = estimateRequest("InvokeModel", NOVA, body, book, { serviceTier: "priority" });
    assert.equal(asked.worstCasePicos, BigInt(asked.inputTokens) * 1_400_000n + 100n * 5_600_000n);
  });

  it("Converse and ConverseStream bodies ask for priority (object or string form) and latency-optimized themselves", () => {
    const book = new PriceBook({}, TABLE);
    const messages = [{ role: "user", content: [{ text: "Hello" }] }];
    for (const op of ["Converse", "ConverseStream"] as const) {
      const prio = estimateRequest(op, NOVA, enc({ messages, inferenceConfig: { maxTokens: 100 }, serviceTier: { type: "priority" } }), book);
      assert.equal(prio.worstCasePicos, BigInt(prio.inputTokens) * 1_400_000n + 100n * 5_600_000n, op);
      const text = estimateRequest(op, NOVA, enc({ messages, inferenceConfig: { maxTokens: 100 }, serviceTier: "priority" }), book);
      assert.equal(text.worstCasePicos, BigInt(text.inputTokens) * 1_400_000n + 100n * 5_600_000n, op);
      const fast = estimateRequest(op, NOVA, enc({ messages, inferenceConfig: { maxTokens: 100 }, performanceConfig: { latency: "optimized" } }), book);
      assert.equal(fast.worstCasePicos, BigInt(fast.inputTokens) * 1_000_000n + 100n * 4_000_000n, op);
    }
  });
});

describe("estimate rules: the tier asked for, reserved as settlement charges it", () => {
  // Cache writes at 10× input: a tier's choice must not change with the cache rate's size.
  const TIERED: PriceTable = {
    ...TABLE,
    serviceTiers: {
      standard: { basisPoints: 10_000, source: "no change" },
      flex: { basisPoints: 5_000, source: "flex-doc" },
      priority: { basisPoints: 17_500, source: "prio-doc" },
    },
    models: [{ ...TABLE.models[0]!, cacheWrite5mPer1M: 8 }],
  };
  const book = new PriceBook({}, TIERED);
  const worst = (tier: { serviceTier?: string; latency?: string } | undefined, usesPromptCache = false) =>
    estimateFromParts({ modelId: NOVA, inputTokens: 1_000, maxOutputTokens: 0, usesPromptCache, ...(tier ? { tier } : {}) }, book).worstCasePicos;

  it("a tier is read in any case: Priority and PRIORITY are priority", () => {
    assert.equal(worst({ serviceTier: "Priority" }), 1_000n * 1_400_000n);
    assert.equal(worst({ serviceTier: "PRIORITY" }), 1_000n * 1_400_000n);
  });

  it("a tier the table does not know is reserved at the dearest listed tier", () => {
    assert.equal(worst({ serviceTier: "turbo" }), 1_000n * 1_400_000n);
  });

  it("a cheaper tier (flex) is reserved at standard: a request may fall back to it", () => {
    assert.equal(worst({ serviceTier: "flex" }), 1_000n * 800_000n);
    assert.equal(worst({ serviceTier: "standard" }), 1_000n * 800_000n);
    assert.equal(worst(undefined), 1_000n * 800_000n);
  });

  it("with prompt caching, each tier is compared at its cache-write rate", () => {
    assert.equal(worst({ serviceTier: "priority" }, true), 1_000n * 14_000_000n); // 8 × 1.75 per 1M
    assert.equal(worst({ serviceTier: "flex" }, true), 1_000n * 8_000_000n);
  });

  it("latency-optimized is read in any case, and a cheaper tier beside it still reserves the optimized rate", () => {
    assert.equal(worst({ latency: "Optimized" }), 1_000n * 1_000_000n);
    assert.equal(worst({ serviceTier: "flex", latency: "OPTIMIZED" }), 1_000n * 1_000_000n);
    assert.equal(worst({ serviceTier: "priority", latency: "optimized" }), 1_000n * 1_750_000n);
    assert.equal(worst({ latency: "standard" }), 1_000n * 800_000n);
  });

  it("says the model maximum it reserved when the request sets no output limit, and the tier's note when it applies", () => {
    const e = estimateFromParts({ modelId: NOVA, inputTokens: 10, tier: { serviceTier: "Priority" } }, book);
    assert.equal(e.maxOutputTokens, 10_000);
    assert.deepEqual(e.notes, ["no output limit in the request: reserved the model maximum of 10000 tokens", "service tier Priority: ×1.75 (prio-doc)"]);
    assert.deepEqual(estimateFromParts({ modelId: NOVA, inputTokens: 10, tier: { serviceTier: "flex" } }, book).notes, ["no output limit in the request: reserved the model maximum of 10000 tokens"]);
  });
});
