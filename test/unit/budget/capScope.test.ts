/** What a cap's scope reaches: any model id for a bare glob, a caller by each of its names, which scopes a code lens cannot judge, and a downgraded call replayed against the model that answered. */
import assert from "node:assert/strict";
import { callerNames, capMatcher, scopedBeyondModel } from "../../../server/budget/capMatch";
import { replayedSpend, type SettledCall } from "../../../server/budget/replay";

describe("budget/cap scope", () => {
  it("a `*` cap applies to every model id, whatever character it starts with", () => {
    assert.equal(capMatcher("*")(".odd-id"), true);
    assert.equal(capMatcher("*nova*")(".nova"), true);
  });

  it("a caller goes by its access key id, then its verifying profile, then its user; empty names are no names", () => {
    assert.deepEqual(callerNames({ caller: "AKIA1", callerProfile: "prod", user: "alice" }), ["AKIA1", "prod", "alice"]);
    assert.deepEqual(callerNames({ caller: "", user: "alice" }), ["alice"]);
    assert.deepEqual(callerNames({}), []);
  });

  it("a code lens can judge a cap scoped by model alone, not one scoped by callers or tags", () => {
    assert.equal(scopedBeyondModel({ model: "*claude*" }), false);
    assert.equal(scopedBeyondModel({}), false);
    assert.equal(scopedBeyondModel({ tags: {} }), false, "no tag pairs: every call");
    assert.equal(scopedBeyondModel({ tags: { project: "chatbot" } }), true);
    assert.equal(scopedBeyondModel({ callers: ["AKIA1"] }), true);
    assert.equal(scopedBeyondModel({ callers: ["AKIA1"], tags: { project: "chatbot" } }), true);
  });

  it("a downgraded call replays against the caps of the model that answered, an ordinary one against its own", () => {
    const haikuOnly = (c: SettledCall) => (capMatcher("*haiku*")(c) ? ["haiku-day"] : []);
    const call: SettledCall = { id: "c1", modelId: "anthropic.claude-sonnet-4-5", costPicos: "500", startedAt: "2026-11-29T10:00:00.000Z" };
    assert.equal(replayedSpend(call, haikuOnly), undefined, "asked and answered by Sonnet: the Haiku cap does not count it");
    assert.deepEqual(replayedSpend({ ...call, answeredBy: "anthropic.claude-haiku-4-5" }, haikuOnly)?.capIds, ["haiku-day"], "downgraded to Haiku: it does");
  });
});
