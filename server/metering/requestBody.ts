/**
 * Reads a request body of any supported provider format (Anthropic Messages, Converse, Nova,
 * Llama, Mistral, Titan, Cohere, OpenAI-style) into what prices it: input tokens (text, system
 * prompts, tools, images, documents), the output limit, and whether it asks for prompt caching.
 */
import type { MeteredOperation, Operation } from "./types";
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

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

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

/** Bedrock's `Body` blob: at most 25,000,000 bytes (service-2.json). */
const MAX_INVOKE_BODY_BYTES = 25_000_000;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Parses a request body and checks it has the shape its operation documents, so nothing
 * malformed reaches Bedrock, free operations included. Throws EstimateError naming what is wrong.
 */
export function checkRequestBody(operation: Operation, body: Uint8Array): JsonObject {
  const json = parseBody(body);
  const depth = nestingDepth(json);
  if (depth > MAX_NESTING) throw new EstimateError(`request body is nested ${depth > 10 * MAX_NESTING ? "over " + 10 * MAX_NESTING : depth} levels deep; the gateway reads at most ${MAX_NESTING}`);
  switch (operation) {
    case "Converse":
    case "ConverseStream":
      checkConverse(json, "");
      break;
    case "CountTokens":
      checkCountTokens(json);
      break;
    case "ApplyGuardrail":
      checkApplyGuardrail(json);
      break;
    case "InvokeModel":
    case "InvokeModelWithResponseStream":
      break; // the provider's own format: any JSON object
  }
  return json;
}

/** Deeper than any request body (tool schemas included) is nested; the readers below recurse. */
const MAX_NESTING = 100;

/** How deep arrays and objects nest, counted without recursion (stops counting past 10 × MAX_NESTING). */
function nestingDepth(root: Json): number {
  let deepest = 0;
  const stack: Array<[Json, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== "object") continue;
    if (depth > deepest) deepest = depth;
    if (deepest > 10 * MAX_NESTING) return deepest;
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** CountTokens: `{input: {invokeModel: {body}}}` (body: base64 of an InvokeModel body) or `{input: {converse: {…}}}`. */
function checkCountTokens(json: JsonObject): void {
  const input = json.input;
  if (!isObject(input)) throw new EstimateError(`CountTokens needs "input", an object with "invokeModel" or "converse"; got ${kindOf(input)}`);
  const members = Object.keys(input);
  if (members.length !== 1 || (members[0] !== "invokeModel" && members[0] !== "converse")) {
    throw new EstimateError(`CountTokens "input" must have exactly one of "invokeModel" or "converse"; it has ${members.length === 0 ? "none" : members.map((m) => JSON.stringify(m)).join(", ")}`);
  }
  if (isObject(input.converse)) return checkConverse(input.converse, "input.converse.");
  if (input.converse !== undefined) throw new EstimateError(`CountTokens "input.converse" must be an object; got ${kindOf(input.converse)}`);
  const invoke = input.invokeModel;
  if (!isObject(invoke) || typeof invoke.body !== "string") {
    throw new EstimateError(`CountTokens "input.invokeModel" must be an object with "body", the base64 of an InvokeModel request body`);
  }
  if (!BASE64.test(invoke.body)) throw new EstimateError(`CountTokens "input.invokeModel.body" is not base64`);
  const inner = Buffer.from(invoke.body, "base64");
  if (inner.byteLength > MAX_INVOKE_BODY_BYTES) throw new EstimateError(`CountTokens "input.invokeModel.body" is ${inner.byteLength} bytes; Bedrock takes at most ${MAX_INVOKE_BODY_BYTES}`);
  try {
    measureBody("InvokeModel", checkRequestBody("InvokeModel", inner)); // the checks an InvokeModel body gets
  } catch (err) {
    throw new EstimateError(`CountTokens "input.invokeModel.body" (base64-decoded): ${(err as Error).message}`);
  }
}

/** The members of a Converse request the gateway reads, at their documented types. */
function checkConverse(json: JsonObject, at: string): void {
  const messages = json.messages;
  if (messages !== undefined) {
    if (!Array.isArray(messages)) throw new EstimateError(`"${at}messages" must be a list; got ${kindOf(messages)}`);
    messages.forEach((m, i) => {
      if (!isObject(m) || (m.role !== "user" && m.role !== "assistant") || !Array.isArray(m.content)) {
        throw new EstimateError(`"${at}messages[${i}]" must be {"role": "user" | "assistant", "content": [...]}`);
      }
    });
  }
  if (json.system !== undefined && !Array.isArray(json.system)) throw new EstimateError(`"${at}system" must be a list; got ${kindOf(json.system)}`);
  for (const key of ["inferenceConfig", "toolConfig", "additionalModelRequestFields", "performanceConfig", "requestMetadata", "promptVariables", "guardrailConfig"]) {
    const v = json[key];
    if (v !== undefined && !isObject(v)) throw new EstimateError(`"${at}${key}" must be an object; got ${kindOf(v)}`);
  }
}

const GUARDRAIL_QUALIFIERS = new Set(["grounding_source", "query", "guard_content"]);

/** ApplyGuardrail: `{source: INPUT|OUTPUT, content: [{text: {text, qualifiers?}} | {image: {format, source: {bytes}}}], outputScope?}`. */
function checkApplyGuardrail(json: JsonObject): void {
  if (json.source !== "INPUT" && json.source !== "OUTPUT") throw new EstimateError(`ApplyGuardrail "source" must be "INPUT" or "OUTPUT"; got ${kindOf(json.source)}`);
  if (json.outputScope !== undefined && json.outputScope !== "INTERVENTIONS" && json.outputScope !== "FULL") {
    throw new EstimateError(`ApplyGuardrail "outputScope" must be "INTERVENTIONS" or "FULL"`);
  }
  if (!Array.isArray(json.content)) throw new EstimateError(`ApplyGuardrail "content" must be a list; got ${kindOf(json.content)}`);
  json.content.forEach((block, i) => {
    const at = `ApplyGuardrail "content[${i}]"`;
    if (!isObject(block) || Object.keys(block).length !== 1) throw new EstimateError(`${at} must have exactly one of "text" or "image"`);
    if (block.text !== undefined) {
      const text = block.text;
      if (!isObject(text) || typeof text.text !== "string") throw new EstimateError(`${at}.text must be {"text": string, "qualifiers"?: [...]}`);
      if (text.qualifiers !== undefined && (!Array.isArray(text.qualifiers) || !text.qualifiers.every((q) => typeof q === "string" && GUARDRAIL_QUALIFIERS.has(q)))) {
        throw new EstimateError(`${at}.text.qualifiers must list "grounding_source", "query" or "guard_content"`);
      }
      return;
    }
    const image = block.image;
    if (!isObject(image) || (image.format !== "png" && image.format !== "jpeg") || typeof stringAt(image, "source", "bytes") !== "string") {
      throw new EstimateError(`${at} must be {"text": {...}} or {"image": {"format": "png" | "jpeg", "source": {"bytes": base64}}}`);
    }
  });
}

function kindOf(value: Json | undefined): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "string" ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value) : `a ${typeof value}`;
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
