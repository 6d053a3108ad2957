import assert from "node:assert/strict";
import {
  StreamUsageTracker,
  appliedTierFromConverse,
  appliedTierFromHeaders,
  usageFromConverse,
  usageFromInvokeModel,
} from "../../../server/metering/usage";
import { countRawTokens, scaleTokens } from "../../../server/metering/tokens";
import { enc, event, frame } from "../../support/eventFrames";

/** A chunk with the random padding Bedrock adds to each (`p`). */
const chunk = (model: unknown) =>
  event("chunk", { bytes: Buffer.from(JSON.stringify(model)).toString("base64"), p: "abcdefghijklmnop" });

describe("usageFromInvokeModel", () => {
  it("prefers Bedrock's token-count headers, read case-insensitively", () => {
    const u = usageFromInvokeModel(
      {
        "X-Amzn-Bedrock-Input-Token-Count": "120",
        "x-amzn-bedrock-output-token-count": ["45"],
        "X-AMZN-BEDROCK-CACHE-READ-INPUT-TOKEN-COUNT": "300",
        "x-amzn-bedrock-cache-write-input-token-count": "80",
      },
      enc({ id: "x", content: [] }),
    );
    assert.deepEqual(u, { inputTokens: 120, outputTokens: 45, cacheReadInputTokens: 300, cacheWrite5mInputTokens: 80, cacheWrite1hInputTokens: 0 });
  });

  it("reads a header under another spelling when an earlier spelling of it is unset, and the first spelling that has a value", () => {
    const u = usageFromInvokeModel(
      {
        "X-Amzn-Bedrock-Input-Token-Count": undefined,
        "X-AMZN-BEDROCK-INPUT-TOKEN-COUNT": "7",
        "x-amzn-bedrock-input-token-count": "8",
        "x-amzn-bedrock-output-token-count": "3",
      },
      enc({ id: "x", content: [] }),
    );
    assert.equal(u?.inputTokens, 7);
  });

  it("keeps the body's 5m/1h split of the header's cache-write total", () => {
    const body = {
      usage: { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 300, cache_read_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 } },
    };
    const u = usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "10", "x-amzn-bedrock-output-token-count": "5", "x-amzn-bedrock-cache-write-input-token-count": "300" }, enc(body));
    assert.equal(u?.cacheWrite5mInputTokens, 100);
    assert.equal(u?.cacheWrite1hInputTokens, 200);
  });

  it("reads Anthropic's usage block, with cache writes split by TTL", () => {
    const u = usageFromInvokeModel({}, enc({
      type: "message",
      usage: { input_tokens: 1500, output_tokens: 250, cache_creation_input_tokens: 2048, cache_read_input_tokens: 4096, cache_creation: { ephemeral_5m_input_tokens: 48, ephemeral_1h_input_tokens: 2000 } },
    }));
    assert.deepEqual(u, { inputTokens: 1500, outputTokens: 250, cacheReadInputTokens: 4096, cacheWrite5mInputTokens: 48, cacheWrite1hInputTokens: 2000 });
    const old = usageFromInvokeModel({}, enc({ usage: { input_tokens: 7, output_tokens: 3, cache_creation_input_tokens: 90 } }));
    assert.equal(old?.cacheWrite5mInputTokens, 90);
  });

  it("reads Nova, Llama, Titan, OpenAI-style and Cohere bodies", () => {
    assert.deepEqual(usageFromInvokeModel({}, enc({ output: {}, usage: { inputTokens: 11, outputTokens: 22, totalTokens: 33, cacheReadInputTokenCount: 5, cacheWriteInputTokenCount: 6 } })), {
      inputTokens: 11, outputTokens: 22, cacheReadInputTokens: 5, cacheWrite5mInputTokens: 6, cacheWrite1hInputTokens: 0,
    });
    assert.deepEqual(usageFromInvokeModel({}, enc({ generation: "hi", prompt_token_count: 17, generation_token_count: 9 })), {
      inputTokens: 17, outputTokens: 9, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0,
    });
    assert.equal(usageFromInvokeModel({}, enc({ inputTextTokenCount: 4, results: [{ tokenCount: 6, outputText: "a" }, { tokenCount: 2 }] }))?.outputTokens, 8);
    const openai = usageFromInvokeModel({}, enc({ choices: [], usage: { prompt_tokens: 100, completion_tokens: 40, prompt_tokens_details: { cached_tokens: 30 } } }));
    assert.deepEqual([openai?.inputTokens, openai?.outputTokens, openai?.cacheReadInputTokens], [70, 40, 30]);
    assert.equal(usageFromInvokeModel({}, enc({ text: "x", meta: { billed_units: { input_tokens: 12, output_tokens: 3 } } }))?.inputTokens, 12);
  });

  it("returns undefined when neither headers nor body carry usage", () => {
    assert.equal(usageFromInvokeModel({}, enc({ outputs: [{ text: "hi" }] })), undefined);
    assert.equal(usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "5" }, new TextEncoder().encode("not json")), undefined);
  });
});

describe("usageFromConverse", () => {
  it("splits cache writes by cacheDetails TTL", () => {
    const u = usageFromConverse({
      output: { message: { role: "assistant", content: [{ text: "hi" }] } },
      usage: { inputTokens: 20, outputTokens: 10, totalTokens: 1530, cacheReadInputTokens: 500, cacheWriteInputTokens: 1000, cacheDetails: [{ ttl: "5m", inputTokens: 400 }, { ttl: "1h", inputTokens: 600 }] },
    });
    assert.deepEqual(u, { inputTokens: 20, outputTokens: 10, cacheReadInputTokens: 500, cacheWrite5mInputTokens: 400, cacheWrite1hInputTokens: 600 });
  });

  it("counts writes without details as 5-minute writes, and rejects a body without usage", () => {
    assert.equal(usageFromConverse({ usage: { inputTokens: 1, outputTokens: 1, cacheWriteInputTokens: 70 } })?.cacheWrite5mInputTokens, 70);
    assert.equal(usageFromConverse({ output: {} }), undefined);
    assert.equal(usageFromConverse("nope"), undefined);
  });
});

describe("applied tier", () => {
  it("reads the response headers and Converse fields", () => {
    assert.deepEqual(appliedTierFromHeaders({ "X-Amzn-Bedrock-Service-Tier": "priority", "x-amzn-bedrock-performanceconfig-latency": "optimized" }), { serviceTier: "priority", latency: "optimized" });
    // Maps with no lower-case name at all, in title case and in capitals.
    assert.deepEqual(appliedTierFromHeaders({ "X-Amzn-Bedrock-Service-Tier": "flex" }), { serviceTier: "flex" });
    assert.deepEqual(appliedTierFromHeaders({ "X-AMZN-BEDROCK-PERFORMANCECONFIG-LATENCY": "optimized" }), { latency: "optimized" });
    assert.deepEqual(appliedTierFromHeaders({}), {});
    assert.deepEqual(appliedTierFromConverse({ serviceTier: { type: "flex" }, performanceConfig: { latency: "standard" } }), { serviceTier: "flex", latency: "standard" });
  });
});

describe("StreamUsageTracker", () => {
  it("follows a realistic Anthropic InvokeModelWithResponseStream", () => {
    const t = new StreamUsageTracker("InvokeModelWithResponseStream", 999);
    assert.deepEqual(t.current(), { inputTokens: 999, outputTokens: 0, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 });

    t.onEvent(chunk({
      type: "message_start",
      message: { id: "msg_1", type: "message", role: "assistant", content: [], model: "claude", usage: { input_tokens: 1200, output_tokens: 1, cache_read_input_tokens: 300, cache_creation_input_tokens: 150, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 50 } } },
    }));
    assert.equal(t.current().inputTokens, 1200);
    assert.equal(t.current().cacheReadInputTokens, 300);
    assert.equal(t.current().outputTokens, 0); // message_start's output count is not a running count

    t.onEvent(chunk({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }));
    const deltas = ["Hello there, ", "this is a streamed answer ", "about budgets."];
    for (const text of deltas) t.onEvent(chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }));
    const raw = deltas.reduce((n, d) => n + countRawTokens(d), 0);
    assert.equal(t.current().outputTokens, scaleTokens(raw));
    assert.ok(t.current().outputTokens > 0);
    assert.equal(t.final(), undefined);

    t.onEvent(chunk({ type: "content_block_stop", index: 0 }));
    t.onEvent(chunk({ type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 12 } }));
    assert.equal(t.current().outputTokens, 12);
    t.onEvent(chunk({ type: "message_delta", delta: {}, usage: { output_tokens: 14 } }));
    assert.equal(t.current().outputTokens, 14); // cumulative: the last one wins

    t.onEvent(chunk({
      type: "message_stop",
      "amazon-bedrock-invocationMetrics": { inputTokenCount: 1200, outputTokenCount: 14, invocationLatency: 900, firstByteLatency: 300, cacheReadInputTokenCount: 300, cacheWriteInputTokenCount: 150 },
    }));
    const expected = { inputTokens: 1200, outputTokens: 14, cacheReadInputTokens: 300, cacheWrite5mInputTokens: 100, cacheWrite1hInputTokens: 50 };
    assert.deepEqual(t.final(), expected);
    assert.deepEqual(t.current(), expected);
  });

  it("ignores exception frames and undecodable payloads", () => {
    const t = new StreamUsageTracker("InvokeModelWithResponseStream", 50);
    t.onEvent(frame({ ":message-type": "exception", ":exception-type": "throttlingException" }, enc({ message: "slow down" })));
    t.onEvent(event("chunk", { bytes: "!!!not base64 json" }));
    assert.deepEqual(t.current().inputTokens, 50);
    assert.equal(t.final(), undefined);
  });

  it("the running output count's margin never takes it past the output limit (Bedrock stops there); a count past it without the margin counts in full", () => {
    const text = "word ".repeat(280);
    const raw = countRawTokens(text);
    assert.ok(raw < 300 && scaleTokens(raw) > 300, `the margin alone passes the limit (${raw} → ${scaleTokens(raw)})`);
    const near = new StreamUsageTracker("ConverseStream", 10, 300);
    near.onEvent(event("contentBlockDelta", { contentBlockIndex: 0, delta: { text } }));
    assert.equal(near.current().outputTokens, 300, "a stream that fits is not read past its limit");
    // A model that does not stop at the limit the gateway read (another field, ignored): counted as seen.
    const past = new StreamUsageTracker("ConverseStream", 10, 100);
    past.onEvent(event("contentBlockDelta", { contentBlockIndex: 0, delta: { text } }));
    assert.equal(past.current().outputTokens, raw);
    const unbounded = new StreamUsageTracker("ConverseStream", 10);
    unbounded.onEvent(event("contentBlockDelta", { contentBlockIndex: 0, delta: { text } }));
    assert.equal(unbounded.current().outputTokens, scaleTokens(raw));
  });

  it("adds up the characters of a stream's answer, text, tool input and reasoning alike (an attached guardrail's output without a trace)", () => {
    const t = new StreamUsageTracker("ConverseStream", 10);
    t.onEvent(event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Hello" } }));
    t.onEvent(event("contentBlockDelta", { contentBlockIndex: 1, delta: { toolUse: { input: '{"a":1}' } } }));
    t.onEvent(event("contentBlockDelta", { contentBlockIndex: 2, delta: { reasoningContent: { text: "hmm" } } }));
    assert.equal(t.outputChars(), 5 + 7 + 3);
  });

  it("keeps the guardrail trace a stream carries: ConverseStream's metadata event, InvokeModel's chunk, not lost to a later chunk without one", () => {
    const guardrail = { inputAssessment: { "gr-1": { invocationMetrics: { usage: { contentPolicyUnits: 1 } } } } };
    const converse = new StreamUsageTracker("ConverseStream", 10);
    assert.equal(converse.guardrailTrace(), undefined);
    converse.onEvent(event("metadata", { usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3 }, metrics: { latencyMs: 1 }, trace: { guardrail } }));
    assert.deepEqual(converse.guardrailTrace(), guardrail);
    const invoke = new StreamUsageTracker("InvokeModelWithResponseStream", 10);
    invoke.onEvent(chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "hi" }, "amazon-bedrock-trace": { guardrail } }));
    invoke.onEvent(chunk({ type: "message_stop" }));
    assert.deepEqual(invoke.guardrailTrace(), guardrail);
  });

  it("counts Llama stream chunks by their cumulative counters", () => {
    const t = new StreamUsageTracker("InvokeModelWithResponseStream", 10);
    t.onEvent(chunk({ generation: "Hello", prompt_token_count: 33, generation_token_count: 1, stop_reason: null }));
    t.onEvent(chunk({ generation: " world", prompt_token_count: null, generation_token_count: 2, stop_reason: null }));
    assert.deepEqual([t.current().inputTokens, t.current().outputTokens], [33, 2]);
  });

  it("follows a ConverseStream to its metadata event", () => {
    const t = new StreamUsageTracker("ConverseStream", 400);
    t.onEvent(event("messageStart", { role: "assistant", p: "abc" }));
    t.onEvent(event("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Bonjour, voici la réponse." }, p: "abcd" }));
    t.onEvent(event("contentBlockDelta", { contentBlockIndex: 1, delta: { toolUse: { input: "{\"city\":\"Paris\"}" } } }));
    const raw = countRawTokens("Bonjour, voici la réponse.") + countRawTokens("{\"city\":\"Paris\"}");
    assert.deepEqual([t.current().inputTokens, t.current().outputTokens], [400, scaleTokens(raw)]);
    t.onEvent(event("contentBlockStop", { contentBlockIndex: 1 }));
    t.onEvent(event("messageStop", { stopReason: "tool_use" }));
    assert.equal(t.final(), undefined);
    t.onEvent(event("metadata", {
      usage: { inputTokens: 380, outputTokens: 19, totalTokens: 1399, cacheReadInputTokens: 0, cacheWriteInputTokens: 1000, cacheDetails: [{ ttl: "1h", inputTokens: 1000 }] },
      metrics: { latencyMs: 812 },
      serviceTier: { type: "priority" },
    }));
    const expected = { inputTokens: 380, outputTokens: 19, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 1000 };
    assert.deepEqual(t.final(), expected);
    assert.deepEqual(t.current(), expected);
    assert.deepEqual(t.appliedTier(), { serviceTier: "priority" });
  });
});
