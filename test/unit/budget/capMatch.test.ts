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

  it("a cap scoped to callers applies to a call by any of them: access key id, verifying profile or user", () => {
    const m = capMatcher({ callers: ["AKIASTAGING", "prod", "alice"] });
    assert.equal(m({ modelId: "x", caller: "AKIASTAGING" }), true);
    assert.equal(m({ modelId: "x", caller: "AKIAPROD", callerProfile: "prod" }), true);
    assert.equal(m({ modelId: "x", caller: "AKIAOTHER", user: "alice" }), true);
    assert.equal(m({ modelId: "x", caller: "AKIAOTHER", user: "bob" }), false);
    assert.equal(m("x"), false, "a call whose caller is unknown is not one of the cap's callers");
  });

  it("a cap scoped to tags needs every pair; with a model glob, both must match", () => {
    const m = capMatcher({ model: "*claude*", tags: { project: "chatbot", team: "support" } });
    assert.equal(m({ modelId: "anthropic.claude-3-haiku", tags: { project: "chatbot", team: "support", extra: "1" } }), true);
    assert.equal(m({ modelId: "anthropic.claude-3-haiku", tags: { project: "chatbot" } }), false);
    assert.equal(m({ modelId: "amazon.nova-lite-v1:0", tags: { project: "chatbot", team: "support" } }), false);
    assert.equal(m({ modelId: "x", baseModelId: "anthropic.claude-3-haiku", tags: { project: "chatbot", team: "support" } }), true);
  });

  it("capsFor takes a call subject", () => {
    const caps = [
      { id: "all", matches: capMatcher(undefined) },
      { id: "staging", matches: capMatcher({ callers: ["AKIASTAGING"] }) },
      { id: "chatbot", matches: capMatcher({ tags: { project: "chatbot" } }) },
    ];
    assert.deepEqual(capsFor(caps, { modelId: "m", caller: "AKIASTAGING", tags: { project: "chatbot" } }).map((c) => c.id), ["all", "staging", "chatbot"]);
    assert.deepEqual(capsFor(caps, { modelId: "m", caller: "AKIAPROD", tags: {} }).map((c) => c.id), ["all"]);
  });
});
