/**
 * A realistic ledger for dashboard tests: settled calls spread over the current month (and the
 * start of this week, which may fall in the previous month), several models, tools, tags and
 * outcomes, priced with the real PriceBook. Written through the Ledger API (reserve + settle).
 */
import { windowBounds } from "../../server/budget/windows";
import { Ledger } from "../../server/ledger/ledger";
import type { CallRecord, Outcome } from "../../server/ledger/types";
import { costOf, PriceBook } from "../../server/metering/prices";
import type { Operation } from "../../server/metering/types";

export const SEED_MODELS = [
  "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
  "us.anthropic.claude-haiku-4-5-20251001-v1:0",
  "us.amazon.nova-lite-v1:0",
  "meta.llama3-3-70b-instruct-v1:0",
  "us.anthropic.claude-opus-4-1-20250805-v1:0",
];
export const SEED_TOOLS = ["aws-sdk-js", "boto3", "aws-cli", "langchain"];
const TAGS: Record<string, string>[] = [{ team: "search" }, { team: "ml", feature: "summaries" }, {}, { team: "search", feature: "chat" }];

/** Deterministic pseudo-random numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SeedOptions {
  now: Date;
  timeZone?: string;
  /** Calls before today (spread from the earlier of this month's and this week's start). */
  pastCalls?: number;
  /** Calls today (spread from midnight to now). */
  todayCalls?: number;
  seed?: number;
}

export function seedRecords(opts: SeedOptions): CallRecord[] {
  const tz = opts.timeZone ?? "UTC";
  const random = rng(opts.seed ?? 7);
  const prices = new PriceBook();
  const now = opts.now.getTime();
  const day = windowBounds("day", tz, opts.now).start.getTime();
  const from = Math.min(windowBounds("month", tz, opts.now).start.getTime(), windowBounds("week", tz, opts.now).start.getTime());
  const times: number[] = [];
  for (let i = 0; i < (opts.pastCalls ?? 400); i++) if (day > from) times.push(from + random() * (day - from));
  const todayEnd = Math.max(day + 1, now - 60_000);
  for (let i = 0; i < (opts.todayCalls ?? 60); i++) times.push(day + random() * (todayEnd - day));
  times.sort((a, b) => a - b);
  return times.map((t, i) => {
    const r = random();
    const modelId = SEED_MODELS[r < 0.45 ? 0 : r < 0.7 ? 1 : r < 0.85 ? 2 : r < 0.95 ? 3 : 4]!;
    const o = random();
    const outcome: Outcome = o < 0.9 ? "ok" : o < 0.95 ? "refused" : o < 0.965 ? "cut" : o < 0.98 ? "throttled" : "upstream-error";
    const nothingRan = outcome === "refused" || outcome === "throttled" || outcome === "upstream-error";
    const rates = prices.rates(modelId);
    const usage = {
      inputTokens: nothingRan ? 0 : Math.round(500 + random() * 6000),
      outputTokens: nothingRan ? 0 : Math.round(100 + random() * 1500),
      cacheReadInputTokens: 0,
      cacheWrite5mInputTokens: 0,
      cacheWrite1hInputTokens: 0,
    };
    const cost = costOf(usage, rates);
    const startedAt = new Date(Math.floor(t));
    const latencyMs = Math.round(300 + random() * 4000);
    const operation: Operation = random() < 0.5 ? "Converse" : "InvokeModelWithResponseStream";
    return {
      type: "settle",
      id: `seed-${String(i).padStart(6, "0")}`,
      at: new Date(Math.min(startedAt.getTime() + latencyMs, now - 1)).toISOString(),
      startedAt: startedAt.toISOString(),
      user: "tester",
      tool: SEED_TOOLS[Math.floor(random() * SEED_TOOLS.length)]!,
      operation,
      modelId,
      baseModelId: rates.baseModelId,
      usage,
      usageEstimated: outcome === "cut",
      costPicos: String(cost),
      worstCasePicos: String(cost * 2n),
      outcome,
      status: outcome === "refused" ? 400 : outcome === "upstream-error" || outcome === "throttled" ? 429 : 200,
      ...(outcome === "refused" ? { refusedBy: "daily", message: "cap daily would be exceeded" } : {}),
      ...(outcome === "upstream-error" ? { message: "ThrottlingException" } : {}),
      ...(outcome === "throttled" ? { caller: "credentials:gateway", message: "over its rate limit" } : {}),
      latencyMs,
      tags: TAGS[Math.floor(random() * TAGS.length)]!,
    } satisfies CallRecord;
  });
}

/** Writes records into a ledger folder (reserve, then settle, as the gateway does). */
export async function writeLedger(dir: string, records: CallRecord[], timeZone = "UTC"): Promise<void> {
  const ledger = await Ledger.open(dir, { timeZone });
  try {
    // Appends queued in one tick share a group commit; their order in the journal is the call order.
    await Promise.all(records.map((r) => ledger.reserve({ type: "reserve", id: r.id, at: r.startedAt, user: r.user, tool: r.tool, operation: r.operation, modelId: r.modelId, baseModelId: r.baseModelId, worstCasePicos: r.worstCasePicos, capIds: [] })));
    await Promise.all(records.map((r) => ledger.settle(r)));
  } finally {
    await ledger.close();
  }
}
