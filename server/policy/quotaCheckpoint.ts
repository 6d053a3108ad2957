/**
 * The request-quota counts a ledger checkpoint keeps: every journaled settle that counts toward a
 * quota, counted by the rule of the journal replay, so that the counts plus the journal past the
 * checkpoint equal a full replay of this month.
 */
import { z } from "zod";
import type { CheckpointedHistory, HistoryReaders, SettledReader } from "../budget/historyPass";
import type { SettledCall } from "../budget/replay";
import { windowBounds } from "../budget/windows";
import { planCaller, RateLimiter, type Counts } from "./rateLimit";

/** The checkpoint part's name in the ledger's state (Ledger.addCheckpointPart). */
export const QUOTAS_CHECKPOINT = "quotas";

/** Throttled and quota-refused calls did not count live, and a call with no known caller counts for nobody. */
export function countsTowardQuota(call: SettledCall): call is SettledCall & { caller: string } {
  return call.caller !== undefined && call.outcome !== "throttled" && call.outcome !== "quota-exceeded";
}

/** Which rule keyed the counts (planCaller); a tally kept by another is replayed whole. */
const KEYED_BY = "profile-or-key";

const partSchema = z.object({
  keyedBy: z.literal(KEYED_BY),
  timeZone: z.string(),
  countedFrom: z.number().int().nonnegative().optional(),
  counts: z.array(
    z.tuple([
      z.string(),
      z.object({ dayKey: z.string(), day: z.number().int().nonnegative(), monthKey: z.string(), month: z.number().int().nonnegative() }),
    ]),
  ),
});

/** Counts of every settle that counts toward a quota, in one time zone (the ledger's). */
export class QuotaTally {
  private readonly limiter = new RateLimiter();

  /**
   * `countedFrom` (epoch ms): every journaled call that started from then on is counted (open
   * counts from the month's start; 0: the journal whole). A month before it is not in the counts.
   */
  constructor(
    readonly timeZone: string,
    readonly countedFrom = 0,
  ) {}

  /**
   * The tally a checkpoint kept in `timeZone`, or undefined (none, unreadable, or another zone's:
   * replay whole). Given `now`, also undefined when the tally does not cover now's month (a clock
   * set back into a month before the one it started counting in: that month's calls are not in it).
   */
  static restore(part: unknown, timeZone: string, now?: Date): QuotaTally | undefined {
    const parsed = partSchema.safeParse(part);
    if (!parsed.success || parsed.data.timeZone !== timeZone) return undefined;
    const { countedFrom } = parsed.data;
    if (now && (countedFrom === undefined || countedFrom > windowBounds("month", timeZone, now).start.getTime())) return undefined;
    const tally = new QuotaTally(timeZone, countedFrom);
    tally.limiter.restoreCounts(parsed.data.counts);
    return tally;
  }

  /** Counts one settled call (journal order); calls that do not count toward a quota are ignored. */
  settled(call: SettledCall): void {
    if (countsTowardQuota(call)) this.count(planCaller(call), new Date(call.startedAt));
  }

  /** Counts one call of `caller` that started `at`. */
  count(caller: string, at: Date): void {
    this.limiter.count(caller, at, this.timeZone);
  }

  counts(): [string, Counts][] {
    return this.limiter.countsSnapshot();
  }

  snapshot(): { keyedBy: typeof KEYED_BY; timeZone: string; countedFrom: number; counts: [string, Counts][] } {
    return { keyedBy: KEYED_BY, timeZone: this.timeZone, countedFrom: this.countedFrom, counts: this.counts() };
  }
}

/** Counts each settled call that counts toward a quota and started at or after `since` (the replay rule), as a reader of open's pass; calls `running` at a live recount are counted apart. */
export function quotaReader(since: Date, count: (caller: string, at: Date) => void, running: ReadonlySet<string> = new Set()): SettledReader {
  return {
    since,
    settled: (call) => {
      if (!countsTowardQuota(call) || running.has(call.id)) return;
      const at = new Date(call.startedAt);
      if (at >= since) count(planCaller(call), at);
    },
  };
}

/**
 * The quota tally at open and the reader that brings it up to date (readHistory): the checkpoint's
 * tally with the journal past it, or (a quota applies, no checkpoint holds a tally) a new one with
 * this month's journal whole; without either, none (a quota added later replays the journal).
 * Register the tally with the ledger once the reader has been fed.
 */
export function quotaTallyAtOpen(history: CheckpointedHistory, timeZone: string, now: Date, quotaApplies: boolean): { tally: QuotaTally; readers: HistoryReaders } | undefined {
  const since = windowBounds("month", timeZone, now).start;
  const restored = QuotaTally.restore(history.checkpointPart(QUOTAS_CHECKPOINT), timeZone, now);
  const tally = restored ?? (quotaApplies ? new QuotaTally(timeZone, since.getTime()) : undefined);
  if (!tally) return undefined;
  const reader = quotaReader(since, (caller, at) => tally.count(caller, at));
  return { tally, readers: restored ? { whole: [], pastCheckpoint: [reader] } : { whole: [reader], pastCheckpoint: [] } };
}
