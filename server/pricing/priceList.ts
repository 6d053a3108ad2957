/**
 * Pure mapping from AWS Price List `GetProducts` rows (services AmazonBedrock and
 * AmazonBedrockFoundationModels) to the price table's model rows: which row a product names,
 * which token kind it prices, and at what USD per 1M tokens. No I/O.
 */
import { perMillionRateProblem } from "../metering/priceFile";
import type { PriceRow, PriceTable } from "../metering/prices";

export const PRICE_LIST_SERVICE_CODES = ["AmazonBedrock", "AmazonBedrockFoundationModels"] as const;

export type TokenKind = "input" | "output" | "cacheRead" | "cacheWrite5m" | "cacheWrite1h";

/** One priced product of the Price List, reduced to what the table needs. */
export interface PriceListEntry {
  /** The `model` (AmazonBedrock) or `servicename` (AmazonBedrockFoundationModels) attribute. */
  name: string;
  kind: TokenKind;
  /** Global cross-region SKUs carry the base price of rows with a regional premium. */
  scope: "regional" | "global";
  usdPer1M: string;
  usagetype: string;
}

/** Why a product was not used (shown by `prices update` when asked for detail; never guessed around). */
export interface SkippedEntry {
  usagetype: string;
  reason: string;
}

/** Not on-demand standard per-token prices: other tiers, modes and billing units. */
const NOT_ON_DEMAND = /batch|flex|priority|latency.?optimi|provisioned|reserved|custom|training|storage|long.?context|lctx/i;

/**
 * Reads one PriceList element (a JSON string, as GetProducts returns it). Returns undefined for
 * products that are not on-demand token prices of a model in `regionCode`, or a reason when a
 * token price cannot be read exactly.
 */
export function parsePriceListItem(json: string, regionCode: string): PriceListEntry | SkippedEntry | undefined {
  let item: unknown;
  try {
    item = JSON.parse(json);
  } catch {
    return { usagetype: "(unreadable)", reason: "PriceList element is not JSON" };
  }
  const attributes = (item as { product?: { attributes?: Record<string, unknown> } })?.product?.attributes;
  if (!attributes || typeof attributes !== "object") return undefined;
  const text = (key: string) => (typeof attributes[key] === "string" ? (attributes[key] as string) : "");
  const usagetype = text("usagetype");
  const name = text("model") || text("titanModel") || text("servicename");
  if (!name || !usagetype) return undefined;
  if (text("regionCode") && text("regionCode") !== regionCode) return undefined;
  const feature = text("feature");
  if (feature && !/on-?demand/i.test(feature)) return undefined;
  const tier = text("service_tier");
  if (tier && !/^(standard|default)$/i.test(tier)) return undefined;
  const described = `${usagetype} ${text("inferenceType")}`;
  if (NOT_ON_DEMAND.test(described)) return undefined;
  const kind = tokenKind(described);
  if (!kind) return undefined;

  const dimensions = onDemandDimensions(item);
  if (dimensions.length !== 1) return { usagetype, reason: `${dimensions.length} on-demand price dimensions (expected exactly one)` };
  const { unit, usd } = dimensions[0]!;
  const perMillion = usdPer1MOf(usd, unit);
  if (perMillion === undefined) return { usagetype, reason: `price ${JSON.stringify(usd)} per ${JSON.stringify(unit)} is not a per-token price this reads` };
  // A $0 on-demand token price is not what Bedrock bills (a placeholder or promotional SKU): taking
  // it would make the row's calls free, so the row keeps the built-in figure. So is one under a
  // pico-dollar per token (the price book would charge $0), and one the price file could not hold.
  if (!/[1-9]/.test(perMillion)) return { usagetype, reason: `price ${JSON.stringify(usd)} per ${JSON.stringify(unit)} is $0, which no on-demand model bills` };
  const problem = perMillionRateProblem(perMillion);
  if (problem !== undefined) return { usagetype, reason: `price ${JSON.stringify(usd)} per ${JSON.stringify(unit)}: ${problem}` };
  return { name, kind, scope: /global/i.test(usagetype) ? "global" : "regional", usdPer1M: perMillion, usagetype };
}

export function isSkipped(x: PriceListEntry | SkippedEntry): x is SkippedEntry {
  return "reason" in x;
}

/** Token kind from the usage type and inference type ("USE1-MP:USE1_CacheReadInputTokenCount-Units", "Input tokens"). */
export function tokenKind(described: string): TokenKind | undefined {
  const d = described.toLowerCase();
  if (/cache.?read/.test(d)) return "cacheRead";
  if (/cache.?write/.test(d)) return /1h|1-hour|one.?hour/.test(d) ? "cacheWrite1h" : "cacheWrite5m";
  if (/input.?token/.test(d)) return "input";
  if (/output.?token|response.?token/.test(d)) return "output";
  return undefined;
}

function onDemandDimensions(item: unknown): { unit: string; usd: string }[] {
  const onDemand = (item as { terms?: { OnDemand?: Record<string, unknown> } })?.terms?.OnDemand;
  const out: { unit: string; usd: string }[] = [];
  if (!onDemand || typeof onDemand !== "object") return out;
  for (const term of Object.values(onDemand)) {
    const dims = (term as { priceDimensions?: Record<string, unknown> })?.priceDimensions;
    if (!dims || typeof dims !== "object") continue;
    for (const dim of Object.values(dims)) {
      const d = dim as { unit?: unknown; pricePerUnit?: { USD?: unknown } };
      if (typeof d?.unit === "string" && typeof d.pricePerUnit?.USD === "string") out.push({ unit: d.unit, usd: d.pricePerUnit.USD });
    }
  }
  return out;
}

/** "0.0030000000" per "1K tokens" → "3"; per "1M tokens" as is. Exact decimal arithmetic; undefined for other units. */
export function usdPer1MOf(usd: string, unit: string): string | undefined {
  if (!/^\d+(\.\d+)?$/.test(usd.trim())) return undefined;
  const u = unit.trim().toLowerCase();
  const shift = /^1k tokens?$/.test(u) ? 3 : /^(1m|1 million|million) tokens?$/.test(u) ? 0 : /^tokens?$/.test(u) ? 6 : undefined;
  if (shift === undefined) return undefined;
  return shiftDecimal(usd.trim(), shift);
}

/** Multiplies a plain decimal string by 10^shift without floating point; trims zeros. */
function shiftDecimal(value: string, shift: number): string {
  const [whole, frac = ""] = value.split(".") as [string, string?];
  const digits = whole + frac.padEnd(frac.length + shift, "0");
  const point = whole.length + shift;
  const intPart = digits.slice(0, point).replace(/^0+(?=\d)/, "");
  const fracPart = digits.slice(point).replace(/0+$/, "");
  return fracPart ? `${intPart}.${fracPart}` : intPart;
}

/**
 * A name in comparable form: "Claude Sonnet 4.5 (Amazon Bedrock Edition)", "Claude Sonnet 4.5",
 * "Nova 2.0 Lite", "Amazon Nova 2 Lite" and "Nova2.0Lite" (a Cost Explorer usage type's model part)
 * compare equal where they are the same model; "+" stays a word ("Command R+" ≠ "Command R").
 */
export function modelNameKey(name: string): string {
  return name
    .toLowerCase()
    .replace(/\(amazon bedrock edition\)/g, "")
    .replace(/^\s*(amazon|anthropic|meta|mistral ai)\s+/, "")
    .replace(/(\d)\.0(?!\d)/g, "$1")
    .replace(/\+/g, "plus") // "Command R+" is not "Command R"
    .replace(/[^a-z0-9.]/g, "")
    .replace(/\.(?!\d)|(?<!\d)\./g, "");
}

/** The table row a Price List / Cost Explorer model name names, if exactly one does. */
export function rowForName(table: PriceTable, name: string): PriceRow | undefined {
  const key = modelNameKey(name);
  const rows = table.models.filter((row) => modelNameKey(row.displayName) === key);
  return rows.length === 1 ? rows[0] : undefined;
}

/** A table row's figures as fetched: per-1M USD decimal strings. */
export type FetchedRates = Partial<Record<TokenKind, string>> & { input: string; output: string };

export interface PriceListMapping {
  /** Table row id → the fetched figures that replace the built-in ones. */
  rows: Record<string, FetchedRates>;
  /** Rows of the table the Price List did not price (they keep the built-in figure). */
  missing: string[];
  /** Price List model names no table row matches. */
  unmatched: string[];
  /** Products that were read but could not be used, and why. */
  skipped: SkippedEntry[];
}

/**
 * Which figures replace which row. A row with a regional premium takes the global SKUs (its table
 * figures are the base price; the premium is applied on top); other rows take the regional ones.
 * A row is replaced only when both its input and output prices are listed: half a row is not a price.
 */
export function mapPriceList(table: PriceTable, entries: PriceListEntry[], skipped: SkippedEntry[] = []): PriceListMapping {
  const byRow = new Map<string, { regional: Partial<Record<TokenKind, string>>; global: Partial<Record<TokenKind, string>> }>();
  const unmatched = new Set<string>();
  for (const e of entries) {
    const row = rowForName(table, e.name);
    if (!row) {
      unmatched.add(e.name);
      continue;
    }
    const slot = byRow.get(row.id) ?? { regional: {}, global: {} };
    byRow.set(row.id, slot);
    const prices = slot[e.scope];
    const seen = prices[e.kind];
    // Two SKUs for one kind and scope with different prices: take the higher (a cap errs high).
    if (seen === undefined || Number(e.usdPer1M) > Number(seen)) prices[e.kind] = e.usdPer1M;
  }
  const rows: Record<string, FetchedRates> = {};
  const missing: string[] = [];
  for (const row of table.models) {
    const slot = byRow.get(row.id);
    const prices = slot ? (row.regionalPremium ? slot.global : slot.regional) : undefined;
    if (!prices || prices.input === undefined || prices.output === undefined) {
      missing.push(row.id);
      continue;
    }
    rows[row.id] = { ...prices, input: prices.input, output: prices.output };
  }
  return { rows, missing, unmatched: [...unmatched].sort(), skipped };
}
