/**
 * Pure reconciliation: the ledger's cost per UTC day and model beside what AWS billed (Cost
 * Explorer rows per day, service and usage type), with the drift in dollars and percent. Calls
 * made outside the gateway show up as drift: it tells how much of the Bedrock bill the wall sees.
 */
import type { CallRecord } from "../ledger/types";
import { guardrailPartOfRecord } from "../metering/attachedGuardrail";
import { PICOS_PER_USD, type Picos } from "../metering/money";
import { rowForName } from "../pricing/priceList";
import { isGuardrailModelKey } from "../shared/guardrailModel";
import type { PriceTable } from "../metering/prices";

/** One Cost Explorer group of one day. */
export interface BillRow {
  date: string; // YYYY-MM-DD (UTC), the day's TimePeriod.Start
  service: string;
  usageType: string;
  amountUsd: string; // Metrics.UnblendedCost.Amount
}

export interface ReconcileLine {
  date: string;
  /** A table row's display name, the ledger's model id, or `unmapped usage type <type>`. */
  model: string;
  ledgerPicos: Picos;
  billPicos: Picos;
  /** bill − ledger. */
  driftPicos: Picos;
  /** drift / bill in percent (one decimal), null when the bill is 0. */
  driftPercent: number | null;
}

export interface Reconciliation {
  month: string;
  lines: ReconcileLine[];
  total: Omit<ReconcileLine, "date" | "model">;
}

/** The Bedrock service names Cost Explorer bills under: first-party models, and marketplace models per model. */
export const BEDROCK_SERVICE = "Amazon Bedrock";
const MARKETPLACE_SUFFIX = " (Amazon Bedrock Edition)";
const MARKETPLACE_PROVIDERS = new Set(["anthropic", "cohere", "ai21", "writer"]);

/** Whether a Cost Explorer SERVICE is Bedrock's: "Amazon Bedrock", or a marketplace model's own. */
export function isBedrockService(service: string): boolean {
  return service === BEDROCK_SERVICE || service.endsWith(MARKETPLACE_SUFFIX);
}

/** SERVICE values to ask Cost Explorer for: "Amazon Bedrock" and each marketplace model's own service. */
export function bedrockServices(table: PriceTable): string[] {
  const marketplace = table.models.filter((r) => MARKETPLACE_PROVIDERS.has(r.provider)).map((r) => `${r.displayName}${MARKETPLACE_SUFFIX}`);
  return [BEDROCK_SERVICE, ...new Set(marketplace)];
}

/**
 * The line where guardrails meet: the bill has usage types of their own for them
 * ("USE1-Guardrail-ContentPolicyUnitsConsumed", one per policy, no guardrail id), so the ledger's
 * guardrail spend (ApplyGuardrail calls, the part of a model call its attached guardrail cost) is
 * taken out of the models' lines and joined with them here, per day.
 */
export const GUARDRAILS_LINE = "Guardrails";

/** Whether a bill row is a guardrail's: an "Amazon Bedrock" usage type "<region>-Guardrail-<policy>…". */
export function isGuardrailUsage(service: string, usageType: string): boolean {
  return service === BEDROCK_SERVICE && /^(?:[A-Z]{2,4}\d?-)?Guardrail-/i.test(usageType);
}

/** Words of a usage type after its model part ("USE1-Nova2.0Lite-input-tokens" → model "Nova2.0Lite"). */
const KIND_WORD = /^(input|output|cache|read|write|tokens?|batch|flex|priority|latency|optimized|global|cross|region|units?|[a-z]*tokencount.*)$/i;

/** The model a bill row names: a marketplace service names it; an "Amazon Bedrock" usage type carries it after the region. */
export function billModelName(service: string, usageType: string): string | undefined {
  if (service.endsWith(MARKETPLACE_SUFFIX)) return service.slice(0, -MARKETPLACE_SUFFIX.length);
  if (service !== BEDROCK_SERVICE) return undefined;
  const parts = usageType.split("-");
  if (parts.length < 2 || !/^[A-Z]{2,4}\d?$/.test(parts[0]!)) return undefined;
  const model: string[] = [];
  for (const part of parts.slice(1)) {
    if (KIND_WORD.test(part)) break;
    model.push(part);
  }
  return model.length ? model.join("-") : undefined;
}

/** Exact picos from Cost Explorer's decimal amount (rounded half up past the 12th decimal). */
export function amountToPicos(amount: string): Picos {
  const text = amount.trim();
  const plain = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text);
  if (!plain) {
    const n = Number(text); // e.g. "1.2E-5"
    if (!Number.isFinite(n)) throw new Error(`Cost Explorer amount ${JSON.stringify(amount)} is not a number`);
    return amountToPicos(n.toFixed(12));
  }
  const [, sign, whole, frac = ""] = plain;
  let picos = BigInt(whole!) * PICOS_PER_USD + BigInt(frac.padEnd(12, "0").slice(0, 12));
  if (frac.length > 12 && Number(frac[12]) >= 5) picos += 1n;
  return sign ? -picos : picos;
}

export function driftPercent(drift: Picos, bill: Picos): number | null {
  if (bill === 0n) return null;
  // Tenths of a percent, rounded half away from zero.
  const scaled = drift * 1000n;
  let tenths = scaled / bill;
  const rest = scaled % bill;
  const abs = (x: bigint) => (x < 0n ? -x : x);
  if (2n * abs(rest) >= abs(bill)) tenths += (scaled < 0n) !== (bill < 0n) ? -1n : 1n;
  return Number(tenths) / 10;
}

/**
 * Joins the ledger and the bill per UTC day and model. `labelOfCall` names a call's model as the
 * price table does (so both sides meet on one name); a bill row no table row matches gets its own
 * line, named by its usage type.
 */
export function reconcile(
  month: string,
  calls: CallRecord[],
  bill: BillRow[],
  table: PriceTable,
  labelOfCall: (baseModelId: string) => string,
): Reconciliation {
  const cells = new Map<string, { date: string; model: string; ledger: Picos; bill: Picos }>();
  const cell = (date: string, model: string) => {
    const key = `${date}\u0000${model}`;
    let c = cells.get(key);
    if (!c) cells.set(key, (c = { date, model, ledger: 0n, bill: 0n }));
    return c;
  };
  for (const call of calls) {
    const date = call.at.slice(0, 10); // ISO UTC: Cost Explorer's days are UTC days
    if (!date.startsWith(month)) continue;
    const amount = BigInt(call.costPicos);
    if (amount === 0n) continue;
    // ApplyGuardrail is journaled under "guardrail/<id>"; a model call keeps its guardrail's part apart.
    const guardrail = call.operation === "ApplyGuardrail" || isGuardrailModelKey(call.baseModelId) ? amount : (guardrailPartOfRecord(call)?.costPicos ?? 0n);
    if (guardrail > 0n) cell(date, GUARDRAILS_LINE).ledger += guardrail;
    if (amount > guardrail) cell(date, labelOfCall(call.baseModelId)).ledger += amount - guardrail;
  }
  for (const row of bill) {
    if (!row.date.startsWith(month)) continue;
    const amount = amountToPicos(row.amountUsd);
    if (amount === 0n) continue;
    if (isGuardrailUsage(row.service, row.usageType)) {
      cell(row.date, GUARDRAILS_LINE).bill += amount;
      continue;
    }
    const name = billModelName(row.service, row.usageType);
    const matched = name === undefined ? undefined : rowForName(table, name);
    cell(row.date, matched ? matched.displayName : `unmapped usage type ${row.usageType}${row.service === BEDROCK_SERVICE ? "" : ` (${row.service})`}`).bill += amount;
  }
  const lines = [...cells.values()]
    .sort((a, b) => (a.date === b.date ? a.model.localeCompare(b.model) : a.date < b.date ? -1 : 1))
    .map((c) => line(c.date, c.model, c.ledger, c.bill));
  const ledgerTotal = lines.reduce((s, l) => s + l.ledgerPicos, 0n);
  const billTotal = lines.reduce((s, l) => s + l.billPicos, 0n);
  const { date: _d, model: _m, ...total } = line("", "", ledgerTotal, billTotal);
  return { month, lines, total };
}

function line(date: string, model: string, ledger: Picos, bill: Picos): ReconcileLine {
  const drift = bill - ledger;
  return { date, model, ledgerPicos: ledger, billPicos: bill, driftPicos: drift, driftPercent: driftPercent(drift, bill) };
}
