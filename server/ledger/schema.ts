/** The shape every journal line must have to be replayed: anything else is quarantined, never trusted. */
import { z } from "zod";
import { PICOS_TEXT } from "../metering/money";
import { isJournalEntry } from "./entryFastCheck";
import type { JournalEntry } from "./types";

/** A non-negative whole number of pico-dollars as a decimal string (BigInt() accepts it), of any length. */
const picos = z.string().regex(PICOS_TEXT, "must be a whole number of pico-dollars");
/** An ISO time `Date.parse` reads (localDateKey and journalMonth call `new Date()` on it). */
const time = z.string().refine((s) => Number.isFinite(Date.parse(s)), "must be an ISO time");
const count = z.number().int().nonnegative();
const operation = z.enum(["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "CountTokens", "ApplyGuardrail"]);
const outcome = z.enum(["ok", "refused", "upstream-error", "cut", "client-aborted", "upstream-failed", "interrupted", "throttled", "quota-exceeded"]);

const reserveSchema = z.object({
  type: z.literal("reserve"),
  id: z.string().min(1),
  at: time,
  user: z.string(),
  tool: z.string(),
  operation,
  modelId: z.string(),
  baseModelId: z.string().optional(),
  worstCasePicos: picos,
  capIds: z.array(z.string()),
  caller: z.string().optional(),
  callerProfile: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
});

const settleSchema = z.object({
  type: z.literal("settle"),
  id: z.string().min(1),
  at: time,
  startedAt: time,
  user: z.string(),
  tool: z.string(),
  operation,
  modelId: z.string(),
  baseModelId: z.string(),
  usage: z.object({
    inputTokens: count,
    outputTokens: count,
    cacheReadInputTokens: count,
    cacheWrite5mInputTokens: count,
    cacheWrite1hInputTokens: count,
  }),
  usageEstimated: z.boolean(),
  costPicos: picos,
  worstCasePicos: picos,
  outcome,
  status: z.number().int(),
  refusedBy: z.string().optional(),
  requestId: z.string().optional(),
  latencyMs: z.number().nonnegative(),
  tags: z.record(z.string(), z.string()),
  caller: z.string().optional(),
  callerProfile: z.string().optional(),
  serviceTier: z.string().optional(),
  message: z.string().optional(),
  answeredBy: z.string().optional(),
  actions: z.array(z.object({ capId: z.string(), action: z.enum(["warn", "downgrade", "clamp"]), detail: z.string() })).optional(),
  // Checked as every other field the record declares: a malformed part makes the line untrusted,
  // quarantined and charged the most it could have cost (never less than its costPicos).
  guardrail: z.object({ id: z.string(), costPicos: picos, worstCasePicos: picos, units: count, unitsEstimated: z.boolean() }).optional(),
});

export const entrySchema = z.discriminatedUnion("type", [reserveSchema, settleSchema]);

/** The entry when `value` (a parsed JSON line) is a well-formed journal entry; else why not. */
export function checkEntry(value: unknown): { ok: true; entry: JournalEntry } | { ok: false; reason: string } {
  // The common case without zod's allocations (a replay checks millions of lines); its mirror is tested against this schema.
  if (isJournalEntry(value)) return { ok: true, entry: value };
  const parsed = entrySchema.safeParse(value);
  // Stryker disable next-line all: the fast check accepts exactly what zod accepts (entryFastCheck.test.ts), so this is zod's word should they ever differ.
  if (parsed.success) return { ok: true, entry: value as JournalEntry }; // the line as written, unknown fields kept
  const issue = parsed.error.issues[0];
  // Stryker disable next-line all: zod reports at least one issue for every failure, so this line never runs.
  if (!issue) return { ok: false, reason: "not a journal entry" };
  return { ok: false, reason: `${issue.path.join(".") || "(line)"}: ${issue.message}` };
}
