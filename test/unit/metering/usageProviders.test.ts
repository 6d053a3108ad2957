// Real usage of every provider's response and stream shapes, to the token: what the ledger charges after a call.
import assert from "node:assert/strict";
import { chunk, enc, event, frame } from "../../support/eventFrames";
import { StreamUsageTracker, appliedTierFromConverse, appliedTierFromHeaders, usageFromConverse, usageFromInvokeModel } from "../../../server/metering/usage";

// cl100k counts used below (checked by hand with the tokenizer): "Hello" 1, " world" 1, "ok" 1, "Bonjour" 1.
// Text received after the last reported count is reserved at ceil(raw × 1.2): 1 → 2, 2 → 3, 3 → 4, 4 → 5.

const usage = (inputTokens: number, outputTokens: number, cacheReadInputTokens = 0, cacheWrite5mInputTokens = 0, cacheWrite1hInputTokens = 0) => ({
  inputTokens,
  outputTokens,
  cacheReadInputTokens,
  cacheWrite5mInputTokens,
  cacheWrite1hInputTokens,
});
const invoke = () => new StreamUsageTracker("InvokeModelWithResponseStream", 77);

describe("usage: InvokeModel bodies and headers", () => {
  it("reads header counts with spaces, repeated headers by their first value, and skips malformed ones for the body", () => {
    const body = enc({ usage: { input_tokens: 5, output_tokens: 6 } });
    assert.deepEqual(usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": " 12 ", "x-amzn-bedrock-output-token-count": ["34", "99"] }, body), usage(12, 34));
    assert.deepEqual(usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "12abc", "x-amzn-bedrock-output-token-count": "34" }, body), usage(5, 6));
    assert.deepEqual(usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "12", "x-amzn-bedrock-output-token-count": undefined }, body), usage(5, 6));
    assert.deepEqual(usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "-3", "x-amzn-bedrock-output-token-count": "34" }, body), usage(5, 6));
  });

  it("takes cache reads from the header, else the body; a header write total the body does not match is re-split, 1h first", () => {
    const body = enc({ usage: { input_tokens: 5, output_tokens: 6, cache_read_input_tokens: 7, cache_creation_input_tokens: 90, cache_creation: { ephemeral_5m_input_tokens: 50, ephemeral_1h_input_tokens: 40 } } });
    const h = { "x-amzn-bedrock-input-token-count": "100", "x-amzn-bedrock-output-token-count": "20" };
    assert.deepEqual(usageFromInvokeModel(h, body), usage(100, 20, 7, 50, 40));
    assert.deepEqual(usageFromInvokeModel({ ...h, "x-amzn-bedrock-cache-read-input-token-count": "8" }, body), usage(100, 20, 8, 50, 40));
    assert.deepEqual(usageFromInvokeModel({ ...h, "x-amzn-bedrock-cache-write-input-token-count": "90" }, body), usage(100, 20, 7, 50, 40));
    assert.deepEqual(usageFromInvokeModel({ ...h, "x-amzn-bedrock-cache-write-input-token-count": "30" }, body), usage(100, 20, 7, 0, 30));
    assert.deepEqual(usageFromInvokeModel({ ...h, "x-amzn-bedrock-cache-write-input-token-count": "120" }, body), usage(100, 20, 7, 80, 40));
    assert.deepEqual(usageFromInvokeModel({ ...h, "x-amzn-bedrock-cache-write-input-token-count": "25" }, enc({})), usage(100, 20, 0, 25, 0));
  });

  it("splits Anthropic cache writes: no split given is all 5-minute; a partial split leaves the rest to 5 minutes", () => {
    const body = (u: unknown) => enc({ usage: { input_tokens: 10, output_tokens: 1, ...(u as object) } });
    assert.deepEqual(usageFromInvokeModel({}, body({ cache_creation_input_tokens: 100 })), usage(10, 1, 0, 100, 0));
    assert.deepEqual(usageFromInvokeModel({}, body({ cache_creation_input_tokens: 100, cache_creation: { ephemeral_1h_input_tokens: 40 } })), usage(10, 1, 0, 60, 40));
    assert.deepEqual(usageFromInvokeModel({}, body({ cache_creation_input_tokens: 100, cache_creation: { ephemeral_5m_input_tokens: 70, ephemeral_1h_input_tokens: 40 } })), usage(10, 1, 0, 70, 40));
    assert.deepEqual(usageFromInvokeModel({}, body({ cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 } })), usage(10, 1, 0, 0, 0));
    assert.deepEqual(usageFromInvokeModel({}, enc({ usage: { input_tokens: 10 } })), usage(10, 0));
  });

  it("reads OpenAI-style cached prompt tokens as cache reads (never a negative input), Nova cache counts, Titan results, Cohere meta.tokens", () => {
    assert.deepEqual(usageFromInvokeModel({}, enc({ usage: { prompt_tokens: 100, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 30 } } })), usage(70, 9, 30));
    assert.deepEqual(usageFromInvokeModel({}, enc({ usage: { prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 30 } } })), usage(0, 0, 30));
    assert.deepEqual(usageFromInvokeModel({}, enc({ usage: { inputTokens: 11, outputTokens: 12, cacheReadInputTokenCount: 13, cacheWriteInputTokenCount: 14 } })), usage(11, 12, 13, 14));
    assert.deepEqual(usageFromInvokeModel({}, enc({ usage: { inputTokens: 11 } })), usage(11, 0));
    assert.deepEqual(usageFromInvokeModel({}, enc({ prompt_token_count: 21 })), usage(21, 0));
    assert.deepEqual(usageFromInvokeModel({}, enc({ inputTextTokenCount: 8, results: [{ tokenCount: 3 }, { tokenCount: 4 }, {}] })), usage(8, 7));
    assert.deepEqual(usageFromInvokeModel({}, enc({ inputTextTokenCount: 8 })), usage(8, 0));
    assert.deepEqual(usageFromInvokeModel({}, enc({ meta: { tokens: { input_tokens: 15, output_tokens: 16 } } })), usage(15, 16));
    assert.deepEqual(usageFromInvokeModel({}, enc({ meta: { billed_units: { input_tokens: 15 }, tokens: { input_tokens: 99, output_tokens: 99 } } })), usage(15, 0));
  });

  it("ignores negative, non-finite or non-numeric counts and bodies that are not objects", () => {
    assert.equal(usageFromInvokeModel({}, enc({ usage: { input_tokens: -1 } })), undefined);
    assert.equal(usageFromInvokeModel({}, enc({ usage: { input_tokens: "10" } })), undefined);
    assert.equal(usageFromInvokeModel({}, enc({ usage: [{ input_tokens: 10 }] })), undefined);
    assert.equal(usageFromInvokeModel({}, enc(null)), undefined);
    assert.equal(usageFromInvokeModel({}, new Uint8Array()), undefined);
    assert.equal(usageFromInvokeModel({}, new TextEncoder().encode("{not json")), undefined);
    // A count that is there but unreadable makes the usage unreadable (worst case), never 0 tokens.
    assert.equal(usageFromInvokeModel({}, enc({ usage: { input_tokens: 0, output_tokens: -5 } })), undefined);
  });
});

describe("usage: Converse and tiers", () => {
  it("a cache-write total larger than its details counts the rest as 5-minute writes; details larger than the total win", () => {
    assert.deepEqual(usageFromConverse({ usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 3, cacheWriteInputTokens: 100, cacheDetails: [{ ttl: "1h", inputTokens: 40 }, { ttl: "5m", inputTokens: 20 }] } }), usage(1, 2, 3, 60, 40));
    assert.deepEqual(usageFromConverse({ usage: { inputTokens: 1, outputTokens: 2, cacheWriteInputTokens: 10, cacheDetails: [{ ttl: "1h", inputTokens: 40 }, { ttl: "5m", inputTokens: 20 }] } }), usage(1, 2, 0, 20, 40));
    assert.deepEqual(usageFromConverse({ usage: { inputTokens: 1, outputTokens: 2, cacheDetails: [{ ttl: "1h" }] } }), usage(1, 2));
    assert.equal(usageFromConverse({ usage: { inputTokens: 1 } }), undefined);
  });

  it("reads the applied tier from headers (empty ones ignored) and from Converse's string or object form", () => {
    assert.deepEqual(appliedTierFromHeaders({ "X-Amzn-Bedrock-Service-Tier": "flex", "x-amzn-bedrock-performanceconfig-latency": "optimized" }), { serviceTier: "flex", latency: "optimized" });
    assert.deepEqual(appliedTierFromHeaders({ "x-amzn-bedrock-service-tier": "", "x-amzn-bedrock-performanceconfig-latency": "" }), {});
    assert.deepEqual(appliedTierFromConverse({ serviceTier: "priority" }), { serviceTier: "priority" });
    assert.deepEqual(appliedTierFromConverse({ serviceTier: { type: 3 }, performanceConfig: { latency: 5 } }), {});
  });
});

describe("usage: streams of every provider", () => {
  it("Nova: text deltas, then the metadata usage, then invocation metrics that keep the cache counts", () => {
    const t = invoke();
    t.onEvent(chunk({ contentBlockDelta: { delta: { text: "Hello" } } }));
    assert.deepEqual(t.current(), usage(77, 2));
    t.onEvent(chunk({ contentBlockDelta: { delta: { text: " world" } } }));
    assert.deepEqual(t.current(), usage(77, 3));
    t.onEvent(chunk({ metadata: { usage: { inputTokens: 40, outputTokens: 2, cacheReadInputTokenCount: 10, cacheWriteInputTokenCount: 5 } } }));
    assert.deepEqual(t.current(), usage(40, 2, 10, 5));
    t.onEvent(chunk({ contentBlockDelta: { delta: { text: "ok" } } }));
    assert.deepEqual(t.current(), usage(40, 4, 10, 5)); // 2 reported + ceil(1 × 1.2)
    t.onEvent(chunk({ "amazon-bedrock-invocationMetrics": { inputTokenCount: 40, outputTokenCount: 3 } }));
    assert.deepEqual(t.final(), usage(40, 3, 10, 5));
  });

  it("Titan: cumulative output counts reset the text counted since", () => {
    const t = invoke();
    t.onEvent(chunk({ outputText: "Hello", inputTextTokenCount: 12, totalOutputTextTokenCount: 1 }));
    assert.deepEqual(t.current(), usage(12, 1));
    t.onEvent(chunk({ outputText: " world" }));
    assert.deepEqual(t.current(), usage(12, 3));
  });

  it("OpenAI-style, Mistral and Cohere chunks count every text field of theirs", () => {
    const t = invoke();
    t.onEvent(chunk({ choices: [{ delta: { content: "Hello", reasoning_content: "ok" } }] }));
    assert.deepEqual(t.current(), usage(77, 3));
    t.onEvent(chunk({ choices: [{ message: { content: "Bonjour" } }, { text: " world" }] }));
    assert.deepEqual(t.current(), usage(77, 5));
    const m = invoke();
    m.onEvent(chunk({ outputs: [{ text: "Hello" }, { text: " world" }] }));
    assert.deepEqual(m.current(), usage(77, 3));
    const c = invoke();
    c.onEvent(chunk({ event_type: "text-generation", text: "Hello" }));
    c.onEvent(chunk({ event_type: "stream-end", text: "Hello world" }));
    assert.deepEqual(c.current(), usage(77, 2));
  });

  it("Anthropic thinking and tool-input deltas count as output; metrics split a smaller cache-write total 1h first", () => {
    const t = invoke();
    t.onEvent(chunk({ type: "message_start", message: { usage: { input_tokens: 300, cache_read_input_tokens: 20, cache_creation_input_tokens: 150, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 50 } } } }));
    t.onEvent(chunk({ type: "content_block_delta", delta: { thinking: "Hello" } }));
    t.onEvent(chunk({ type: "content_block_delta", delta: { partial_json: "ok" } }));
    assert.deepEqual(t.current(), usage(300, 3, 20, 100, 50));
    t.onEvent(chunk({ type: "message_delta", usage: {} })); // no count: the running figure stays
    assert.deepEqual(t.current(), usage(300, 3, 20, 100, 50));
    t.onEvent(chunk({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 300, outputTokenCount: 9, cacheWriteInputTokenCount: 30 } }));
    assert.deepEqual(t.final(), usage(300, 9, 20, 0, 30));
  });

  it("metrics without a cache-write figure keep message_start's split; metrics missing a count are not final", () => {
    const t = invoke();
    t.onEvent(chunk({ type: "message_start", message: { usage: { input_tokens: 300, cache_creation_input_tokens: 150, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 50 } } } }));
    t.onEvent(chunk({ "amazon-bedrock-invocationMetrics": { inputTokenCount: 300 } }));
    assert.equal(t.final(), undefined);
    t.onEvent(chunk({ "amazon-bedrock-invocationMetrics": { inputTokenCount: 300, outputTokenCount: 4, cacheReadInputTokenCount: 6 } }));
    assert.deepEqual(t.final(), usage(300, 4, 6, 100, 50));
    const bare = invoke();
    bare.onEvent(chunk({ "amazon-bedrock-invocationMetrics": { inputTokenCount: 1, outputTokenCount: 2, cacheWriteInputTokenCount: 7 } }));
    assert.deepEqual(bare.final(), usage(1, 2, 0, 7, 0));
  });

  it("ignores frames that are not chunks of the Invoke stream, chunks without bytes, and empty bodies", () => {
    const t = invoke();
    t.onEvent(event("contentBlockDelta", { delta: { text: "Hello" } })); // a Converse event on an Invoke stream
    t.onEvent(event("chunk", { bytes: 42 }));
    t.onEvent(frame({ ":message-type": "event", ":event-type": "chunk" }, new Uint8Array()));
    t.onEvent(frame({ ":event-type": "chunk" }, enc({ bytes: Buffer.from(JSON.stringify({ outputText: "Hello" })).toString("base64") })));
    assert.deepEqual(t.current(), usage(77, 0));
  });

  it("ConverseStream: reasoning text counts; a metadata event without usage gives a tier but no final figure", () => {
    const t = new StreamUsageTracker("ConverseStream", 50);
    t.onEvent(event("contentBlockDelta", { delta: { reasoningContent: { text: "Hello" } } }));
    t.onEvent(event("chunk", { bytes: Buffer.from(JSON.stringify({ outputText: "Hello world" })).toString("base64") })); // not a Converse event
    assert.deepEqual(t.current(), usage(50, 2));
    t.onEvent(event("metadata", { serviceTier: { type: "flex" } }));
    assert.equal(t.final(), undefined);
    assert.deepEqual(t.appliedTier(), { serviceTier: "flex" });
    const f = t.current();
    f.outputTokens = 999; // a copy: the tracker's figure cannot be changed from outside
    assert.deepEqual(t.current(), usage(50, 2));
  });
});
