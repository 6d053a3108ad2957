/**
 * Reads a statically evaluated request (SDK command input, boto3 keyword arguments, Anthropic SDK
 * params) the way the gateway reads a real body: the known part is converted to JSON and measured
 * by the gateway's own `measureBody`, so editor and gateway count tokens and find limits alike.
 * What this module adds is bookkeeping of what could NOT be known, and where.
 */
import { measureBody } from "../../metering/requestBody";
import { tierInBody } from "../../metering/estimate";
import { guardedInputUnits } from "../../metering/attachedGuardrail";
import type { MeteredOperation } from "../../metering/types";
import type { Json, JsonObject } from "./types";
import type { RequestFacts } from "./types";
import { member, parseJsonString, stringOf, type Value } from "./values";
import { isObject } from "../../shared/isObject";

/** Keys whose values are (or carry) prompt text: an unknown value under them leaves the input size unknown. */
const PROMPT_KEYS = new Set([
  "messages", "system", "prompt", "inputText", "message", "chat_history", "preamble", "documents",
  "tools", "toolConfig", "tool_choice", "tool_results", "promptVariables", "additionalModelRequestFields",
]);
/** Every key some provider uses for the output limit (the gateway's MAX_TOKEN_PATHS end in these). */
const MAX_TOKEN_KEYS = new Set(["max_tokens", "max_tokens_to_sample", "max_gen_len", "max_completion_tokens", "maxTokens", "max_new_tokens", "maxTokenCount"]);
/** Keys whose strings are prompt text worth showing (not roles, types, ids). */
const NON_TEXT_KEYS = new Set(["role", "type", "name", "id", "toolUseId", "media_type", "format"]);

/** `modelKey`: "modelId" for AWS SDKs, "model" for the Anthropic SDK. */
export function readRequest(operation: MeteredOperation, params: Value, modelKey: "modelId" | "model", bodyIsMember: boolean): RequestFacts {
  const assumptions: string[] = [];
  const modelId = stringOf(member(params, modelKey));
  if (modelId === undefined) assumptions.push("model id not known statically: priced at the dearest known rates");

  const body = bodyIsMember ? bodyValue(member(params, "body")) : params;
  const gaps = { prompt: false, maxTokens: false };
  const json = toJson(body, [], gaps);
  const bodyObject = isObject(json) ? json : undefined;
  if (!bodyObject) {
    gaps.prompt = true;
    gaps.maxTokens = true;
    assumptions.push("request body not known statically");
  }

  const measured = bodyObject ? measureBody(operation, bodyObject) : undefined;
  const maxTokens = measured?.maxOutputTokens;
  if (maxTokens === undefined && gaps.maxTokens) assumptions.push("output limit not known statically: model maximum assumed");
  for (const note of measured?.notes ?? []) assumptions.push(note);

  // Read by the gateway's own rule, so the lens prices the tier the gateway will reserve at.
  const tier = bodyObject ? tierInBody(operation, bodyObject) : {};
  const guardrail = attachedGuardrailIn(operation, params, bodyIsMember);
  const texts: string[] = [];
  if (bodyObject) for (const [k, v] of Object.entries(bodyObject)) if (PROMPT_KEYS.has(k)) collectText(v, texts);
  return {
    ...(modelId !== undefined && { modelId }),
    ...(maxTokens !== undefined && { maxTokens }),
    maxTokensUnknown: maxTokens === undefined && gaps.maxTokens,
    ...(texts.length > 0 && { promptText: texts.join("\n") }),
    knownInputTokens: measured?.inputTokens ?? 0,
    promptComplete: !gaps.prompt,
    usesPromptCache: measured?.usesPromptCache ?? false,
    ...((tier.serviceTier !== undefined || tier.latency !== undefined) && { tier }),
    assumptions,
    // The gateway's own rule for what the guardrail evaluates, over the known part of the body.
    ...(guardrail && { guardrail: { ...guardrail, inputUnits: guardedInputUnits(operation, bodyObject ?? {}, bodyObject ? JSON.stringify(bodyObject).length : 0) } }),
  };
}

/**
 * The guardrail a call attaches, as the gateway finds it: Converse's `guardrailConfig`, the
 * `guardrailIdentifier` beside an AWS SDK InvokeModel's body (sent as the
 * X-Amzn-Bedrock-GuardrailIdentifier header). A key written with a value not known statically still
 * attaches one (its id unknown); a spread that may hide one does not count (most do not).
 */
function attachedGuardrailIn(operation: MeteredOperation, params: Value, bodyIsMember: boolean): { id?: string } | undefined {
  const converse = operation === "Converse" || operation === "ConverseStream";
  const key = converse ? "guardrailConfig" : bodyIsMember ? "guardrailIdentifier" : undefined;
  if (key === undefined || params.kind !== "obj") return undefined;
  const value = params.entries.get(key);
  if (value === undefined || value.kind === "null") return undefined;
  const id = stringOf(converse ? member(value, "guardrailIdentifier") : value)?.trim();
  return id ? { id } : {};
}

/** InvokeModel's `body`: JSON.stringify/json.dumps of a structure, or a JSON string literal. */
function bodyValue(v: Value): Value {
  if (v.kind === "json") return v.of;
  return parseJsonString(v) ?? v;
}

/** The known part as JSON; unknown pieces are left out and recorded in `gaps` by where they sit. */
function toJson(v: Value, path: string[], gaps: { prompt: boolean; maxTokens: boolean }): Json | undefined {
  const gap = () => {
    if (path.some((k) => MAX_TOKEN_KEYS.has(k))) gaps.maxTokens = true;
    else if (path.length === 0 || PROMPT_KEYS.has(path[0]!)) gaps.prompt = true;
  };
  switch (v.kind) {
    case "str":
      if (v.parts.some((p) => p === null)) gap();
      return v.parts.filter((p) => p !== null).join("");
    case "num":
    case "bool":
      return v.value;
    case "null":
      return null;
    case "json": {
      const inner = toJson(v.of, path, gaps);
      return inner === undefined ? undefined : JSON.stringify(inner);
    }
    case "arr": {
      if (v.open) gap();
      const out: Json[] = [];
      v.items.forEach((item, i) => {
        const j = toJson(item, [...path, String(i)], gaps);
        if (j !== undefined) out.push(j);
      });
      return out;
    }
    case "obj": {
      if (v.open) {
        // An unknown spread at the top may hide anything, including the limit.
        if (path.length === 0) gaps.maxTokens = gaps.prompt = true;
        else gap();
      }
      const out: JsonObject = {};
      for (const [k, item] of v.entries) {
        const j = toJson(item, [...path, k], gaps);
        if (j !== undefined) out[k] = j;
      }
      return out;
    }
    case "unknown":
      gap();
      return undefined;
  }
}

function collectText(j: Json, out: string[], key?: string): void {
  if (typeof j === "string") {
    if (j !== "" && (key === undefined || !NON_TEXT_KEYS.has(key))) out.push(j);
  } else if (Array.isArray(j)) {
    for (const item of j) collectText(item, out, key);
  } else if (j !== null && typeof j === "object") {
    for (const [k, v] of Object.entries(j)) collectText(v, out, k);
  }
}

