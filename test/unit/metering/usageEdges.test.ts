// Edges of the usage readers that a metering bug would slip through: header/body disagreement on
// cache writes, events that must be ignored, and Llama text counted when no counter is sent.
import assert from "node:assert/strict";
import { StreamUsageTracker, usageFromConverse, usageFromInvokeModel } from "../../../server/metering/usage";
import { countRawTokens, scaleTokens } from "../../../server/metering/tokens";
import { enc, event, frame } from "../../support/eventFrames";

const bytesOf = (model: unknown) => Buffer.from(JSON.stringify(model)).toString("base64");

describe("usageFromInvokeModel: cache writes from headers and body", () => {
  it("keeps the body's cache writes when the headers give token counts but no cache-write total", () => {
    const body = { usage: { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 300, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 } } };
    const u = usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "10", "x-amzn-bedrock-output-token-count": "5" }, enc(body));
    assert.deepEqual(u, { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 100, cacheWrite1hInputTokens: 200 });
  });

  it("takes the header's cache-write total when it differs from the body's split, keeping the 1-hour part", () => {
    const body = { usage: { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 300, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 } } };
    const more = usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "10", "x-amzn-bedrock-output-token-count": "5", "x-amzn-bedrock-cache-write-input-token-count": "500" }, enc(body));
    assert.deepEqual([more?.cacheWrite5mInputTokens, more?.cacheWrite1hInputTokens], [300, 200]);
    const less = usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "10", "x-amzn-bedrock-output-token-count": "5", "x-amzn-bedrock-cache-write-input-token-count": "150" }, enc(body));
    assert.deepEqual([less?.cacheWrite5mInputTokens, less?.cacheWrite1hInputTokens], [0, 150]);
  });

  it("reads the first header that has a value when a map repeats a name in another case", () => {
    const u = usageFromInvokeModel(
      { "X-Amzn-Bedrock-Input-Token-Count": undefined, "x-amzn-bedrock-input-token-count": "12", "x-amzn-bedrock-output-token-count": "3" },
      enc({}),
    );
    assert.deepEqual([u?.inputTokens, u?.outputTokens], [12, 3]);
  });
});

describe("StreamUsageTracker: events to ignore", () => {
  it("counts only `chunk` events of an InvokeModelWithResponseStream", () => {
    const t = new StreamUsageTracker("InvokeModelWithResponseStream", 10);
    t.onEvent(event("chunk", { bytes: bytesOf({ type: "message_delta", usage: { output_tokens: 7 } }) }));
    t.onEvent(event("somethingElse", { bytes: bytesOf({ type: "message_delta", usage: { output_tokens: 900 } }) }));
    assert.equal(t.current().outputTokens, 7);
  });

  it("keeps a ConverseStream's reported tier when a later event cannot be read", () => {
    const t = new StreamUsageTracker("ConverseStream", 10);
    t.onEvent(event("metadata", { usage: { inputTokens: 5, outputTokens: 2, totalTokens: 7 }, serviceTier: { type: "flex" } }));
    t.onEvent(frame({ ":message-type": "event", ":event-type": "metadata", ":content-type": "application/json" }, new TextEncoder().encode("{not json")));
    assert.deepEqual(t.appliedTier(), { serviceTier: "flex" });
    assert.deepEqual([t.final()?.inputTokens, t.final()?.outputTokens], [5, 2]);
  });

  it("counts Llama generation text while no running counter has arrived", () => {
    const t = new StreamUsageTracker("InvokeModelWithResponseStream", 10);
    const text = "A reply from a Llama model, streamed without counters.";
    t.onEvent(event("chunk", { bytes: bytesOf({ generation: text }) }));
    assert.equal(t.current().outputTokens, scaleTokens(countRawTokens(text)));
    assert.ok(t.current().outputTokens > 0);
  });
});

describe("token counts that are not whole numbers are unreadable", () => {
  it("a fractional, negative or unsafe count in a body, a header or the stream's final metrics gives no usage", () => {
    assert.equal(usageFromInvokeModel({}, enc({ usage: { input_tokens: 10.5, output_tokens: 3 } })), undefined);
    assert.equal(usageFromInvokeModel({}, enc({ usage: { input_tokens: 10, output_tokens: -1 } })), undefined, "not 0 output tokens");
    assert.equal(usageFromInvokeModel({}, enc({ usage: { input_tokens: 10, output_tokens: 2.5 } })), undefined);
    assert.equal(usageFromInvokeModel({ "x-amzn-bedrock-input-token-count": "9007199254740993", "x-amzn-bedrock-output-token-count": "5" }, enc({})), undefined);
    assert.equal(usageFromConverse({ usage: { inputTokens: 10, outputTokens: 2.5 } }), undefined);
    const t = new StreamUsageTracker("InvokeModelWithResponseStream", 10);
    t.onEvent(event("chunk", { bytes: bytesOf({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 10.5, outputTokenCount: 5 } }) }));
    assert.equal(t.final(), undefined, "settled at the worst case instead");
  });
});
