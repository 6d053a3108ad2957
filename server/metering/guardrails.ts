/**
 * ApplyGuardrail is billed per 1,000 text units (a text unit is up to 1,000 characters) for each
 * policy that evaluated the content, not per token. Prices come from `guardrailPricing`; the
 * worst case assumes every configured policy evaluates every unit. Pure.
 */
import type { GuardrailPricing } from "../config/schema";
import type { Estimate } from "./estimate";
import { ceilDiv, usdToPicos, type Picos } from "./money";
import type { Rates } from "./types";
import { guardrailModelKey } from "../shared/guardrailModel";

export const CHARS_PER_TEXT_UNIT = 1000;

/** Text units of one piece of text: up to 1,000 characters each, at least one. */
export function textUnits(chars: number): number {
  return Math.max(1, Math.ceil(chars / CHARS_PER_TEXT_UNIT));
}

/** Response `usage` field per policy, as ApplyGuardrail reports it. */
export const USAGE_FIELDS: Record<keyof GuardrailPricing, string> = {
  contentPolicy: "contentPolicyUnits",
  topicPolicy: "topicPolicyUnits",
  wordPolicy: "wordPolicyUnits",
  sensitiveInformationPolicy: "sensitiveInformationPolicyUnits",
  contextualGroundingPolicy: "contextualGroundingPolicyUnits",
  automatedReasoningPolicy: "automatedReasoningPolicyUnits",
};

/** Text units of a parsed ApplyGuardrail request body (`content[].text.text`), the parse the gateway already checked. */
export function guardrailTextUnits(body: unknown): number {
  const json = body as { content?: unknown } | null;
  if (!json || typeof json !== "object" || !Array.isArray(json.content)) throw new Error("ApplyGuardrail body needs a content list");
  let units = 0;
  for (const block of json.content as Array<{ text?: { text?: unknown } }>) {
    const text = block?.text?.text;
    if (typeof text === "string") units += textUnits(text.length);
  }
  return units;
}

/** Every configured policy on every unit. */
export function guardrailWorstCase(units: number, pricing: GuardrailPricing): Picos {
  let per1k = 0n;
  for (const price of Object.values(pricing)) if (price !== undefined) per1k += usdToPicos(price);
  return ceilDiv(BigInt(units) * per1k, 1000n);
}

/** What the response says was evaluated, at the configured prices; undefined when it reports no usage. */
export function guardrailCost(response: unknown, pricing: GuardrailPricing): Picos | undefined {
  const usage = (response as { usage?: Record<string, unknown> } | undefined)?.usage;
  if (!usage || typeof usage !== "object") return undefined;
  let picosTimes1k = 0n;
  for (const [policy, field] of Object.entries(USAGE_FIELDS) as Array<[keyof GuardrailPricing, string]>) {
    const units = usage[field];
    const price = pricing[policy];
    if (typeof units === "number" && units > 0 && price !== undefined) picosTimes1k += BigInt(Math.ceil(units)) * usdToPicos(price);
  }
  return ceilDiv(picosTimes1k, 1000n);
}

/** The reservation for one ApplyGuardrail call, in the shape admission takes; it has no tokens. */
export function guardrailEstimate(guardrailId: string, units: number, pricing: GuardrailPricing): Estimate {
  const id = guardrailModelKey(guardrailId);
  const rates: Rates = {
    requestedModelId: id, baseModelId: id, displayName: `Guardrail ${guardrailId}`, known: true,
    input: 0n, output: 0n, cacheRead: 0n, cacheWrite5m: 0n, cacheWrite1h: 0n, maxOutputTokens: 0,
    source: "guardrailPricing (settings)", notes: [],
  };
  return {
    inputTokens: 0, maxOutputTokens: 0, outputFromRequest: true, usesPromptCache: false, rates,
    worstCasePicos: guardrailWorstCase(units, pricing), notes: [`${units} text units`],
  };
}
