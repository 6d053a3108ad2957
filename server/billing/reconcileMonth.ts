/**
 * One month's reconciliation, for the CLI and the dashboard: the ledger's settled calls (read
 * only) and Cost Explorer's bill, joined by model; plus its text and JSON forms.
 */
import type { CredentialSource } from "../credentials";
import { readMonth } from "../ledger/report";
import type { CallRecord } from "../ledger/types";
import { picosToDecimalString, picosToUsd } from "../metering/money";
import type { PriceBook, PriceTable } from "../metering/prices";
import type { ReconcileResponse } from "../protocol";
import { fetchBedrockBill } from "./costExplorer";
import { bedrockServices, reconcile, type ReconcileLine, type Reconciliation } from "./reconcile";

export const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;

export async function reconcileMonth(
  month: string,
  source: { ledgerDir: string } | { calls: CallRecord[] },
  table: PriceTable,
  book: PriceBook,
  credentials: CredentialSource,
  now = new Date(),
): Promise<Reconciliation> {
  if (!MONTH_RE.test(month)) throw new Error(`month: "${month}" is not YYYY-MM`);
  // Cost Explorer's days are UTC days: the ledger is cut the same way.
  const calls = "calls" in source ? source.calls : await readMonth(source.ledgerDir, month, "UTC");
  const bill = await fetchBedrockBill(month, bedrockServices(table), credentials, now);
  return reconcile(month, calls, bill, table, (id) => {
    const rates = book.rates(id);
    return rates.known ? rates.displayName : id;
  });
}

/** A fixed-width table for a terminal. Pure. */
export function formatReconciliation(r: Reconciliation): string {
  const head = ["day", "model", "ledger", "bill", "drift", "drift %"];
  const row = (l: Pick<ReconcileLine, "ledgerPicos" | "billPicos" | "driftPicos" | "driftPercent">, date: string, model: string) => [
    date,
    model,
    usd(l.ledgerPicos),
    usd(l.billPicos),
    usd(l.driftPicos, true),
    l.driftPercent === null ? "n/a" : `${l.driftPercent > 0 ? "+" : ""}${l.driftPercent.toFixed(1)}%`,
  ];
  const rows = [head, ...r.lines.map((l) => row(l, l.date, l.model)), row(r.total, "total", r.month)];
  const widths = head.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  const text = rows.map((x) => x.map((cell, i) => (i >= 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ").trimEnd());
  const notes = [
    `Bedrock in ${r.month}: ledger ${usd(r.total.ledgerPicos)}, bill ${usd(r.total.billPicos)} (UTC days; the bill lags about a day).`,
    "drift = bill - ledger: calls made outside the gateway, and pricing differences, show up here.",
  ];
  if (r.lines.length === 0) notes.unshift(`no Bedrock spend in the ledger or the bill for ${r.month}`);
  return `${[...text, "", ...notes].join("\n")}\n`;
}

export function reconcileDto(r: Reconciliation): ReconcileResponse {
  const dto = (l: Omit<ReconcileLine, "date" | "model">) => ({
    ledgerUsd: picosToUsd(l.ledgerPicos),
    billUsd: picosToUsd(l.billPicos),
    driftUsd: picosToUsd(l.driftPicos),
    ledgerExact: picosToDecimalString(l.ledgerPicos),
    billExact: picosToDecimalString(l.billPicos),
    driftExact: picosToDecimalString(l.driftPicos),
    driftPercent: l.driftPercent,
  });
  return { month: r.month, lines: r.lines.map((l) => ({ date: l.date, model: l.model, ...dto(l) })), total: dto(r.total) };
}

/** Exact dollars, at least to the cent ("$0.0035", "$12.50"). */
function usd(picos: bigint, signed = false): string {
  const sign = picos < 0n ? "-" : signed && picos > 0n ? "+" : "";
  const [whole, frac = ""] = picosToDecimalString(picos < 0n ? -picos : picos).split(".");
  return `${sign}$${whole}.${frac.padEnd(2, "0")}`;
}
