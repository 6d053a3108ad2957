/**
 * Reads a request body of any supported provider format (Anthropic Messages, Converse, Nova,
 * Llama, Mistral, Titan, Cohere, OpenAI-style) into what prices it: input tokens (text, system
 * prompts, tools, images, documents), the output limit, and whether it asks for prompt caching.
 */
import type { MeteredOperation } from "./types";
import {
  ASSUMED_OPAQUE_DOCUMENT_TOKENS,
  ASSUMED_VIDEO_TOKENS,
  estimateTokensOfText,
  imageTokens,
  MAX_IMAGE_TOKENS,
  PDF_TOKENS_PER_PAGE,
  PER_MESSAGE_OVERHEAD_TOKENS,
  TOOL_USE_OVERHEAD_TOKENS,
} from "./tokens";

/** A request body we cannot price: the gateway answers 400 ValidationException with this message. */
export class EstimateError extends Error {
  override name = "EstimateError";
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface MeasuredBody {
  inputTokens: number;
  maxOutputTokens: number | undefined;
  usesPromptCache: boolean;
  notes: string[];
}

export function parseBody(body: Uint8Array): JsonObject {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new EstimateError("request body is not valid UTF-8 text; expected a JSON object");
  }
  if (text.trim() === "") throw new EstimateError("request body is empty; expected a JSON object");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EstimateError(`request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(json)) {
    throw new EstimateError(`request body must be a JSON object, got ${Array.isArray(json) ? "an array" : json === null ? "null" : typeof json}`);
  }
  return json;
}

/** Everything in the prompt, tallied: text is tokenized once at the end (one tokenizer pass). */
class Tally {
  readonly texts: string[] = [];
  fixedTokens = 0;
  readonly notes = new Set<string>();

  text(value: Json | undefined): void {
    if (typeof value === "string" && value !== "") this.texts.push(value);
  }
  json(value: Json | undefined): void {
    if (value !== undefined && value !== null) this.texts.push(JSON.stringify(value));
  }
  tokens(): number {
    return estimateTokensOfText(this.texts.join("\n")) + this.fixedTokens;
  }
}

/** Input tokens, output limit and cache use of a request body of any supported shape. */
export function measureBody(operation: MeteredOperation, body: JsonObject): MeasuredBody {
  const t = new Tally();
  if (operation === "Converse" || operation === "ConverseStream") {
    measureChat(t, body);
    t.json(body.additionalModelRequestFields);
    if (isObject(body.promptVariables)) for (const v of Object.values(body.promptVariables)) t.text(stringAt(v, "text"));
  } else if (typeof body.inputText === "string") {
    t.text(body.inputText); // Titan
  } else if (Array.isArray(body.messages) || typeof body.message === "string" || body.chat_history !== undefined) {
    measureChat(t, body);
  } else if (typeof body.prompt === "string") {
    t.text(body.prompt); // Anthropic legacy, Llama, Mistral, DeepSeek, Cohere Command
    if (Array.isArray(body.images)) for (const img of body.images) image(t, typeof img === "string" ? img : undefined); // Llama 3.2 vision
  } else {
    t.json(body);
    t.notes.add("unrecognised request body shape: counted its whole JSON as prompt text");
  }
  return {
    inputTokens: t.tokens(),
    maxOutputTokens: requestedMaxTokens(body),
    usesPromptCache: hasCacheMarker(body),
    notes: [...t.notes],
  };
}

/** Message-style bodies: Anthropic Messages, Converse, Nova, OpenAI-style (gpt-oss, Mistral, DeepSeek), Cohere. */
function measureChat(t: Tally, body: JsonObject): void {
  // System prompt: a string (Anthropic, Cohere `preamble`) or blocks (Anthropic, Converse, Nova).
  content(t, body.system);
  t.text(body.preamble);
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    t.fixedTokens += PER_MESSAGE_OVERHEAD_TOKENS;
    if (!isObject(m)) continue;
    content(t, m.content);
    if (Array.isArray(m.tool_calls)) t.json(m.tool_calls); // OpenAI-style assistant tool calls
    t.text(m.reasoning_content);
  }
  // Cohere Command R
  t.text(body.message);
  if (Array.isArray(body.chat_history)) {
    for (const m of body.chat_history) {
      t.fixedTokens += PER_MESSAGE_OVERHEAD_TOKENS;
      if (isObject(m)) t.text(m.message);
    }
  }
  t.json(body.documents);
  t.json(body.tool_results);
  // Tool definitions are rendered into the prompt as JSON schema text.
  const tools = body.tools ?? (isObject(body.toolConfig) ? body.toolConfig.tools : undefined);
  if (Array.isArray(tools) && tools.length > 0) {
    t.json(tools);
    t.fixedTokens += TOOL_USE_OVERHEAD_TOKENS;
  }
  t.json(body.tool_choice ?? (isObject(body.toolConfig) ? body.toolConfig.toolChoice : undefined));
}

/** One content value: a string, a block, or a list of blocks, in Anthropic, Converse/Nova or OpenAI form. */
function content(t: Tally, value: Json | undefined, depth = 0): void {
  if (value === undefined || value === null || depth > 8) return;
  if (typeof value === "string") return t.text(value);
  if (Array.isArray(value)) {
    for (const item of value) content(t, item, depth + 1);
    return;
  }
  if (!isObject(value)) return;
  const b = value;
  switch (b.type) {
    // Anthropic (and OpenAI "text") blocks
    case "text":
      return t.text(b.text);
    case "image":
      return anthropicImage(t, b.source);
    case "document":
      t.text(b.title);
      t.text(b.context);
      return anthropicDocument(t, b.source, depth);
    case "tool_use":
    case "server_tool_use":
      t.text(b.name);
      return t.json(b.input);
    case "tool_result":
      return content(t, b.content, depth + 1);
    case "thinking":
      return t.text(b.thinking);
    case "redacted_thinking":
      return t.text(b.data);
    case "search_result":
      t.text(b.title);
      t.text(b.source);
      return content(t, b.content, depth + 1);
    case "image_url":
      return imageUrl(t, b.image_url);
  }
  // Converse / Nova blocks: one member per block.
  if (typeof b.text === "string") return t.text(b.text);
  if (isObject(b.image)) return converseImage(t, b.image);
  if (isObject(b.document)) return converseDocument(t, b.document, depth);
  if (isObject(b.video)) {
    t.fixedTokens += ASSUMED_VIDEO_TOKENS;
    t.notes.add(`video not decoded: assumed ${ASSUMED_VIDEO_TOKENS} tokens each`);
    return;
  }
  if (isObject(b.toolUse)) {
    t.text(b.toolUse.name);
    return t.json(b.toolUse.input);
  }
  if (isObject(b.toolResult)) return content(t, b.toolResult.content, depth + 1);
  if (b.json !== undefined) return t.json(b.json); // a toolResult's json member
  if (isObject(b.reasoningContent)) {
    t.text(stringAt(b.reasoningContent, "reasoningText", "text"));
    return t.text(stringAt(b.reasoningContent, "redactedContent"));
  }
  if (isObject(b.guardContent)) return t.text(stringAt(b.guardContent, "text", "text"));
  if (isObject(b.cachePoint) || b.type === "cache_control") return;
  // Anything else: its JSON is an upper bound on the text it carries.
  t.json(b);
}

function anthropicImage(t: Tally, source: Json | undefined): void {
  if (isObject(source) && source.type === "base64" && typeof source.data === "string") return image(t, source.data);
  image(t, undefined);
  t.notes.add(`image given by URL or file id: assumed ${MAX_IMAGE_TOKENS} tokens`);
}

function converseImage(t: Tally, img: JsonObject): void {
  const bytes = stringAt(img, "source", "bytes");
  if (bytes === undefined) t.notes.add(`image in S3 or by reference: assumed ${MAX_IMAGE_TOKENS} tokens`);
  image(t, bytes);
}

function imageUrl(t: Tally, value: Json | undefined): void {
  const url = typeof value === "string" ? value : stringAt(value, "url");
  const match = url === undefined ? null : /^data:[^;,]*;base64,(.*)$/s.exec(url);
  if (match) return image(t, match[1]);
  image(t, undefined);
  t.notes.add(`image given by URL: assumed ${MAX_IMAGE_TOKENS} tokens`);
}

function image(t: Tally, base64: string | undefined): void {
  t.fixedTokens += imageTokens(base64 === undefined ? undefined : decodeBase64(base64));
}

function anthropicDocument(t: Tally, source: Json | undefined, depth: number): void {
  if (!isObject(source)) return opaqueDocument(t);
  if (source.type === "text") return t.text(source.data);
  if (source.type === "content") return content(t, source.content, depth + 1);
  if (source.type === "base64" && typeof source.data === "string") {
    return binaryDocument(t, decodeBase64(source.data), stringAt(source, "media_type") ?? "");
  }
  opaqueDocument(t);
}

function converseDocument(t: Tally, doc: JsonObject, depth: number): void {
  t.text(doc.name);
  const source = doc.source;
  if (!isObject(source)) return opaqueDocument(t);
  if (typeof source.text === "string") return t.text(source.text);
  if (Array.isArray(source.content)) return content(t, source.content, depth + 1);
  if (typeof source.bytes === "string") return binaryDocument(t, decodeBase64(source.bytes), stringAt(doc, "format") ?? "");
  opaqueDocument(t);
}

const TEXT_FORMATS = /^(txt|md|csv|html|text\/.*|application\/json)$/i;

/**
 * PDFs: pages × PDF_TOKENS_PER_PAGE when the page count can be read, else one token per 2 bytes.
 * Text formats are tokenized. Office formats are zipped XML: their text can reach ~4 bytes per byte
 * of file, about one token per byte, so one token per byte.
 */
function binaryDocument(t: Tally, bytes: Uint8Array, format: string): void {
  if (TEXT_FORMATS.test(format)) return t.text(new TextDecoder().decode(bytes));
  if (/pdf/i.test(format)) {
    const pages = pdfPageCount(bytes);
    if (pages > 0) {
      t.fixedTokens += pages * PDF_TOKENS_PER_PAGE;
      t.notes.add(`PDF: ${PDF_TOKENS_PER_PAGE} tokens reserved per page`);
    } else {
      t.fixedTokens += Math.ceil(bytes.length / 2);
      t.notes.add("PDF pages not countable: one token reserved per 2 bytes");
    }
    return;
  }
  t.fixedTokens += bytes.length;
  t.notes.add(`${format || "binary"} document: one token reserved per byte`);
}

function opaqueDocument(t: Tally): void {
  t.fixedTokens += ASSUMED_OPAQUE_DOCUMENT_TOKENS;
  t.notes.add(`document not readable here (S3 or by reference): assumed ${ASSUMED_OPAQUE_DOCUMENT_TOKENS} tokens`);
}

/** Counts `/Type /Page` objects (not `/Pages`) in the raw PDF; compressed object streams hide them → 0. */
function pdfPageCount(bytes: Uint8Array): number {
  const text = new TextDecoder("latin1").decode(bytes);
  return text.match(/\/Type\s*\/Page(?![a-zA-Z])/g)?.length ?? 0;
}

function decodeBase64(text: string): Uint8Array {
  return Buffer.from(text, "base64");
}

/** Every output-limit field a provider uses; the largest wins (the request is capped by each it sets). */
const MAX_TOKEN_PATHS: string[][] = [
  ["max_tokens"], // Anthropic, Mistral, Cohere, DeepSeek, OpenAI (legacy)
  ["max_tokens_to_sample"], // Anthropic legacy
  ["max_gen_len"], // Llama
  ["max_completion_tokens"], // OpenAI / gpt-oss
  ["maxTokens"],
  ["inferenceConfig", "maxTokens"], // Converse, Nova
  ["inferenceConfig", "max_new_tokens"], // Nova InvokeModel
  ["textGenerationConfig", "maxTokenCount"], // Titan
  ["additionalModelRequestFields", "max_tokens"],
  ["additionalModelRequestFields", "max_completion_tokens"],
  ["additionalModelRequestFields", "inferenceConfig", "max_new_tokens"],
];

function requestedMaxTokens(body: JsonObject): number | undefined {
  let max: number | undefined;
  for (const path of MAX_TOKEN_PATHS) {
    const v = valueAt(body, ...path);
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) max = Math.max(max ?? 0, Math.ceil(v));
  }
  return max;
}

/** `cache_control` (Anthropic) or `cachePoint` (Converse, Nova) anywhere in the body. */
function hasCacheMarker(value: Json, depth = 0): boolean {
  if (depth > 12 || value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.some((v) => hasCacheMarker(v, depth + 1));
  for (const [k, v] of Object.entries(value)) {
    if (k === "cache_control" || k === "cachePoint") return true;
    if (typeof v === "object" && hasCacheMarker(v, depth + 1)) return true;
  }
  return false;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function valueAt(value: Json | undefined, ...path: string[]): Json | undefined {
  let v = value;
  for (const key of path) {
    if (!isObject(v)) return undefined;
    v = v[key];
  }
  return v;
}

export function stringAt(value: Json | undefined, ...path: string[]): string | undefined {
  const v = valueAt(value, ...path);
  return typeof v === "string" ? v : undefined;
}
