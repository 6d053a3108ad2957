// The estimate prices a call where it is billed: the region (and profile) it is given reaches the
// price book, and is kept on the estimate so settlement prices with the same.
import assert from "node:assert/strict";
import { estimateFromParts, estimateParsed } from "../../../server/metering/estimate";
import { PriceBook } from "../../../server/metering/prices";
import { CLAUDE_X_TABLE } from "../../support/priceTables";

const TABLE = CLAUDE_X_TABLE;

describe("estimate: the region a call is billed in", () => {
  let book: PriceBook;
  beforeEach(() => {
    book = new PriceBook({}, TABLE);
  });

  it("estimateFromParts prices at the region's rate and keeps the scope", () => {
    const e = estimateFromParts({ modelId: "anthropic.claude-x-v1:0", inputTokens: 1_000, maxOutputTokens: 100, scope: { region: "eu-west-1" } }, book);
    // 1,000 × $4/1M + 100 × $20/1M = $0.006 = 6,000,000,000 picos (us-east-1 would be $0.0045).
    assert.equal(e.worstCasePicos, 6_000_000_000n);
    assert.deepEqual(e.scope, { region: "eu-west-1" });
  });

  it("estimateParsed passes the scope on: the same Converse body costs more in eu-west-1", () => {
    const body = { messages: [{ role: "user", content: [{ text: "Summarise the quarterly report." }] }], inferenceConfig: { maxTokens: 100 } };
    const us = estimateParsed("Converse", "anthropic.claude-x-v1:0", body, book);
    const eu = estimateParsed("Converse", "anthropic.claude-x-v1:0", body, book, undefined, { region: "eu-west-1" });
    assert.equal(us.inputTokens, eu.inputTokens);
    assert.equal(us.worstCasePicos, BigInt(us.inputTokens) * 3_000_000n + 100n * 15_000_000n);
    assert.equal(eu.worstCasePicos, BigInt(eu.inputTokens) * 4_000_000n + 100n * 20_000_000n);
    assert.deepEqual(eu.scope, { region: "eu-west-1" });
    assert.ok(eu.rates.notes.includes("eu-west-1 rate"));
  });

  it("a call with neither a token count nor prompt text is estimated as an empty prompt", () => {
    const e = estimateFromParts({ modelId: "anthropic.claude-x-v1:0", maxOutputTokens: 10 }, book);
    assert.equal(e.inputTokens, 0);
    assert.equal(e.worstCasePicos, 10n * 15_000_000n);
  });
});
