import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { strToU8, zipSync } from "fflate";
import { EstimateError, estimateFromParts, estimateRequest, worstCaseCost } from "../../../server/metering/estimate";
import { MAX_IMAGE_TOKENS, PDF_TOKENS_PER_PAGE, TOKEN_SAFETY_FACTOR, TOOL_USE_OVERHEAD_TOKENS, countRawTokens, estimateTokensOfText, imageTokens } from "../../../server/metering/tokens";
import { PriceBook } from "../../../server/metering/prices";
import { usdToPicos } from "../../../server/metering/money";
import type { MeteredOperation } from "../../../server/metering/types";

let prices: PriceBook; // built per test, not at load time (mutation testing: see TESTING.md)
beforeEach(() => {
  prices = new PriceBook();
});
const SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const est = (op: MeteredOperation, model: string, body: unknown) => estimateRequest(op, model, enc(body), prices);

/** A minimal PNG: signature + IHDR is all a size reader needs. */
function png(width: number, height: number): Uint8Array {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write("IHDR", 12, "latin1");
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b.writeUInt8(8, 24);
  b.writeUInt8(6, 25);
  return b;
}
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

describe("token counting", () => {
  it("scales the tokenizer count by the safety factor and rounds up", () => {
    assert.equal(TOKEN_SAFETY_FACTOR, 1.2);
    const text = "The quick brown fox jumps over the lazy dog.";
    assert.equal(countRawTokens(text), 10);
    assert.equal(estimateTokensOfText(text), 12);
    assert.equal(estimateTokensOfText(""), 0);
  });

  it("counts special-token text as plain text instead of throwing", () => {
    assert.ok(estimateTokensOfText("before <|endoftext|> after") > 3);
  });

  it("prices images by width×height/750, capped at 1600, unknown at the cap", () => {
    assert.equal(imageTokens(png(200, 150)), 40);
    assert.equal(imageTokens(png(1000, 1000)), 1334);
    assert.equal(imageTokens(png(4000, 3000)), MAX_IMAGE_TOKENS);
    assert.equal(imageTokens(new Uint8Array([1, 2, 3])), MAX_IMAGE_TOKENS);
    assert.equal(imageTokens(undefined), MAX_IMAGE_TOKENS);
  });
});

describe("worstCaseCost / estimateFromParts", () => {
  it("prices input at the dearer cache-write rate when caching is asked for", () => {
    const r = prices.rates(`global.${SONNET_45}`);
    assert.equal(worstCaseCost(1000, 500, r, false), usdToPicos("0.0105"));
    assert.equal(worstCaseCost(1000, 500, r, true), usdToPicos("0.0135")); // 1000 × $6/M (1h write) + 500 × $15/M
  });

  it("estimates from a model id, prompt text and max tokens, the rest assumed", () => {
    const e = estimateFromParts({ modelId: `global.${SONNET_45}`, promptText: "The quick brown fox jumps over the lazy dog.", maxOutputTokens: 100 }, prices);
    assert.equal(e.inputTokens, 12);
    assert.equal(e.maxOutputTokens, 100);
    assert.equal(e.outputFromRequest, true);
    assert.equal(e.worstCasePicos, 12n * 3_000_000n + 100n * 15_000_000n);
  });

  it("applies the long-context rate when the estimated prompt exceeds 200K tokens", () => {
    const e = estimateFromParts({ modelId: `global.${SONNET_45}`, inputTokens: 250_000, maxOutputTokens: 1000 }, prices);
    assert.equal(e.rates.input, 6_000_000n);
    assert.equal(e.worstCasePicos, usdToPicos("1.5225")); // 250000 × $6/M + 1000 × $22.50/M
  });

  it("reserves the model maximum, with a note, when no output limit is set; a larger limit as asked", () => {
    const e = estimateFromParts({ modelId: "us.anthropic.claude-opus-4-1-20250805-v1:0", inputTokens: 10 }, prices);
    assert.equal(e.maxOutputTokens, 32000);
    assert.equal(e.outputFromRequest, false);
    assert.match(e.notes.join(" "), /no output limit.*32000/);
    const c = estimateFromParts({ modelId: "meta.llama3-8b-instruct-v1:0", inputTokens: 10, maxOutputTokens: 100_000 }, prices);
    assert.equal(c.maxOutputTokens, 100_000, "the table can lag the model: Bedrock refuses a limit the model cannot take, at no cost");
    assert.match(c.notes.join(" "), /above the price table's maximum for this model \(2048\): reserved as asked/);
    // Claude 3.7 Sonnet's 128K output beta: the table says 64K, Bedrock bills up to 128K.
    const beta = estimateFromParts({ modelId: "us.anthropic.claude-3-7-sonnet-20250219-v1:0", inputTokens: 0, maxOutputTokens: 128_000 }, prices);
    assert.equal(beta.maxOutputTokens, 128_000);
    assert.equal(beta.worstCasePicos, 128_000n * beta.rates.output);
  });

  it("reserves priority-tier rates when the request asks for them, never flex discounts", () => {
    const prio = estimateFromParts({ modelId: "amazon.nova-pro-v1:0", inputTokens: 1000, maxOutputTokens: 0, tier: { serviceTier: "priority" } }, prices);
    assert.equal(prio.worstCasePicos, 1000n * 1_400_000n);
    const flex = estimateFromParts({ modelId: "amazon.nova-pro-v1:0", inputTokens: 1000, maxOutputTokens: 0, tier: { serviceTier: "flex" } }, prices);
    assert.equal(flex.worstCasePicos, 1000n * 800_000n);
  });
});

describe("estimateRequest", () => {
  const converse = {
    system: [{ text: "You are a meticulous assistant who answers in French." }],
    messages: [
      { role: "user", content: [{ text: "Describe this picture." }, { image: { format: "png", source: { bytes: b64(png(300, 250)) } } }] },
    ],
    toolConfig: {
      tools: [
        {
          toolSpec: {
            name: "get_weather",
            description: "Look up the current weather for a city",
            inputSchema: { json: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
          },
        },
      ],
    },
    inferenceConfig: { maxTokens: 1024 },
  };

  it("counts a Converse body's system, messages, tools and image", () => {
    const e = est("Converse", `global.${SONNET_45}`, converse);
    const noImage = est("Converse", `global.${SONNET_45}`, { ...converse, messages: [{ role: "user", content: [{ text: "Describe this picture." }] }] });
    const noTools = est("Converse", `global.${SONNET_45}`, { ...converse, toolConfig: undefined });
    const noSystem = est("Converse", `global.${SONNET_45}`, { ...converse, system: undefined });
    assert.equal(e.inputTokens - noImage.inputTokens, 100); // 300×250/750
    assert.ok(e.inputTokens - noTools.inputTokens >= TOOL_USE_OVERHEAD_TOKENS + 20, `tools: ${e.inputTokens - noTools.inputTokens}`);
    assert.ok(e.inputTokens - noSystem.inputTokens >= estimateTokensOfText("You are a meticulous assistant who answers in French.") - 1);
    assert.equal(e.maxOutputTokens, 1024);
    assert.equal(e.outputFromRequest, true);
    assert.equal(e.usesPromptCache, false);
    assert.equal(e.worstCasePicos, BigInt(e.inputTokens) * 3_000_000n + 1024n * 15_000_000n);
  });

  it("detects Converse cachePoint and prices input at the 1h cache-write rate", () => {
    const e = est("ConverseStream", `global.${SONNET_45}`, { ...converse, system: [...converse.system, { cachePoint: { type: "default" } }] });
    assert.equal(e.usesPromptCache, true);
    assert.equal(e.worstCasePicos, BigInt(e.inputTokens) * 6_000_000n + 1024n * 15_000_000n);
  });

  it("reads an Anthropic Messages body: system blocks, tool_use/tool_result, tools, cache_control", () => {
    const body = {
      anthropic_version: "bedrock-2023-05-31",
      max_tokens: 2000,
      system: [{ type: "text", text: "Be terse.", cache_control: { type: "ephemeral" } }],
      tools: [{ name: "lookup", description: "Find a record", input_schema: { type: "object", properties: { id: { type: "string" } } } }],
      messages: [
        { role: "user", content: "Find record 42" },
        { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "lookup", input: { id: "42" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "Record 42: Ada Lovelace" }] }] },
        { role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: b64(png(75, 100)) } }] },
      ],
    };
    const e = est("InvokeModel", `us.${SONNET_45}`, body);
    assert.equal(e.usesPromptCache, true);
    assert.equal(e.maxOutputTokens, 2000);
    assert.ok(e.inputTokens > TOOL_USE_OVERHEAD_TOKENS + 4 * 5 + 10, String(e.inputTokens));
    const withoutImage = est("InvokeModel", `us.${SONNET_45}`, { ...body, messages: body.messages.slice(0, 3) });
    assert.equal(e.inputTokens - withoutImage.inputTokens, 10 + 5); // 75×100/750 + one message's overhead
    // us. Sonnet 4.5: input at the 1h write rate 6.60, output 16.50
    assert.equal(e.worstCasePicos, BigInt(e.inputTokens) * 6_600_000n + 2000n * 16_500_000n);
  });

  it("counts PDF documents per page", () => {
    const pdf = enc("%PDF-1.4\n1 0 obj << /Type /Pages /Kids [2 0 R 3 0 R] >>\n2 0 obj << /Type /Page >>\n3 0 obj << /Type/Page >>\n%%EOF");
    const body = {
      messages: [{ role: "user", content: [{ document: { format: "pdf", name: "report", source: { bytes: b64(pdf) } } }] }],
      inferenceConfig: { maxTokens: 10 },
    };
    const withDoc = est("Converse", "amazon.nova-pro-v1:0", body);
    const empty = est("Converse", "amazon.nova-pro-v1:0", { messages: [{ role: "user", content: [{ document: { format: "pdf", name: "report", source: { text: "" } } }] }], inferenceConfig: { maxTokens: 10 } });
    assert.equal(withDoc.inputTokens - empty.inputTokens, 2 * PDF_TOKENS_PER_PAGE);
  });

  it("counts the pages of a PDF whose page dictionaries sit in a compressed object stream (PDF 1.5+)", () => {
    // 100 pages; the raw bytes show one /Type /Page (a stray one) and no /Count: the rest is deflated.
    const dicts = ["<< /Type /Pages /Count 100 /Kids [] >>", ...Array.from({ length: 99 }, () => "<< /Type /Page /Parent 2 0 R >>")].join("\n");
    const packed = deflateSync(Buffer.from(dicts, "latin1"));
    const pdf = Buffer.concat([
      Buffer.from(`%PDF-1.5\n1 0 obj << /Type /Page >> endobj\n5 0 obj\n<< /Type /ObjStm /N 100 /First 0 /Length ${packed.length} /Filter /FlateDecode >>\nstream\r\n`, "latin1"),
      packed,
      Buffer.from("\nendstream\nendobj\n%%EOF\n", "latin1"),
    ]);
    const doc = (bytes: Uint8Array) => est("Converse", "amazon.nova-pro-v1:0", { messages: [{ role: "user", content: [{ document: { format: "pdf", name: "report", source: { bytes: b64(bytes) } } }] }], inferenceConfig: { maxTokens: 10 } });
    const empty = est("Converse", "amazon.nova-pro-v1:0", { messages: [{ role: "user", content: [{ document: { format: "pdf", name: "report", source: { text: "" } } }] }], inferenceConfig: { maxTokens: 10 } });
    assert.equal(doc(pdf).inputTokens - empty.inputTokens, 100 * PDF_TOKENS_PER_PAGE, "the page tree's /Count (and the 99 + 1 page objects)");
    // A hostile /Count cannot push the reservation past safe integers.
    const huge = Buffer.from("%PDF-1.4\n1 0 obj << /Type /Pages /Count 999999999 >> endobj\n%%EOF", "latin1");
    assert.equal(doc(huge).inputTokens - empty.inputTokens, 100_000 * PDF_TOKENS_PER_PAGE);
  });

  it("counts an office document's text, which its zipped size understates many times over", () => {
    const sentence = "The supplier shall deliver the goods within thirty days of the order. ";
    const paragraphs = Array.from({ length: 2000 }, (_, i) => `<w:p><w:r><w:t>${i}. ${sentence}</w:t></w:r></w:p>`).join("");
    const docx = zipSync({ "[Content_Types].xml": strToU8("<Types/>"), "word/document.xml": strToU8(`<w:document><w:body>${paragraphs}</w:body></w:document>`) }, { level: 9 });
    const doc = (bytes: Uint8Array, format: string) => est("Converse", "amazon.nova-pro-v1:0", { messages: [{ role: "user", content: [{ document: { format, name: "contract", source: { bytes: b64(bytes) } } }] }], inferenceConfig: { maxTokens: 10 } });
    const empty = est("Converse", "amazon.nova-pro-v1:0", { messages: [{ role: "user", content: [{ document: { format: "txt", name: "contract", source: { text: "" } } }] }], inferenceConfig: { maxTokens: 10 } });
    const text = Array.from({ length: 2000 }, (_, i) => `${i}. ${sentence}`).join("\n");
    const counted = doc(docx, "docx").inputTokens - empty.inputTokens;
    assert.ok(counted >= estimateTokensOfText(text), `${counted} tokens for a text of ${estimateTokensOfText(text)}`);
    assert.ok(counted > 5 * docx.length, `the file is ${docx.length} bytes: one token per byte would undercount it`);
    // Not a zip (an old binary .doc): one token per byte, as before.
    const binary = new Uint8Array(3000).fill(7);
    assert.equal(doc(binary, "doc").inputTokens - empty.inputTokens, 3000);
  });

  it("reads the output limit of every provider's native body", () => {
    const cases: [string, unknown, number][] = [
      ["meta.llama3-1-70b-instruct-v1:0", { prompt: "<|begin_of_text|>Hi", max_gen_len: 512 }, 512],
      ["amazon.titan-text-express-v1", { inputText: "Hi", textGenerationConfig: { maxTokenCount: 300 } }, 300],
      ["amazon.nova-lite-v1:0", { schemaVersion: "messages-v1", messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { max_new_tokens: 700 } }, 700],
      ["cohere.command-r-v1:0", { message: "Hi", chat_history: [{ role: "USER", message: "earlier" }], documents: [{ title: "t", snippet: "s" }], preamble: "Be kind", max_tokens: 250 }, 250],
      ["openai.gpt-oss-120b-1:0", { messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 900 }, 900],
      ["mistral.mistral-large-2407-v1:0", { messages: [{ role: "user", content: "Hi" }], max_tokens: 333 }, 333],
      ["mistral.mistral-7b-instruct-v0:2", { prompt: "<s>[INST] Hi [/INST]", max_tokens: 128 }, 128],
      ["deepseek.r1-v1:0", { prompt: "Hi", max_tokens: 4000 }, 4000],
      ["anthropic.claude-v2:1", { prompt: "\n\nHuman: Hi\n\nAssistant:", max_tokens_to_sample: 300 }, 300],
    ];
    for (const [model, body, max] of cases) {
      const e = est("InvokeModel", model, body);
      assert.equal(e.maxOutputTokens, max, model);
      assert.equal(e.outputFromRequest, true, model);
      assert.ok(e.inputTokens >= 1, model);
      assert.equal(e.rates.known, true, model);
    }
    const cohere = est("InvokeModel", "cohere.command-r-v1:0", { message: "Hi", preamble: "A much longer preamble with many words in it to count" });
    assert.ok(cohere.inputTokens >= estimateTokensOfText("A much longer preamble with many words in it to count"));
  });

  it("falls back to the model maximum with a note when the body sets no limit", () => {
    const e = est("InvokeModel", "meta.llama4-maverick-17b-instruct-v1:0", { prompt: "Hello" });
    assert.equal(e.maxOutputTokens, 8192);
    assert.equal(e.outputFromRequest, false);
    assert.match(e.notes.join(" "), /no output limit/);
  });

  it("prices an unknown model at the maximum and says so", () => {
    const e = est("Converse", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/xyz", { messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 100 } });
    assert.equal(e.rates.known, false);
    assert.equal(e.worstCasePicos, BigInt(e.inputTokens) * 15_000_000n + 100n * 75_000_000n);
    assert.match(e.notes.join(" "), /unknown model/);
  });

  it("throws an EstimateError naming what is wrong with the body", () => {
    assert.throws(() => estimateRequest("InvokeModel", SONNET_45, enc("{not json"), prices), (err: unknown) => err instanceof EstimateError && /not valid JSON/.test(err.message));
    assert.throws(() => estimateRequest("InvokeModel", SONNET_45, enc("[1,2]"), prices), (err: unknown) => err instanceof EstimateError && /must be a JSON object, got an array/.test(err.message));
    assert.throws(() => estimateRequest("Converse", SONNET_45, enc("42"), prices), /got number/);
    assert.throws(() => estimateRequest("Converse", SONNET_45, new Uint8Array(), prices), /empty/);
    assert.throws(() => estimateRequest("Converse", SONNET_45, new Uint8Array([0xff, 0xfe, 0x7b]), prices), /UTF-8/);
  });

  it("reserves latency-optimized and priority rates a Converse body asks for", () => {
    const body = { messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 100 }, performanceConfig: { latency: "optimized" } };
    const e = est("Converse", "meta.llama3-1-405b-instruct-v1:0", body);
    assert.equal(e.rates.input, 3_000_000n);
    const p = est("Converse", "meta.llama3-1-405b-instruct-v1:0", { ...body, performanceConfig: undefined, serviceTier: { type: "priority" } });
    assert.equal(p.rates.input, 4_200_000n);
  });
});
