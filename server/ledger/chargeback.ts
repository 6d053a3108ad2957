/**
 * The chargeback report's arithmetic (pure): totals of settled calls, overall and grouped by user,
 * model, tool, caller and each tag value. Money is summed in bigint pico-dollars and printed as
 * exact decimals, so the report equals the journal to the pico-dollar.
 */
import { costByModel } from "../metering/attachedGuardrail";
import { picosToDecimalString } from "../metering/money";
import { stoppedAtGateway } from "./outcomes";
import type { CallRecord } from "./types";

export const DIMENSIONS = ["user", "model", "tool", "caller", "tag"] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** Shown where a call has no value for a dimension (no caller recorded, no tags). */
export const NONE = { caller: "(unknown)", tag: "(untagged)" } as const;

export interface Totals {
  /** Calls that left the machine (as the status bar's "today" counts them). */
  calls: number;
  /** Calls stopped at the gateway (a cap, a rate limit, a quota): never sent, $0. */
  stopped: number;
  /** As Bedrock reports them: input excludes cache reads and writes. */
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheWriteInputTokens: number;
  costPicos: bigint;
}

export interface TotalsRow extends Totals {
  dimension: Dimension | "total";
  /** The user, base model id, tool, caller, or `key=value` of a tag. */
  key: string;
}

export interface Chargeback {
  total: Totals;
  /** Per dimension in DIMENSIONS order, dearest first (ties by key). */
  groups: TotalsRow[];
}

const zero = (): Totals => ({ calls: 0, stopped: 0, inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0, costPicos: 0n });

/** Adds a call to `t`: its tokens and counts, and `costPicos` (the call's whole cost unless a part of it is counted elsewhere). */
function add(t: Totals, c: CallRecord, costPicos: bigint = BigInt(c.costPicos)): void {
  if (stoppedAtGateway(c.outcome)) t.stopped++;
  else t.calls++;
  t.inputTokens += c.usage.inputTokens;
  t.outputTokens += c.usage.outputTokens;
  t.cacheReadInputTokens += c.usage.cacheReadInputTokens;
  t.cacheWriteInputTokens += c.usage.cacheWrite5mInputTokens + c.usage.cacheWrite1hInputTokens;
  t.costPicos += costPicos;
}


/** The keys a call counts under in one dimension: one each, except tags (one per tag it carries). */
export function keysOf(c: CallRecord, dimension: Dimension): string[] {
  switch (dimension) {
    case "user":
      return [c.user];
    case "model":
      return [c.baseModelId];
    case "tool":
      return [c.tool];
    case "caller":
      return [c.caller ?? NONE.caller];
    case "tag": {
      const tags = Object.entries(c.tags ?? {});
      return tags.length ? tags.map(([k, v]) => `${k}=${v}`) : [NONE.tag];
    }
  }
}

/**
 * Totals every call, then per dimension. Within user, model, tool and caller the groups add up to
 * the total; a call with two tags counts once under each, so tag groups of different keys overlap.
 * By model, a guardrail attached to a call is billed apart (as reconcile and the CSV keep it): its
 * part of the cost counts under guardrail/<id> (costByModel), the call, its tokens and the rest under its model.
 */
export function chargeback(calls: Iterable<CallRecord>): Chargeback {
  const tally = new ChargebackTally();
  for (const c of calls) tally.add(c);
  return tally.result();
}

/** chargeback's sums fed one call at a time, so a report need not hold its calls (a year of them can outgrow memory). */
export class ChargebackTally {
  private readonly total = zero();
  private readonly maps = new Map<Dimension, Map<string, Totals>>(DIMENSIONS.map((d) => [d, new Map()]));

  add(c: CallRecord): void {
    add(this.total, c);
    const parts = costByModel(c);
    for (const d of DIMENSIONS) {
      for (const key of keysOf(c, d)) add(this.row(d, key), c, d === "model" ? parts.model : undefined);
    }
    if (parts.guardrail) this.row("model", parts.guardrail.key).costPicos += parts.guardrail.cost;
  }

  private row(dimension: Dimension, key: string): Totals {
    const map = this.maps.get(dimension)!;
    let t = map.get(key);
    if (!t) map.set(key, (t = zero()));
    return t;
  }

  result(): Chargeback {
    const groups = DIMENSIONS.flatMap((dimension) =>
      [...this.maps.get(dimension)!]
        .map(([key, t]): TotalsRow => ({ dimension, key, ...t }))
        .sort((a, b) => (b.costPicos > a.costPicos ? 1 : b.costPicos < a.costPicos ? -1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    );
    return { total: { ...this.total }, groups };
  }
}

/** A row as JSON and CSV print it: cost as an exact decimal string of USD. */
export function printable(row: TotalsRow): Omit<TotalsRow, "costPicos"> & { costUsd: string } {
  const { costPicos, ...rest } = row;
  return { ...rest, costUsd: picosToDecimalString(costPicos) };
}

// `stopped` was added later: appended, so scripts reading the columns before it by position keep working.
export const TOTALS_COLUMNS = ["dimension", "key", "calls", "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens", "costUsd", "stopped"] as const;

/** The rows of a chargeback, the total first. */
export function rowsOf(report: Chargeback): TotalsRow[] {
  return [{ dimension: "total", key: "", ...report.total }, ...report.groups];
}
