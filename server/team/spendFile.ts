/**
 * One member machine's spend file in the team folder: `<teamLedger>/<team>/spend/<name>.json`,
 * written only by that machine (write-then-rename), read by everyone. Pure: format and sums.
 *
 *   { "version": 1, "writer": "3f9c…", "member": "alice", "machine": "alice-laptop",
 *     "updatedAt": "2025-06-03T10:00:00.000Z",
 *     "caps": { "team-month": { "2025-06-01T00:00:00.000Z": "312000000000000" } } }
 *
 * Amounts are decimal strings of pico-dollars (exact), per team cap id and window start.
 * `reserved` (same shape, optional) holds the machine's open reservations: published before a
 * call is forwarded, so the other machines count calls in flight, not only settled spend.
 */
import { z } from "zod";
import { isPicosText, type Picos } from "../metering/money";

/** Digits a figure in another machine's file may have: 10^30 pico-dollars is $10^18, past any real spend, so a longer one is a broken file. */
export const SPEND_FILE_MAX_DIGITS = 30;
const picosString = z.string().refine((s) => isPicosText(s, SPEND_FILE_MAX_DIGITS), "a whole number of pico-dollars as a decimal string");

export const spendFileSchema = z.strictObject({
  version: z.literal(1),
  writer: z.string().min(1).max(100),
  member: z.string().min(1).max(200),
  machine: z.string().min(1).max(200),
  updatedAt: z.iso.datetime(),
  caps: z.record(z.string().min(1), z.record(z.iso.datetime(), picosString)),
  reserved: z.record(z.string().min(1), z.record(z.iso.datetime(), picosString)).optional(),
});

export type SpendFile = z.infer<typeof spendFileSchema>;

/** Own totals: cap id → window start (ISO) → pico-dollars. */
export type SpendTotals = Map<string, Map<string, Picos>>;

export function addSpend(totals: SpendTotals, capId: string, windowStart: Date, amount: Picos): void {
  let windows = totals.get(capId);
  if (!windows) totals.set(capId, (windows = new Map()));
  const key = windowStart.toISOString();
  windows.set(key, (windows.get(key) ?? 0n) + amount);
}

/** Drops windows that started before `keepFrom` (the previous window is kept for late readers). */
export function pruneSpend(totals: SpendTotals, keepFrom: (capId: string) => Date | undefined): void {
  for (const [capId, windows] of totals) {
    const from = keepFrom(capId);
    if (!from) continue;
    for (const key of windows.keys()) if (Date.parse(key) < from.getTime()) windows.delete(key);
    if (windows.size === 0) totals.delete(capId);
  }
}

/** The file for `totals` spent and (when any) `reserved` by calls in flight. */
export function toSpendFile(who: { writer: string; member: string; machine: string }, totals: SpendTotals, updatedAt: Date, reserved?: SpendTotals): SpendFile {
  const held = reserved && reserved.size > 0 ? { reserved: toRecord(reserved) } : {};
  return { version: 1, ...who, updatedAt: updatedAt.toISOString(), caps: toRecord(totals), ...held };
}

function toRecord(totals: SpendTotals): SpendFile["caps"] {
  const caps: SpendFile["caps"] = {};
  for (const [capId, windows] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
    caps[capId] = Object.fromEntries([...windows].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, String(v)]));
  }
  return caps;
}

export type ParsedSpendFile = { ok: true; file: SpendFile } | { ok: false; error: string };

export function parseSpendFile(text: string): ParsedSpendFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not valid JSON: ${(err as Error).message}` };
  }
  const result = spendFileSchema.safeParse(raw);
  if (result.success) return { ok: true, file: result.data };
  return { ok: false, error: result.error.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`).join("; ") };
}

/**
 * Spend of the other writers on one cap in one window; with `withReserved`, their calls in flight
 * too. One file per writer counts, its newest: a gateway whose host or user name changed leaves
 * its file under the old name beside the new one until it removes it.
 */
export function othersSpend(files: SpendFile[], ownWriter: string, capId: string, windowStart: Date, withReserved = false): Picos {
  const key = windowStart.toISOString();
  let sum = 0n;
  for (const f of newestPerWriter(files)) {
    if (f.writer === ownWriter) continue;
    const v = f.caps[capId]?.[key];
    if (v !== undefined) sum += BigInt(v);
    const r = withReserved ? f.reserved?.[capId]?.[key] : undefined;
    if (r !== undefined) sum += BigInt(r);
  }
  return sum;
}

/** Each writer's newest file (by `updatedAt`). */
export function newestPerWriter(files: SpendFile[]): SpendFile[] {
  const newest = new Map<string, SpendFile>();
  for (const f of files) {
    const kept = newest.get(f.writer);
    if (!kept || Date.parse(f.updatedAt) > Date.parse(kept.updatedAt)) newest.set(f.writer, f);
  }
  return [...newest.values()];
}

/** A file name no other machine will use: member, host and this ledger's own random id. */
export function spendFileName(member: string, machine: string, writer: string): string {
  const clean = (s: string) => s.replace(/[^\w.-]+/g, "_").slice(0, 60) || "_";
  return `${clean(member)}@${clean(machine)}-${clean(writer).slice(0, 12)}.json`;
}
