/**
 * The request-quota counts a ledger checkpoint keeps: every journaled settle that counts toward a
 * quota, counted by the rule of the journal replay, so that the counts plus the journal past the
 * checkpoint equal a full replay of this month.
 */
import { z } from "zod";
import type { CheckpointedHistory } from "../budget/capCheckpoint";
import { replaySettled, type SettledCall } from "../budget/replay";
import { windowBounds } from "../budget/windows";
import { RateLimiter, type Counts } from "./rateLimit";

/** The checkpoint part's name in the ledger's state (Ledger.addCheckpointPart). */
export const QUOTAS_CHECKPOINT = "quotas";

/** Throttled and quota-refused calls did not count live, and a call with no known caller counts for nobody. */
export function countsTowardQuota(call: SettledCall): call is SettledCall & { caller: string } {
  return call.caller !== undefined && call.outcome !== "throttled" && call.outcome !== "quota-exceeded";
}

const partSchema = z.object({
  timeZone: z.string(),
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

  constructor(readonly timeZone: string) {}

  /** The tally a checkpoint kept in `timeZone`, or undefined (none, unreadable, or another zone's: replay whole). */
  static restore(part: unknown, timeZone: string): QuotaTally | undefined {
    const parsed = partSchema.safeParse(part);
    if (!parsed.success || parsed.data.timeZone !== timeZone) return undefined;
    const tally = new QuotaTally(timeZone);
    tally.limiter.restoreCounts(parsed.data.counts);
    return tally;
  }

  /** Counts one settled call (journal order); calls that do not count toward a quota are ignored. */
  settled(call: SettledCall): void {
    if (countsTowardQuota(call)) this.limiter.count(call.caller, new Date(call.startedAt), this.timeZone);
  }

  counts(): [string, Counts][] {
    return this.limiter.countsSnapshot();
  }

  snapshot(): { timeZone: string; counts: [string, Counts][] } {
    return { timeZone: this.timeZone, counts: this.counts() };
  }
}

/**
 * The quota tally at open: the checkpoint's plus the journal past it, or (a quota applies, no
 * checkpoint holds a tally) this month's journal counted whole; without either, none (a quota added
 * later replays the journal). Register the result with the ledger.
 */
export async function openQuotaTally(history: CheckpointedHistory, timeZone: string, now: Date, quotaApplies: boolean): Promise<QuotaTally | undefined> {
  const since = windowBounds("month", timeZone, now).start;
  let tally = QuotaTally.restore(history.checkpointPart(QUOTAS_CHECKPOINT), timeZone);
  let calls: AsyncIterable<SettledCall>;
  if (tally) calls = history.settledSinceCheckpoint(since);
  else if (quotaApplies) {
    tally = new QuotaTally(timeZone);
    calls = history.settledSince(since);
  } else return undefined;
  const counting = tally;
  await replaySettled(calls, () => [], () => undefined, (call) => {
    if (new Date(call.startedAt) >= since) counting.settled(call);
  });
  return tally;
}
