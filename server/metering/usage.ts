/**
 * Real usage after (or during) a call: token counts from Bedrock's headers, the provider's response
 * body, Converse's `usage`, or the event stream; and the tier the response says was applied.
 * Counts follow Bedrock's convention: input excludes cache reads and writes.
 */
import { countRawTokens, scaleTokens } from "./tokens";
import { ZERO_USAGE, type AppliedTier, type TokenUsage } from "./types";
import { isObject } from "../shared/isObject";
import { UTF8 } from "../shared/utf8";

export type Headers = Record<string, string | string[] | undefined>;

// ---------------------------------------------------------------------------------------------
// InvokeModel and Converse (buffered)

export function usageFromInvokeModel(headers: Headers, body: Uint8Array): TokenUsage | undefined {
  return readable(() => invokeModelUsage(headers, body));
}

function invokeModelUsage(headers: Headers, body: Uint8Array): TokenUsage | undefined {
  const fromBody = usageFromProviderJson(parseJson(body));
  const input = headerInt(headers, "x-amzn-bedrock-input-token-count");
  const output = headerInt(headers, "x-amzn-bedrock-output-token-count");
  if (input === undefined || output === undefined) return fromBody;

  const cacheRead = headerInt(headers, "x-amzn-bedrock-cache-read-input-token-count") ?? fromBody?.cacheReadInputTokens ?? 0;
  const cacheWrite = headerInt(headers, "x-amzn-bedrock-cache-write-input-token-count");
  // The header gives one write total; the body (Anthropic) may say how it splits by TTL.
  let write5m = fromBody?.cacheWrite5mInputTokens ?? 0;
  let write1h = fromBody?.cacheWrite1hInputTokens ?? 0;
  if (cacheWrite !== undefined) {
    // When the header agrees with the body's split this keeps it as it is.
    write1h = Math.min(write1h, cacheWrite);
    write5m = cacheWrite - write1h; // 5 minutes is the default TTL
  }
  return { inputTokens: input, outputTokens: output, cacheReadInputTokens: cacheRead, cacheWrite5mInputTokens: write5m, cacheWrite1hInputTokens: write1h };
}

/** Converse `usage` (also the ConverseStream `metadata` event's), with `cacheDetails` splitting writes by TTL. */
export function usageFromConverse(json: unknown): TokenUsage | undefined {
  return readable(() => converseUsage(json));
}

function converseUsage(json: unknown): TokenUsage | undefined {
  const usage = field(json, "usage");
  const input = num(field(usage, "inputTokens"));
  const output = num(field(usage, "outputTokens"));
  if (input === undefined || output === undefined) return undefined;
  const write = num(field(usage, "cacheWriteInputTokens")) ?? 0;
  let write1h = 0;
  let detailed = 0;
  const details = field(usage, "cacheDetails");
  if (Array.isArray(details)) {
    for (const d of details) {
      const n = num(field(d, "inputTokens")) ?? 0;
      detailed += n;
      if (field(d, "ttl") === "1h") write1h += n;
    }
  }
  const total = Math.max(write, detailed);
  return {
    inputTokens: input,
    outputTokens: output,
    cacheReadInputTokens: num(field(usage, "cacheReadInputTokens")) ?? 0,
    cacheWrite5mInputTokens: total - write1h,
    cacheWrite1hInputTokens: write1h,
  };
}

export function appliedTierFromHeaders(headers: Headers): AppliedTier {
  const tier: AppliedTier = {};
  const serviceTier = header(headers, "x-amzn-bedrock-service-tier");
  const latency = header(headers, "x-amzn-bedrock-performanceconfig-latency");
  if (serviceTier) tier.serviceTier = serviceTier;
  if (latency) tier.latency = latency;
  return tier;
}

/**
 * Converse reports `serviceTier: {type}` and `performanceConfig: {latency}` in its response (and
 * stream metadata), and a prompt router's choice in `trace.promptRouter.invokedModelId`.
 */
export function appliedTierFromConverse(json: unknown): AppliedTier {
  const tier: AppliedTier = {};
  const st = field(json, "serviceTier");
  const serviceTier = typeof st === "string" ? st : field(st, "type");
  const latency = field(field(json, "performanceConfig"), "latency");
  const invoked = field(field(field(json, "trace"), "promptRouter"), "invokedModelId");
  if (typeof serviceTier === "string") tier.serviceTier = serviceTier;
  if (typeof latency === "string") tier.latency = latency;
  if (typeof invoked === "string" && invoked.length > 0 && invoked.length <= 2048) tier.invokedModelId = invoked;
  return tier;
}

/** Usage in a provider's own InvokeModel response body (or an Invoke stream's final chunk). */
function usageFromProviderJson(json: unknown): TokenUsage | undefined {
  const usage = field(json, "usage");
  // Anthropic
  const anthropicIn = num(field(usage, "input_tokens"));
  if (anthropicIn !== undefined) {
    const split = anthropicCacheWrites(usage);
    return {
      inputTokens: anthropicIn,
      outputTokens: num(field(usage, "output_tokens")) ?? 0,
      cacheReadInputTokens: num(field(usage, "cache_read_input_tokens")) ?? 0,
      cacheWrite5mInputTokens: split.write5m,
      cacheWrite1hInputTokens: split.write1h,
    };
  }
  // Nova
  const novaIn = num(field(usage, "inputTokens"));
  if (novaIn !== undefined) {
    return {
      ...ZERO_USAGE,
      inputTokens: novaIn,
      outputTokens: num(field(usage, "outputTokens")) ?? 0,
      cacheReadInputTokens: num(field(usage, "cacheReadInputTokenCount")) ?? 0,
      cacheWrite5mInputTokens: num(field(usage, "cacheWriteInputTokenCount")) ?? 0,
    };
  }
  // OpenAI-style (gpt-oss, Mistral chat, DeepSeek): prompt_tokens include cached ones.
  const promptTokens = num(field(usage, "prompt_tokens"));
  if (promptTokens !== undefined) {
    const cached = num(field(field(usage, "prompt_tokens_details"), "cached_tokens")) ?? 0;
    return {
      ...ZERO_USAGE,
      inputTokens: Math.max(0, promptTokens - cached),
      outputTokens: num(field(usage, "completion_tokens")) ?? 0,
      cacheReadInputTokens: cached,
    };
  }
  // Llama
  const llamaIn = num(field(json, "prompt_token_count"));
  if (llamaIn !== undefined) {
    return { ...ZERO_USAGE, inputTokens: llamaIn, outputTokens: num(field(json, "generation_token_count")) ?? 0 };
  }
  // Titan
  const titanIn = num(field(json, "inputTextTokenCount"));
  if (titanIn !== undefined) {
    const results = field(json, "results");
    const out = Array.isArray(results) ? results.reduce<number>((sum, r) => sum + (num(field(r, "tokenCount")) ?? 0), 0) : 0;
    return { ...ZERO_USAGE, inputTokens: titanIn, outputTokens: out };
  }
  // Cohere Command R: meta.billed_units (or meta.tokens)
  const meta = field(json, "meta");
  for (const units of [field(meta, "billed_units"), field(meta, "tokens")]) {
    const cohereIn = num(field(units, "input_tokens"));
    if (cohereIn !== undefined) return { ...ZERO_USAGE, inputTokens: cohereIn, outputTokens: num(field(units, "output_tokens")) ?? 0 };
  }
  return undefined;
}

function anthropicCacheWrites(usage: unknown): { write5m: number; write1h: number } {
  const total = num(field(usage, "cache_creation_input_tokens")) ?? 0;
  const creation = field(usage, "cache_creation");
  const write1h = num(field(creation, "ephemeral_1h_input_tokens")) ?? 0;
  const write5m = num(field(creation, "ephemeral_5m_input_tokens"));
  // Without a per-TTL split the whole total is 5-minute writes (the default TTL).
  return { write5m: Math.max(write5m ?? 0, total - write1h), write1h };
}

// ---------------------------------------------------------------------------------------------
// Streams

export interface StreamMessage {
  headers: Record<string, { type: string; value: unknown }>;
  body: Uint8Array;
}

/**
 * Follows a response stream. `current()` is the running best figure (used to cut a stream at a cap):
 * the reported input (else the estimate) plus output so far (the last reported count, plus tokens of
 * text received since, counted as estimate.ts counts them). `final()` is the authoritative figure:
 * `amazon-bedrock-invocationMetrics` (InvokeModelWithResponseStream) or the `metadata` event's usage
 * (ConverseStream), undefined until it has arrived.
 */
export class StreamUsageTracker {
  private readonly operation: "InvokeModelWithResponseStream" | "ConverseStream";
  /** The input before the stream reports one: the estimate's (built once, not per frame). */
  private readonly estimatedInput: TokenUsage;
  /**
   * The input the stream reported. Its `outputTokens` is a placeholder that `current()` overwrites:
   * spreading an object and adding a key it lacks costs V8 ~1 µs (a new map per object), per frame.
   */
  private input: TokenUsage | undefined;
  private reportedOutput = 0;
  private rawTokensSinceReport = 0;
  private finalUsage: TokenUsage | undefined;
  private tier: AppliedTier = {};
  /** Characters of the answer's text so far: what an attached guardrail evaluated when its trace says nothing. */
  private chars = 0;
  /** The guardrail trace the stream carried (ConverseStream's metadata event, InvokeModel's last chunk), if any. */
  private trace: unknown;

  constructor(
    operation: "InvokeModelWithResponseStream" | "ConverseStream",
    estimatedInputTokens: number,
    /** The request's output limit (the estimate's): Bedrock stops there, so the count's margin never takes it past (runningOutput). */
    private readonly maxOutputTokens = Infinity,
  ) {
    this.operation = operation;
    this.estimatedInput = { ...ZERO_USAGE, inputTokens: estimatedInputTokens };
  }

  onEvent(message: StreamMessage): void {
    if (headerValue(message, ":message-type") !== "event") return; // exceptions carry no usage
    const eventType = headerValue(message, ":event-type");
    // InvokeModelWithResponseStream's usage and text come only in `chunk` events.
    if (this.operation === "InvokeModelWithResponseStream" && eventType !== "chunk") return;
    const text = UTF8.decode(message.body);
    // An event with a count that cannot be read teaches nothing more; without readable final
    // metrics the call settles at its worst case. (readable()'s catch, without a closure per frame.)
    try {
      if (this.operation === "ConverseStream") {
        const json = parseText(text);
        // An unreadable event teaches nothing (and must not erase a tier already reported).
        if (json !== undefined) this.onConverseEvent(eventType, json);
      } else {
        const bytes = chunkBytes(text);
        if (typeof bytes === "string") this.onInvokeChunk(UTF8.decode(Buffer.from(bytes, "base64")));
      }
    } catch {
      // Nothing more to learn from this event.
    }
  }

  current(): TokenUsage {
    if (this.finalUsage) return { ...this.finalUsage };
    return { ...(this.input ?? this.estimatedInput), outputTokens: this.runningOutput() };
  }

  /**
   * Output so far: the local count with its margin (×1.2 for the model's tokenizer), but never
   * past the output limit on that margin alone. Bedrock stops at the limit, so a stream that fits
   * is not cut near its end for the margin; a count past the limit even without it means the
   * model does not stop there (a limit read from the wrong field), and counts in full.
   */
  private runningOutput(): number {
    const withMargin = this.reportedOutput + scaleTokens(this.rawTokensSinceReport);
    // Stryker disable next-line EqualityOperator: at the limit exactly both ways give the limit.
    if (withMargin <= this.maxOutputTokens) return withMargin;
    return Math.max(this.maxOutputTokens, this.reportedOutput + this.rawTokensSinceReport);
  }

  final(): TokenUsage | undefined {
    return this.finalUsage ? { ...this.finalUsage } : undefined;
  }

  /** Characters of text (and tool input) the answer streamed so far. */
  outputChars(): number {
    return this.chars;
  }

  /** The guardrail trace the stream reported, undefined when none came. */
  guardrailTrace(): unknown {
    return this.trace;
  }

  /** The tier a ConverseStream `metadata` event reported (empty otherwise: read the response headers). */
  appliedTier(): AppliedTier {
    return { ...this.tier };
  }

  private onConverseEvent(eventType: string | undefined, json: unknown): void {
    if (eventType === "contentBlockDelta") {
      const delta = field(json, "delta");
      this.text(field(delta, "text"));
      this.text(field(field(delta, "toolUse"), "input"));
      this.text(field(field(delta, "reasoningContent"), "text"));
      return;
    }
    // Stryker disable next-line ConditionalExpression: only `metadata` carries usage or a tier, and it is the stream's last event.
    if (eventType !== "metadata") return;
    this.trace = field(field(json, "trace"), "guardrail") ?? this.trace;
    const usage = usageFromConverse(json);
    // Stryker disable next-line ConditionalExpression: one metadata event per stream, so there is no earlier usage to keep.
    if (usage) this.finalUsage = usage;
    this.tier = appliedTierFromConverse(json);
  }

  /** `json`: the chunk's decoded `bytes`, the model's own event. */
  private onInvokeChunk(json: string): void {
    const delta = anthropicDeltaText(json);
    // Stryker disable next-line ConditionalExpression: the full read below counts the same text (only slower).
    if (delta !== undefined) return this.text(delta);
    // Every reader below yields nothing for a chunk that is not JSON.
    const model = parseText(json);
    this.trace = field(field(model, "amazon-bedrock-trace"), "guardrail") ?? this.trace;
    this.onInvocationMetrics(field(model, "amazon-bedrock-invocationMetrics"));

    switch (field(model, "type")) {
      case "message_start": {
        // Anthropic: input and cache counts are final here; its output_tokens is not a running count.
        const usage = field(field(model, "message"), "usage");
        const split = anthropicCacheWrites(usage);
        const input = num(field(usage, "input_tokens"));
        if (input !== undefined) {
          this.input = {
            inputTokens: input,
            cacheReadInputTokens: num(field(usage, "cache_read_input_tokens")) ?? 0,
            cacheWrite5mInputTokens: split.write5m,
            cacheWrite1hInputTokens: split.write1h,
            outputTokens: 0,
          };
        }
        return;
      }
      case "content_block_delta": {
        const delta = field(model, "delta");
        this.text(field(delta, "text"));
        this.text(field(delta, "thinking"));
        this.text(field(delta, "partial_json"));
        return;
      }
      case "message_delta":
        // Cumulative output count: take the latest.
        this.reportOutput(num(field(field(model, "usage"), "output_tokens")));
        return;
    }

    // Other providers' stream chunks.
    this.text(field(field(field(model, "contentBlockDelta"), "delta"), "text")); // Nova
    const novaUsage = field(field(model, "metadata"), "usage");
    const novaInput = num(field(novaUsage, "inputTokens"));
    if (novaInput !== undefined) {
      this.input = {
        inputTokens: novaInput,
        cacheReadInputTokens: num(field(novaUsage, "cacheReadInputTokenCount")) ?? 0,
        cacheWrite5mInputTokens: num(field(novaUsage, "cacheWriteInputTokenCount")) ?? 0,
        cacheWrite1hInputTokens: 0,
        outputTokens: 0,
      };
    }
    this.reportOutput(num(field(novaUsage, "outputTokens")));
    this.text(field(model, "generation")); // Llama
    const llamaIn = num(field(model, "prompt_token_count"));
    if (llamaIn !== undefined) this.input = { ...ZERO_USAGE, inputTokens: llamaIn };
    this.reportOutput(num(field(model, "generation_token_count")));
    this.text(field(model, "outputText")); // Titan
    const titanIn = num(field(model, "inputTextTokenCount"));
    if (titanIn !== undefined) this.input = { ...ZERO_USAGE, inputTokens: titanIn };
    this.reportOutput(num(field(model, "totalOutputTextTokenCount")));
    const outputs = field(model, "outputs"); // Mistral prompt format
    if (Array.isArray(outputs)) for (const o of outputs) this.text(field(o, "text"));
    const choices = field(model, "choices"); // OpenAI-style, Mistral chat, DeepSeek
    if (Array.isArray(choices)) {
      for (const c of choices) {
        this.text(field(field(c, "delta"), "content"));
        this.text(field(field(c, "delta"), "reasoning_content"));
        this.text(field(field(c, "message"), "content"));
        this.text(field(c, "text"));
      }
    }
    if (field(model, "event_type") === "text-generation") this.text(field(model, "text")); // Cohere
  }

  private onInvocationMetrics(metrics: unknown): void {
    const input = num(field(metrics, "inputTokenCount"));
    const output = num(field(metrics, "outputTokenCount"));
    if (input === undefined || output === undefined) return;
    // Metrics give one cache-write total; Anthropic's message_start may have said how it splits by TTL.
    const write = num(field(metrics, "cacheWriteInputTokenCount"));
    const known1h = this.input?.cacheWrite1hInputTokens ?? 0;
    const write1h = write === undefined ? known1h : Math.min(known1h, write);
    const write5m = write === undefined ? (this.input?.cacheWrite5mInputTokens ?? 0) : write - write1h;
    this.finalUsage = {
      inputTokens: input,
      outputTokens: output,
      cacheReadInputTokens: num(field(metrics, "cacheReadInputTokenCount")) ?? this.input?.cacheReadInputTokens ?? 0,
      cacheWrite5mInputTokens: write5m,
      cacheWrite1hInputTokens: write1h,
    };
  }

  private reportOutput(count: number | undefined): void {
    if (count === undefined) return;
    this.reportedOutput = count;
    this.rawTokensSinceReport = 0;
  }

  private text(value: unknown): void {
    if (typeof value !== "string") return;
    this.rawTokensSinceReport += countRawTokens(value);
    this.chars += value.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Small readers

function headerValue(message: StreamMessage, name: string): string | undefined {
  const v = message.headers[name]?.value;
  return typeof v === "string" ? v : undefined;
}

/** Case-insensitive header read; a repeated header yields its first value. */
function header(headers: Headers, name: string): string | undefined {
  const value = lowerCased(headers)[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Each map's lower-cased view, built once however many headers are read from it (an answer's usage reads six); maps are read once complete. */
const views = new WeakMap<Headers, Headers>();

/** `headers` by lower-case name, the first spelling with a value winning; the map itself when every name is lower-case already (Node's). */
function lowerCased(headers: Headers): Headers {
  const known = views.get(headers);
  // Stryker disable next-line ConditionalExpression: a cache; building the view again gives the same view.
  if (known) return known;
  let view = headers;
  // Stryker disable next-line all: a copy of a map whose names are all lower-case reads the same; this test only skips the work.
  if (!Object.keys(headers).every((key) => key === key.toLowerCase())) {
    view = Object.create(null) as Headers;
    for (const [key, value] of Object.entries(headers)) {
      const lower = key.toLowerCase();
      if (view[lower] === undefined) view[lower] = value;
    }
  }
  // Stryker disable next-line all: a cache; without it the view is built again, the same.
  views.set(headers, view);
  return view;
}

function headerInt(headers: Headers, name: string): number | undefined {
  const v = header(headers, name);
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return undefined;
  return num(Number(v));
}

function parseJson(bytes: Uint8Array): unknown {
  return parseText(UTF8.decode(bytes));
}

function parseText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Most of a stream's frames have one of two shapes, read here without JSON.parse building their
 * objects (~1 µs a frame). Each pattern matches only text JSON.parse reads as exactly that object,
 * so what is learnt is the same; anything else is parsed in full. Neither pattern has a repeated
 * alternation, so a 16 MB frame cannot overflow the regex engine's backtracking stack.
 */
/** An InvokeModelWithResponseStream event: `{"bytes":"<base64>","p":"<padding>"}`. */
const CHUNK = /^\{"bytes":"([A-Za-z0-9+/]*={0,2})"(?:,"p":"[A-Za-z0-9_-]*")?\}$/;
/** Anthropic's text, thinking or tool-input delta up to its string's opening quote. */
const DELTA = /^\{"type":"content_block_delta","index":(?:0|[1-9]\d*),"delta":\{"type":"[a-z_]+","(?:text|thinking|partial_json)":"/;

/** The `bytes` of an Invoke stream's chunk event (base64 when it is a string). */
function chunkBytes(event: string): unknown {
  const usual = CHUNK.exec(event);
  return usual ? usual[1] : field(parseText(event), "bytes");
}

/**
 * The text of an Anthropic `content_block_delta` chunk with nothing else in it, else undefined.
 * What lies between the prefix and the closing `"}}` must be one JSON string for a match.
 */
function anthropicDeltaText(json: string): string | undefined {
  const prefix = DELTA.exec(json);
  if (!prefix || !json.endsWith('"}}')) return undefined;
  // From the prefix's last quote to the closing one: JSON that starts with a quote is a string or unreadable.
  return parseText(json.slice(prefix[0].length - 1, -2)) as string | undefined;
}

function field(value: unknown, key: string): unknown {
  return isObject(value) ? value[key] : undefined;
}

/** A count that is there but is not a whole number of tokens: the usage it is part of cannot be read. */
class UnreadableCount extends Error {}

/**
 * A token count: absent (undefined, null) or a whole number BigInt can price exactly. Anything else
 * makes the whole usage unreadable (settled at the worst case), never a count of 0 (an undercharge).
 */
function num(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new UnreadableCount();
}

/**
 * `read()`, or undefined when a count in it is unreadable: the call is then charged its worst case.
 * Anything else thrown while reading Bedrock's figures means the same (they cannot be trusted), so
 * the catch is not narrowed: an unknown usage must never become an unsettled call.
 */
function readable<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
