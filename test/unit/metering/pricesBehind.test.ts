// Opaque model ids priced as the model behind them (a prompt router's answer, an application inference profile): the rates, the region and every note a user sees.
import assert from "node:assert/strict";
import { PriceBook } from "../../../server/metering/prices";
import { CLAUDE_X_TABLE } from "../../support/priceTables";

const TABLE = CLAUDE_X_TABLE;

describe("PriceBook: what stands behind an opaque id", () => {
  let book: PriceBook;
  beforeEach(() => {
    book = new PriceBook({}, TABLE);
  });

  it("a prompt router in eu-west-1 is priced as the model it chose, at the eu rate of the router's region, and says so", () => {
    const router = "arn:aws:bedrock:eu-west-1:123456789012:default-prompt-router/anthropic.claude:1";
    const r = book.rates(router, { invokedModelId: "anthropic.claude-x-v1:0" });
    assert.deepEqual([r.known, r.baseModelId, r.input, r.output], [true, "anthropic.claude-x-v1:0", 4_000_000n, 20_000_000n]);
    assert.equal(r.source, "built-in: eu-west-1 (eu-*): https://example.invalid/claude-eu, read 2026-11-02");
    assert.deepEqual(r.notes, ["prompt router chose anthropic.claude-x-v1:0: priced as that model", "eu-west-1 rate"]);
  });

  it("an application inference profile names its model, its kind and the day it was looked up", () => {
    const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";
    const at = "2026-11-29T08:15:00.000Z";
    const kinds = (["global", "geographic", "none"] as const).map((profile) => book.rates(arn, { profile: { baseModelId: "anthropic.claude-x-v1:0", profile, modelArns: [], resolvedAt: at } }).notes[0]);
    assert.deepEqual(kinds, [
      "application inference profile of anthropic.claude-x-v1:0 (global; looked up 2026-11-29)",
      "application inference profile of anthropic.claude-x-v1:0 (geographic, cross-region; looked up 2026-11-29)",
      "application inference profile of anthropic.claude-x-v1:0 (one region; looked up 2026-11-29)",
    ]);
  });

  it("a failed profile lookup is said even after the same id was priced without a lookup", () => {
    const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";
    assert.equal(book.rates(arn).notes.some((n) => n.includes("lookup failed")), false);
    const failed = book.rates(arn, { profile: { failed: "AccessDenied" } });
    assert.equal(failed.known, false);
    assert.equal(failed.notes[0], "application inference profile lookup failed (AccessDenied): priced at the dearest rate");
  });

  it("a model id that names its model is priced as itself, whatever model a response says answered", () => {
    const r = book.rates("anthropic.claude-x-v1:0", { invokedModelId: "meta.llama-other-v1:0" });
    assert.deepEqual([r.known, r.baseModelId, r.input], [true, "anthropic.claude-x-v1:0", 3_000_000n]);
    assert.equal(r.notes.some((n) => n.includes("prompt router")), false);
  });

  it("only an application inference profile is priced as a looked-up model: a provisioned model stays at the dearest rate", () => {
    const provisioned = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/xyz";
    const r = book.rates(provisioned, { profile: { baseModelId: "anthropic.claude-x-v1:0", profile: "none", modelArns: [], resolvedAt: "2026-11-29T08:15:00.000Z" } });
    assert.equal(r.known, false);
    assert.equal(r.notes.some((n) => n.startsWith("application inference profile")), false);
  });

  it("a model id ending in a region's name is not taken for that model in that region", () => {
    const odd = book.rates("anthropic.claude-x-v1:0eu-west-1");
    const eu = book.rates("anthropic.claude-x-v1:0", { region: "eu-west-1" });
    assert.equal(odd.baseModelId, "anthropic.claude-x-v1:0eu-west-1");
    assert.deepEqual([eu.known, eu.baseModelId, eu.input], [true, "anthropic.claude-x-v1:0", 4_000_000n]);
  });

  it("an unknown model is priced at the dearest rate of any region, not only us-east-1's", () => {
    const r = book.rates("mystery.model-v1:0");
    assert.deepEqual([r.known, r.input, r.output], [false, 4_000_000n, 20_000_000n]);
  });
});
