/**
 * The local price file (`bedrock-budget prices update` writes it into the ledger folder): figures
 * fetched from the AWS Price List that override the built-in table row by row. This module reads,
 * validates and writes it, and turns it into the PriceTable the PriceBook takes; rows the file
 * lacks keep the built-in figure and source.
 */
import { randomBytes } from "node:crypto";
import { watch, watchFile, unwatchFile, type FSWatcher } from "node:fs";
import { chmod, open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { FILE_MODE, privateDir } from "../ledger/privateFiles";
import { perMillionToPicosPerToken } from "./money";
import type { PriceTableDto } from "../protocol";
import { BUILT_IN_PRICES, DEFAULT_PRICE_REGION, type PriceRow, type PriceTable } from "./prices";

export const PRICE_FILE_NAME = "aws-prices.json";
/** A table older than this is flagged in status and the dashboard. */
export const STALE_AFTER_DAYS = 60;

/** At most this many digits before the point: under $1,000,000 per 1M tokens, far above any Bedrock price. */
const MAX_WHOLE_DIGITS = 6;
/** At most this many after it: one pico-dollar, the resolution money is kept in. */
const MAX_DECIMALS = 12;

/**
 * Why a per-1M USD figure (a decimal string) cannot be a price, or undefined when it can: it is
 * converted here exactly as the PriceBook converts it, so a figure that passes is one the gateway
 * can price. No Bedrock model is free per token: a row of 0 (or one that rounds to $0 per token) is
 * a bad fetch or an edit, and would make calls free.
 */
export function perMillionRateProblem(value: string): string | undefined {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(value);
  if (!m) return "a decimal USD amount per 1M tokens";
  if (m[1]!.replace(/^0+/, "").length > MAX_WHOLE_DIGITS) return `${value.length > 24 ? `${value.slice(0, 24)}…` : value} is not a price per 1M tokens (at most ${MAX_WHOLE_DIGITS} digits before the point)`;
  if (!/[1-9]/.test(value)) return "a price above 0 (no Bedrock model is free per token)";
  let perToken: bigint;
  try {
    perToken = perMillionToPicosPerToken(Number(value)); // as the PriceBook reads the table's numbers
  } catch (err) {
    return `${value} cannot be priced (${(err as Error).message})`;
  }
  if (perToken <= 0n) return `${value} per 1M tokens is $0 per token (under a pico-dollar): a price above 0 (no Bedrock model is free per token)`;
  if ((m[2] ?? "").length > MAX_DECIMALS) return `${value} has more than ${MAX_DECIMALS} decimals (finer than a pico-dollar)`;
  return undefined;
}

const decimal = z
  .string()
  .superRefine((v, ctx) => {
    const problem = perMillionRateProblem(v);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });
const ratesSchema = z.strictObject({
  input: decimal,
  output: decimal,
  cacheRead: decimal.optional(),
  cacheWrite5m: decimal.optional(),
  cacheWrite1h: decimal.optional(),
});
const fileSchema = z.strictObject({
  version: z.literal(1),
  source: z.literal("AWS Price List"),
  fetchedAt: z.string().datetime(),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
  rows: z.record(z.string().min(1), ratesSchema),
  /** Rows the Price List did not price when fetched (informative). */
  missing: z.array(z.string()),
});

export type PriceFile = z.infer<typeof fileSchema>;

/** Where the table in force comes from, and how old it is (status, dashboard, CLI). */
export interface PriceTableInfo {
  /** "AWS Price List" when a price file is in force, else "built-in". */
  source: "AWS Price List" | "built-in";
  /** YYYY-MM-DD: the fetch date of the price file, else the oldest check date of the built-in rows. */
  date: string;
  region?: string;
  /** Rows priced from the file / kept at the built-in figure. */
  fetchedRows: number;
  builtInRows: number;
}

/** A rate's source for people: "built-in: <source>, read <date>" (or "price file: …") as "<source> (read <date>)"; others as they are. */
export function priceSource(source: string): string {
  const m = /^(?:built-in|price file): (.*), read (\d{4}-\d{2}-\d{2})$/s.exec(source);
  return m ? `${m[1]} (read ${m[2]})` : source;
}

export function priceFilePath(ledgerDir: string): string {
  return path.join(ledgerDir, PRICE_FILE_NAME);
}

/** Parses a price file's text; the error names the file and the first problems. */
export function parsePriceFile(text: string, file: string): PriceFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not JSON (${(err as Error).message}): run \`bedrock-budget prices update\` again, or delete the file to use the built-in prices`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`);
    throw new Error(`${file} is not a valid price file (${problems.join("; ")}): run \`bedrock-budget prices update\` again, or delete the file to use the built-in prices`);
  }
  return parsed.data;
}

/**
 * The built-in table with the file's figures in force (rates, source, date). Pure. The built-in rows
 * are written for us-east-1: a us-east-1 file replaces them row by row; a file of another region
 * becomes that region's rates (ahead of the table's own regional rows), so calls signed for
 * us-east-1 keep the us-east-1 figures.
 */
export function tableWithPriceFile(file: PriceFile | undefined, base: PriceTable = BUILT_IN_PRICES): { table: PriceTable; info: PriceTableInfo } {
  if (!file) {
    const date = base.models.map((r) => r.checked).reduce((a, b) => (a < b ? a : b));
    return { table: base, info: { source: "built-in", date, fetchedRows: 0, builtInRows: base.models.length } };
  }
  const date = file.fetchedAt.slice(0, 10);
  const source = `AWS Price List ${date} (${file.region})`;
  const known = base.models.filter((row) => file.rows[row.id] !== undefined);
  const figures = (r: PriceFile["rows"][string]) => ({
    inputPer1M: Number(r.input),
    outputPer1M: Number(r.output),
    // A cache price the Price List omits keeps the row's (or its rule).
    ...(r.cacheRead !== undefined ? { cacheReadPer1M: Number(r.cacheRead) } : {}),
    ...(r.cacheWrite5m !== undefined ? { cacheWrite5mPer1M: Number(r.cacheWrite5m) } : {}),
    ...(r.cacheWrite1h !== undefined ? { cacheWrite1hPer1M: Number(r.cacheWrite1h) } : {}),
    source,
    checked: date,
    fromPriceFile: true as const,
  });
  const info: PriceTableInfo = { source: "AWS Price List", date, region: file.region, fetchedRows: known.length, builtInRows: base.models.length - known.length };
  if (file.region === DEFAULT_PRICE_REGION) {
    const models = base.models.map((row): PriceRow => (file.rows[row.id] ? { ...row, ...figures(file.rows[row.id]!) } : row));
    return { table: { ...base, models }, info };
  }
  const { [file.region]: same, ...others } = base.regions;
  const regional = { ...(typeof same === "object" ? same : {}), ...Object.fromEntries(known.map((row) => [row.id, figures(file.rows[row.id]!)])) };
  return { table: { ...base, regions: { [file.region]: regional, ...others } }, info };
}

/** Whole days from `date` (YYYY-MM-DD, UTC) to `now`; stale past STALE_AFTER_DAYS. Pure. */
export function tableAge(date: string, now: Date): { days: number; stale: boolean } {
  const days = Math.floor((now.getTime() - Date.parse(`${date}T00:00:00Z`)) / 86_400_000);
  return { days, stale: days > STALE_AFTER_DAYS };
}

/** Reads the ledger's price file (undefined when there is none); throws when it is there but invalid. */
export async function readPriceFile(ledgerDir: string): Promise<PriceFile | undefined> {
  const file = priceFilePath(ledgerDir);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parsePriceFile(text, file);
}

export async function loadPriceTable(ledgerDir: string): Promise<{ table: PriceTable; info: PriceTableInfo }> {
  return tableWithPriceFile(await readPriceFile(ledgerDir));
}

/** Writes the price file atomically (temp file, fsync, rename), private to the user (0600). */
export async function writePriceFile(ledgerDir: string, content: PriceFile): Promise<string> {
  await privateDir(ledgerDir);
  const file = priceFilePath(ledgerDir);
  const temp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  const fh = await open(temp, "wx", FILE_MODE);
  try {
    await fh.writeFile(`${JSON.stringify(fileSchema.parse(content), null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    if (process.platform !== "win32") await chmod(temp, FILE_MODE); // whatever the umask
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return file;
}

/**
 * Calls `onChange` after the price file is written, replaced or removed: directory events for
 * speed (the file is replaced by rename), plus a slow stat poll where events are not delivered.
 */
export function watchPriceFile(ledgerDir: string, onChange: () => void): () => void {
  const file = priceFilePath(ledgerDir);
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, 100); // a burst of events is one change
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(ledgerDir, { persistent: false }, (_event, name) => {
      if (name === null || name.toString() === PRICE_FILE_NAME) changed();
    });
  } catch {
    watcher = undefined; // the poll below still notices
  }
  const poll = (cur: { mtimeMs: number; ino: number }, prev: { mtimeMs: number; ino: number }) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino) changed();
  };
  watchFile(file, { interval: 2_000, persistent: false }, poll);
  return () => {
    clearTimeout(timer);
    watcher?.close();
    unwatchFile(file, poll);
  };
}

/** The price table's origin and age as the status and dashboard show it. */
export function priceTableDto(info: PriceTableInfo, now: Date): PriceTableDto {
  const age = tableAge(info.date, now);
  return { ...info, ageDays: age.days, stale: age.stale };
}
