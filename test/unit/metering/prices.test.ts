import assert from "node:assert/strict";
import { PriceBook, costOf, BUILT_IN_PRICES } from "../../../server/metering/prices";
import type { PriceOverride } from "../../../server/config/schema";
import { usdToPicos } from "../../../server/metering/money";
import { ZERO_USAGE, type TokenUsage } from "../../../server/metering/types";

const SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const usage = (u: Partial<TokenUsage>): TokenUsage => ({ ...ZERO_USAGE, ...u });
const perToken = (per1M: string) => usdToPicos(per1M) / 1_000_000n;

describe("PriceBook", () => {
  let book: PriceBook; // built per test, not at load time (mutation testing: see TESTING.md)
  beforeEach(() => {
    book = new PriceBook();
  });

  it("prices Sonnet 4.5 at $0.0105 via global. and $0.01155 via us. for 1,000 in / 500 out", () => {
    const call = usage({ inputTokens: 1000, outputTokens: 500 });
    assert.equal(costOf(call, book.rates(`global.${SONNET_45}`)), usdToPicos("0.0105"));
    assert.equal(costOf(call, book.rates(`us.${SONNET_45}`)), usdToPicos("0.01155"));
    // An in-region id (plain or foundation-model ARN) pays the same +10% as a geographic profile.
    assert.equal(costOf(call, book.rates(SONNET_45)), usdToPicos("0.01155"));
    assert.equal(costOf(call, book.rates(`arn:aws:bedrock:us-east-1::foundation-model/${SONNET_45}`)), usdToPicos("0.01155"));
    assert.match(book.rates(`eu.${SONNET_45}`).notes.join(" "), /geographic profile eu\.: \+10%/);
  });

  it("does not add the regional premium to older Claude models", () => {
    const r = book.rates("us.anthropic.claude-sonnet-4-20250514-v1:0");
    assert.equal(r.input, perToken("3"));
    assert.equal(r.output, perToken("15"));
    assert.equal(r.displayName, "Claude Sonnet 4");
  });

  it("prices Opus 4.1 cache reads at $1.50/M and writes at $18.75/M (5m) and $30/M (1h)", () => {
    const r = book.rates("us.anthropic.claude-opus-4-1-20250805-v1:0");
    assert.equal(r.displayName, "Claude Opus 4.1");
    assert.equal(r.input, perToken("15"));
    assert.equal(r.output, perToken("75"));
    assert.equal(r.cacheRead, perToken("1.5"));
    assert.equal(r.cacheWrite5m, perToken("18.75"));
    assert.equal(r.cacheWrite1h, perToken("30"));
    assert.equal(r.maxOutputTokens, 32000);
    const call = usage({ inputTokens: 100, outputTokens: 10, cacheReadInputTokens: 10_000, cacheWrite5mInputTokens: 2000, cacheWrite1hInputTokens: 1000 });
    // 100×15 + 10×75 + 10000×1.5 + 2000×18.75 + 1000×30 = 84,750 per 1M → $0.08475
    assert.equal(costOf(call, r), usdToPicos("0.08475"));
  });

  it("derives omitted Claude cache prices by Anthropic's rule (1.25×, 2×, 0.1× input)", () => {
    const r = book.rates(`global.${SONNET_45}`);
    assert.equal(r.cacheWrite5m, perToken("3.75"));
    assert.equal(r.cacheWrite1h, perToken("6"));
    assert.equal(r.cacheRead, perToken("0.3"));
  });

  it("uses long-context rates above 200K prompt tokens, cache scaled likewise", () => {
    const below = book.rates(`global.${SONNET_45}`, { inputTokens: 200_000 });
    assert.equal(below.input, perToken("3"));
    const above = book.rates(`global.${SONNET_45}`, { inputTokens: 200_001 });
    assert.equal(above.input, perToken("6"));
    assert.equal(above.output, perToken("22.5"));
    assert.equal(above.cacheWrite5m, perToken("7.5"));
    assert.equal(above.cacheRead, perToken("0.6"));
    assert.match(above.notes.join(" "), /long context/);
    // Geographic long context: 6.60 / 24.75
    const geo = book.rates(`us.${SONNET_45}`, { inputTokens: 300_000 });
    assert.equal(geo.input, perToken("6.6"));
    assert.equal(geo.output, perToken("24.75"));
    // Sonnet 4 has long-context rates too; Haiku 4.5 does not.
    assert.equal(book.rates("anthropic.claude-sonnet-4-20250514-v1:0", { inputTokens: 250_000 }).input, perToken("6"));
    assert.equal(book.rates("global.anthropic.claude-haiku-4-5-20251001-v1:0", { inputTokens: 250_000 }).input, perToken("1"));
  });

  it("prices an unknown model at the most expensive known rate of every kind, flagged", () => {
    const r = book.rates("acme.mystery-model-v1:0");
    assert.equal(r.known, false);
    assert.equal(r.input, perToken("15"));
    assert.equal(r.output, perToken("75"));
    assert.equal(r.cacheWrite1h, perToken("30"));
    assert.equal(r.cacheWrite5m, perToken("18.75"));
    assert.equal(r.cacheRead, perToken("4")); // Mistral Large 24.02 has no caching: its cache rate is its input rate
    assert.match(r.notes.join(" "), /unknown model.*most expensive/);
    for (const m of book.knownModels()) {
      for (const id of [m.id, `global.${m.id}`]) {
        for (const applied of [{}, { inputTokens: 1_000_000 }, { latency: "optimized" }]) {
          const k = book.rates(id, applied);
          for (const kind of ["input", "output", "cacheRead", "cacheWrite5m", "cacheWrite1h"] as const) {
            assert.ok(k[kind] <= r[kind], `${id} ${kind}`);
          }
        }
      }
    }
    assert.ok(r.maxOutputTokens >= 64000);
  });

  it("treats an application inference profile ARN as unknown", () => {
    const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123";
    const r = book.rates(arn);
    assert.equal(r.known, false);
    assert.equal(r.baseModelId, arn);
    assert.match(r.notes.join(" "), /application-inference-profile ARN/);
  });

  it("lets a glob override win over the built-in row", () => {
    const custom = new PriceBook({ "anthropic.claude-sonnet-4-5*": { inputPer1M: 2, outputPer1M: 10 } });
    const r = custom.rates(`us.${SONNET_45}`);
    assert.equal(r.source, "override: anthropic.claude-sonnet-4-5*");
    // The row is the global price, as the built-in one: the geographic profile adds its 10% to it.
    assert.equal(r.input, perToken("2.2"));
    assert.equal(r.output, perToken("11"));
    assert.equal(r.cacheWrite5m, perToken("2.75")); // Anthropic rule on the override's input
    assert.equal(r.maxOutputTokens, 64000); // from the built-in row
    assert.equal(costOf(usage({ inputTokens: 1000, outputTokens: 500 }), r), usdToPicos("0.0077"));
  });

  it("prefers an exact override over a glob, and can price an unknown model", () => {
    const custom = new PriceBook({
      "*": { inputPer1M: 100, outputPer1M: 100 },
      "acme.mystery-model-v1:0": { inputPer1M: 0.5, outputPer1M: 1, maxOutputTokens: 2048 },
    });
    const r = custom.rates("us.acme.mystery-model-v1:0");
    assert.equal(r.known, true);
    assert.equal(r.source, "override: acme.mystery-model-v1:0");
    assert.equal(r.input, perToken("0.5"));
    assert.equal(r.cacheRead, perToken("0.5")); // non-Anthropic: cache = input
    assert.equal(r.maxOutputTokens, 2048);
    const arn = "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc";
    assert.equal(new PriceBook({ [arn]: { inputPer1M: 1, outputPer1M: 1 } }).rates(arn).known, true);
  });

  it("applies service tiers (marked unverified) and latency-optimized rates", () => {
    const prio = book.rates("us.amazon.nova-pro-v1:0", { serviceTier: "priority" });
    assert.equal(prio.input, perToken("1.4")); // 0.80 × 1.75
    assert.match(prio.notes.join(" "), /priority.*unverified/);
    const flex = book.rates("us.amazon.nova-pro-v1:0", { serviceTier: "flex" });
    assert.equal(flex.output, perToken("1.6"));
    const fast = book.rates("us.meta.llama3-1-70b-instruct-v1:0", { latency: "optimized" });
    assert.equal(fast.input, perToken("0.9"));
    const nova = book.rates("amazon.nova-pro-v1:0", { latency: "optimized" });
    assert.equal(nova.output, perToken("4"));
    const none = book.rates("anthropic.claude-3-haiku-20240307-v1:0", { latency: "optimized" });
    assert.equal(none.input, perToken("0.25"));
    assert.match(none.notes.join(" "), /no such rate/);
  });

  it("prices Nova cache reads at a quarter of input and other providers' cache at the input rate", () => {
    const nova = book.rates("amazon.nova-micro-v1:0");
    assert.equal(nova.input, 35_000n);
    assert.equal(nova.cacheRead, 8_750n);
    assert.equal(nova.cacheWrite5m, 35_000n);
    const llama = book.rates("meta.llama3-3-70b-instruct-v1:0");
    assert.equal(llama.cacheRead, llama.input);
    assert.equal(llama.cacheWrite1h, llama.input);
  });

  it("matches each row's own id to that row (pattern order is right) and dated variants", () => {
    for (const row of BUILT_IN_PRICES.models) {
      assert.equal(book.rates(row.id).displayName, row.displayName, row.id);
      assert.ok(/^\d{4}-\d{2}-\d{2}$/.test(row.checked));
    }
    assert.equal(book.rates("anthropic.claude-opus-4-5-20251101-v1:0").input, perToken("5.5"));
    assert.equal(book.rates("global.anthropic.claude-opus-4-5-20251101-v1:0").input, perToken("5"));
    assert.equal(book.rates("anthropic.claude-opus-4-20250514-v1:0").displayName, "Claude Opus 4");
    assert.equal(book.rates("anthropic.claude-v2").displayName, "Claude 2.x");
    assert.equal(book.rates("anthropic.claude-3-5-sonnet-20241022-v2:0").displayName, "Claude 3.5 Sonnet v2");
    assert.equal(book.rates("cohere.command-r-v1:0").output, perToken("1.5"));
    assert.equal(book.rates("cohere.command-r-plus-v1:0").output, perToken("15"));
  });

  it("covers every model family the brief lists", () => {
    const ids = [
      "anthropic.claude-instant-v1", "anthropic.claude-v2:1", "anthropic.claude-3-haiku-20240307-v1:0",
      "anthropic.claude-3-sonnet-20240229-v1:0", "anthropic.claude-3-opus-20240229-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0",
      "anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0", "amazon.nova-lite-v1:0",
      "amazon.nova-premier-v1:0", "amazon.titan-text-express-v1", "amazon.titan-text-lite-v1", "amazon.titan-text-premier-v1:0",
      "meta.llama3-8b-instruct-v1:0", "meta.llama3-70b-instruct-v1:0", "meta.llama3-1-405b-instruct-v1:0", "meta.llama3-2-90b-instruct-v1:0",
      "meta.llama4-scout-17b-instruct-v1:0", "meta.llama4-maverick-17b-instruct-v1:0", "mistral.mistral-7b-instruct-v0:2",
      "mistral.mixtral-8x7b-instruct-v0:1", "mistral.mistral-small-2402-v1:0", "mistral.mistral-large-2402-v1:0",
      "mistral.mistral-large-2407-v1:0", "mistral.pixtral-large-2502-v1:0", "cohere.command-text-v14", "cohere.command-light-text-v14",
      "deepseek.r1-v1:0", "openai.gpt-oss-20b-1:0", "openai.gpt-oss-120b-1:0",
    ];
    for (const id of ids) assert.equal(book.rates(id).known, true, id);
    assert.equal(book.rates("openai.gpt-oss-120b-1:0").output, perToken("0.6"));
    assert.equal(book.rates("deepseek.r1-v1:0").input, perToken("1.35"));
  });
});

describe("PriceBook: team prices (raise-only rows)", () => {
  const call = usage({ inputTokens: 1000, outputTokens: 500, cacheReadInputTokens: 100 });
  let builtIn: ReturnType<PriceBook["rates"]>;
  beforeEach(() => {
    builtIn = new PriceBook().rates(`us.${SONNET_45}`);
  });

  it("a \"*\" row at $0 and a row undercutting Claude change nothing: the built-in price holds", () => {
    const rows: Record<string, PriceOverride>[] = [{ "*": { inputPer1M: 0, outputPer1M: 0 } }, { "anthropic.claude-sonnet-4-5*": { inputPer1M: 0.1, outputPer1M: 0.5, cacheReadPer1M: 0 } }];
    for (const team of rows) {
      const r = new PriceBook({}, undefined, team).rates(`us.${SONNET_45}`);
      assert.equal(costOf(call, r), costOf(call, builtIn), JSON.stringify(team));
      for (const k of ["input", "output", "cacheRead", "cacheWrite5m", "cacheWrite1h"] as const) assert.equal(r[k], builtIn[k], k);
      assert.equal(r.source, builtIn.source);
    }
  });

  it("a row above the built-in price raises it, rate by rate (never lowering another)", () => {
    const r = new PriceBook({}, undefined, { "anthropic.claude-sonnet-4-5*": { inputPer1M: 1, outputPer1M: 40, cacheReadPer1M: 0 } }).rates(`us.${SONNET_45}`);
    assert.equal(r.output, perToken("44"), "$40/M, +10% for the geographic profile as the built-in row");
    assert.equal(r.input, builtIn.input, "input $1/M (+10%) is below the built-in $3.30/M: unchanged");
    assert.equal(r.cacheRead, builtIn.cacheRead);
    assert.match(r.source, /raised by team price: anthropic\.claude-sonnet-4-5\*/);
    assert.match(r.notes.join(" "), /raised output/);
    assert.ok(costOf(call, r) > costOf(call, builtIn));
  });

  it("cannot undercut the user's own row; can raise it", () => {
    const own = { "anthropic.claude-sonnet-4-5*": { inputPer1M: 20, outputPer1M: 80 } };
    // An in-region call: both rows get the +10% the built-in row would.
    const low = new PriceBook(own, undefined, { "*": { inputPer1M: 2, outputPer1M: 10 } }).rates(SONNET_45);
    assert.equal(low.input, perToken("22"));
    assert.equal(low.output, perToken("88"));
    const high = new PriceBook(own, undefined, { "*": { inputPer1M: 30, outputPer1M: 10 } }).rates(SONNET_45);
    assert.equal(high.input, perToken("33"));
    assert.equal(high.output, perToken("88"));
  });

  it("cannot lower the dearest-rate fallback of an unknown model; a member's own row prices it", () => {
    const fallback = new PriceBook().rates("acme.custom-v1:0");
    const team = { "acme.custom*": { inputPer1M: 0.5, outputPer1M: 1, maxOutputTokens: 1000 } };
    const r = new PriceBook({}, undefined, team).rates("acme.custom-v1:0");
    assert.equal(r.known, false);
    assert.equal(r.input, fallback.input);
    assert.equal(r.output, fallback.output);
    assert.equal(r.maxOutputTokens, fallback.maxOutputTokens, "a smaller maxOutputTokens cannot shrink the worst case");
    const own = new PriceBook({ "acme.custom*": { inputPer1M: 0.25, outputPer1M: 1, maxOutputTokens: 1000 } }, undefined, team).rates("acme.custom-v1:0");
    assert.equal(own.input, perToken("0.5"), "the team's higher input rate");
    assert.equal(own.output, perToken("1"));
    assert.equal(own.maxOutputTokens, 1000);
  });
});

describe("costOf", () => {
  it("sums every token kind exactly in picos", () => {
    const r = new PriceBook().rates("global.anthropic.claude-haiku-4-5-20251001-v1:0");
    const c = costOf({ inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 1, cacheWrite5mInputTokens: 1, cacheWrite1hInputTokens: 1 }, r);
    assert.equal(c, 1_000_000n + 5_000_000n + 100_000n + 1_250_000n + 2_000_000n);
  });
});
