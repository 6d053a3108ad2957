/** What a cap action may rewrite: the output limit (every field the estimator reads), the model in the path, and which InvokeModel bodies carry over. */
import assert from "node:assert/strict";
import { downgradeProblem, invokeBodyFormat, withModelInPath } from "../../../server/metering/bodyRewrite";
import { measureBody, withMaxTokensAtMost } from "../../../server/metering/requestBody";

describe("metering/bodyRewrite", () => {
  it("lowers every output-limit field a body sets (never raises one), so the estimator reads the new limit", () => {
    const body = { max_tokens: 4096, inferenceConfig: { max_new_tokens: 50 }, textGenerationConfig: { maxTokenCount: 9000 }, messages: [] };
    const out = withMaxTokensAtMost(body, 100)!;
    assert.deepEqual(out, { max_tokens: 100, inferenceConfig: { max_new_tokens: 50 }, textGenerationConfig: { maxTokenCount: 100 }, messages: [] });
    assert.equal(measureBody("InvokeModel", out).maxOutputTokens, 100);
    assert.equal(body.max_tokens, 4096, "the caller's parsed body is not modified");
  });

  it("adds the limit where told when the body sets none (Converse), and gives up without a place (InvokeModel)", () => {
    assert.deepEqual(withMaxTokensAtMost({ messages: [] }, 7, ["inferenceConfig", "maxTokens"]), { messages: [], inferenceConfig: { maxTokens: 7 } });
    assert.deepEqual(withMaxTokensAtMost({ inferenceConfig: { temperature: 0 } }, 7, ["inferenceConfig", "maxTokens"]), { inferenceConfig: { temperature: 0, maxTokens: 7 } });
    assert.equal(withMaxTokensAtMost({ prompt: "hi" }, 7), undefined);
    assert.throws(() => withMaxTokensAtMost({ max_tokens: 5 }, 0), RangeError);
  });

  it("replaces the model id in the path, escaped as the SDK does, keeping the operation and query", () => {
    assert.equal(withModelInPath("/model/a.b-v1%3A0/converse-stream?x=1", "us.anthropic.claude-haiku-4-5-20251001-v1:0"), "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse-stream?x=1");
    assert.throws(() => withModelInPath("/guardrail/x/version/1/apply", "m"));
  });

  it("InvokeModel downgrades only within one body format it knows; Converse always", () => {
    assert.equal(invokeBodyFormat("anthropic.claude-haiku-4-5-20251001-v1:0"), "Anthropic Messages");
    assert.equal(downgradeProblem("InvokeModel", { modelId: "s", baseModelId: "anthropic.claude-sonnet-4-5" }, { modelId: "h", baseModelId: "anthropic.claude-haiku-4-5" }), undefined);
    assert.equal(downgradeProblem("ConverseStream", { modelId: "s", baseModelId: "anthropic.claude-sonnet-4-5" }, { modelId: "n", baseModelId: "amazon.nova-micro-v1:0" }), undefined);
    assert.match(downgradeProblem("InvokeModelWithResponseStream", { modelId: "s", baseModelId: "anthropic.claude-sonnet-4-5" }, { modelId: "n", baseModelId: "amazon.nova-micro-v1:0" })!, /"s" reads Anthropic Messages while "n" reads Amazon Nova/);
    assert.match(downgradeProblem("InvokeModel", { modelId: "x", baseModelId: "mistral.mistral-large" }, { modelId: "y", baseModelId: "mistral.mistral-small" })!, /does not know/);
  });
});
