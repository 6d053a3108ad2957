import assert from "node:assert/strict";
import { capMatcher, capsFor } from "../../../server/budget/capMatch";

describe("budget/capMatch", () => {
  it("an unscoped cap applies to every model", () => {
    assert.equal(capMatcher(undefined)("anything.at-all"), true);
  });

  it("matches the model id or its base model id, case-insensitively, with * crossing / in ARNs", () => {
    const m = capMatcher("anthropic.claude-*");
    assert.equal(m("ANTHROPIC.Claude-3-haiku"), true);
    assert.equal(m("arn:aws:bedrock:us-east-1:1:application-inference-profile/x", "anthropic.claude-3-haiku"), true);
    assert.equal(m("amazon.nova-lite-v1:0"), false);
    assert.equal(capMatcher("arn:*")("arn:aws:bedrock:us-east-1:1:inference-profile/us.amazon.nova-lite-v1:0"), true);
  });

  it("capsFor keeps the caps that apply, in order", () => {
    const caps = [
      { id: "all", matches: capMatcher(undefined) },
      { id: "nova", matches: capMatcher("*nova*") },
      { id: "claude", matches: capMatcher("*claude*") },
    ];
    assert.deepEqual(capsFor(caps, "us.amazon.nova-lite-v1:0").map((c) => c.id), ["all", "nova"]);
  });
});
