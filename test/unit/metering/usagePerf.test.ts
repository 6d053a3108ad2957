/** A stream's per-frame work in StreamUsageTracker, done without changing what it reports. */
import assert from "node:assert/strict";
import v8 from "node:v8";
import { StreamUsageTracker } from "../../../server/metering/usage";
import { frame } from "../../support/eventFrames";

const utf8 = (text: string) => new TextEncoder().encode(text);
const b64 = (text: string) => Buffer.from(text).toString("base64");
const rawEvent = (body: string) => frame({ ":message-type": "event", ":event-type": "chunk" }, utf8(body));
/** The usual chunk event, with Bedrock's padding, around the model's JSON as written. */
const usual = (model: string, p = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123") => rawEvent(`{"bytes":"${b64(model)}","p":"${p}"}`);

function invoke(...events: ReturnType<typeof frame>[]): StreamUsageTracker {
  const t = new StreamUsageTracker("InvokeModelWithResponseStream", 10);
  for (const e of events) t.onEvent(e);
  return t;
}

describe("StreamUsageTracker.current(), once per frame", () => {
  it("gives every frame's running usage one hidden class, in the same key order (a new class per frame cost ~1 µs)", () => {
    v8.setFlagsFromString("--allow-natives-syntax");
    // V8's own test of two objects' hidden classes (maps).
    const sameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: unknown, b: unknown) => boolean;
    const start = usual(JSON.stringify({ type: "message_start", message: { usage: { input_tokens: 25, output_tokens: 1 } } }));
    const delta = usual(JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "tok " } }));
    const seen: unknown[] = [];
    // Enough frames for V8 to optimise current(), as a busy gateway's is.
    for (let i = 0; i < 3000; i++) {
      const t = invoke(start);
      for (let j = 0; j < 20; j++) {
        t.onEvent(delta);
        const u = t.current();
        if (i % 1000 === 999 && j % 10 === 0) seen.push(u);
      }
    }
    for (const u of seen) assert.ok(sameMap(u, seen[0]), "current() made an object of a new hidden class");
    assert.deepEqual(Object.keys(seen[0]!), ["inputTokens", "cacheReadInputTokens", "cacheWrite5mInputTokens", "cacheWrite1hInputTokens", "outputTokens"]);
    // Before any input is reported (the estimate's) and with Llama's: the canonical order.
    const early = new StreamUsageTracker("InvokeModelWithResponseStream", 10).current();
    assert.deepEqual(Object.keys(early), ["inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWrite5mInputTokens", "cacheWrite1hInputTokens"]);
    const llama = invoke(usual(JSON.stringify({ generation: "hi", prompt_token_count: 5, generation_token_count: 1 }))).current();
    assert.deepEqual(llama, { inputTokens: 5, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 });
    assert.deepEqual(Object.keys(llama), Object.keys(early));
  });
});
