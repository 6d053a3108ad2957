/**
 * Reads a request body of any supported provider format (Anthropic Messages, Converse, Nova,
 * Llama, Mistral, Titan, Cohere, OpenAI-style) into what prices it: input tokens (text, system
 * prompts, tools, images, documents), the output limit, and whether it asks for prompt caching.
 */
import { inflateSync } from "node:zlib";
import { unzipSync } from "fflate";
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
import { isObject } from "../shared/isObject";
import { UTF8, UTF8_STRICT } from "../shared/utf8";

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
    text = UTF8_STRICT.decode(body);
  } catch {
    throw new EstimateError("request body is not valid UTF-8 text; expected a JSON object");
  }
  if (text.trim() === "") throw new EstimateError("request body is empty; expected a JSON object");
  let json: Json; // what JSON.parse gives: the object test narrows it to a JsonObject
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
      checkProviderBody(json); // the provider's own format: the fields that price it
      break;
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
  if (isObject(input.converse)) {
    if (input.converse.messages === undefined && input.converse.system === undefined) fail("input.converse", 'expected "messages" or "system": there is nothing to count');
    return checkConverse(input.converse, "input.converse.");
  }
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
      m.content.forEach((block, j) => checkBlock(block, `${at}messages[${i}].content[${j}]`));
    });
  }
  if (json.system !== undefined) {
    if (!Array.isArray(json.system)) throw new EstimateError(`"${at}system" must be a list; got ${kindOf(json.system)}`);
    json.system.forEach((block, i) => checkBlock(block, `${at}system[${i}]`));
  }
  for (const key of ["inferenceConfig", "toolConfig", "additionalModelRequestFields", "performanceConfig", "requestMetadata", "promptVariables", "guardrailConfig"]) {
    const v = json[key];
    if (v !== undefined && !isObject(v)) throw new EstimateError(`"${at}${key}" must be an object; got ${kindOf(v)}`);
  }
  checkMaxTokens(json, at);
  if (isObject(json.toolConfig)) {
    const tools = json.toolConfig.tools;
    if (tools !== undefined && !Array.isArray(tools)) fail(`${at}toolConfig.tools`, "expected a list", tools);
    checkFinite(tools, `${at}toolConfig.tools`);
    checkFinite(json.toolConfig.toolChoice, `${at}toolConfig.toolChoice`);
  }
  checkFinite(json.additionalModelRequestFields, `${at}additionalModelRequestFields`);
  if (isObject(json.promptVariables)) {
    for (const [name, v] of Object.entries(json.promptVariables)) {
      if (!isObject(v)) fail(`${at}promptVariables.${name}`, "expected an object", v);
      optionalString(v, "text", `${at}promptVariables.${name}`);
    }
  }
  // The tier prices the call: a tier the gateway cannot read would be priced as standard.
  const tier = json.serviceTier;
  if (tier !== undefined && typeof tier !== "string") {
    if (!isObject(tier)) fail(`${at}serviceTier`, "expected an object", tier);
    optionalString(tier, "type", `${at}serviceTier`);
  }
  if (isObject(json.performanceConfig)) optionalString(json.performanceConfig, "latency", `${at}performanceConfig`);
}

/**
 * A provider-format (InvokeModel) body: the members measureBody reads to price it, at their
 * documented types; members it does not read go to Bedrock untouched, for Bedrock to judge.
 */
function checkProviderBody(json: JsonObject): void {
  for (const key of ["inferenceConfig", "textGenerationConfig", "additionalModelRequestFields"]) {
    const v = json[key];
    if (v !== undefined && !isObject(v)) fail(key, "expected an object", v);
  }
  checkMaxTokens(json, "");
  for (const key of ["prompt", "inputText", "message", "preamble"]) optionalString(json, key, "");
  if (json.messages !== undefined) {
    if (!Array.isArray(json.messages)) fail("messages", "expected a list", json.messages);
    json.messages.forEach((m, i) => {
      const at = `messages[${i}]`;
      if (!isObject(m)) fail(at, "expected an object", m);
      if (m.content !== undefined && m.content !== null) checkContent(m.content, `${at}.content`); // null: an OpenAI-style tool-call turn
      optionalString(m, "reasoning_content", at);
      checkFinite(m.tool_calls, `${at}.tool_calls`);
    });
  }
  if (json.system !== undefined) checkContent(json.system, "system");
  if (json.chat_history !== undefined) {
    if (!Array.isArray(json.chat_history)) fail("chat_history", "expected a list", json.chat_history);
    json.chat_history.forEach((m, i) => {
      if (!isObject(m)) fail(`chat_history[${i}]`, "expected an object", m);
      optionalString(m, "message", `chat_history[${i}]`);
    });
  }
  if (json.images !== undefined) {
    if (!Array.isArray(json.images)) fail("images", "expected a list", json.images);
    json.images.forEach((img, i) => typeof img !== "string" && fail(`images[${i}]`, "expected a base64 string", img));
  }
  if (json.tools !== undefined && json.tools !== null && !Array.isArray(json.tools)) fail("tools", "expected a list", json.tools);
  if (isObject(json.toolConfig) && json.toolConfig.tools !== undefined && !Array.isArray(json.toolConfig.tools)) fail("toolConfig.tools", "expected a list", json.toolConfig.tools);
  for (const key of ["tools", "toolConfig", "tool_choice", "documents", "tool_results", "additionalModelRequestFields"]) checkFinite(json[key], key);
  const recognised = ["inputText", "messages", "message", "chat_history", "prompt"].some((k) => json[k] !== undefined);
  if (!recognised) checkFinite(json, ""); // an unrecognised shape is priced by its whole JSON text
}

/** A content value (Anthropic, OpenAI-style, Nova): a string, a block, or a list of blocks. */
function checkContent(value: Json, at: string): void {
  if (typeof value === "string") return;
  if (Array.isArray(value)) return value.forEach((block, i) => checkBlock(block, `${at}[${i}]`));
  if (isObject(value)) return checkBlock(value, at);
  fail(at, "expected a string or a list of content blocks", value);
}

/** One content block of any supported format: the members the gateway counts are of their documented types. */
function checkBlock(block: Json, at: string): void {
  if (typeof block === "string") return;
  if (!isObject(block)) fail(at, "expected a content block (an object)", block);
  optionalString(block, "text", at);
  switch (block.type) {
    case "tool_use":
    case "server_tool_use":
      optionalString(block, "name", at);
      return checkFinite(block.input, `${at}.input`);
    case "tool_result":
    case "search_result":
      optionalString(block, "title", at);
      if (block.type === "search_result") optionalString(block, "source", at);
      if (block.content !== undefined && block.content !== null) checkContent(block.content, `${at}.content`);
      return;
    case "thinking":
      return optionalString(block, "thinking", at);
    case "redacted_thinking":
      return optionalString(block, "data", at);
    case "image":
    case "document":
      if (block.type === "document") for (const key of ["title", "context"]) optionalString(block, key, at);
      if (isObject(block.source)) {
        optionalString(block.source, "data", `${at}.source`);
        if (block.source.content !== undefined) checkContent(block.source.content, `${at}.source.content`);
      }
      return;
    case "text":
    case "image_url":
    case "cache_control":
      return;
  }
  // Converse / Nova blocks: one member per block.
  if (isObject(block.image) && isObject(block.image.source)) optionalString(block.image.source, "bytes", `${at}.image.source`);
  if (isObject(block.document)) {
    optionalString(block.document, "name", `${at}.document`);
    const source = block.document.source;
    if (isObject(source)) {
      for (const key of ["text", "bytes"]) optionalString(source, key, `${at}.document.source`);
      if (source.content !== undefined) {
        if (!Array.isArray(source.content)) fail(`${at}.document.source.content`, "expected a list", source.content);
        source.content.forEach((b, i) => checkBlock(b, `${at}.document.source.content[${i}]`));
      }
    }
  }
  if (isObject(block.toolUse)) {
    optionalString(block.toolUse, "name", `${at}.toolUse`);
    checkFinite(block.toolUse.input, `${at}.toolUse.input`);
  }
  if (isObject(block.toolResult) && block.toolResult.content !== undefined) {
    if (!Array.isArray(block.toolResult.content)) fail(`${at}.toolResult.content`, "expected a list", block.toolResult.content);
    block.toolResult.content.forEach((b, i) => checkBlock(b, `${at}.toolResult.content[${i}]`));
  }
  if (isObject(block.reasoningContent)) {
    const r = block.reasoningContent;
    if (isObject(r.reasoningText)) optionalString(r.reasoningText, "text", `${at}.reasoningContent.reasoningText`);
    optionalString(r, "redactedContent", `${at}.reasoningContent`);
  }
  if (isObject(block.guardContent) && isObject(block.guardContent.text)) optionalString(block.guardContent.text, "text", `${at}.guardContent.text`);
  const known = ["text", "image", "document", "video", "toolUse", "toolResult", "reasoningContent", "guardContent", "cachePoint"];
  if (!known.some((k) => block[k] !== undefined)) checkFinite(block, at); // counted by its JSON text (a toolResult's `json` member included)
}

/** Every output-limit field the body sets is a positive whole number of tokens (null: not set). */
function checkMaxTokens(json: JsonObject, at: string): void {
  // Both operations' fields, whichever this body is for: a malformed one is refused either way.
  for (const path of [...INVOKE_MAX_TOKEN_PATHS, ...CONVERSE_MAX_TOKEN_PATHS]) {
    const v = valueAt(json, ...path);
    if (v === undefined || v === null) continue;
    const where = `${at}${path.join(".")}`;
    if (typeof v !== "number") fail(where, "expected a whole number of tokens", v);
    if (!Number.isSafeInteger(v) || v < 1) fail(where, `expected a whole number of tokens from 1 to ${Number.MAX_SAFE_INTEGER}; got ${v}`);
  }
}

/** Numbers inside a member the gateway counts by its JSON text must be finite (JSON.parse reads 1e400 as Infinity). */
function checkFinite(value: Json | undefined, at: string): void {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail(at, `expected a finite number; got ${value} (a number out of range)`);
    return;
  }
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) return value.forEach((v, i) => checkFinite(v, `${at}[${i}]`));
  for (const [k, v] of Object.entries(value)) checkFinite(v, at === "" ? k : `${at}.${k}`);
}

/** `object[key]`, when present, is a string. */
function optionalString(object: JsonObject, key: string, at: string): void {
  const v = object[key];
  if (v !== undefined && typeof v !== "string") fail(at === "" ? key : `${at}.${key}`, "expected a string", v);
}

/** Refuses the body naming the field and what is wrong: `messages[0].content[0].text: expected a string; got a number`. */
function fail(at: string, expected: string, ...got: Json[]): never {
  throw new EstimateError(`${at || "request body"}: ${expected}${got.length > 0 ? `; got ${kindOf(got[0])}` : ""}`);
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
  const converse = isConverse(operation);
  if (converse) {
    measureChat(t, body, true);
    t.json(body.additionalModelRequestFields);
    if (isObject(body.promptVariables)) for (const v of Object.values(body.promptVariables)) t.text(stringAt(v, "text"));
  } else {
    // Every prompt member the body has counts: a model that reads another member than the one
    // expected (or ignores an empty one) must not make the others free.
    const chat = Array.isArray(body.messages) || typeof body.message === "string" || body.chat_history !== undefined;
    const prompt = typeof body.prompt === "string";
    if (typeof body.inputText === "string") t.text(body.inputText); // Titan
    if (chat) measureChat(t, body, false);
    if (prompt) t.text(body.prompt); // Anthropic legacy, Llama, Mistral, DeepSeek, Cohere Command
    if (prompt && Array.isArray(body.images)) for (const img of body.images) image(t, typeof img === "string" ? img : undefined); // Llama 3.2 vision
    if (typeof body.inputText !== "string" && !chat && !prompt) {
      t.json(body);
      t.notes.add("unrecognised request body shape: counted its whole JSON as prompt text");
    }
  }
  return {
    inputTokens: t.tokens(),
    maxOutputTokens: requestedMaxTokens(body, converse),
    usesPromptCache: hasCacheMarker(body),
    notes: [...t.notes],
  };
}

/** Converse or ConverseStream: one body format for every model, whatever the operation's framing. */
export function isConverse(operation: MeteredOperation): boolean {
  return operation === "Converse" || operation === "ConverseStream";
}

/**
 * Message-style bodies: Anthropic Messages, Converse, Nova, OpenAI-style (gpt-oss, Mistral,
 * DeepSeek), Cohere. `converse`: tools come from `toolConfig` only (Converse reads no other).
 */
function measureChat(t: Tally, body: JsonObject, converse: boolean): void {
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
  // Tool definitions are rendered into the prompt as JSON schema text. Converse reads toolConfig
  // only: a stray top-level `tools` (even [] or false) must not hide its definitions.
  const toolConfig = isObject(body.toolConfig) ? body.toolConfig : undefined;
  const tools = converse ? toolConfig?.tools : body.tools;
  if (Array.isArray(tools) && tools.length > 0) {
    t.json(tools);
    t.fixedTokens += TOOL_USE_OVERHEAD_TOKENS;
  }
  t.json(converse ? toolConfig?.toolChoice : body.tool_choice);
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
 * Text formats are tokenized. Office formats (docx, xlsx, pptx) are zipped XML: their text is read
 * out and tokenized (text compresses 20–100×, so the file's size says little), never below one
 * token per byte of the file; one that is not a readable zip (doc, xls) is one token per byte.
 */
function binaryDocument(t: Tally, bytes: Uint8Array, format: string): void {
  if (TEXT_FORMATS.test(format)) return t.text(UTF8.decode(bytes));
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
  const text = officeText(bytes);
  if (text !== undefined) {
    t.fixedTokens += Math.max(bytes.length, estimateTokensOfText(text.text) + text.unread);
    t.notes.add(`${format} document: its text counted${text.unread > 0 ? ", and the parts too large to read at one token per byte" : ""}`);
    return;
  }
  t.fixedTokens += bytes.length;
  t.notes.add(`${format || "binary"} document: one token reserved per byte`);
}

/** Most bytes of XML read out of one office document; the parts past it count at one token per byte. */
const MAX_OFFICE_XML_BYTES = 16 * 1024 * 1024;

/**
 * The text of an office document's XML parts (paragraph, cell and row ends as line breaks, markup
 * dropped), and the bytes of the parts left unread past MAX_OFFICE_XML_BYTES; undefined when the
 * bytes are not a zip.
 */
function officeText(bytes: Uint8Array): { text: string; unread: number } | undefined {
  let budget = MAX_OFFICE_XML_BYTES;
  let unread = 0;
  let parts: Record<string, Uint8Array>;
  try {
    parts = unzipSync(bytes, {
      filter: (file) => {
        if (!file.name.endsWith(".xml")) return false;
        if (file.originalSize > budget) {
          unread += file.originalSize;
          return false;
        }
        budget -= file.originalSize;
        return true;
      },
    });
  } catch {
    return undefined;
  }
  const text = Object.values(parts)
    .map((xml) => UTF8.decode(xml).replace(/<\/(?:w:p|a:p|w:tc|si|c|row)>/g, "\n").replace(/<[^>]*>/g, ""))
    .join("\n");
  return { text, unread };
}

function opaqueDocument(t: Tally): void {
  t.fixedTokens += ASSUMED_OPAQUE_DOCUMENT_TOKENS;
  t.notes.add(`document not readable here (S3 or by reference): assumed ${ASSUMED_OPAQUE_DOCUMENT_TOKENS} tokens`);
}

/** More pages than any PDF Bedrock takes: a hostile `/Count` cannot push a reservation past safe integers. */
const MAX_PDF_PAGES = 100_000;
/** Most bytes inflated from a PDF's object streams (the page dictionaries are small; a bomb stops here). */
const MAX_PDF_INFLATED_BYTES = 64 * 1024 * 1024;

/**
 * Pages of a PDF: its `/Type /Page` objects, or its page tree's `/Count`, whichever is more, read
 * in the file and in its compressed object streams (PDF 1.5+: pdf-lib, qpdf and Acrobat's "reduce
 * size" put the page dictionaries there, where the raw bytes show none). 0 when none is found.
 */
function pdfPageCount(bytes: Uint8Array): number {
  const text = new TextDecoder("latin1").decode(bytes);
  let found = pageFigures(text);
  let budget = MAX_PDF_INFLATED_BYTES;
  for (let at = text.indexOf("/ObjStm"); at >= 0 && budget > 0; at = text.indexOf("/ObjStm", at + 7)) {
    const keyword = text.indexOf("stream", at);
    const end = keyword < 0 ? -1 : text.indexOf("endstream", keyword);
    if (end < 0) break;
    if (!text.slice(text.lastIndexOf("obj", at), keyword).includes("/FlateDecode")) continue;
    const start = keyword + (text.startsWith("\r\n", keyword + 6) ? 8 : 7);
    let inflated: Buffer;
    try {
      inflated = inflateSync(bytes.subarray(start, end), { maxOutputLength: budget });
    } catch {
      continue; // unreadable or over the budget: what the rest shows still counts
    }
    budget -= inflated.length;
    const inner = pageFigures(inflated.toString("latin1"));
    found = { objects: found.objects + inner.objects, count: Math.max(found.count, inner.count) };
  }
  return Math.min(MAX_PDF_PAGES, Math.max(found.objects, found.count));
}

function pageFigures(text: string): { objects: number; count: number } {
  const objects = text.match(/\/Type\s*\/Page(?![a-zA-Z])/g)?.length ?? 0;
  let count = 0;
  // Every `/Count`: the page tree's root holds the total (an outline's may be larger: that errs high).
  for (const m of text.matchAll(/\/Count\s+(\d{1,9})(?!\d)/g)) count = Math.max(count, Number(m[1]));
  return { objects, count };
}

function decodeBase64(text: string): Uint8Array {
  return Buffer.from(text, "base64");
}

/**
 * Every output-limit field a provider's InvokeModel body uses; the largest wins (the request is
 * capped by each it sets).
 */
const INVOKE_MAX_TOKEN_PATHS: string[][] = [
  ["max_tokens"], // Anthropic, Mistral, Cohere, DeepSeek, OpenAI (legacy)
  ["max_tokens_to_sample"], // Anthropic legacy
  ["max_gen_len"], // Llama
  ["max_completion_tokens"], // OpenAI / gpt-oss
  ["maxTokens"],
  ["inferenceConfig", "maxTokens"],
  ["inferenceConfig", "max_new_tokens"], // Nova InvokeModel
  ["textGenerationConfig", "maxTokenCount"], // Titan
];

/**
 * Converse's: its own field, and the model's native ones it passes through. Nothing else: Converse
 * reads no top-level `max_tokens`, so such a member limits nothing Bedrock bills.
 */
const CONVERSE_MAX_TOKEN_PATHS: string[][] = [
  ["inferenceConfig", "maxTokens"],
  ["additionalModelRequestFields", "max_tokens"],
  ["additionalModelRequestFields", "max_completion_tokens"],
  ["additionalModelRequestFields", "inferenceConfig", "max_new_tokens"],
];

function requestedMaxTokens(body: JsonObject, converse: boolean): number | undefined {
  let max: number | undefined;
  for (const path of converse ? CONVERSE_MAX_TOKEN_PATHS : INVOKE_MAX_TOKEN_PATHS) {
    const v = valueAt(body, ...path);
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) max = Math.max(max ?? 0, Math.ceil(v));
  }
  return max;
}

/**
 * A copy of `body` whose every output-limit field (the same paths requestedMaxTokens reads for
 * `operation`) is at most `limit`, so the body's output limit is `limit` or less. Converse gets
 * inferenceConfig.maxTokens when the body sets none; an InvokeModel body that sets none gives
 * undefined (the gateway cannot know the provider's field). Other members are untouched.
 */
export function withMaxTokensAtMost(body: JsonObject, limit: number, operation: MeteredOperation): JsonObject | undefined {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`withMaxTokensAtMost: ${limit} is not a whole number of tokens from 1`);
  const converse = isConverse(operation);
  const addAt = converse ? ["inferenceConfig", "maxTokens"] : [];
  const copy = structuredClone(body);
  let found = false;
  for (const path of converse ? CONVERSE_MAX_TOKEN_PATHS : INVOKE_MAX_TOKEN_PATHS) {
    const parent = valueAt(copy, ...path.slice(0, -1));
    const key = path[path.length - 1]!;
    if (!isObject(parent) || typeof parent[key] !== "number") continue;
    found = true;
    if (parent[key] > limit) parent[key] = limit;
  }
  if (found) return copy;
  if (addAt.length === 0) return undefined;
  let at: JsonObject = copy;
  for (const key of addAt.slice(0, -1)) {
    const next = at[key];
    if (next === undefined || next === null) at[key] = {};
    else if (!isObject(next)) return undefined;
    at = at[key] as JsonObject;
  }
  at[addAt[addAt.length - 1]!] = limit;
  return copy;
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

function valueAt(value: Json | undefined, ...path: string[]): Json | undefined {
  let v = value;
  for (const key of path) {
    if (!isObject(v)) return undefined;
    v = v[key];
  }
  return v;
}

/** The members of a Converse body's `additionalModelRequestFields` (model-specific, passed to the model as they are). */
export function additionalFieldNames(body: JsonObject): string[] {
  const fields = body.additionalModelRequestFields;
  return isObject(fields) ? Object.keys(fields) : [];
}

/** A thinking budget a request sets, and where (the field a user lowers to make room for a clamp). */
export interface ThinkingBudget {
  tokens: number;
  /** The field as the request names it, e.g. `additionalModelRequestFields.reasoning_config.budget_tokens`. */
  field: string;
}

/**
 * Where an extended-thinking budget is set: Anthropic's `thinking`, and `reasoning_config`, the name
 * Claude 3.7 Sonnet's Bedrock examples give it (both `{type: "enabled", budget_tokens}`).
 */
const THINKING_FIELDS = ["thinking", "reasoning_config"];

/**
 * The largest extended-thinking budget a request enables (top level in an InvokeModel body, in
 * `additionalModelRequestFields` in Converse), or undefined. Anthropic refuses an output limit at or
 * below it, so a clamp must not go there.
 */
export function thinkingBudget(body: JsonObject, converse: boolean): ThinkingBudget | undefined {
  const at = converse ? ["additionalModelRequestFields"] : [];
  let found: ThinkingBudget | undefined;
  for (const key of THINKING_FIELDS) {
    const thinking = valueAt(body, ...at, key);
    if (stringAt(thinking, "type") !== "enabled") continue;
    const budget = valueAt(thinking, "budget_tokens");
    if (typeof budget !== "number" || !Number.isInteger(budget) || budget <= 0) continue;
    if (!found || budget > found.tokens) found = { tokens: budget, field: [...at, key, "budget_tokens"].join(".") };
  }
  return found;
}

/**
 * Where a request asks Anthropic's adaptive thinking (`thinking: {type: "adaptive"}`, the model picks
 * its own budget; Claude 4.6 and later), as the request names the field, or undefined.
 */
export function adaptiveThinkingField(body: JsonObject, converse: boolean): string | undefined {
  const at = converse ? ["additionalModelRequestFields"] : [];
  return stringAt(body, ...at, "thinking", "type") === "adaptive" ? [...at, "thinking", "type"].join(".") : undefined;
}

export function stringAt(value: Json | undefined, ...path: string[]): string | undefined {
  const v = valueAt(value, ...path);
  return typeof v === "string" ? v : undefined;
}

/**
 * Where a request sets a sampling temperature, top_p and top_k, as the request names them (undefined
 * where it sets none): Converse's inferenceConfig and the native fields it passes to the model, or
 * an Anthropic InvokeModel body's top level. Newer Claude models refuse temperature and top_p
 * together, the newest any of them.
 */
export function samplingFields(body: JsonObject, converse: boolean, options: { exceptDefaultTemperature?: boolean } = {}): { temperature?: string; topP?: string; topK?: string } {
  const paths = converse
    ? {
        temperature: [["inferenceConfig", "temperature"], ["additionalModelRequestFields", "temperature"]],
        topP: [["inferenceConfig", "topP"], ["additionalModelRequestFields", "top_p"]],
        topK: [["additionalModelRequestFields", "top_k"]],
      }
    : { temperature: [["temperature"]], topP: [["top_p"]], topK: [["top_k"]] };
  // null is how a caller leaves a member unset; any other value is sent to the model.
  const set = (list: string[][], isDefault: (v: unknown) => boolean = () => false) =>
    list.find((p) => { const v = valueAt(body, ...p); return v !== undefined && v !== null && !isDefault(v); })?.join(".");
  // `exceptDefaultTemperature`: 1, the default many clients send explicitly, counts as unset.
  const temperature = set(paths.temperature, (v) => options.exceptDefaultTemperature === true && v === 1);
  const topP = set(paths.topP);
  const topK = set(paths.topK);
  return { ...(temperature ? { temperature } : {}), ...(topP ? { topP } : {}), ...(topK ? { topK } : {}) };
}

/**
 * The first reasoning block an earlier assistant turn of a Converse request carries back
 * (`messages[i].content[j].reasoningContent`, a model's signed or redacted reasoning), or undefined.
 */
export function reasoningBlockAt(body: JsonObject): string | undefined {
  const messages = body.messages;
  if (!Array.isArray(messages)) return undefined;
  for (const [i, m] of messages.entries()) {
    if (!isObject(m) || !Array.isArray(m.content)) continue;
    const j = m.content.findIndex((b) => isObject(b) && b.reasoningContent !== undefined && b.reasoningContent !== null);
    if (j >= 0) return `messages[${i}].content[${j}].reasoningContent`;
  }
  return undefined;
}

/**
 * The first image or document a request's messages carry, at the top of a turn or in a tool result
 * (Converse and Nova `image` / `document` blocks, Anthropic `type: "image"` / `"document"`), as the
 * request names it; undefined when none.
 */
export function mediaBlockAt(body: JsonObject, kind: "image" | "document"): string | undefined {
  const messages = body.messages;
  if (!Array.isArray(messages)) return undefined;
  const isKind = (b: Json) => isObject(b) && (b.type === kind || isObject(b[kind]));
  for (const [i, m] of messages.entries()) {
    if (!isObject(m) || !Array.isArray(m.content)) continue;
    for (const [j, b] of m.content.entries()) {
      const at = `messages[${i}].content[${j}]`;
      if (isKind(b)) return at;
      const inner = isObject(b) ? (isObject(b.toolResult) ? b.toolResult.content : b.type === "tool_result" ? b.content : undefined) : undefined;
      const k = Array.isArray(inner) ? inner.findIndex(isKind) : -1;
      if (k >= 0) return `${at}.${isObject(b) && isObject(b.toolResult) ? "toolResult." : ""}content[${k}]`;
    }
  }
  return undefined;
}

/** The tools a request offers and the tool choice it forces, as the request names them. */
export interface ToolRequest {
  /** The field holding a non-empty list of tools (`toolConfig.tools`, Anthropic's `tools`), when there is one. */
  tools?: string;
  /** A tool choice other than `auto` (Converse `any` or `tool`; Anthropic `tool_choice.type` `any` or `tool`), and where. */
  forced?: { form: "any" | "tool"; field: string };
}

/** What a request asks of the model's tool use: Converse's toolConfig, or an Anthropic InvokeModel body's tools and tool_choice. */
export function toolRequest(body: JsonObject, converse: boolean): ToolRequest {
  const toolsAt = converse ? ["toolConfig", "tools"] : ["tools"];
  const tools = valueAt(body, ...toolsAt);
  const out: ToolRequest = Array.isArray(tools) && tools.length > 0 ? { tools: toolsAt.join(".") } : {};
  if (converse) {
    const choice = valueAt(body, "toolConfig", "toolChoice");
    if (isObject(choice)) {
      const form = (["any", "tool"] as const).find((f) => choice[f] !== undefined && choice[f] !== null);
      if (form) out.forced = { form, field: `toolConfig.toolChoice.${form}` };
    }
  } else {
    const type = stringAt(body, "tool_choice", "type");
    if (type === "any" || type === "tool") out.forced = { form: type, field: `tool_choice.type "${type}"` };
  }
  return out;
}
