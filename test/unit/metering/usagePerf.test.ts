/**
 * A stream's per-frame reading (StreamUsageTracker) read fast without learning anything different:
 * each kind of frame the fast paths take, and each near miss they must leave to JSON.parse, gives
 * the counts, characters, trace and final usage JSON.parse's full read gives.
 */
import assert from "node:assert/strict";
import v8 from "node:v8";
import { StreamUsageTracker } from "../../../server/metering/usage";
import { countRawTokens, scaleTokens } from "../../../server/metering/tokens";
import { frame } from "../../support/eventFrames";

const utf8 = (text: string) => new TextEncoder().encode(text);
const b64 = (text: string) => Buffer.from(text).toString("base64");
/** An Invoke stream's `chunk` event whose body is `body` as written (not re-serialised). */
const rawEvent = (body: string | Uint8Array, eventType = "chunk") =>
  frame({ ":message-type": "event", ":event-type": eventType }, typeof body === "string" ? utf8(body) : body);
/** The usual chunk event, with Bedrock's padding, around the model's JSON as written. */
const usual = (model: string, p = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123") => rawEvent(`{"bytes":"${b64(model)}","p":"${p}"}`);

function invoke(...events: ReturnType<typeof frame>[]): StreamUsageTracker {
  const t = new StreamUsageTracker("InvokeModelWithResponseStream", 10);
  for (const e of events) t.onEvent(e);
  return t;
}

/** What the full read learns from one Anthropic delta: its text's characters and tokens (with the margin). */
function learnt(texts: string[]): { chars: number; outputTokens: number } {
  return { chars: texts.reduce((n, t) => n + t.length, 0), outputTokens: scaleTokens(texts.reduce((n, t) => n + countRawTokens(t), 0)) };
}
const read = (t: StreamUsageTracker) => ({ chars: t.outputChars(), outputTokens: t.current().outputTokens });

describe("StreamUsageTracker, frames read without JSON.parse building their objects", () => {
  /** Counts JSON.parse calls on an object's text (`{…`) during `run`. */
  function objectParses(run: () => void): number {
    const parse = JSON.parse;
    let n = 0;
    JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
      if (typeof text === "string" && text.startsWith("{")) n++;
      return parse(text, reviver);
    }) as typeof JSON.parse;
    try {
      run();
    } finally {
      JSON.parse = parse;
    }
    return n;
  }

  it("reads Bedrock's usual chunk and Anthropic's text, thinking and tool-input deltas without parsing an object", () => {
    const deltas = [
      `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, world"}}`,
      `{"type":"content_block_delta","index":12,"delta":{"type":"thinking_delta","thinking":"step one\\nstep \\"two\\" \\u00e9\\/"}}`,
      `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Par"}}`,
      `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}`,
      `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"héllo ✓ 😀"}}`,
    ];
    // Base64 with two, one and no padding characters; with Bedrock's padding field and without it.
    const events = [
      ...deltas.map((d) => usual(d)),
      rawEvent(`{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`)}"}`),
      rawEvent(`{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab"}}`)}","p":"x-_9"}`),
      rawEvent(`{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"abc"}}`)}","p":""}`),
    ];
    assert.deepEqual(events.slice(-3).map((e) => (/=*"/.exec(new TextDecoder().decode(e.body).slice(10)) ?? [""])[0]).sort(), ['"', '="', '=="']);
    let tracker!: StreamUsageTracker;
    assert.equal(objectParses(() => (tracker = invoke(...events))), 0);
    const texts = ["Hello, world", 'step one\nstep "two" é/', '{"city": "Par', "", "héllo ✓ 😀", "a", "ab", "abc"];
    assert.deepEqual(read(tracker), learnt(texts));
  });

  it("parses the chunk in full when its bytes are not the usual event's, and learns the same as before", () => {
    // Whitespace, another key, keys in another order: each parsed once as the event and once as the model's JSON.
    const model = `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi there"}}`;
    for (const body of [`{ "bytes":"${b64(model)}"}`, `{"bytes":"${b64(model)}","q":"x"}`, `{"p":"x","bytes":"${b64(model)}"}`]) {
      let t!: StreamUsageTracker;
      assert.equal(objectParses(() => (t = invoke(rawEvent(body)))), 1, body);
      assert.deepEqual(read(t), learnt(["Hi there"]), body);
    }
  });

  /** Near misses of the fast paths: each must give exactly what JSON.parse's full read gives. */
  const oracle = (eventBody: string): string[] => {
    let bytes: unknown;
    try {
      bytes = (JSON.parse(eventBody) as { bytes?: unknown }).bytes;
    } catch {
      return [];
    }
    if (typeof bytes !== "string") return [];
    let model: { type?: unknown; delta?: Record<string, unknown> };
    try {
      model = JSON.parse(Buffer.from(bytes, "base64").toString()) as typeof model;
    } catch {
      return [];
    }
    if (model?.type !== "content_block_delta") return [];
    return ["text", "thinking", "partial_json"].map((k) => model.delta?.[k]).filter((v): v is string => typeof v === "string");
  };
  const near = (inner: string) => `{"bytes":"${b64(inner)}","p":"abc"}`;
  const cases: Record<string, string> = {
    "junk before the event": `x{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}`)}"}`,
    "junk after the event": `{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}`)}"}x`,
    "an escaped slash in the base64": `{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"??>??>"}}`).replace(/\//g, "\\/")}"}`,
    "a unicode escape in the base64": `{"bytes":"\\u0065${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}`).slice(1)}"}`,
    "the bytes a number": `{"bytes":12,"p":"abc"}`,
    "a padding field with a quote": `{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}`)}","p":"a\\"b"}`,
    "junk after the padding": `{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}`)}","p":"ab"}}`,
    "base64 padding inside the bytes": `{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`)}${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"yy"}}`)}"}`,
    "a second text key": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","text":"bb"}}`),
    "a key after the delta": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"},"type":"message_delta"}`),
    "a key after the text": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","thinking":"bbbb"}}`),
    "a text with a raw newline": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\nb"}}`),
    "a text with a bad escape": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\\qb"}}`),
    "a text ending in a backslash": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab\\"}}`),
    "a text that is only a quote": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"}}`),
    "a text that is a number": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":12}}`),
    "an index with a leading zero": near(`{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"ab"}}`),
    "a negative index": near(`{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"ab"}}`),
    "junk before the model's JSON": near(` {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab"}}`),
    "junk after the model's JSON": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab"}} `),
    "another delta key": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","citation":"abc"}}`),
    "a delta type with a capital": near(`{"type":"content_block_delta","index":0,"delta":{"type":"Text_delta","text":"abc"}}`),
    "an empty delta type": near(`{"type":"content_block_delta","index":0,"delta":{"type":"","text":"abc"}}`),
    "a delta with no type": near(`{"type":"content_block_delta","index":0,"delta":{"text":"abc"}}`),
    "another event type": near(`{"type":"content_block_start","index":0,"delta":{"type":"text_delta","text":"abc"}}`),
    "no index": near(`{"type":"content_block_delta","delta":{"type":"text_delta","text":"abc"}}`),
    "the delta closed by brackets": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab"]]`),
    "the bytes an array of the model JSON's bytes": `{"bytes":[${[...Buffer.from(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab"}}`)].join(",")}]}`,
    "junk before the delta": near(`x{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab"}}`),
    "the text in another object": near(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":{"a":"b"}}}`),
  };
  for (const [name, body] of Object.entries(cases)) {
    it(`learns what the full read learns from a chunk with ${name}`, () => {
      assert.deepEqual(read(invoke(rawEvent(body))), learnt(oracle(body)));
    });
  }

  it("still counts a 4 MB delta's text, escapes and all", () => {
    const text = "a\nb\"c\\".repeat(700_000);
    const t = invoke(usual(JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } })));
    assert.equal(t.outputChars(), text.length);
  });

  it("reads usage, metrics and the guardrail trace from chunks in the usual event, and from a delta beside them", () => {
    const t = invoke(
      usual(JSON.stringify({ type: "message_start", message: { usage: { input_tokens: 25, output_tokens: 1, cache_read_input_tokens: 7 } } })),
      usual(JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello there" } })),
    );
    assert.deepEqual(t.current(), { inputTokens: 25, cacheReadInputTokens: 7, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0, outputTokens: learnt(["Hello there"]).outputTokens });
    t.onEvent(usual(JSON.stringify({ type: "message_delta", usage: { output_tokens: 9 } })));
    assert.equal(t.current().outputTokens, 9);
    t.onEvent(usual(JSON.stringify({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: 25, outputTokenCount: 11 }, "amazon-bedrock-trace": { guardrail: { action: "NONE" } } })));
    assert.deepEqual(t.final(), { inputTokens: 25, outputTokens: 11, cacheReadInputTokens: 7, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 });
    assert.deepEqual(t.guardrailTrace(), { action: "NONE" });
  });

  it("ignores an Invoke stream's events other than chunks, and a ConverseStream's unreadable events", () => {
    const delta = `{"bytes":"${b64(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}`)}"}`;
    assert.deepEqual(read(invoke(rawEvent(delta, "other"))), { chars: 0, outputTokens: 0 });
    const converse = new StreamUsageTracker("ConverseStream", 10);
    converse.onEvent(rawEvent(`{"delta":{"text":"hello"}}`, "contentBlockDelta"));
    converse.onEvent(rawEvent(`{"delta":{"text":"hel`, "contentBlockDelta"));
    converse.onEvent(rawEvent(delta, "contentBlockDelta"));
    assert.deepEqual(read(converse), learnt(["hello"]));
  });
});

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
