// PriceBook's rules on a small table of its own (so built-in price updates cannot move the figures): every rate, note and source a user sees.
import assert from "node:assert/strict";
import { costOf, PriceBook, type PriceTable } from "../../../server/metering/prices";
import type { Rates } from "../../../server/metering/types";

// Per-token rates are $/1M × 1e6 pico-dollars: $3/M = 3,000,000 picos per token.
const TABLE: PriceTable = {
  regionalPremiumBasisPoints: 11_000,
  regions: {}, // us-east-1 rates only
  serviceTiers: {
    standard: { basisPoints: 10_000, source: "std-doc" },
    priority: { basisPoints: 17_500, source: "prio-doc" },
    flex: { basisPoints: 5_000, source: "flex-doc" },
  },
  models: [
    {
      id: "anthropic.claude-x", patterns: ["anthropic.claude-x*"], displayName: "Claude X", provider: "anthropic",
      inputPer1M: 3, outputPer1M: 15, maxOutputTokens: 64_000, regionalPremium: true,
      longContext: { thresholdTokens: 200_000, inputPer1M: 6, outputPer1M: 22.5 },
      source: "https://example.invalid/claude", checked: "2026-11-01",
    },
    {
      id: "amazon.nova-y", patterns: ["amazon.nova-y*"], displayName: "Nova Y", provider: "amazon",
      inputPer1M: 0.8, outputPer1M: 3.2, cacheReadPer1M: 0.2, maxOutputTokens: 10_000,
      latencyOptimized: { inputPer1M: 1, outputPer1M: 4 },
      source: "https://example.invalid/nova", checked: "2026-10-01",
    },
  ],
};
const CLAUDE = "anthropic.claude-x-v1:0";
const NOVA = "amazon.nova-y-v1:0";

/** The figures a user sees, without fields other parts may add. */
function seen(r: Rates) {
  const { requestedModelId, baseModelId, displayName, known, input, output, cacheRead, cacheWrite5m, cacheWrite1h, maxOutputTokens, source, notes } = r;
  return { requestedModelId, baseModelId, displayName, known, input, output, cacheRead, cacheWrite5m, cacheWrite1h, maxOutputTokens, source, notes };
}
const OVERRIDE_NOTE = "user price override: the standard tier's short-context rate; the adjustments noted apply on top";
const rates = (r: Rates) => [r.input, r.output, r.cacheRead, r.cacheWrite5m, r.cacheWrite1h];

describe("PriceBook rules (own table)", () => {
  it("an in-region call of a premium row pays +10% on every rate, Anthropic's cache rule included", () => {
    assert.deepEqual(seen(new PriceBook({}, TABLE).rates(CLAUDE)), {
      requestedModelId: CLAUDE,
      baseModelId: CLAUDE,
      displayName: "Claude X",
      known: true,
      input: 3_300_000n,
      output: 16_500_000n,
      cacheRead: 330_000n, // 0.1 × input
      cacheWrite5m: 4_125_000n, // 1.25 × input
      cacheWrite1h: 6_600_000n, // 2 × input
      maxOutputTokens: 64_000,
      source: "built-in: https://example.invalid/claude, read 2026-11-01",
      notes: ["in-region call: +10%"],
    });
  });

  it("a geographic profile pays the premium and names its prefix; a global one pays the base price", () => {
    const us = new PriceBook({}, TABLE).rates(`us.${CLAUDE}`);
    assert.equal(us.baseModelId, CLAUDE);
    assert.equal(us.requestedModelId, `us.${CLAUDE}`);
    assert.deepEqual(rates(us), [3_300_000n, 16_500_000n, 330_000n, 4_125_000n, 6_600_000n]);
    assert.deepEqual(us.notes, ["geographic profile us.: +10%"]);
    const global = new PriceBook({}, TABLE).rates(`global.${CLAUDE}`);
    assert.deepEqual(rates(global), [3_000_000n, 15_000_000n, 300_000n, 3_750_000n, 6_000_000n]);
    assert.deepEqual(global.notes, ["global profile: base price"]);
  });

  it("long-context rates apply above the threshold only, and the price book does not mix up prompt sizes", () => {
    const book = new PriceBook({}, TABLE);
    assert.deepEqual(rates(book.rates(`global.${CLAUDE}`)), [3_000_000n, 15_000_000n, 300_000n, 3_750_000n, 6_000_000n]);
    const long = book.rates(`global.${CLAUDE}`, { inputTokens: 200_001 });
    assert.deepEqual(rates(long), [6_000_000n, 22_500_000n, 600_000n, 7_500_000n, 12_000_000n]);
    assert.deepEqual(long.notes, ["long context: 200001 input tokens > 200000", "global profile: base price"]);
    assert.deepEqual(rates(book.rates(`global.${CLAUDE}`, { inputTokens: 200_000 })), [3_000_000n, 15_000_000n, 300_000n, 3_750_000n, 6_000_000n]);
    assert.deepEqual(rates(book.rates(`global.${CLAUDE}`, { inputTokens: 250_000 })), [6_000_000n, 22_500_000n, 600_000n, 7_500_000n, 12_000_000n]);
    assert.deepEqual(rates(book.rates(`global.${CLAUDE}`, { inputTokens: 1_000 })), [3_000_000n, 15_000_000n, 300_000n, 3_750_000n, 6_000_000n]);
  });

  it("latency-optimized replaces input and output only, and is not confused with the standard rate", () => {
    const book = new PriceBook({}, TABLE);
    const std = book.rates(NOVA);
    assert.deepEqual(rates(std), [800_000n, 3_200_000n, 200_000n, 800_000n, 800_000n]); // other providers: cache writes at the input rate
    assert.deepEqual(std.notes, []);
    const fast = book.rates(NOVA, { latency: "optimized" });
    assert.deepEqual(rates(fast), [1_000_000n, 4_000_000n, 200_000n, 800_000n, 800_000n]);
    assert.deepEqual(fast.notes, ["latency-optimized rate"]);
    const none = book.rates(`global.${CLAUDE}`, { latency: "optimized" });
    assert.deepEqual(rates(none), [3_000_000n, 15_000_000n, 300_000n, 3_750_000n, 6_000_000n]);
    assert.deepEqual(none.notes, ["latency-optimized was reported but the row lists no such rate: standard rate used", "global profile: base price"]);
  });

  it("service tiers scale every rate of a known model (discounts too) and say so; standard changes no rate; an unlisted tier pays the dearest listed one", () => {
    const book = new PriceBook({}, TABLE);
    const prio = book.rates(NOVA, { serviceTier: "PRIORITY" });
    assert.deepEqual(rates(prio), [1_400_000n, 5_600_000n, 350_000n, 1_400_000n, 1_400_000n]);
    assert.deepEqual(prio.notes, ["service tier PRIORITY: ×1.75 (prio-doc)"]);
    const flex = book.rates(NOVA, { serviceTier: "flex" });
    assert.deepEqual(rates(flex), [400_000n, 1_600_000n, 100_000n, 400_000n, 400_000n]);
    assert.deepEqual(flex.notes, ["service tier flex: ×0.5 (flex-doc)"]);
    const std = book.rates(NOVA, { serviceTier: "standard" });
    assert.deepEqual([rates(std), std.notes], [[800_000n, 3_200_000n, 200_000n, 800_000n, 800_000n], ["service tier standard: std-doc"]]);
    // Not in this table: fail closed at the dearest listed tier, priority's ×1.75.
    const odd = book.rates(NOVA, { serviceTier: "reserved" });
    assert.deepEqual([rates(odd), odd.notes], [[1_400_000n, 5_600_000n, 350_000n, 1_400_000n, 1_400_000n], ['service tier "reserved" has no listed rate: priced at the dearest listed tier (×1.75)']]);
  });

  it("an unknown model pays the dearest rate of each kind any row can reach (long context, latency-optimized, premium)", () => {
    const r = new PriceBook({}, TABLE).rates("acme.mystery-1");
    assert.deepEqual(seen(r), {
      requestedModelId: "acme.mystery-1",
      baseModelId: "acme.mystery-1",
      displayName: "acme.mystery-1",
      known: false,
      input: 6_600_000n, // Claude's long-context input + 10%
      output: 24_750_000n,
      cacheRead: 1_000_000n, // Nova's latency-optimized input, which its cache rates follow
      cacheWrite5m: 8_250_000n,
      cacheWrite1h: 13_200_000n,
      maxOutputTokens: 64_000,
      source: "built-in: maximum over all known rates",
      notes: ["unknown model (no price row matches it): priced at the most expensive known rate for every token kind"],
    });
  });

  it("an unknown model takes a tier's surcharge but never its discount; an opaque ARN says what it is", () => {
    const book = new PriceBook({}, TABLE);
    const prio = book.rates("acme.mystery-1", { serviceTier: "priority" });
    assert.deepEqual(rates(prio), [11_550_000n, 43_312_500n, 1_750_000n, 14_437_500n, 23_100_000n]);
    assert.deepEqual(prio.notes, [
      "unknown model (no price row matches it): priced at the most expensive known rate for every token kind",
      "service tier priority: ×1.75 (prio-doc)",
    ]);
    const flex = book.rates("acme.mystery-1", { serviceTier: "flex" });
    assert.deepEqual([rates(flex), flex.notes], [[6_600_000n, 24_750_000n, 1_000_000n, 8_250_000n, 13_200_000n], ["unknown model (no price row matches it): priced at the most expensive known rate for every token kind"]]);
    const arn = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123";
    const pt = book.rates(arn);
    assert.equal(pt.known, false);
    assert.equal(pt.baseModelId, arn);
    assert.deepEqual(pt.notes, [
      "unknown model (the provisioned-model ARN does not name its base model): priced at the most expensive known rate for every token kind",
      "provisioned throughput is billed hourly, not per token: declare its rate in `pricing` (per-token 0 and `hourlyUsd`) to price it as billed",
    ]);
  });

  it("a user's override is the row's global standard short-context rate, with the model's own maximum output, or the largest known one", () => {
    const book = new PriceBook({ "anthropic.claude-x*": { inputPer1M: 1, outputPer1M: 2 }, "acme.*": { inputPer1M: 0.5, outputPer1M: 1, cacheReadPer1M: 0.05 } }, TABLE);
    const own = book.rates(`global.${CLAUDE}`);
    assert.deepEqual(seen(own), {
      requestedModelId: `global.${CLAUDE}`,
      baseModelId: CLAUDE,
      displayName: "Claude X",
      known: true,
      input: 1_000_000n,
      output: 2_000_000n,
      cacheRead: 100_000n, // still Anthropic's rule: the row says who the provider is
      cacheWrite5m: 1_250_000n,
      cacheWrite1h: 2_000_000n,
      maxOutputTokens: 64_000,
      source: "override: anthropic.claude-x*",
      notes: [OVERRIDE_NOTE, "global profile: base price"],
    });
    const acme = book.rates("acme.widget-2");
    assert.deepEqual([acme.displayName, acme.baseModelId, acme.maxOutputTokens, acme.source], ["acme.widget-2", "acme.widget-2", 64_000, "override: acme.*"]);
    assert.deepEqual(rates(acme), [500_000n, 1_000_000n, 50_000n, 500_000n, 500_000n]);
    assert.deepEqual(acme.notes, [OVERRIDE_NOTE, "no maxOutputTokens known: assumed 64000"]);
    // An override that matches nothing leaves other models at their built-in price.
    assert.deepEqual(rates(book.rates(NOVA)), [800_000n, 3_200_000n, 200_000n, 800_000n, 800_000n]);
    assert.equal(book.rates(NOVA).source, "built-in: https://example.invalid/nova, read 2026-10-01");
  });

  it("an override of an Anthropic model the table does not list still follows Anthropic's cache rule; an opaque ARN keyed exactly is priced by its row", () => {
    const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/p1";
    const book = new PriceBook({ "anthropic.claude-new*": { inputPer1M: 2, outputPer1M: 10, maxOutputTokens: 8_000 }, [arn]: { inputPer1M: 4, outputPer1M: 8 }, "amazon.*": { inputPer1M: 9, outputPer1M: 9 } }, TABLE);
    const r = book.rates("anthropic.claude-new-v1:0");
    assert.deepEqual(rates(r), [2_000_000n, 10_000_000n, 200_000n, 2_500_000n, 4_000_000n]);
    assert.deepEqual([r.maxOutputTokens, r.notes.length], [8_000, 1]);
    const p = book.rates(arn);
    assert.deepEqual([p.displayName, p.baseModelId, p.source, p.maxOutputTokens], [arn, arn, `override: ${arn}`, 64_000]);
    assert.deepEqual(rates(p), [4_000_000n, 8_000_000n, 4_000_000n, 4_000_000n, 4_000_000n]);
    // A glob that does not match the ARN leaves it unknown.
    assert.equal(book.rates("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/p2").known, false);
  });

  it("a team row equal to the built-in price changes nothing; one that only raises the output limit says so", () => {
    const same = new PriceBook({}, TABLE, { "amazon.nova-y*": { inputPer1M: 0.8, outputPer1M: 3.2, cacheReadPer1M: 0.2 } }).rates(NOVA);
    assert.deepEqual([same.source, same.notes, same.maxOutputTokens], ["built-in: https://example.invalid/nova, read 2026-10-01", [], 10_000]);
    const longer = new PriceBook({}, TABLE, { "amazon.nova-y*": { inputPer1M: 0.1, outputPer1M: 0.1, maxOutputTokens: 20_000 } }).rates(NOVA);
    assert.deepEqual(rates(longer), [800_000n, 3_200_000n, 200_000n, 800_000n, 800_000n]);
    assert.equal(longer.maxOutputTokens, 20_000);
    assert.deepEqual(longer.notes, ["team price amazon.nova-y* raised maxOutputTokens (team prices can raise a rate, never lower it)"]);
    assert.equal(longer.source, "built-in: https://example.invalid/nova, read 2026-10-01; raised by team price: amazon.nova-y*");
    const dearer = new PriceBook({}, TABLE, { "amazon.nova-y*": { inputPer1M: 2, outputPer1M: 1 } }).rates(NOVA);
    assert.deepEqual(rates(dearer), [2_000_000n, 3_200_000n, 2_000_000n, 2_000_000n, 2_000_000n]);
    assert.deepEqual(dearer.notes, ["team price amazon.nova-y* raised input, cacheRead, cacheWrite5m, cacheWrite1h (team prices can raise a rate, never lower it)"]);
    const lower = new PriceBook({}, TABLE, { "amazon.nova-y*": { inputPer1M: 2, outputPer1M: 1, maxOutputTokens: 5_000 } }).rates(NOVA);
    assert.equal(lower.maxOutputTokens, 10_000);
  });
});

describe("PriceBook rules: a user's row gets what the bill adds to the row it replaces", () => {
  const book = new PriceBook({ "anthropic.claude-x*": { inputPer1M: 1, outputPer1M: 2 }, "amazon.nova-y*": { inputPer1M: 0.4, outputPer1M: 1.6 }, "acme.*": { inputPer1M: 0.5, outputPer1M: 1 } }, TABLE);

  it("a geographic profile or an in-region call pays +10% on it, as on the built-in row", () => {
    const us = book.rates(`us.${CLAUDE}`);
    assert.deepEqual(rates(us), [1_100_000n, 2_200_000n, 110_000n, 1_375_000n, 2_200_000n]);
    assert.deepEqual(us.notes, [OVERRIDE_NOTE, "geographic profile us.: +10%"]);
    assert.deepEqual(rates(book.rates(CLAUDE)), [1_100_000n, 2_200_000n, 110_000n, 1_375_000n, 2_200_000n]);
  });

  it("the priority tier costs x1.75 of it and flex x0.5, so a priority call cannot pass a cap at the standard rate", () => {
    const prio = book.rates(`global.${CLAUDE}`, { serviceTier: "priority" });
    assert.deepEqual(rates(prio), [1_750_000n, 3_500_000n, 175_000n, 2_187_500n, 3_500_000n]);
    assert.deepEqual(prio.notes, [OVERRIDE_NOTE, "global profile: base price", "service tier priority: ×1.75 (prio-doc)"]);
    assert.deepEqual(rates(book.rates(`global.${CLAUDE}`, { serviceTier: "flex" })), [500_000n, 1_000_000n, 50_000n, 625_000n, 1_000_000n]);
  });

  it("past the row's long-context threshold it moves by the row's own surcharge (input x2, output x1.5), on top of +10% and the tier", () => {
    const long = book.rates(`global.${CLAUDE}`, { inputTokens: 250_000 });
    assert.deepEqual(rates(long), [2_000_000n, 3_000_000n, 200_000n, 2_500_000n, 4_000_000n]);
    assert.deepEqual(rates(book.rates(`global.${CLAUDE}`, { inputTokens: 200_000 })), [1_000_000n, 2_000_000n, 100_000n, 1_250_000n, 2_000_000n]);
    const all = book.rates(CLAUDE, { inputTokens: 250_000, serviceTier: "priority" });
    assert.deepEqual(rates(all), [3_850_000n, 5_775_000n, 385_000n, 4_812_500n, 7_700_000n]);
    assert.deepEqual(all.notes, [OVERRIDE_NOTE, "long context: 250000 input tokens > 200000", "in-region call: +10%", "service tier priority: ×1.75 (prio-doc)"]);
    // A 1M-token prompt on the priority tier: what the user's row charges for it.
    assert.equal(costOf({ inputTokens: 1_000_000, outputTokens: 0, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 }, all), 3_850_000_000_000n);
  });

  it("latency-optimized and a region's own figures move it by the table's ratio, rounded up", () => {
    const fast = book.rates(NOVA, { latency: "optimized" });
    assert.deepEqual(rates(fast), [500_000n, 2_000_000n, 400_000n, 400_000n, 400_000n]); // input $1/$0.8, output $4/$3.2; cache kinds unchanged
    assert.deepEqual(fast.notes, [OVERRIDE_NOTE, "latency-optimized rate"]);
    const tiny = new PriceBook({ "amazon.nova-y*": { inputPer1M: 0.000001, outputPer1M: 1.6 } }, TABLE).rates(NOVA, { latency: "optimized" });
    assert.equal(tiny.input, 2n, "1 pico × 1.25 is charged 2, never 1");
    const eu: PriceTable = { ...TABLE, regions: { "eu-*": { "amazon.nova-y": { inputPer1M: 1.2, outputPer1M: 4.8, cacheReadPer1M: 0.3, source: "eu-doc", checked: "2026-10-02" } } } };
    const inEu = new PriceBook({ "amazon.nova-y*": { inputPer1M: 0.4, outputPer1M: 1.6 } }, eu).rates(NOVA, { region: "eu-west-1" });
    assert.deepEqual(rates(inEu), [600_000n, 2_400_000n, 600_000n, 600_000n, 600_000n]);
    assert.deepEqual([inEu.notes, inEu.source], [[OVERRIDE_NOTE, "eu-west-1 rate"], "override: amazon.nova-y*"]);
  });

  it("where the row's own figure is free, the dearer of the user's and the table's adjusted figure", () => {
    const free: PriceTable = { ...TABLE, models: [{ ...TABLE.models[1]!, outputPer1M: 0 }] };
    const low = new PriceBook({ "amazon.nova-y*": { inputPer1M: 0.8, outputPer1M: 1 } }, free).rates(NOVA, { latency: "optimized" });
    assert.equal(low.output, 4_000_000n);
    const high = new PriceBook({ "amazon.nova-y*": { inputPer1M: 0.8, outputPer1M: 5 } }, free).rates(NOVA, { latency: "optimized" });
    assert.equal(high.output, 5_000_000n);
  });

  it("a model the table lacks takes a tier's surcharge but no discount it would have to guess", () => {
    const prio = book.rates("acme.widget-2", { serviceTier: "priority" });
    assert.deepEqual(rates(prio), [875_000n, 1_750_000n, 875_000n, 875_000n, 875_000n]);
    assert.deepEqual(prio.notes, [OVERRIDE_NOTE, "service tier priority: ×1.75 (prio-doc)", "no maxOutputTokens known: assumed 64000"]);
    const flex = book.rates("acme.widget-2", { serviceTier: "flex" });
    assert.deepEqual([rates(flex), flex.notes], [[500_000n, 1_000_000n, 500_000n, 500_000n, 500_000n], [OVERRIDE_NOTE, "no maxOutputTokens known: assumed 64000"]]);
    assert.deepEqual(rates(book.rates("acme.widget-2", { serviceTier: "turbo" })), [875_000n, 1_750_000n, 875_000n, 875_000n, 875_000n]);
  });

  it("a team row is compared after the same adjustments: it raises a priority call's rate by what priority adds to it", () => {
    const team = new PriceBook({ "anthropic.claude-x*": { inputPer1M: 1, outputPer1M: 2 } }, TABLE, { "anthropic.claude-x*": { inputPer1M: 2, outputPer1M: 1 } });
    const r = team.rates(`global.${CLAUDE}`, { serviceTier: "priority" });
    assert.deepEqual([r.input, r.output], [3_500_000n, 3_500_000n]);
  });
});
