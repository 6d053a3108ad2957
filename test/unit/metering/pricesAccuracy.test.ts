import assert from "node:assert/strict";
import { BUILT_IN_PRICES, PriceBook, costOf } from "../../../server/metering/prices";
import { usdToPicos } from "../../../server/metering/money";
import { usageFromConverse, appliedTierFromConverse } from "../../../server/metering/usage";
import { ZERO_USAGE, type TokenUsage } from "../../../server/metering/types";

const usage = (u: Partial<TokenUsage>): TokenUsage => ({ ...ZERO_USAGE, ...u });
const perToken = (per1M: string) => usdToPicos(per1M) / 1_000_000n;
const PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";
const HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0";

describe("PriceBook: cost accuracy (issue #12)", () => {
  let book: PriceBook; // built per test, not while the file loads (see TESTING.md, perTest coverage)
  beforeEach(() => {
    book = new PriceBook();
  });

  it("every built-in row names its source and the date it was checked", () => {
    for (const row of BUILT_IN_PRICES.models) {
      assert.ok(row.source.length > 10, row.id);
      assert.match(row.checked, /^\d{4}-\d{2}-\d{2}$/, row.id);
    }
    for (const [glob, rows] of Object.entries(BUILT_IN_PRICES.regions)) {
      if (typeof rows === "string") continue;
      for (const [id, r] of Object.entries(rows)) {
        assert.ok(BUILT_IN_PRICES.models.some((m) => m.id === id), `${glob}: ${id} is a row id`);
        assert.match(r.checked, /^\d{4}-\d{2}-\d{2}$/);
      }
    }
  });

  it("an application inference profile is priced as the model the lookup gave, with its profile rule", () => {
    const call = usage({ inputTokens: 1000, outputTokens: 500 });
    const geo = book.rates(PROFILE, { profile: { baseModelId: HAIKU, profile: "geographic", modelArns: [], resolvedAt: "2026-11-29T00:00:00Z" } });
    assert.equal(costOf(call, geo), usdToPicos("0.00385"));
    assert.equal(geo.baseModelId, HAIKU);
    assert.match(geo.notes.join(" "), /application inference profile of anthropic\.claude-haiku/);
    const global = book.rates(PROFILE, { profile: { baseModelId: HAIKU, profile: "global", modelArns: [], resolvedAt: "2026-11-29T00:00:00Z" } });
    assert.equal(costOf(call, global), usdToPicos("0.0035"));
    const failed = book.rates(PROFILE, { profile: { failed: "AccessDeniedException: no" } });
    assert.equal(failed.known, false);
    assert.equal(failed.input, book.rates(PROFILE).input, "a failed lookup keeps the dearest rate");
    assert.match(failed.notes.join(" "), /lookup failed \(AccessDeniedException: no\)/);
  });

  it("a prompt router is priced as the model its answer names", () => {
    const router = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1";
    const tier = appliedTierFromConverse({ trace: { promptRouter: { invokedModelId: "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0" } } });
    const r = book.rates(router, tier);
    assert.equal(r.input, perToken("0.25"));
    assert.equal(r.displayName, "Claude 3 Haiku");
    assert.equal(book.rates(router).known, false, "before the answer: the dearest rate");
    assert.ok(usageFromConverse({ usage: { inputTokens: 1, outputTokens: 1 } }));
  });

  it("Sonnet 4.6 and Opus 4.6 keep the standard rate above 200K input; Sonnet 4.5 pays the long-context rate", () => {
    const big = { inputTokens: 250_000 };
    assert.equal(book.rates("global.anthropic.claude-sonnet-4-6", big).input, perToken("3"));
    assert.equal(book.rates("global.anthropic.claude-opus-4-6-v1", big).output, perToken("25"));
    assert.equal(book.rates("global.anthropic.claude-sonnet-4-5-20250929-v1:0", big).input, perToken("6"));
    assert.equal(costOf(usage({ inputTokens: 250_000, outputTokens: 1000 }), book.rates("global.anthropic.claude-sonnet-4-6", big)), usdToPicos("0.765"));
  });

  it("prices by region: the signing region, or the ARN's own; a region without rows says it used us-east-1's", () => {
    assert.equal(book.rates("eu.amazon.nova-pro-v1:0", { region: "eu-north-1" }).input, perToken("0.87"));
    assert.equal(book.rates("arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-pro-v1:0", { region: "us-east-1" }).output, perToken("3.48"));
    assert.equal(book.rates("us.amazon.nova-pro-v1:0", { region: "us-east-1" }).input, perToken("0.8"));
    const west = book.rates("us.amazon.nova-pro-v1:0", { region: "us-west-2" });
    assert.equal(west.input, perToken("0.8"));
    assert.match(west.notes.join(" "), /no us-west-2 rate.*us-east-1 rate is used \(unverified/);
    assert.equal(book.rates("us.amazon.nova-2-lite-v1:0").input, perToken("0.33"));
    assert.equal(book.rates("global.amazon.nova-2-lite-v1:0").output, perToken("2.5"));
  });

  it("the reserved tier is said and never priced below on-demand; an unknown tier is priced at the dearest listed tier", () => {
    const reserved = book.rates("amazon.nova-pro-v1:0", { serviceTier: "reserved" });
    assert.equal(reserved.input, perToken("0.8"));
    assert.match(reserved.notes.join(" "), /reserved.*commitment/);
    const odd = book.rates("amazon.nova-pro-v1:0", { serviceTier: "turbo" });
    assert.equal(odd.input, perToken("1.4"));
    assert.match(odd.notes.join(" "), /"turbo" has no listed rate/);
  });

  it("provisioned throughput: an unknown ARN says it is billed hourly; a declared one is $0 per token with its hourly figure", () => {
    const arn = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc";
    assert.match(book.rates(arn).notes.join(" "), /billed hourly.*hourlyUsd/);
    const declared = new PriceBook({ [arn]: { inputPer1M: 0, outputPer1M: 0, hourlyUsd: 39.6 } }).rates(arn);
    assert.equal(declared.input, 0n);
    assert.equal(declared.hourlyUsd, 39.6);
    assert.match(declared.notes.join(" "), /\$39\.6 per hour/);
  });

  it("has rows for Mistral Large 3, DeepSeek V3.2 and Qwen3", () => {
    assert.equal(book.rates("mistral.mistral-large-3-675b-instruct").input, perToken("0.5"));
    assert.equal(book.rates("deepseek.v3.2").output, perToken("1.85"));
    assert.equal(book.rates("qwen.qwen3-235b-a22b-2507-v1:0").input, perToken("0.22"));
    assert.equal(book.rates("qwen.qwen3-coder-next").known, true);
  });
});
