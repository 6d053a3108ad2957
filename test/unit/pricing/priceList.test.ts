/** Price List rows → table rows: names, token kinds, units, scopes, and what is left alone. */
import assert from "node:assert/strict";
import { BUILT_IN_PRICES } from "../../../server/metering/prices";
import { isSkipped, mapPriceList, modelNameKey, parsePriceListItem, rowForName, tokenKind, usdPer1MOf, type PriceListEntry } from "../../../server/pricing/priceList";
import { priceListItem } from "../../support/fakePricing";

const entry = (name: string, kind: PriceListEntry["kind"], scope: PriceListEntry["scope"], usdPer1M: string): PriceListEntry => ({ name, kind, scope, usdPer1M, usagetype: "x" });

describe("price list mapping", () => {
  it("converts per-1K and per-1M prices exactly, and refuses other units", () => {
    assert.equal(usdPer1MOf("0.0004000000", "1K tokens"), "0.4");
    assert.equal(usdPer1MOf("0.0000350000", "1K tokens"), "0.035");
    assert.equal(usdPer1MOf("3.3000000000", "1M tokens"), "3.3");
    assert.equal(usdPer1MOf("15", "1K tokens"), "15000");
    assert.equal(usdPer1MOf("0.04", "Images"), undefined);
    assert.equal(usdPer1MOf("-1", "1K tokens"), undefined);
  });

  it("names token kinds from the usage type and inference type", () => {
    assert.equal(tokenKind("USE1-MP:USE1_CacheReadInputTokenCount-Units"), "cacheRead");
    assert.equal(tokenKind("USE1-MP:USE1_CacheWriteInputTokenCount-Units"), "cacheWrite5m");
    assert.equal(tokenKind("USE1-MP:USE1_cache_write_1h_tokens_standard-Units"), "cacheWrite1h");
    assert.equal(tokenKind("USE1-Nova2.0Lite-input-tokens Input tokens"), "input");
    assert.equal(tokenKind("USE1-MP:USE1_output_tokens_standard-Units"), "output");
    assert.equal(tokenKind("USE1-Titan-images"), undefined);
  });

  it("matches Price List and Cost Explorer names to one table row", () => {
    assert.equal(modelNameKey("Nova 2.0 Lite"), modelNameKey("Amazon Nova 2 Lite"));
    assert.equal(modelNameKey("Nova2.0Lite"), modelNameKey("Amazon Nova 2 Lite"));
    assert.equal(rowForName(BUILT_IN_PRICES, "Claude Sonnet 4.5 (Amazon Bedrock Edition)")?.id, "anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.equal(rowForName(BUILT_IN_PRICES, "Claude Sonnet 4")?.id, "anthropic.claude-sonnet-4-20250514-v1:0");
    assert.equal(rowForName(BUILT_IN_PRICES, "Some Future Model"), undefined);
    assert.equal(rowForName(BUILT_IN_PRICES, "Cohere Command R+ (Amazon Bedrock Edition)")?.id, "cohere.command-r-plus-v1:0");
    assert.equal(rowForName(BUILT_IN_PRICES, "Cohere Command R (Amazon Bedrock Edition)")?.id, "cohere.command-r-v1:0");
  });

  it("every row of the table has a name key of its own (else prices update and reconcile cannot find it)", () => {
    const byKey = new Map<string, string[]>();
    for (const row of BUILT_IN_PRICES.models) byKey.set(modelNameKey(row.displayName), [...(byKey.get(modelNameKey(row.displayName)) ?? []), row.id]);
    assert.deepEqual([...byKey.values()].filter((ids) => ids.length > 1), []);
    for (const row of BUILT_IN_PRICES.models) assert.equal(rowForName(BUILT_IN_PRICES, row.displayName)?.id, row.id, row.displayName);
  });

  it("prices update takes Command R+ and Command R each for its own row", () => {
    const m = mapPriceList(BUILT_IN_PRICES, [
      entry("Cohere Command R+ (Amazon Bedrock Edition)", "input", "regional", "2.5"),
      entry("Cohere Command R+ (Amazon Bedrock Edition)", "output", "regional", "10"),
      entry("Cohere Command R (Amazon Bedrock Edition)", "input", "regional", "0.15"),
      entry("Cohere Command R (Amazon Bedrock Edition)", "output", "regional", "0.6"),
    ]);
    assert.deepEqual(m.rows["cohere.command-r-plus-v1:0"], { input: "2.5", output: "10" });
    assert.deepEqual(m.rows["cohere.command-r-v1:0"], { input: "0.15", output: "0.6" });
    assert.deepEqual(m.unmatched, []);
  });

  it("reads on-demand products of the region only, and says why a token price cannot be read", () => {
    const item = (attributes: Record<string, string>, unit = "1K tokens", usd = "0.001") => priceListItem({ serviceCode: "AmazonBedrock", attributes: { regionCode: "us-east-1", model: "Nova Pro", ...attributes }, unit, usd });
    const ok = parsePriceListItem(item({ inferenceType: "Output tokens", usagetype: "USE1-NovaPro-output-tokens" }), "us-east-1");
    assert.deepEqual(ok, { name: "Nova Pro", kind: "output", scope: "regional", usdPer1M: "1", usagetype: "USE1-NovaPro-output-tokens" });
    assert.equal(parsePriceListItem(item({ inferenceType: "Input tokens", usagetype: "USW2-NovaPro-input-tokens", regionCode: "us-west-2" }), "us-east-1"), undefined);
    for (const usagetype of ["USE1-NovaPro-input-tokens-batch", "USE1-NovaPro-input-tokens-flex", "USE1-NovaPro-input-tokens-priority", "USE1-NovaPro-LatencyOptimized-input-tokens"]) {
      assert.equal(parsePriceListItem(item({ inferenceType: "Input tokens", usagetype }), "us-east-1"), undefined, usagetype);
    }
    const odd = parsePriceListItem(item({ inferenceType: "Input tokens", usagetype: "USE1-NovaPro-input-tokens" }, "Characters"), "us-east-1");
    assert.ok(odd && isSkipped(odd) && /not a per-token price/.test(odd.reason));
    assert.ok(isSkipped(parsePriceListItem("{not json", "us-east-1")!));
    // A $0 SKU would make the row's calls free: not read, the row keeps the built-in figure.
    for (const usd of ["0.0000000000", "0"]) {
      const free = parsePriceListItem(item({ inferenceType: "Input tokens", usagetype: "USE1-NovaPro-input-tokens" }, "1K tokens", usd), "us-east-1");
      assert.ok(free && isSkipped(free), `${usd} is skipped`);
      assert.match(free.reason, /is \$0, which no on-demand model bills/);
    }
    // Above 0 as written but under a pico-dollar per token: the price book would charge $0.
    const subPico = parsePriceListItem(item({ inferenceType: "Input tokens", usagetype: "USE1-NovaPro-input-tokens" }, "1K tokens", "0.0000000000000001"), "us-east-1");
    assert.ok(subPico && isSkipped(subPico), "a sub-pico price is skipped");
    assert.match(subPico.reason, /0\.0000000000001 per 1M tokens is \$0 per token/);
    // Larger than any price (the price file could not hold it): skipped too.
    const huge = parsePriceListItem(item({ inferenceType: "Input tokens", usagetype: "USE1-NovaPro-input-tokens" }, "1M tokens", "9".repeat(40)), "us-east-1");
    assert.ok(huge && isSkipped(huge) && /is not a price per 1M tokens/.test(huge.reason));
  });

  it("takes global SKUs for rows with a regional premium, regional ones otherwise, and only whole rows", () => {
    const m = mapPriceList(BUILT_IN_PRICES, [
      entry("Claude Haiku 4.5 (Amazon Bedrock Edition)", "input", "regional", "1.1"),
      entry("Claude Haiku 4.5 (Amazon Bedrock Edition)", "output", "regional", "5.5"),
      entry("Claude Haiku 4.5 (Amazon Bedrock Edition)", "input", "global", "1"),
      entry("Claude Haiku 4.5 (Amazon Bedrock Edition)", "output", "global", "5"),
      entry("Claude Haiku 4.5 (Amazon Bedrock Edition)", "cacheRead", "global", "0.1"),
      entry("Nova Lite", "input", "regional", "0.33"),
      entry("Nova Lite", "output", "regional", "2.75"),
      entry("Nova Pro", "input", "regional", "0.8"), // no output: the row stays built-in
      entry("Mystery Model", "input", "regional", "1"),
    ]);
    assert.deepEqual(m.rows["anthropic.claude-haiku-4-5-20251001-v1:0"], { input: "1", output: "5", cacheRead: "0.1" });
    assert.deepEqual(m.rows["amazon.nova-lite-v1:0"], { input: "0.33", output: "2.75" }); // no regional premium: the regional SKU
    assert.equal(m.rows["amazon.nova-pro-v1:0"], undefined);
    assert.ok(m.missing.includes("amazon.nova-pro-v1:0"));
    assert.deepEqual(m.unmatched, ["Mystery Model"]);
  });
});
