// A prompt router's choice read from a Converse response: only a plausible model id (non-empty, at most 2048 characters) is taken as the model to price.
import assert from "node:assert/strict";
import { appliedTierFromConverse } from "../../../server/metering/usage";

const choice = (invokedModelId: unknown) => appliedTierFromConverse({ trace: { promptRouter: { invokedModelId } } }).invokedModelId;

describe("usage: a prompt router's choice", () => {
  it("takes a model id up to 2048 characters, and ignores an empty or longer one (priced as the router, at the dearest rate)", () => {
    assert.equal(choice("anthropic.claude-3-haiku-20240307-v1:0"), "anthropic.claude-3-haiku-20240307-v1:0");
    const longest = `arn:aws:bedrock:us-east-1:1:inference-profile/${"a".repeat(2048 - 46)}`;
    assert.equal(longest.length, 2048);
    assert.equal(choice(longest), longest);
    assert.equal(choice(`${longest}b`), undefined);
    assert.equal(choice(""), undefined);
    assert.equal(choice(42), undefined);
  });
});
