/**
 * The price book: which per-token rates apply to a call, given the model id as the caller named it,
 * the tier the response says was applied, the prompt size (long-context rates), the region the call
 * is billed in, and the model behind an opaque id (an application inference profile the gateway
 * looked up, or the model a prompt router chose). Built-in rows come from prices.json; user
 * overrides (config `pricing`) win over them. Raise-only rows (team.json's
 * `pricing`) can only raise a rate, never lower it: whoever can write them cannot undercut a price.
 */
import picomatch from "picomatch";
import { z } from "zod";
import type { PriceOverride } from "../config/schema";
import { applyBasisPoints, ceilDiv, perMillionToPicosPerToken, type Picos } from "./money";
import { parseModelId, type ParsedModelId } from "./modelId";
import { isResolved, type ProfileAnswer } from "./profiles";
import type { AppliedTier, Rates, TokenUsage } from "./types";
import prices from "./prices.json";

const per1M = z.number().nonnegative().finite();

const rowSchema = z.strictObject({
  id: z.string().min(1),
  patterns: z.array(z.string().min(1)).min(1),
  displayName: z.string().min(1),
  provider: z.string().min(1),
  inputPer1M: per1M,
  outputPer1M: per1M,
  cacheWrite5mPer1M: per1M.optional(),
  cacheWrite1hPer1M: per1M.optional(),
  cacheReadPer1M: per1M.optional(),
  maxOutputTokens: z.number().int().positive(),
  regionalPremium: z.boolean().optional(),
  longContext: z
    .strictObject({
      thresholdTokens: z.number().int().positive(),
      inputPer1M: per1M,
      outputPer1M: per1M,
      cacheWrite5mPer1M: per1M.optional(),
      cacheWrite1hPer1M: per1M.optional(),
      cacheReadPer1M: per1M.optional(),
    })
    .optional(),
  latencyOptimized: z.strictObject({ inputPer1M: per1M, outputPer1M: per1M }).optional(),
  source: z.string().min(1),
  checked: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  /** Set on rows the local price file (`prices update`) supplied, so their source does not read "built-in". */
  fromPriceFile: z.literal(true).optional(),
});

/** One model's rates in one region, where they differ from us-east-1. */
const regionalRowSchema = z.strictObject({
  inputPer1M: per1M,
  outputPer1M: per1M,
  cacheWrite5mPer1M: per1M.optional(),
  cacheWrite1hPer1M: per1M.optional(),
  cacheReadPer1M: per1M.optional(),
  source: z.string().min(1),
  checked: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  /** Set on rows the local price file (`prices update`) supplied, so their source does not read "built-in". */
  fromPriceFile: z.literal(true).optional(),
});

const tableSchema = z.strictObject({
  $comment: z.string().optional(),
  regionalPremiumBasisPoints: z.number().int().positive(),
  serviceTiers: z.record(z.string(), z.strictObject({ basisPoints: z.number().int().positive(), source: z.string() })),
  /** Region glob → row id → that region's rates. */
  regions: z.record(z.string(), z.union([z.string(), z.record(z.string(), regionalRowSchema)])).default({}),
  models: z.array(rowSchema).min(1),
});

export type PriceRow = z.infer<typeof rowSchema>;
export type PriceTable = z.infer<typeof tableSchema>;

/** Validated once at load: a malformed table is a build bug, not a runtime condition. */
export const BUILT_IN_PRICES: PriceTable = tableSchema.parse(prices);

const GLOB_OPTIONS = { bash: true, dot: true } as const; // bash: `*` also crosses `/` (ARNs)
const RATE_KINDS = ["input", "output", "cacheRead", "cacheWrite5m", "cacheWrite1h"] as const;
/** Where a row's figures come from, as the first word of `Rates.source` (priceSource() reads it back). */
function origin(row: { fromPriceFile?: true }): "price file" | "built-in" {
  return row.fromPriceFile ? "price file" : "built-in";
}

/** The region the built-in rows are written for, and the one assumed when a call names none. */
export const DEFAULT_PRICE_REGION = "us-east-1";

/** Beyond the model id: where the call is billed, and what an application inference profile stands for. */
export interface PricingScope {
  /** The caller's signing region (an ARN's own region wins); us-east-1 when unset. */
  region?: string;
  /** The gateway's lookup of an application inference profile (absent: not looked up). */
  profile?: ProfileAnswer;
}

export type RateQuery = AppliedTier & PricingScope & { inputTokens?: number };

interface TokenRates {
  input: Picos;
  output: Picos;
  cacheRead: Picos;
  cacheWrite5m: Picos;
  cacheWrite1h: Picos;
}

interface PriceSpec {
  inputPer1M: number;
  outputPer1M: number;
  cacheWrite5mPer1M?: number | undefined;
  cacheWrite1hPer1M?: number | undefined;
  cacheReadPer1M?: number | undefined;
}

export class PriceBook {
  private readonly rows: { row: PriceRow; matchers: ((id: string) => boolean)[] }[];
  private readonly overrides: OverrideRow[];
  private readonly raises: OverrideRow[];
  private readonly table: PriceTable;
  private readonly ceiling: TokenRates & { maxOutputTokens: number };

  /**
   * `overrides` replace the built-in rates (the user's own `pricing`). `raiseOnly` rows (team.json's
   * `pricing`) are compared rate by rate with what the book gives without them, and the higher wins.
   */
  constructor(overrides: Record<string, PriceOverride> = {}, table: PriceTable = BUILT_IN_PRICES, raiseOnly: Record<string, PriceOverride> = {}) {
    this.table = table;
    this.rows = table.models.map((row) => ({ row, matchers: row.patterns.map((p) => picomatch(p, GLOB_OPTIONS)) }));
    this.overrides = overrideRows(overrides);
    this.raises = overrideRows(raiseOnly);
    // Stryker disable next-line ConditionalExpression: a string entry (a comment) names no row, so keeping it would price nothing differently.
    const regions = Object.entries(table.regions).filter((e): e is [string, Record<string, z.infer<typeof regionalRowSchema>>] => typeof e[1] !== "string");
    this.regional = regions.map(([glob, rows]) => ({ glob, matches: picomatch(glob, GLOB_OPTIONS), rows }));
    this.ceiling = this.computeCeiling();
    this.minLongContextThreshold = Math.min(...table.models.map((r) => r.longContext?.thresholdTokens ?? Infinity));
  }

  private readonly regional: { glob: string; matches: (region: string) => boolean; rows: Record<string, z.infer<typeof regionalRowSchema>> }[];
  private readonly cache = new Map<string, Rates>();
  /** Below this many input tokens no row's long-context rate applies, so the count does not key the cache. */
  private readonly minLongContextThreshold: number;

  /** Rates for one call. `applied` is the tier the response reports (or the request asks for, before the call). */
  rates(modelId: string, applied: RateQuery = {}): Rates {
    // Every call prices its model at least twice (estimate, settlement): the result depends only on
    // the model, the tier, the region, what stands behind an opaque id and whether input passes a
    // long-context threshold, so it is kept.
    // The key's exact shape only decides how often rates are recomputed, never what they are, so the
    // mutants below that merely split or widen it are equivalent; parts running together are not.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a count in the key where none is needed only misses more often.
    const long = applied.inputTokens !== undefined && applied.inputTokens > this.minLongContextThreshold;
    const profile =
      // Stryker disable next-line StringLiteral: any text unlike the two forms below means "not looked up".
      applied.profile === undefined ? "" :
      isResolved(applied.profile) ? `${applied.profile.baseModelId}/${applied.profile.profile}` : `!${applied.profile.failed}`;
    // Stryker disable next-line StringLiteral: any placeholder unlike a token count will do.
    const tokens = long ? applied.inputTokens : "";
    // Stryker disable next-line StringLiteral: any placeholder for an absent part will do.
    const parts = [modelId, applied.serviceTier, applied.latency, tokens, applied.region, applied.invokedModelId, profile].map((p) => p ?? "");
    const key = parts.join("\u0000"); // NUL is in no model id, tier or region: the parts never run together
    let rates = this.cache.get(key);
    // Stryker disable next-line ConditionalExpression: recomputing gives the same rates.
    if (!rates) {
      // Stryker disable next-line ConditionalExpression,EqualityOperator: the bound limits memory only.
      if (this.cache.size >= 1_000) this.cache.clear(); // model ids come from callers: stay bounded
      rates = Object.freeze(this.computeRates(modelId, applied));
      this.cache.set(key, rates);
    }
    return rates;
  }

  private computeRates(modelId: string, applied: RateQuery): Rates {
    const behind: string[] = [];
    const parsed = this.behind(parseModelId(modelId), applied, behind);
    const own = this.ownRates(parsed, modelId, applied);
    const raise = findOverride(this.raises, parsed);
    const rates = raise ? raiseRates(own, this.overrideRates(parsed, raise.key, raise.override, applied), raise.key, raise.override.maxOutputTokens) : own;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: an empty prefix leaves the same rates.
    return behind.length > 0 ? { ...rates, notes: [...behind, ...rates.notes] } : rates;
  }

  /**
   * An opaque id priced as the model behind it: the model a prompt router's answer names, or the
   * one the control plane gave for an application inference profile. Without either it stays opaque
   * (the dearest rate), and a failed lookup is said.
   */
  private behind(parsed: ParsedModelId, applied: RateQuery, notes: string[]): ParsedModelId {
    if (parsed.baseModelId !== undefined) return parsed;
    const invoked = applied.invokedModelId === undefined ? undefined : parseModelId(applied.invokedModelId);
    if (invoked?.baseModelId !== undefined) {
      notes.push(`prompt router chose ${applied.invokedModelId}: priced as that model`);
      const { arnKind: _kind, ...model } = invoked;
      // The router's ARN region still says where the call is billed; its kind is read no further.
      return { ...model, requestedId: parsed.requestedId, ...(parsed.arnRegion ? { arnRegion: parsed.arnRegion } : {}) };
    }
    if (parsed.arnKind !== "application-inference-profile" || applied.profile === undefined) return parsed;
    if (!isResolved(applied.profile)) {
      notes.push(`application inference profile lookup failed (${applied.profile.failed}): priced at the dearest rate`);
      return parsed;
    }
    const p = applied.profile;
    notes.push(`application inference profile of ${p.baseModelId} (${p.profile === "global" ? "global" : p.profile === "geographic" ? "geographic, cross-region" : "one region"}; looked up ${p.resolvedAt.slice(0, 10)})`);
    return { ...parsed, baseModelId: p.baseModelId, profile: p.profile };
  }

  /** Rates from the user's overrides, else the built-in table, else the dearest known rates. */
  private ownRates(parsed: ParsedModelId, modelId: string, applied: RateQuery): Rates {
    const override = findOverride(this.overrides, parsed);
    if (override) return this.overrideRates(parsed, override.key, override.override, applied);

    const row = parsed.baseModelId === undefined ? undefined : this.findRow(parsed.baseModelId);
    if (!row) return this.unknownRates(parsed, applied);

    const notes: string[] = [];
    const { rates, source } = this.rowRates(row, parsed, applied, notes);
    return {
      requestedModelId: modelId,
      baseModelId: parsed.baseModelId ?? modelId,
      displayName: row.displayName,
      known: true,
      ...rates,
      maxOutputTokens: row.maxOutputTokens,
      source,
      notes,
    };
  }

  /**
   * The row's rates for this call: its region's figures, long context, latency-optimized, the +10% of a
   * geographic or in-region call, then the tier. With `own` (a user's row, read as this row's us-east-1
   * standard-tier short-context figures) those figures are not taken as such: `own` moves by the ratio
   * they move by, so an override is never charged below what the same call is billed at its rate.
   */
  private rowRates(row: PriceRow, parsed: ParsedModelId, applied: RateQuery, notes: string[], own?: TokenRates): { rates: TokenRates; source: string } {
    const region = parsed.arnRegion ?? applied.region ?? DEFAULT_PRICE_REGION;
    const local = this.regionalRow(row.id, region);
    let spec: PriceSpec = row;
    // "…, read <date>" is the form hovers parse (lensModel.ts): the date the row was checked.
    let source = `${origin(row)}: ${row.source}, read ${row.checked}`;
    if (local) {
      spec = local.row;
      source = `${origin(local.row)}: ${region} (${local.glob}): ${local.row.source}, read ${local.row.checked}`;
      notes.push(`${region} rate`);
    } else if (region !== DEFAULT_PRICE_REGION) {
      notes.push(`no ${region} rate in the table: the us-east-1 rate is used (unverified for ${region})`);
    }
    const long = row.longContext;
    if (long && applied.inputTokens !== undefined && applied.inputTokens > long.thresholdTokens) {
      spec = long;
      notes.push(`long context: ${applied.inputTokens} input tokens > ${long.thresholdTokens}`);
    }
    let rates = expand(spec, row.provider);
    if (applied.latency === "optimized") {
      if (row.latencyOptimized) {
        rates = { ...rates, ...pick(expand(row.latencyOptimized, row.provider), "input", "output") };
        notes.push("latency-optimized rate");
      } else {
        notes.push("latency-optimized was reported but the row lists no such rate: standard rate used");
      }
    }
    if (own) rates = rescale(own, rates, expand(row, row.provider));
    if (row.regionalPremium) {
      if (parsed.profile === "global") {
        notes.push("global profile: base price");
      } else {
        rates = scale(rates, this.table.regionalPremiumBasisPoints);
        notes.push(parsed.profile === "geographic" ? `geographic profile ${parsed.profilePrefix}.: +10%` : "in-region call: +10%");
      }
    }
    const tier = this.tierMultiplier(applied.serviceTier, notes);
    if (tier !== undefined) rates = scale(rates, tier);
    return { rates, source };
  }

  /** The row's rates in `region` when the table lists them (first matching region glob). */
  private regionalRow(rowId: string, region: string): { glob: string; row: z.infer<typeof regionalRowSchema> } | undefined {
    for (const r of this.regional) {
      const row = r.rows[rowId];
      if (row && r.matches(region)) return { glob: r.glob, row };
    }
    return undefined;
  }

  knownModels(): { id: string; displayName: string }[] {
    return this.table.models.map((row) => ({ id: row.id, displayName: row.displayName }));
  }

  private findRow(baseModelId: string): PriceRow | undefined {
    return this.rows.find(({ matchers }) => matchers.some((m) => m(baseModelId)))?.row;
  }

  /**
   * A user's (or team's) row: its rates are the standard tier's, short context, in us-east-1 for a
   * global profile, as the built-in row it replaces; what the bill adds to that row (its region's
   * rate, long context, latency-optimized, +10% off a global profile, the tier) is added to it too.
   */
  private overrideRates(parsed: ParsedModelId, key: string, o: PriceOverride, applied: RateQuery): Rates {
    const row = parsed.baseModelId === undefined ? undefined : this.findRow(parsed.baseModelId);
    const provider = row?.provider ?? providerOf(parsed.baseModelId);
    const own = expand(
      {
        inputPer1M: o.inputPer1M,
        outputPer1M: o.outputPer1M,
        cacheReadPer1M: o.cacheReadPer1M,
        cacheWrite5mPer1M: o.cacheWritePer1M,
        cacheWrite1hPer1M: o.cacheWrite1hPer1M,
      },
      provider,
    );
    const notes = ["user price override: the standard tier's short-context rate; the adjustments noted apply on top"];
    // A model the table lacks has no figures to take ratios from: a tier's surcharge still applies, a discount is not guessed.
    const rates = row ? this.rowRates(row, parsed, applied, notes, own).rates : this.surchargeOnly(own, applied.serviceTier, notes);
    const maxOutputTokens = o.maxOutputTokens ?? row?.maxOutputTokens ?? this.ceiling.maxOutputTokens;
    if (o.maxOutputTokens === undefined && !row) notes.push(`no maxOutputTokens known: assumed ${maxOutputTokens}`);
    if (o.hourlyUsd !== undefined) notes.push(`provisioned throughput: billed $${o.hourlyUsd} per hour, not per token (declared by the user)`);
    return {
      requestedModelId: parsed.requestedId,
      baseModelId: parsed.baseModelId ?? parsed.requestedId,
      displayName: row?.displayName ?? parsed.baseModelId ?? parsed.requestedId,
      known: true,
      ...rates,
      maxOutputTokens,
      source: `override: ${key}`,
      notes,
      // Stryker disable next-line ConditionalExpression: an explicit `hourlyUsd: undefined` reads the same.
      ...(o.hourlyUsd !== undefined ? { hourlyUsd: o.hourlyUsd } : {}),
    };
  }

  private unknownRates(parsed: ParsedModelId, applied: AppliedTier): Rates {
    const why =
      parsed.baseModelId === undefined
        ? // Stryker disable next-line StringLiteral: only an ARN lacks a base model id, and every ARN has a kind.
          `the ${parsed.arnKind ?? "resource"} ARN does not name its base model`
        : "no price row matches it";
    const notes = [`unknown model (${why}): priced at the most expensive known rate for every token kind`];
    if (parsed.arnKind === "provisioned-model") {
      notes.push("provisioned throughput is billed hourly, not per token: declare its rate in `pricing` (per-token 0 and `hourlyUsd`) to price it as billed");
    }
    const rates = this.surchargeOnly(pick(this.ceiling, "input", "output", "cacheRead", "cacheWrite5m", "cacheWrite1h"), applied.serviceTier, notes);
    return {
      requestedModelId: parsed.requestedId,
      baseModelId: parsed.baseModelId ?? parsed.requestedId,
      displayName: parsed.baseModelId ?? parsed.requestedId,
      known: false,
      ...rates,
      maxOutputTokens: this.ceiling.maxOutputTokens,
      source: "built-in: maximum over all known rates",
      notes,
    };
  }

  /** `rates` with the tier's surcharge (noted); a discount is never taken on a guess. */
  private surchargeOnly(rates: TokenRates, serviceTier: string | undefined, notes: string[]): TokenRates {
    const tierNotes: string[] = [];
    const tier = this.tierMultiplier(serviceTier, tierNotes);
    // Stryker disable next-line EqualityOperator: tierMultiplier never returns 10_000 itself (no change is undefined).
    if (tier === undefined || tier <= 10_000) return rates;
    notes.push(...tierNotes);
    return scale(rates, tier);
  }

  private tierMultiplier(serviceTier: string | undefined, notes: string[]): number | undefined {
    if (serviceTier === undefined) return undefined;
    const tier = this.table.serviceTiers[serviceTier.toLowerCase()];
    if (!tier) {
      // Fail closed: a tier the table does not know is never priced below the dearest one it does.
      const dearest = Math.max(...Object.values(this.table.serviceTiers).map((t) => t.basisPoints));
      notes.push(`service tier "${serviceTier}" has no listed rate: priced at the dearest listed tier (×${dearest / 10_000})`);
      // ×1 scales every rate to itself, and only a surcharge is applied to an unknown model.
      return dearest;
    }
    if (tier.basisPoints === 10_000) {
      if (tier.source !== "no change") notes.push(`service tier ${serviceTier}: ${tier.source}`);
      return undefined;
    }
    notes.push(`service tier ${serviceTier}: ×${tier.basisPoints / 10_000} (${tier.source})`);
    return tier.basisPoints;
  }

  /** The highest rate of each kind any row can reach (long context, latency-optimized, regional premium). */
  private computeCeiling(): TokenRates & { maxOutputTokens: number } {
    const max: TokenRates & { maxOutputTokens: number } = {
      input: 0n,
      output: 0n,
      cacheRead: 0n,
      cacheWrite5m: 0n,
      cacheWrite1h: 0n,
      maxOutputTokens: 0,
    };
    for (const row of this.table.models) {
      const variants: TokenRates[] = [expand(row, row.provider)];
      for (const r of this.regional) if (r.rows[row.id]) variants.push(expand(r.rows[row.id]!, row.provider));
      if (row.longContext) variants.push(expand(row.longContext, row.provider));
      if (row.latencyOptimized) variants.push(expand(row.latencyOptimized, row.provider));
      for (const v of variants) {
        const r = row.regionalPremium ? scale(v, this.table.regionalPremiumBasisPoints) : v;
        for (const k of RATE_KINDS) {
          // Stryker disable next-line EqualityOperator: taking an equal rate changes nothing.
          if (r[k] > max[k]) max[k] = r[k];
        }
      }
      max.maxOutputTokens = Math.max(max.maxOutputTokens, row.maxOutputTokens);
    }
    return max;
  }
}

interface OverrideRow {
  key: string;
  override: PriceOverride;
  matches: (id: string) => boolean;
}

function overrideRows(overrides: Record<string, PriceOverride>): OverrideRow[] {
  return Object.entries(overrides).map(([key, override]) => {
    const glob = picomatch(key, GLOB_OPTIONS);
    // Stryker disable next-line ConditionalExpression: a glob without wildcards matches its own text; the equality is the fast path.
    return { key, override, matches: (id: string) => id === key || glob(id) };
  });
}

/** Exact keys first (requested id, then base id), then globs in the order the user wrote them. */
function findOverride(rows: OverrideRow[], parsed: ParsedModelId): OverrideRow | undefined {
  const ids = [parsed.requestedId, parsed.baseModelId].filter((id): id is string => id !== undefined);
  for (const id of ids) {
    const exact = rows.find((o) => o.key === id);
    if (exact) return exact;
  }
  return rows.find((o) => ids.some((id) => o.matches(id)));
}

/**
 * `own` with each rate raised to `floor`'s where that is higher (never lowered); a floor's
 * maxOutputTokens, when it names one, can only raise the assumed worst-case output too.
 */
function raiseRates(own: Rates, floor: TokenRates, key: string, floorMaxOutputTokens?: number): Rates {
  const raised = RATE_KINDS.filter((k) => floor[k] > own[k]);
  const maxOutputTokens = Math.max(own.maxOutputTokens, floorMaxOutputTokens ?? 0);
  if (raised.length === 0 && maxOutputTokens === own.maxOutputTokens) return own;
  const out: Rates = { ...own, maxOutputTokens, notes: [...own.notes, `team price ${key} raised ${[...raised, ...(maxOutputTokens > own.maxOutputTokens ? ["maxOutputTokens"] : [])].join(", ")} (team prices can raise a rate, never lower it)`] };
  for (const k of raised) out[k] = floor[k];
  out.source = `${own.source}; raised by team price: ${key}`;
  return out;
}

/** Exact cost in picos: every token kind times its per-token rate. */
export function costOf(usage: TokenUsage, rates: Rates): Picos {
  return (
    BigInt(usage.inputTokens) * rates.input +
    BigInt(usage.outputTokens) * rates.output +
    BigInt(usage.cacheReadInputTokens) * rates.cacheRead +
    BigInt(usage.cacheWrite5mInputTokens) * rates.cacheWrite5m +
    BigInt(usage.cacheWrite1hInputTokens) * rates.cacheWrite1h
  );
}

/**
 * Per-token rates from per-1M prices. Omitted cache prices follow Anthropic's rule for Anthropic
 * models (5m write 1.25×, 1h write 2×, read 0.1× input); other providers are charged the input rate.
 */
function expand(spec: PriceSpec, provider: string): TokenRates {
  const input = perMillionToPicosPerToken(spec.inputPer1M);
  const anthropic = provider === "anthropic";
  const orRule = (price: number | undefined, basisPoints: number) =>
    price !== undefined ? perMillionToPicosPerToken(price) : anthropic ? applyBasisPoints(input, basisPoints) : input;
  return {
    input,
    output: perMillionToPicosPerToken(spec.outputPer1M),
    cacheWrite5m: orRule(spec.cacheWrite5mPer1M, 12_500),
    cacheWrite1h: orRule(spec.cacheWrite1hPer1M, 20_000),
    cacheRead: orRule(spec.cacheReadPer1M, 1_000),
  };
}

function scale(r: TokenRates, basisPoints: number): TokenRates {
  return {
    input: applyBasisPoints(r.input, basisPoints),
    output: applyBasisPoints(r.output, basisPoints),
    cacheRead: applyBasisPoints(r.cacheRead, basisPoints),
    cacheWrite5m: applyBasisPoints(r.cacheWrite5m, basisPoints),
    cacheWrite1h: applyBasisPoints(r.cacheWrite1h, basisPoints),
  };
}

/** `own` moved kind by kind by the ratio `to`/`from`, rounded up; where `from` is free, the dearer of `own` and `to`. */
function rescale(own: TokenRates, to: TokenRates, from: TokenRates): TokenRates {
  const out = { ...own };
  // Stryker disable next-line EqualityOperator: of two equal rates either is the same.
  for (const k of RATE_KINDS) out[k] = from[k] === 0n ? (to[k] > own[k] ? to[k] : own[k]) : ceilDiv(own[k] * to[k], from[k]);
  return out;
}

function pick<T, K extends keyof T>(obj: T, ...keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) out[k] = obj[k];
  return out;
}

function providerOf(baseModelId: string | undefined): string {
  // Stryker disable next-line StringLiteral: only "anthropic" changes the cache rule, so any other placeholder prices the same.
  return baseModelId?.split(".")[0] ?? "";
}
