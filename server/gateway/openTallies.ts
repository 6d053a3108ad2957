/**
 * The tallies a restart rebuilds from the journal, the personal caps' totals and the request-quota
 * counts: each from the ledger's checkpoint where it holds them, and the rest from one read of the
 * journal that feeds both.
 */
import { capReadersAtOpen, CapTally } from "../budget/capCheckpoint";
import type { Caps } from "../budget/caps";
import { joinReaders, readHistory, type CheckpointedHistory } from "../budget/historyPass";
import { quotaTallyAtOpen, type QuotaTally } from "../policy/quotaCheckpoint";

export interface OpenTallies {
  /** Register it with the ledger (CAPS_CHECKPOINT). */
  caps: CapTally;
  /** When a quota applies or the checkpoint kept counts; register it with the ledger (QUOTAS_CHECKPOINT). */
  quotas: QuotaTally | undefined;
}

/**
 * Counts the journal into the personal caps (`fresh`: the caps the engine just took, all at zero)
 * and the quota tally (in the ledger's `timeZone`), before any call is admitted.
 */
export async function openTallies(caps: Caps, fresh: readonly string[], history: CheckpointedHistory, o: { timeZone: string; now: Date; quotaApplies: boolean }): Promise<OpenTallies> {
  const capReaders = capReadersAtOpen(caps, fresh, history, o.now);
  const quota = quotaTallyAtOpen(history, o.timeZone, o.now, o.quotaApplies);
  await readHistory(history, quota ? joinReaders(capReaders, quota.readers) : capReaders);
  return { caps: new CapTally(caps.local.engine.copy()), quotas: quota?.tally };
}
