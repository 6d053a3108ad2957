/** What the try-it simulator answers for one Bedrock call: text, usage and the wire bodies. Pure (no I/O, no clock). */
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { countRawTokens } from "../metering/tokens";
import { EstimateError, measureBody, parseBody, type JsonObject } from "../metering/requestBody";
import type { AppliedTier, MeteredOperation } from "../metering/types";
import { isObject } from "../shared/isObject";

/** A reply when the request sets no max tokens: a few sentences. */
const DEFAULT_REPLY_TOKENS = 120;

/** Plausible assistant prose, cycled until the reply reaches its length. */
const SENTENCES = [
  "This answer comes from the Bedrock Budget simulator, not from a model on AWS, so it cost nothing.",
  "The gateway priced it as if it were real: the input tokens were estimated from your request and the output tokens counted from this text.",
  "Every call was checked against your caps before it was answered, and recorded in the simulated ledger.",
  "When the next call's worst case would break a cap, the gateway refuses it with a ServiceQuotaExceededException, as it would for a real call.",
  "Use this mode to see how your application behaves at a cap before it spends real money.",
];

export interface SimulatedReply {
  text: string;
  inputTokens: number;
  outputTokens: number;
  /** "max_tokens" when the text was cut at the request's limit. */
  stopReason: "end_turn" | "max_tokens";
}

/** The reply to a request: input tokens from the gateway's own estimator, output counted from the text, never above the request's max tokens. */
export function simulatedReply(operation: MeteredOperation, body: JsonObject): SimulatedReply {
  const measured = measureBody(operation, body);
  const limit = measured.maxOutputTokens ?? DEFAULT_REPLY_TOKENS;
  const target = Math.min(limit, DEFAULT_REPLY_TOKENS);
  const words = SENTENCES.join(" ").split(" ");
  let text = "";
  // Bounded: every word is at least one token, so the reply is full within `target` words.
  for (let i = 0; i < target; i++) {
    const candidate = text ? `${text} ${words[i % words.length]}` : words[i % words.length]!;
    if (countRawTokens(candidate) > target) break;
    text = candidate;
  }
  return {
    text,
    inputTokens: measured.inputTokens,
    outputTokens: countRawTokens(text),
    stopReason: limit < DEFAULT_REPLY_TOKENS ? "max_tokens" : "end_turn",
  };
}

/**
 * CountTokens' answer: the input tokens of the request it wraps (`input.converse`, or the base64
 * `input.invokeModel.body`) by the gateway's estimator; the envelope itself is no prompt.
 */
export function countTokensInput(body: JsonObject): number {
  const input = body.input;
  if (isObject(input) && isObject(input.converse)) return measureBody("Converse", input.converse as JsonObject).inputTokens;
  const invoke = isObject(input) ? input.invokeModel : undefined;
  if (isObject(invoke) && typeof invoke.body === "string") return measureBody("InvokeModel", parseBody(Buffer.from(invoke.body, "base64"))).inputTokens;
  throw new EstimateError('CountTokens needs "input" with "converse" or "invokeModel"');
}

/** Splits the reply into a few stream deltas (whole words). */
export function deltas(text: string, parts = 4): string[] {
  const words = text.split(" ");
  const size = Math.max(1, Math.ceil(words.length / parts));
  const out: string[] = [];
  for (let i = 0; i < words.length; i += size) out.push((i === 0 ? "" : " ") + words.slice(i, i + size).join(" "));
  return out;
}

/** InvokeModel bodies the simulator can answer: the Anthropic Messages format. */
export function isAnthropicMessages(body: JsonObject): boolean {
  return typeof body.anthropic_version === "string" && Array.isArray(body.messages);
}

/**
 * The tier and latency mode the call was served at, as Converse reports them (`serviceTier: {type}`,
 * `performanceConfig: {latency}`): the gateway settles the call at the rates of the tier the answer
 * names, so a priority or latency-optimized call must say so, as Bedrock does.
 */
function converseTier(tier: AppliedTier): Record<string, unknown> {
  return {
    ...(tier.serviceTier !== undefined ? { serviceTier: { type: tier.serviceTier } } : {}),
    ...(tier.latency !== undefined ? { performanceConfig: { latency: tier.latency } } : {}),
  };
}

/** InvokeModel's answer headers naming the tier and latency mode it was served at (asked in its request headers). */
export function invokeTierHeaders(tier: AppliedTier): Record<string, string> {
  return {
    ...(tier.serviceTier !== undefined ? { "x-amzn-bedrock-service-tier": tier.serviceTier } : {}),
    ...(tier.latency !== undefined ? { "x-amzn-bedrock-performanceconfig-latency": tier.latency } : {}),
  };
}

export function converseBody(reply: SimulatedReply, modelId: string, latencyMs: number, tier: AppliedTier = {}): unknown {
  return {
    output: { message: { role: "assistant", content: [{ text: reply.text }] } },
    stopReason: reply.stopReason,
    usage: { inputTokens: reply.inputTokens, outputTokens: reply.outputTokens, totalTokens: reply.inputTokens + reply.outputTokens },
    metrics: { latencyMs },
    ...converseTier(tier),
    additionalModelResponseFields: { simulated: true, model: modelId },
  };
}

export function anthropicBody(reply: SimulatedReply, modelId: string, id: string): unknown {
  return {
    id,
    type: "message",
    role: "assistant",
    model: modelId,
    content: [{ type: "text", text: reply.text }],
    stop_reason: reply.stopReason,
    stop_sequence: null,
    usage: { input_tokens: reply.inputTokens, output_tokens: reply.outputTokens },
  };
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

function eventFrame(eventType: string, json: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ":event-type": { type: "string", value: eventType },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: fromUtf8(JSON.stringify(json)),
  });
}

/** ConverseStream's event-stream frames, usage in the closing metadata event as Bedrock sends it. */
export function converseStreamFrames(reply: SimulatedReply, latencyMs: number, tier: AppliedTier = {}): Uint8Array[] {
  return [
    eventFrame("messageStart", { role: "assistant" }),
    ...deltas(reply.text).map((text) => eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text } })),
    eventFrame("contentBlockStop", { contentBlockIndex: 0 }),
    eventFrame("messageStop", { stopReason: reply.stopReason }),
    eventFrame("metadata", {
      usage: { inputTokens: reply.inputTokens, outputTokens: reply.outputTokens, totalTokens: reply.inputTokens + reply.outputTokens },
      metrics: { latencyMs },
      ...converseTier(tier),
    }),
  ];
}

/** InvokeModelWithResponseStream in the Anthropic format: each event a base64 `chunk`, with Bedrock's invocation metrics at the end. */
export function anthropicStreamFrames(reply: SimulatedReply, modelId: string, id: string, latencyMs: number): Uint8Array[] {
  const chunk = (json: unknown) => eventFrame("chunk", { bytes: Buffer.from(JSON.stringify(json)).toString("base64") });
  return [
    chunk({
      type: "message_start",
      message: { id, type: "message", role: "assistant", model: modelId, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: reply.inputTokens, output_tokens: 1 } },
    }),
    chunk({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    ...deltas(reply.text).map((text) => chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } })),
    chunk({ type: "content_block_stop", index: 0 }),
    chunk({ type: "message_delta", delta: { stop_reason: reply.stopReason, stop_sequence: null }, usage: { output_tokens: reply.outputTokens } }),
    chunk({
      type: "message_stop",
      "amazon-bedrock-invocationMetrics": { inputTokenCount: reply.inputTokens, outputTokenCount: reply.outputTokens, invocationLatency: latencyMs, firstByteLatency: latencyMs },
    }),
  ];
}
