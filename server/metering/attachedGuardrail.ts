/**
 * A guardrail attached to a model call (Converse `guardrailConfig`, InvokeModel's
 * `X-Amzn-Bedrock-GuardrailIdentifier` header) is billed like ApplyGuardrail: per text unit (up to
 * 1,000 characters) per policy that evaluated it, on the input and on the model's output. With
 * `guardrailPricing` set, the call reserves the model's worst case plus this one's, and settles at
 * the units Bedrock's trace reports, else at the text it evaluated. Pure.
 */
import type { GuardrailPricing } from "../config/schema";
import type { Estimate } from "./estimate";
import { CHARS_PER_TEXT_UNIT, guardrailCost, guardrailWorstCase, textUnits, USAGE_FIELDS } from "./guardrails";
import { guardrailModelKey } from "../shared/guardrailModel";
import { ceilDiv, formatUsd, picosOfText, type Picos } from "./money";
import { isObject } from "../shared/isObject";
import type { MeteredOperation } from "./types";
import type { CallRecord, GuardrailPart } from "../protocol";


/**
 * Characters one output token can decode to, at most. The longest token of cl100k_base and of
 * o200k_base (the largest public BPE vocabularies, and the baseline tokens.ts counts with) is 128
 * characters (a run of spaces); SentencePiece vocabularies (Llama 2, Mistral) cap a piece at 16
 * by default; a byte-level token decodes to no more characters than it has bytes. So
 * maxOutputTokens × 128 characters bounds the text a model can return.
 */
export const MAX_CHARS_PER_OUTPUT_TOKEN = 128;

/** A guardrail config or header the gateway cannot read while guardrailPricing is set: the call is refused unsent. */
export class AttachedGuardrailError extends Error {}

/** The guardrail a model call names, or undefined when it names none. Throws AttachedGuardrailError when it cannot be read. */
export function attachedGuardrailOf(
  operation: MeteredOperation,
  json: Record<string, unknown>,
  headers: Record<string, string | string[] | undefined>,
): { id: string; version?: string } | undefined {
  if (operation === "Converse" || operation === "ConverseStream") {
    const config = json.guardrailConfig;
    if (config === undefined || config === null) return undefined;
    if (!isObject(config)) throw new AttachedGuardrailError(`"guardrailConfig" must be an object with a guardrailIdentifier`);
    const id = config.guardrailIdentifier;
    if (typeof id !== "string" || id.trim() === "") {
      throw new AttachedGuardrailError(`"guardrailConfig.guardrailIdentifier" must be a non-empty string (the guardrail's id or ARN)`);
    }
    const version = config.guardrailVersion;
    return { id, ...(typeof version === "string" ? { version } : {}) };
  }
  const raw = headers["x-amzn-bedrock-guardrailidentifier"];
  if (raw === undefined) return undefined;
  const id = Array.isArray(raw) ? (raw.length === 1 ? raw[0] : undefined) : raw;
  if (id === undefined || id.trim() === "") {
    throw new AttachedGuardrailError(`the X-Amzn-Bedrock-GuardrailIdentifier header must hold one guardrail id or ARN`);
  }
  const version = headers["x-amzn-bedrock-guardrailversion"];
  return { id: id.trim(), ...(typeof version === "string" ? { version } : {}) };
}


/**
 * Text units of the input the guardrail evaluates. Converse: the messages and the system prompt
 * each on their own (Bedrock selects in each separately: guardContent in the system prompt alone
 * still leaves every message evaluated): a part's guardContent blocks when it holds any, else the
 * text of all of it (the system prompt's text, tool uses, tool results and reasoning included,
 * which errs high: Bedrock documents them as not evaluated). Images are image units, which are
 * not priced; documents are not text units. InvokeModel: the whole body as text (Bedrock evaluates the prompt
 * the body carries, unless input tags pick part of it, so the whole body bounds it). Each block is
 * rounded up on its own, which never counts less than rounding the total.
 */
export function guardedInputUnits(operation: MeteredOperation, json: Record<string, unknown>, bodyChars: number): number {
  if (operation !== "Converse" && operation !== "ConverseStream") return textUnits(bodyChars);
  const messageBlocks: unknown[] = [];
  // One block at a time: push(...content) puts every block on the stack, and a message of some
  // 100,000 blocks (a body well within maxRequestBytes) overflows it.
  if (Array.isArray(json.messages)) for (const m of json.messages) if (isObject(m) && Array.isArray(m.content)) for (const b of m.content) messageBlocks.push(b);
  const systemBlocks: unknown[] = Array.isArray(json.system) ? json.system : [];
  const units = (b: unknown): number => {
    if (!isObject(b)) return 0;
    if (isObject(b.guardContent)) return isObject(b.guardContent.text) && typeof b.guardContent.text.text === "string" ? textUnits(b.guardContent.text.text.length) : 0;
    if (typeof b.text === "string") return textUnits(b.text.length);
    if (isObject(b.toolUse)) return textUnits(JSON.stringify(b.toolUse.input ?? null).length);
    if (isObject(b.toolResult) && Array.isArray(b.toolResult.content)) return b.toolResult.content.reduce((n: number, c: unknown) => n + units(c), 0);
    if (b.json !== undefined) return textUnits(JSON.stringify(b.json).length);
    if (isObject(b.reasoningContent) && isObject(b.reasoningContent.reasoningText) && typeof b.reasoningContent.reasoningText.text === "string") {
      return textUnits(b.reasoningContent.reasoningText.text.length);
    }
    return 0;
  };
  const evaluated = (blocks: unknown[]): unknown[] => {
    const guarded = blocks.filter((b) => isObject(b) && isObject(b.guardContent));
    return guarded.length > 0 ? guarded : blocks;
  };
  return [...evaluated(messageBlocks), ...evaluated(systemBlocks)].reduce((n: number, b) => n + units(b), 0);
}

/**
 * Text units the guardrail can evaluate on an answer of at most `maxOutputTokens`: its longest
 * possible text (MAX_CHARS_PER_OUTPUT_TOKEN a token) in units, plus one for the rounding of the
 * last unit. A stream is evaluated in batches whose number Bedrock does not document: should it
 * report more units than this, they are charged and the record says so.
 */
export function outputUnitsBound(maxOutputTokens: number): number {
  return Math.ceil((Math.max(0, maxOutputTokens) * MAX_CHARS_PER_OUTPUT_TOKEN) / CHARS_PER_TEXT_UNIT) + 1;
}

/** What a model call's attached guardrail reserved, kept with its estimate for settlement. */
export interface AttachedGuardrail {
  id: string;
  pricing: GuardrailPricing;
  inputUnits: number;
  maxOutputUnits: number;
  /** (inputUnits + maxOutputUnits) × every priced policy. */
  worstCasePicos: Picos;
}

export function attachedGuardrail(id: string, inputUnits: number, maxOutputTokens: number, pricing: GuardrailPricing): AttachedGuardrail {
  const maxOutputUnits = outputUnitsBound(maxOutputTokens);
  return { id, pricing, inputUnits, maxOutputUnits, worstCasePicos: guardrailWorstCase(inputUnits + maxOutputUnits, pricing) };
}

/**
 * The guardrail's worst case as a straight line in the output limit, for a cap's clamp to solve:
 * fixedPicos + limit × perOutputTokenPicos, never below attachedGuardrail's worst case at any limit
 * (the output bound's rounding, its extra unit and the price's rounding all taken upward).
 */
export function guardrailWorstCaseLine(inputUnits: number, pricing: GuardrailPricing): { fixedPicos: Picos; perOutputTokenPicos: Picos } {
  const perThousandUnits = guardrailWorstCase(1000, pricing); // exact: every priced policy on 1,000 units
  return {
    fixedPicos: ceilDiv(BigInt(inputUnits + 2) * perThousandUnits, 1000n) + 1n,
    perOutputTokenPicos: ceilDiv(BigInt(MAX_CHARS_PER_OUTPUT_TOKEN) * perThousandUnits, BigInt(CHARS_PER_TEXT_UNIT) * 1000n),
  };
}

/** The model's estimate with the guardrail's worst case added to what is reserved. */
export function withAttachedGuardrail(estimate: Estimate, guard: AttachedGuardrail): Estimate {
  return {
    ...estimate,
    guardrail: guard,
    worstCasePicos: estimate.worstCasePicos + guard.worstCasePicos,
    notes: [...estimate.notes, `guardrail ${guard.id}: reserved ${formatUsd(guard.worstCasePicos)} for ${guard.inputUnits} input + up to ${guard.maxOutputUnits} output text units on every priced policy`],
  };
}

/** The usage fields a guardrail reports, one per policy (as ApplyGuardrail's). */
const USAGE_FIELD_NAMES = Object.values(USAGE_FIELDS);

/**
 * The guardrail units a trace reports, summed over its assessments (Converse's `trace.guardrail`
 * inputAssessment / outputAssessments, InvokeModel's `amazon-bedrock-trace.guardrail` input /
 * outputs: each assessment's `invocationMetrics.usage`); undefined when it reports none, or a
 * count that is not a whole number (then the text decides).
 */
export function reportedGuardrailUsage(trace: unknown): Record<string, number> | undefined {
  const total: Record<string, number> = {};
  let found = false;
  let bad = false;
  const walk = (value: unknown, depth: number): void => {
    if (depth > 8 || bad) return;
    if (Array.isArray(value)) return value.forEach((v) => walk(v, depth + 1));
    if (!isObject(value)) return;
    const usage = isObject(value.invocationMetrics) ? value.invocationMetrics.usage : undefined;
    if (isObject(usage)) {
      found = true;
      for (const field of USAGE_FIELD_NAMES) {
        const n = usage[field];
        if (n === undefined || n === null) continue;
        if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) bad = true;
        else total[field] = (total[field] ?? 0) + n;
      }
    }
    for (const [key, v] of Object.entries(value)) if (key !== "invocationMetrics") walk(v, depth + 1);
  };
  walk(trace, 0);
  return found && !bad ? total : undefined;
}

/** What the guardrail part of a settled call costs, and the note the call's record carries. */
export interface GuardrailCharge {
  picos: Picos;
  /** True when Bedrock reported no usage and the text it evaluated decided. */
  estimated: boolean;
  /** Policy units charged: those Bedrock reported, else the text units estimated times each priced policy. */
  units: number;
  note: string;
}

/** Policies guardrailPricing prices: the estimate assumes each evaluates every text unit. */
function pricedPolicies(pricing: GuardrailPricing): number {
  return Object.values(pricing).filter((price) => price !== undefined).length;
}

/**
 * The guardrail part of a call: at the units its trace reports when it has them; else at the input
 * units reserved plus the units of the answer's text (`outputChars`), on every priced policy.
 */
export function attachedGuardrailCharge(guard: AttachedGuardrail, trace: unknown, outputChars: number): GuardrailCharge {
  const reported = reportedGuardrailUsage(trace);
  let picos: Picos;
  let note: string;
  let units: number;
  const estimated = reported === undefined;
  if (reported) {
    picos = guardrailCost({ usage: reported }, guard.pricing) ?? 0n;
    units = Object.values(reported).reduce((a, b) => a + b, 0);
    note = `guardrail ${guard.id}: charged ${formatUsd(picos)} for the ${units} policy units Bedrock reported`;
  } else {
    const outputUnits = outputChars > 0 ? textUnits(outputChars) : 0;
    units = (guard.inputUnits + outputUnits) * pricedPolicies(guard.pricing);
    picos = guardrailWorstCase(guard.inputUnits + outputUnits, guard.pricing);
    note = `guardrail ${guard.id}: charged ${formatUsd(picos)} estimated from text (${guard.inputUnits} input + ${outputUnits} output text units on every priced policy; Bedrock reported no guardrail usage: enable the guardrail trace for the exact figure)`;
  }
  if (picos > guard.worstCasePicos) note += `; above the ${formatUsd(guard.worstCasePicos)} reserved for it`;
  return { picos, estimated, units, note };
}

/** The guardrail charged at its worst case (Bedrock may have run it and reported nothing): every priced policy on every unit reserved. */
export function worstCaseGuardrailCharge(guard: AttachedGuardrail): Omit<GuardrailCharge, "note"> {
  return { picos: guard.worstCasePicos, estimated: true, units: (guard.inputUnits + guard.maxOutputUnits) * pricedPolicies(guard.pricing) };
}

/** What a call's record keeps of its attached guardrail's part (CallRecord.guardrail). */
export function guardrailPart(guard: AttachedGuardrail, charge: Pick<GuardrailCharge, "picos" | "estimated" | "units">): GuardrailPart {
  return { id: guard.id, costPicos: String(charge.picos), worstCasePicos: String(guard.worstCasePicos), units: charge.units, unitsEstimated: charge.estimated };
}

/**
 * A record's guardrail part, read as the reports need it; undefined when it has none, or one that
 * is not well formed or is larger than the call (the journal's schema quarantines a malformed
 * part, but checks no figure against another, and a record may reach a report by other ways):
 * its cost then stays with the model's, as before guardrails were split out.
 */
export function guardrailPartOfRecord(record: Pick<CallRecord, "guardrail" | "costPicos" | "worstCasePicos">): { id: string; costPicos: Picos; worstCasePicos: Picos; units: number; unitsEstimated: boolean } | undefined {
  const g: unknown = record.guardrail;
  if (!isObject(g)) return undefined;
  // Money read as the journal's schema reads it (any number of digits): a line the ledger counts has its part read too.
  const cost = picosOfText(g.costPicos);
  const worst = picosOfText(g.worstCasePicos);
  if (typeof g.id !== "string" || cost === undefined || worst === undefined || typeof g.unitsEstimated !== "boolean") return undefined;
  if (typeof g.units !== "number" || !Number.isSafeInteger(g.units) || g.units < 0) return undefined;
  // A part larger than the call's whole figure cannot be: not trusted.
  const callCost = picosOfText(record.costPicos);
  const callWorst = picosOfText(record.worstCasePicos);
  if (callCost === undefined || cost > callCost || (callWorst !== undefined && worst > callWorst)) return undefined;
  return { id: g.id, costPicos: cost, worstCasePicos: worst, units: g.units, unitsEstimated: g.unitsEstimated };
}

/** Characters of a Converse answer's text (tool input included, which errs high): what the guardrail evaluated on the output. */
export function converseAnswerChars(json: unknown): number {
  const output = isObject(json) && isObject(json.output) && isObject(json.output.message) ? json.output.message.content : undefined;
  if (!Array.isArray(output)) return 0;
  let chars = 0;
  for (const b of output) {
    if (!isObject(b)) continue;
    if (typeof b.text === "string") chars += b.text.length;
    else if (isObject(b.toolUse)) chars += JSON.stringify(b.toolUse.input ?? null).length;
    else if (isObject(b.reasoningContent) && isObject(b.reasoningContent.reasoningText) && typeof b.reasoningContent.reasoningText.text === "string") {
      chars += b.reasoningContent.reasoningText.text.length;
    }
  }
  return chars;
}

/** The guardrail trace of a buffered answer: Converse's `trace.guardrail`, InvokeModel's `amazon-bedrock-trace.guardrail`. */
export function guardrailTraceOf(json: unknown): unknown {
  if (!isObject(json)) return undefined;
  if (isObject(json.trace) && json.trace.guardrail !== undefined) return json.trace.guardrail;
  const invoke = json["amazon-bedrock-trace"];
  return isObject(invoke) ? invoke.guardrail : undefined;
}

/**
 * A call's cost as the reports group it by model: the model's part, and an attached guardrail's
 * part under guardrailModelKey (absent when the call has none, it is $0, or it is not well formed:
 * the whole cost then stays with the model). The two add up to the call's costPicos.
 */
export function costByModel(record: Pick<CallRecord, "guardrail" | "costPicos" | "worstCasePicos">): { model: Picos; guardrail?: { key: string; cost: Picos } } {
  const cost = BigInt(record.costPicos);
  const guard = guardrailPartOfRecord(record);
  if (!guard || guard.costPicos === 0n) return { model: cost };
  return { model: cost - guard.costPicos, guardrail: { key: guardrailModelKey(guard.id), cost: guard.costPicos } };
}
