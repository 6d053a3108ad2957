/** What a cap action may rewrite: the output limit (every field the estimator reads), the model in the path, and which InvokeModel bodies carry over. */
import assert from "node:assert/strict";
import { downgradeProblem, invokeBodyFormat, withModelInPath } from "../../../server/metering/bodyRewrite";
import { measureBody, withMaxTokensAtMost } from "../../../server/metering/requestBody";

describe("metering/bodyRewrite", () => {
  it("lowers every output-limit field a body sets (never raises one), so the estimator reads the new limit", () => {
    const body = { max_tokens: 4096, inferenceConfig: { max_new_tokens: 50 }, textGenerationConfig: { maxTokenCount: 9000 }, messages: [] };
    const out = withMaxTokensAtMost(body, 100, "InvokeModel")!;
    assert.deepEqual(out, { max_tokens: 100, inferenceConfig: { max_new_tokens: 50 }, textGenerationConfig: { maxTokenCount: 100 }, messages: [] });
    assert.equal(measureBody("InvokeModel", out).maxOutputTokens, 100);
    assert.equal(body.max_tokens, 4096, "the caller's parsed body is not modified");
  });

  it("adds the limit where told when the body sets none (Converse), and gives up without a place (InvokeModel)", () => {
    assert.deepEqual(withMaxTokensAtMost({ messages: [] }, 7, "Converse"), { messages: [], inferenceConfig: { maxTokens: 7 } });
    assert.deepEqual(withMaxTokensAtMost({ inferenceConfig: { temperature: 0 } }, 7, "ConverseStream"), { inferenceConfig: { temperature: 0, maxTokens: 7 } });
    assert.equal(withMaxTokensAtMost({ prompt: "hi" }, 7, "InvokeModel"), undefined);
    assert.throws(() => withMaxTokensAtMost({ max_tokens: 5 }, 0, "InvokeModel"), RangeError);
  });

  it("Converse: a stray top-level max_tokens is not its output limit; the clamp sets inferenceConfig.maxTokens", () => {
    const body = { messages: [], max_tokens: 1 };
    assert.equal(measureBody("Converse", body).maxOutputTokens, undefined, "Converse reads no top-level max_tokens: the model's maximum is reserved");
    assert.deepEqual(withMaxTokensAtMost(body, 100, "Converse"), { messages: [], max_tokens: 1, inferenceConfig: { maxTokens: 100 } });
    assert.equal(measureBody("Converse", { messages: [], max_tokens: 1, inferenceConfig: { maxTokens: 50 } }).maxOutputTokens, 50);
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

describe("metering/bodyRewrite: which InvokeModel bodies carry over", () => {
  it("Amazon Nova's image, video, speech and embedding models do not read the Nova chat body: a downgrade between them and a chat model is refused", () => {
    for (const chat of ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0", "amazon.nova-premier-v1:0", "amazon.nova-2-lite-v1:0"]) {
      assert.equal(invokeBodyFormat(chat), "Amazon Nova", chat);
    }
    for (const other of ["amazon.nova-canvas-v1:0", "amazon.nova-reel-v1:1", "amazon.nova-sonic-v1:0", "amazon.nova-2-multimodal-embeddings-v1:0"]) {
      assert.equal(invokeBodyFormat(other), undefined, other);
      // A text-to-image body (taskType TEXT_IMAGE) sent to Nova Micro is refused by Bedrock: the gateway refuses it first, saying why.
      assert.match(downgradeProblem("InvokeModel", { modelId: other, baseModelId: other }, { modelId: "amazon.nova-micro-v1:0", baseModelId: "amazon.nova-micro-v1:0" })!, /cannot be downgraded safely/, other);
    }
  });
});

describe("metering/bodyRewrite: Anthropic's legacy models", () => {
  const claude = (id: string) => ({ modelId: id, baseModelId: id });
  const textCompletions = { prompt: "\n\nHuman: hi\n\nAssistant:", max_tokens_to_sample: 300 };
  const messages = { anthropic_version: "bedrock-2023-05-31", max_tokens: 300, messages: [{ role: "user", content: "hi" }] };
  it("a Claude 2 / Instant Text Completions body (prompt, max_tokens_to_sample), which Claude 3 and later refuse: that downgrade is refused; the other way, and between legacy models, it goes", () => {
    for (const legacy of ["anthropic.claude-v2", "anthropic.claude-v2:1", "anthropic.claude-instant-v1"]) {
      assert.match(downgradeProblem("InvokeModel", claude(legacy), claude("anthropic.claude-3-haiku-20240307-v1:0"), textCompletions)!, /Text Completions body.*cannot be downgraded safely/, legacy);
      assert.match(downgradeProblem("InvokeModelWithResponseStream", claude(legacy), claude("anthropic.claude-haiku-4-5-20251001-v1:0"), { max_tokens_to_sample: 300, prompt: "x" })!, /Text Completions/, legacy);
      assert.equal(downgradeProblem("InvokeModel", claude(legacy), claude("anthropic.claude-instant-v1"), textCompletions), undefined, legacy);
      // A Messages body (all a Claude 3+ body can be) is read by the legacy models too.
      assert.equal(downgradeProblem("InvokeModel", claude("anthropic.claude-3-opus-20240229-v1:0"), claude(legacy)), undefined, legacy);
    }
    assert.equal(downgradeProblem("Converse", claude("anthropic.claude-v2:1"), claude("anthropic.claude-3-haiku-20240307-v1:0")), undefined, "Converse is one format");
  });

  it("a Claude 2 / Instant call in the Messages format goes to Claude 3 and later, as it did (Bedrock takes Messages on both)", () => {
    for (const legacy of ["anthropic.claude-v2", "anthropic.claude-v2:1", "anthropic.claude-instant-v1"]) {
      assert.equal(downgradeProblem("InvokeModel", claude(legacy), claude("anthropic.claude-3-haiku-20240307-v1:0"), messages), undefined, legacy);
      assert.equal(downgradeProblem("InvokeModelWithResponseStream", claude(legacy), claude("anthropic.claude-haiku-4-5-20251001-v1:0"), messages), undefined, legacy);
      // The what-if has no body (the journal keeps none): taken for Messages, as most calls are.
      assert.equal(downgradeProblem("InvokeModel", claude(legacy), claude("anthropic.claude-3-haiku-20240307-v1:0")), undefined, legacy);
    }
  });
});
