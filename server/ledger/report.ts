/** Monthly reports of settled calls: read-only, safe while a gateway is writing the journal. */
import { localDateKey } from "../budget/windows";
import { picosToDecimalString } from "../metering/money";
import { Journal, journalMonth } from "./journal";
import type { CallRecord } from "./types";

/** Settled calls whose settlement falls in `month` (YYYY-MM) in the given time zone. */
export async function callsOfMonth(journal: Journal, month: string, timeZone: string): Promise<CallRecord[]> {
  if (!/^\d{4}-\d{2}$/.test(month)) throw new Error(`report: month must be YYYY-MM, got ${JSON.stringify(month)}`);
  const [y, m] = month.split("-").map(Number) as [number, number];
  // Local months straddle UTC files by up to 14 hours; read the neighbours too.
  const from = journalMonth(new Date(Date.UTC(y, m - 2, 1)));
  const to = journalMonth(new Date(Date.UTC(y, m, 1)));
  const out: CallRecord[] = [];
  for await (const e of journal.read({ fromMonth: from })) {
    if (journalMonth(e.at) > to) break;
    if (e.type === "settle" && localDateKey(new Date(e.at), timeZone).startsWith(month)) out.push(e);
  }
  return out;
}

export async function readMonth(ledgerDir: string, month: string, timeZone: string): Promise<CallRecord[]> {
  const journal = await Journal.open(ledgerDir, { readOnly: true });
  try {
    return await callsOfMonth(journal, month, timeZone);
  } finally {
    await journal.close();
  }
}

export const CSV_COLUMNS = [
  "at", "startedAt", "user", "tool", "operation", "modelId", "baseModelId", "inputTokens", "outputTokens",
  "cacheReadInputTokens", "cacheWrite5mInputTokens", "cacheWrite1hInputTokens", "costUsd", "worstCaseUsd",
  "usageEstimated", "outcome", "status", "refusedBy", "requestId", "latencyMs", "serviceTier", "tags",
] as const;

/** One row per call, the same columns the dashboard exports. */
export function toCsv(calls: CallRecord[]): string {
  const rows = calls.map((c) => [
    c.at, c.startedAt, c.user, c.tool, c.operation, c.modelId, c.baseModelId, c.usage.inputTokens, c.usage.outputTokens,
    c.usage.cacheReadInputTokens, c.usage.cacheWrite5mInputTokens, c.usage.cacheWrite1hInputTokens,
    picosToDecimalString(BigInt(c.costPicos)), picosToDecimalString(BigInt(c.worstCasePicos)), c.usageEstimated,
    c.outcome, c.status, c.refusedBy ?? "", c.requestId ?? "", c.latencyMs, c.serviceTier ?? "",
    Object.entries(c.tags).map(([k, v]) => `${k}=${v}`).join(";"),
  ]);
  return [CSV_COLUMNS, ...rows].map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
}

function csvCell(value: unknown): string {
  const text = String(value);
  // Quote what CSV needs quoted, and defuse spreadsheet formulas: a cell a spreadsheet would read as a
  // formula (=, +, -, @, or a leading tab or CR it strips) gets a leading quote, unless it is a plain number.
  const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
