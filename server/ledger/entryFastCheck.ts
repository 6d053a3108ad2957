/**
 * A hand-written mirror of schema.ts's entry schema for the journal's hot path (every line of a
 * replay): true exactly when zod accepts the parsed line, without zod's per-field allocations.
 * schema.ts stays the source of truth: checkEntry asks zod whenever this says no (for the reason),
 * and test/unit/ledger/entryFastCheck.test.ts checks both agree on generated and mutated lines.
 */
import type { JournalEntry } from "./types";
import { isObject } from "../shared/isObject";
import { isPicosText } from "../metering/money";

const OPERATIONS = new Set(["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "CountTokens", "ApplyGuardrail"]);
const OUTCOMES = new Set(["ok", "refused", "upstream-error", "cut", "client-aborted", "upstream-failed", "interrupted", "throttled", "quota-exceeded"]);
const ACTIONS = new Set(["warn", "downgrade", "clamp"]);

type Obj = Record<string, unknown>;

const isStr = (v: unknown): v is string => typeof v === "string";
const optStr = (v: unknown): boolean => v === undefined || typeof v === "string";
/** zod 4's z.number(): finite. */
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
/** z.number().int().nonnegative(): zod 4's int() is a safe integer. */
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isTime = (v: unknown): boolean => typeof v === "string" && Number.isFinite(Date.parse(v));
const isId = (v: unknown): boolean => typeof v === "string" && v.length >= 1;

function isStrArray(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (const x of v) if (typeof x !== "string") return false;
  return true;
}

/** z.record(z.string(), z.string()): own enumerable keys, __proto__ skipped as zod does. */
function isTags(v: unknown): boolean {
  if (!isObject(v)) return false;
  for (const key of Object.keys(v)) if (key !== "__proto__" && typeof v[key] !== "string") return false;
  return true;
}

function isUsage(v: unknown): boolean {
  return isObject(v) && isCount(v.inputTokens) && isCount(v.outputTokens) && isCount(v.cacheReadInputTokens) && isCount(v.cacheWrite5mInputTokens) && isCount(v.cacheWrite1hInputTokens);
}

function isActions(v: unknown): boolean {
  if (v === undefined) return true;
  if (!Array.isArray(v)) return false;
  for (const a of v) if (!isObject(a) || !isStr(a.capId) || !ACTIONS.has(a.action as string) || !isStr(a.detail)) return false;
  return true;
}

/** An attached guardrail's part of a settled call (CallRecord.guardrail), when the line has one. */
function isGuardrailPart(v: unknown): boolean {
  if (v === undefined) return true;
  return isObject(v) && isStr(v.id) && isPicosText(v.costPicos) && isPicosText(v.worstCasePicos) && isCount(v.units) && typeof v.unitsEstimated === "boolean";
}

/** The fields reserve and settle lines share. */
function common(v: Obj): boolean {
  return isId(v.id) && isTime(v.at) && isStr(v.user) && isStr(v.tool) && OPERATIONS.has(v.operation as string) && isStr(v.modelId) && optStr(v.caller) && optStr(v.callerProfile);
}

/** True exactly when schema.ts's entry schema accepts `value` (a parsed JSON line). */
export function isJournalEntry(value: unknown): value is JournalEntry {
  if (!isObject(value)) return false;
  if (value.type === "reserve") {
    return common(value) && optStr(value.baseModelId) && isPicosText(value.worstCasePicos) && isStrArray(value.capIds) && (value.tags === undefined || isTags(value.tags));
  }
  if (value.type === "settle") {
    return (
      common(value) &&
      isTime(value.startedAt) &&
      isStr(value.baseModelId) &&
      isUsage(value.usage) &&
      typeof value.usageEstimated === "boolean" &&
      isPicosText(value.costPicos) &&
      isPicosText(value.worstCasePicos) &&
      OUTCOMES.has(value.outcome as string) &&
      Number.isSafeInteger(value.status) &&
      optStr(value.refusedBy) &&
      optStr(value.requestId) &&
      isNum(value.latencyMs) &&
      value.latencyMs >= 0 &&
      isTags(value.tags) &&
      optStr(value.serviceTier) &&
      optStr(value.message) &&
      optStr(value.answeredBy) &&
      isActions(value.actions) &&
      isGuardrailPart(value.guardrail)
    );
  }
  return false;
}
