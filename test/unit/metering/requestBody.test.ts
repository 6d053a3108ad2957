// The body check before forwarding: every field the gateway reads to price a call, per provider format, has its documented type and a sane range.
import assert from "node:assert/strict";
import { checkRequestBody, EstimateError, measureBody, thinkingBudget } from "../../../server/metering/requestBody";
import type { Operation } from "../../../server/metering/types";

const raw = (op: Operation, text: string) => () => checkRequestBody(op, new TextEncoder().encode(text));
const body = (op: Operation, value: unknown) => raw(op, JSON.stringify(value));

/** Refused with an EstimateError whose message names the field and what is wrong. */
function refuses(check: () => unknown, message: RegExp): void {
  assert.throws(check, (err: unknown) => {
    assert.ok(err instanceof EstimateError, `an EstimateError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

const anthropic = { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [{ role: "user", content: "hello" }] };
const converse = { messages: [{ role: "user", content: [{ text: "hello" }] }], inferenceConfig: { maxTokens: 100 } };
/** `max_tokens` of the Anthropic body above replaced by raw JSON text (so 1e400 stays what a caller sent). */
const withMaxTokens = (text: string) => JSON.stringify(anthropic).replace('"max_tokens":100', `"max_tokens":${text}`);

describe("checkRequestBody: the fields that price a call", () => {
  describe("max-token fields of every provider format", () => {
    for (const bad of ['"100"', "true", "[]", "{}", "1e400", "-1e400", "-1e40", "-5", "0", "12.5", "99999999999999999999999999999999999999"]) {
      it(`refuses max_tokens ${bad}`, () => refuses(raw("InvokeModel", withMaxTokens(bad)), /^max_tokens: expected a whole number of tokens/));
    }

    const fields: Array<[string, Record<string, unknown>]> = [
      ["max_tokens_to_sample", { prompt: "\n\nHuman: hi\n\nAssistant:", max_tokens_to_sample: "300" }], // Anthropic legacy
      ["max_gen_len", { prompt: "hi", max_gen_len: -1 }], // Llama
      ["max_completion_tokens", { messages: [{ role: "user", content: "hi" }], max_completion_tokens: 1.5 }], // OpenAI-style
      ["inferenceConfig.max_new_tokens", { messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { max_new_tokens: false } }], // Nova
      ["textGenerationConfig.maxTokenCount", { inputText: "hi", textGenerationConfig: { maxTokenCount: "512" } }], // Titan
    ];
    for (const [path, value] of fields) {
      it(`refuses a wrong ${path} and names it`, () => refuses(body("InvokeModelWithResponseStream", value), new RegExp(`^${path.replace(/\./g, "\\.")}: expected a whole number of tokens`)));
    }

    it("accepts positive whole numbers, and null as not set", () => {
      body("InvokeModel", anthropic)();
      body("InvokeModel", { ...anthropic, max_tokens: Number.MAX_SAFE_INTEGER })();
      body("InvokeModel", { messages: [{ role: "user", content: "hi" }], max_completion_tokens: null })();
      body("InvokeModel", { inputText: "hi", textGenerationConfig: { maxTokenCount: 512, temperature: 0.5 } })();
    });
  });

  describe("InvokeModel bodies (provider formats)", () => {
    it("refuses messages that are not a list, and a message that is not an object", () => {
      for (const m of ["abc", 5, {}, true, null]) refuses(body("InvokeModel", { ...anthropic, messages: m }), /^messages: expected a list/);
      refuses(body("InvokeModel", { ...anthropic, messages: [7] }), /^messages\[0\]: expected an object; got a number/);
    });

    it("refuses a number where text goes, naming the path", () => {
      refuses(raw("InvokeModel", JSON.stringify(anthropic).replace('"content":"hello"', '"content":1e400')), /^messages\[0\]\.content: expected a string or a list of content blocks; got a number/);
      refuses(body("InvokeModel", { ...anthropic, messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] }), /^messages\[0\]\.content\[0\]\.text: expected a string; got a number/);
      refuses(body("InvokeModel", { ...anthropic, system: [{ type: "text", text: ["x"] }] }), /^system\[0\]\.text: expected a string; got a list/);
      refuses(body("InvokeModel", { ...anthropic, system: 3 }), /^system: expected a string or a list/);
      refuses(body("InvokeModel", { prompt: 42, max_gen_len: 10 }), /^prompt: expected a string/); // Llama
      refuses(body("InvokeModel", { inputText: {} }), /^inputText: expected a string/); // Titan
      refuses(body("InvokeModel", { message: "hi", chat_history: [{ role: "USER", message: 1 }] }), /^chat_history\[0\]\.message: expected a string/); // Cohere
    });

    it("refuses tool definitions that are not a list or hold a number out of range", () => {
      refuses(body("InvokeModel", { ...anthropic, tools: "calculator" }), /^tools: expected a list/);
      refuses(raw("InvokeModel", JSON.stringify({ ...anthropic, tools: [{ name: "t", input_schema: { maximum: 0 } }] }).replace('"maximum":0', '"maximum":1e400')), /^tools\[0\]\.input_schema\.maximum: expected a finite number/);
    });

    it("passes fields it does not read through untouched", () => {
      const json = body("InvokeModel", { ...anthropic, temperature: "hot", top_k: [], metadata: 5, messages: [{ role: 7, content: "hi" }] })();
      assert.equal(json.temperature, "hot");
    });
  });

  describe("Converse and ConverseStream", () => {
    it("refuses a number where text goes", () => {
      refuses(raw("Converse", JSON.stringify(converse).replace('"text":"hello"', '"text":1e400')), /^messages\[0\]\.content\[0\]\.text: expected a string; got a number/);
      refuses(body("ConverseStream", { ...converse, system: [{ text: false }] }), /^system\[0\]\.text: expected a string/);
      refuses(body("Converse", { ...converse, messages: [{ role: "user", content: [5] }] }), /^messages\[0\]\.content\[0\]: expected a content block/);
    });

    it("refuses a wrong inferenceConfig.maxTokens and additionalModelRequestFields.max_tokens", () => {
      for (const bad of ['"100"', "true", "1e400", "-1e40", "0", "99999999999999999999999999999999999999"]) {
        refuses(raw("Converse", JSON.stringify(converse).replace('"maxTokens":100', `"maxTokens":${bad}`)), /^inferenceConfig\.maxTokens: expected a whole number of tokens/);
      }
      refuses(body("Converse", { ...converse, additionalModelRequestFields: { max_tokens: "4096" } }), /^additionalModelRequestFields\.max_tokens: expected a whole number/);
    });

    it("refuses tools, a service tier or prompt variables it cannot read", () => {
      refuses(body("Converse", { ...converse, toolConfig: { tools: {} } }), /^toolConfig\.tools: expected a list/);
      refuses(body("Converse", { ...converse, serviceTier: { type: 1 } }), /^serviceTier\.type: expected a string/);
      refuses(body("Converse", { ...converse, performanceConfig: { latency: true } }), /^performanceConfig\.latency: expected a string/);
      refuses(body("Converse", { ...converse, promptVariables: { name: { text: 3 } } }), /^promptVariables\.name\.text: expected a string/);
    });

    it("accepts a valid body with tools, images and documents", () => {
      body("Converse", {
        ...converse,
        system: [{ text: "be brief" }, { cachePoint: { type: "default" } }],
        toolConfig: { tools: [{ toolSpec: { name: "t", inputSchema: { json: { type: "object" } } } }] },
        messages: [{ role: "user", content: [{ text: "hi" }, { image: { format: "png", source: { bytes: "AAAA" } } }, { document: { name: "d", format: "txt", source: { bytes: "AAAA" } } }] }],
        serviceTier: { type: "priority" },
      })();
    });
  });

  describe("CountTokens: the wrapper and the inner body", () => {
    it("refuses a converse input with nothing to count, and a bad inner Converse body", () => {
      refuses(body("CountTokens", { input: { converse: {} } }), /^input\.converse: expected "messages" or "system"/);
      refuses(body("CountTokens", { input: { converse: { messages: [{ role: "user", content: [{ text: 9 }] }] } } }), /^input\.converse\.messages\[0\]\.content\[0\]\.text: expected a string/);
      refuses(body("CountTokens", { input: { converse: { ...converse, inferenceConfig: { maxTokens: -1 } } } }), /^input\.converse\.inferenceConfig\.maxTokens: expected a whole number/);
    });

    it("refuses a bad inner InvokeModel body, naming it", () => {
      const inner = Buffer.from(withMaxTokens("1e400")).toString("base64");
      refuses(body("CountTokens", { input: { invokeModel: { body: inner } } }), /input\.invokeModel\.body" \(base64-decoded\): max_tokens: expected a whole number of tokens/);
      body("CountTokens", { input: { invokeModel: { body: Buffer.from(JSON.stringify(anthropic)).toString("base64") } } })();
    });
  });
});

describe("measureBody: a member the model may not read never hides one it does", () => {
  const long = "lorem ipsum dolor sit amet ".repeat(400); // about 2,400 tokens
  const tool = { toolSpec: { name: "search", description: long, inputSchema: { json: { type: "object" } } } };

  it("Converse: toolConfig's tools count whatever a stray top-level tools member holds", () => {
    const asked = { ...converse, toolConfig: { tools: [tool] } };
    const counted = measureBody("Converse", asked).inputTokens;
    assert.ok(counted > 2000, `the tool definition was counted (${counted})`);
    for (const stray of [[], false, [{ name: "x" }]]) {
      assert.equal(measureBody("ConverseStream", { ...asked, tools: stray }).inputTokens, counted, `tools: ${JSON.stringify(stray)}`);
    }
  });

  it("InvokeModel: every prompt member counts (inputText, messages, message, prompt), not only the first found", () => {
    const alone = measureBody("InvokeModel", { messages: [{ role: "user", content: long }], max_tokens: 10 }).inputTokens;
    assert.ok(alone > 2000);
    assert.ok(measureBody("InvokeModel", { inputText: "", messages: [{ role: "user", content: long }], max_tokens: 10 }).inputTokens >= alone, "an empty inputText hid the messages");
    const prompt = measureBody("InvokeModel", { prompt: long, max_tokens: 10 }).inputTokens;
    assert.ok(measureBody("InvokeModel", { prompt: long, messages: [], max_tokens: 10 }).inputTokens >= prompt, "an empty messages list hid the prompt");
    assert.ok(measureBody("InvokeModel", { prompt: long, message: "", max_tokens: 10 }).inputTokens >= prompt, "an empty message hid the prompt");
  });
});

describe("thinkingBudget: the budget a clamp must stay above", () => {
  const enabled = (budget_tokens: number) => ({ type: "enabled", budget_tokens });
  it("reads Anthropic's thinking and Claude 3.7's reasoning_config, where each operation carries them, and takes the larger", () => {
    assert.deepEqual(thinkingBudget({ thinking: enabled(4000) }, false), { tokens: 4000, field: "thinking.budget_tokens" });
    assert.deepEqual(thinkingBudget({ reasoning_config: enabled(3000) }, false), { tokens: 3000, field: "reasoning_config.budget_tokens" });
    assert.deepEqual(thinkingBudget({ additionalModelRequestFields: { reasoning_config: enabled(2000) } }, true), { tokens: 2000, field: "additionalModelRequestFields.reasoning_config.budget_tokens" });
    assert.deepEqual(thinkingBudget({ additionalModelRequestFields: { thinking: enabled(1000), reasoning_config: enabled(5000) } }, true), { tokens: 5000, field: "additionalModelRequestFields.reasoning_config.budget_tokens" });
  });
  it("ignores a disabled budget, one of the other operation's place, and one that is not a whole number of tokens", () => {
    assert.equal(thinkingBudget({ reasoning_config: { type: "disabled", budget_tokens: 4000 } }, false), undefined);
    assert.equal(thinkingBudget({ reasoning_config: enabled(4000) }, true), undefined);
    assert.equal(thinkingBudget({ additionalModelRequestFields: { reasoning_config: enabled(4000) } }, false), undefined);
    assert.equal(thinkingBudget({ thinking: { type: "enabled", budget_tokens: "4000" } }, false), undefined);
  });
});
