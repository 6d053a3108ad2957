/**
 * The worst-case price of a call before it is sent: input tokens estimated from the body, output
 * tokens at the request's limit (or the model's), each at the highest rate that could apply. The
 * reservation settles to the real usage afterwards, so the estimate must err high, but not absurdly.
 *
 * `worstCaseCost` and `estimateFromParts` serve callers that know only part of a request (e.g. an
 * editor code lens); token counting is in tokens.ts, body reading in requestBody.ts.
 */
import type { AttachedGuardrail } from "./attachedGuardrail";
import type { Picos } from "./money";
import type { PriceBook, PricingScope } from "./prices";
import { isConverse, measureBody, parseBody, stringAt, type JsonObject } from "./requestBody";
import { estimateTokensOfText } from "./tokens";
import type { AppliedTier, MeteredOperation, Rates } from "./types";

export { EstimateError } from "./requestBody";

export interface Estimate {
  inputTokens: number;
  maxOutputTokens: number;
  outputFromRequest: boolean;
  usesPromptCache: boolean;
  rates: Rates;
  worstCasePicos: Picos;
  notes: string[];
  /** Region and profile lookup the call was priced with: settlement prices with the same. */
  scope?: PricingScope;
  /** A priced guardrail attached to the call: its worst case is part of worstCasePicos, and settlement adds what it cost. */
  guardrail?: AttachedGuardrail;
}

/**
 * Input at the dearest input-side rate it could be billed at (a cache write costs more than plain
 * input when the body asks for caching), output at the output rate.
 */
export function worstCaseCost(inputTokens: number, maxOutputTokens: number, rates: Rates, usesPromptCache: boolean): Picos {
  let inputRate = rates.input;
  if (usesPromptCache) {
    // Stryker disable next-line EqualityOperator: taking an equal rate changes nothing.
    for (const r of [rates.cacheWrite5m, rates.cacheWrite1h]) if (r > inputRate) inputRate = r;
  }
  return BigInt(inputTokens) * inputRate + BigInt(maxOutputTokens) * rates.output;
}

export interface EstimateParts {
  modelId: string;
  /** Known input token count; else counted from `promptText` (an empty prompt when neither is given). */
  inputTokens?: number;
  promptText?: string;
  /** The request's output limit, when it sets one. */
  maxOutputTokens?: number;
  usesPromptCache?: boolean;
  /** Tier asked for; only tiers that raise the price are applied (a request may fall back to standard). */
  tier?: AppliedTier;
  notes?: string[];
  /** Where the call is billed and what an application inference profile stands for. */
  scope?: PricingScope;
}

/** An estimate from whatever is known; unknown parts are assumed at their worst. */
export function estimateFromParts(parts: EstimateParts, prices: PriceBook): Estimate {
  const notes = [...(parts.notes ?? [])];
  const inputTokens = parts.inputTokens ?? estimateTokensOfText(parts.promptText ?? "");
  // Asked in any case (Bedrock's values are lower case; a header may not be): read as settlement reads them.
  const latency: AppliedTier = parts.tier?.latency?.toLowerCase() === "optimized" ? { latency: "optimized" } : {};
  const scope = parts.scope ?? {};
  const standard = prices.rates(parts.modelId, { ...latency, ...scope, inputTokens });
  // The tier asked for, priced as settlement prices it (any case; one the table does not know at the dearest listed tier).
  const tiered = prices.rates(parts.modelId, { ...latency, serviceTier: parts.tier?.serviceTier, ...scope, inputTokens });

  let maxOutputTokens = standard.maxOutputTokens;
  const outputFromRequest = parts.maxOutputTokens !== undefined;
  if (parts.maxOutputTokens === undefined) {
    notes.push(`no output limit in the request: reserved the model maximum of ${standard.maxOutputTokens} tokens`);
  } else {
    // A limit above the table's maximum is reserved as asked, never clamped: the table can lag a
    // model (Claude 3.7 Sonnet's 128K output beta), and a limit the model cannot take is refused
    // by Bedrock for free, while a clamped one could bill beyond what was reserved.
    maxOutputTokens = Math.max(0, Math.floor(parts.maxOutputTokens));
    if (maxOutputTokens > standard.maxOutputTokens) {
      notes.push(`output limit ${maxOutputTokens} is above the price table's maximum for this model (${standard.maxOutputTokens}): reserved as asked`);
    }
  }
  const usesPromptCache = parts.usesPromptCache ?? false;
  if (usesPromptCache) notes.push("prompt caching requested: input reserved at the cache-write rate");
  // Reserved at the tier asked for only when it costs more: a request may fall back to standard (flex is cheaper).
  // Stryker disable next-line EqualityOperator: at an equal cost either choice reserves the same.
  const rates = worstCaseCost(inputTokens, maxOutputTokens, tiered, usesPromptCache) > worstCaseCost(inputTokens, maxOutputTokens, standard, usesPromptCache) ? tiered : standard;
  return {
    inputTokens,
    maxOutputTokens,
    outputFromRequest,
    usesPromptCache,
    rates,
    worstCasePicos: worstCaseCost(inputTokens, maxOutputTokens, rates, usesPromptCache),
    notes: [...notes, ...rates.notes],
    scope,
  };
}

/** Parses a request body and estimates it. Throws EstimateError when the body is not a JSON object. */
export function estimateRequest(
  operation: MeteredOperation,
  modelId: string,
  body: Uint8Array,
  prices: PriceBook,
  requestedTier?: AppliedTier,
): Estimate {
  return estimateParsed(operation, modelId, parseBody(body), prices, requestedTier);
}

/** The tier a Converse body asks for (`serviceTier`, `performanceConfig.latency`); the code lens reads it here too. */
export function tierInBody(operation: MeteredOperation, json: JsonObject): AppliedTier {
  if (!isConverse(operation)) return {};
  // A member the body lacks is undefined: the same as absent to every reader of a tier.
  return { serviceTier: stringAt(json, "serviceTier", "type") ?? stringAt(json, "serviceTier"), latency: stringAt(json, "performanceConfig", "latency") };
}

/** Estimates a body already parsed (and checked) as a JSON object. */
export function estimateParsed(
  operation: MeteredOperation,
  modelId: string,
  json: JsonObject,
  prices: PriceBook,
  requestedTier?: AppliedTier,
  scope?: PricingScope,
): Estimate {
  const measured = measureBody(operation, json);
  const tier: AppliedTier = { ...requestedTier };
  const inBody = tierInBody(operation, json);
  tier.serviceTier ??= inBody.serviceTier;
  tier.latency ??= inBody.latency;
  return estimateFromParts(
    {
      modelId,
      inputTokens: measured.inputTokens,
      // Stryker disable next-line ConditionalExpression: `maxOutputTokens: undefined` reads as no limit too.
      ...(measured.maxOutputTokens !== undefined && { maxOutputTokens: measured.maxOutputTokens }),
      usesPromptCache: measured.usesPromptCache,
      tier,
      notes: measured.notes,
      ...(scope ? { scope } : {}),
    },
    prices,
  );
}
