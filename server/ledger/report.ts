/** Monthly reports of settled calls: read-only, safe while a gateway is writing the journal. */
import { localDateKey, startOfLocalDay } from "../budget/windows";
import { printable, rowsOf, TOTALS_COLUMNS, type Chargeback } from "./chargeback";
import { picosToDecimalString } from "../metering/money";
import { guardrailPartOfRecord } from "../metering/attachedGuardrail";
import { Journal, journalMonth } from "./journal";
import type { CallRecord } from "./types";

/** A report's span: settled calls with `at` in [from, to). `label` says it in the user's words. */
export interface ReportRange {
  from: Date;
  to: Date;
  label: string;
}

/** A month from 1970 on (Date.UTC would read years 0000–0099 as 19xx; no call predates 1970). */
export const MONTH_PATTERN = /^(?:19[7-9]\d|[2-9]\d{3})-(?:0[1-9]|1[0-2])$/;
const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A calendar month in a time zone: from its first local midnight to the next month's. */
export function monthRange(month: string, timeZone: string): ReportRange {
  if (!MONTH_PATTERN.test(month)) throw new Error(`report: month must be YYYY-MM, got ${JSON.stringify(month)}`);
  const [y, m] = month.split("-").map(Number) as [number, number];
  const [ny, nm] = m === 12 ? [y + 1, 1] : [y, m + 1];
  return { from: startOfLocalDay(y, m, 1, timeZone), to: startOfLocalDay(ny, nm, 1, timeZone), label: `${month} (${timeZone})` };
}

/** The month (YYYY-MM) `now` falls in, in a time zone. */
export function currentMonth(now: Date, timeZone: string): string {
  return localDateKey(now, timeZone).slice(0, 7);
}

/**
 * `--from` / `--to`: a date (YYYY-MM-DD, a whole local day in `timeZone`: `--to` includes that
 * day) or an ISO time with its offset (`--from` inclusive, `--to` exclusive). Either may be left
 * out: from the journal's start, or up to `now`. A string says what is wrong, naming the bounds
 * as the caller takes them (`--from` on the command line, `from` in a query).
 */
export function parseRange(fromText: string | undefined, toText: string | undefined, timeZone: string, now: Date, prefix = "--"): ReportRange | string {
  const bound = (text: string, name: "from" | "to"): Date | string => {
    const flag = `${prefix}${name}`;
    const date = DATE_PATTERN.exec(text);
    if (date) {
      const [y, m, d] = [Number(date[1]), Number(date[2]), Number(date[3])];
      if (!isCalendarDate(y, m, d)) return `${flag} "${text}" is not a calendar date`;
      // Date.UTC reads years 0–99 as 1900–1999: "0026-11-01" would silently be 1926. No call predates 1970.
      if (y < 1970) return `${flag} "${text}" is before 1970, when no call can have been made (a mistyped year?)`;
      const next = new Date(Date.UTC(y, m - 1, d + 1));
      return name === "from" ? startOfLocalDay(y, m, d, timeZone) : startOfLocalDay(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), timeZone);
    }
    // An ISO time must say its offset: a bare local time would silently mean the machine's zone.
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) || !Number.isFinite(Date.parse(text))) {
      return `${flag} "${text}" is neither a date (YYYY-MM-DD) nor an ISO time with an offset (2026-11-30T23:30:00+09:00)`;
    }
    // Date.parse rolls an impossible day over (April 31 is read as May 1): the range would silently move.
    const [y, m, d] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
    if (!isCalendarDate(y, m, d)) return `${flag} "${text}" is not a calendar date`;
    if (y < 1970) return `${flag} "${text}" is before 1970, when no call can have been made (a mistyped year?)`;
    return new Date(text);
  };
  const from = fromText === undefined ? new Date(0) : bound(fromText, "from");
  if (typeof from === "string") return from;
  const to = toText === undefined ? new Date(now.getTime() + 1) : bound(toText, "to");
  if (typeof to === "string") return to;
  if (from >= to) return `${prefix}from (${from.toISOString()}) must be before ${prefix}to (${to.toISOString()})`;
  return { from, to, label: `${fromText ?? "the start"} to ${toText ?? "now"} (${timeZone})` };
}

/** Whether year-month-day names a day of the calendar (not February 30, not month 13). */
function isCalendarDate(y: number, m: number, d: number): boolean {
  const check = new Date(Date.UTC(y, m - 1, d));
  return check.getUTCMonth() === m - 1 && check.getUTCDate() === d;
}

/**
 * Settled calls whose settlement time falls in [from, to). The journal files are named by UTC
 * month, so a local range may start in the file before its first local day: reading starts at
 * the file holding `from` and stops after the one holding `to`.
 */
export async function callsBetween(journal: Journal, from: Date, to: Date): Promise<CallRecord[]> {
  const out: CallRecord[] = [];
  for await (const batch of settledBetween(journal, from, to)) for (const c of batch) out.push(c);
  return out;
}

/**
 * callsBetween's calls a batch at a time, as the journal is read: a report over a year of a busy
 * ledger holds one batch, not every call (which outgrew the heap and the longest string V8 can make).
 */
export async function* settledBetween(journal: Journal, from: Date, to: Date): AsyncIterable<CallRecord[]> {
  const lastFile = journalMonth(new Date(Math.max(from.getTime(), to.getTime() - 1)));
  const end = to.getTime();
  for await (const batch of journal.readBatches({ since: from, settlesOnly: true })) {
    const kept: CallRecord[] = [];
    let past = false;
    for (const e of batch) {
      if (journalMonth(e.at) > lastFile) {
        past = true;
        break;
      }
      if (e.type === "settle" && Date.parse(e.at) < end) kept.push(e);
    }
    if (kept.length > 0) yield kept;
    if (past) return;
  }
}

/** Settled calls whose settlement falls in `month` (YYYY-MM) in the given time zone. */
export async function callsOfMonth(journal: Journal, month: string, timeZone: string): Promise<CallRecord[]> {
  const { from, to } = monthRange(month, timeZone);
  return callsBetween(journal, from, to);
}

/** Opens the journal read-only (safe while a gateway writes it) for one read. */
async function withJournal<T>(ledgerDir: string, read: (journal: Journal) => Promise<T>): Promise<T> {
  const journal = await Journal.open(ledgerDir, { readOnly: true });
  try {
    return await read(journal);
  } finally {
    await journal.close();
  }
}

export async function readMonth(ledgerDir: string, month: string, timeZone: string): Promise<CallRecord[]> {
  return withJournal(ledgerDir, (journal) => callsOfMonth(journal, month, timeZone));
}

/** The range's settled calls handed to `use` a batch at a time (awaited: a writer can wait for its output to drain). */
export async function eachSettledBatch(ledgerDir: string, range: ReportRange, use: (calls: CallRecord[]) => void | Promise<void>): Promise<void> {
  return withJournal(ledgerDir, async (journal) => {
    for await (const batch of settledBetween(journal, range.from, range.to)) await use(batch);
  });
}

export const CSV_COLUMNS = [
  "at", "startedAt", "user", "tool", "operation", "modelId", "baseModelId", "inputTokens", "outputTokens",
  "cacheReadInputTokens", "cacheWrite5mInputTokens", "cacheWrite1hInputTokens", "costUsd", "worstCaseUsd",
  "usageEstimated", "outcome", "status", "refusedBy", "requestId", "latencyMs", "serviceTier", "tags",
  // Added after the first release: appended, so scripts reading the columns above by position keep working.
  "caller", "callerProfile", "answeredBy", "actions",
  // A guardrail attached to the call: its part of costUsd, the policy units charged, and whether
  // they were estimated from the text (usageEstimated is about the tokens only).
  "guardrailCostUsd", "guardrailUnits", "guardrailEstimated",
] as const;

/** One row per call, the same columns the dashboard exports. */
export function toCsv(calls: CallRecord[]): string {
  return csvHeader() + csvRows(calls);
}

/** toCsv's header line. */
export function csvHeader(): string {
  return `${CSV_COLUMNS.map(csvCell).join(",")}\n`;
}

/** toCsv's lines for these calls, without the header (each ends in a newline). */
export function csvRows(calls: readonly CallRecord[]): string {
  const rows = calls.map((c) => {
    const guard = guardrailPartOfRecord(c);
    return [
      c.at, c.startedAt, c.user, c.tool, c.operation, c.modelId, c.baseModelId, c.usage.inputTokens, c.usage.outputTokens,
      c.usage.cacheReadInputTokens, c.usage.cacheWrite5mInputTokens, c.usage.cacheWrite1hInputTokens,
      picosToDecimalString(BigInt(c.costPicos)), picosToDecimalString(BigInt(c.worstCasePicos)), c.usageEstimated,
      c.outcome, c.status, c.refusedBy ?? "", c.requestId ?? "", c.latencyMs, c.serviceTier ?? "",
      Object.entries(c.tags).map(([k, v]) => `${k}=${v}`).join(";"),
      c.caller ?? "", c.callerProfile ?? "", c.answeredBy ?? "",
      (c.actions ?? []).map((a) => `${a.capId}:${a.action}:${a.detail}`).join(";"),
      guard ? picosToDecimalString(guard.costPicos) : "", guard?.units ?? "", guard?.unitsEstimated ?? "",
    ];
  });
  return rows.map((row) => `${row.map(csvCell).join(",")}\n`).join("");
}

/**
 * The calls as `JSON.stringify(calls, null, 2)` prints them, made a batch at a time: `first` says
 * whether the batch opens the array. `jsonArrayEnd(any)` closes it.
 */
export function jsonArrayPart(calls: readonly CallRecord[], first: boolean): string {
  return calls.map((c, i) => `${first && i === 0 ? "[\n" : ",\n"}  ${JSON.stringify(c, null, 2).replace(/\n/g, "\n  ")}`).join("");
}

/** The end of jsonArrayPart's array: `[]` when no call was printed. */
export function jsonArrayEnd(any: boolean): string {
  return any ? "\n]\n" : "[]\n";
}

/** The chargeback totals as CSV: the total first, then one row per (dimension, key). */
export function totalsCsv(report: Chargeback): string {
  const rows = rowsOf(report).map(printable).map((r) => TOTALS_COLUMNS.map((col) => r[col]));
  return [TOTALS_COLUMNS, ...rows].map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
}

/** The chargeback totals as JSON: the range, the total and the groups, money as exact decimal strings. */
export function totalsJson(report: Chargeback, range: ReportRange): string {
  const [total, ...groups] = rowsOf(report).map(printable);
  const { dimension: _d, key: _k, ...totals } = total!;
  return `${JSON.stringify({ from: range.from.toISOString(), to: range.to.toISOString(), range: range.label, total: totals, groups }, null, 2)}\n`;
}

function csvCell(value: unknown): string {
  const text = String(value);
  // Quote what CSV needs quoted, and defuse spreadsheet formulas: a cell a spreadsheet would read as a
  // formula (=, +, -, @, or a leading tab or CR it strips) gets a leading quote, unless it is a plain number.
  const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
