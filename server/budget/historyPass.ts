/**
 * Open's read of the journal. Each part of the state a restart rebuilds from settled calls (the
 * personal caps' totals, the request-quota counts) is a reader, and the readers of one source
 * share one pass over it: a start with no checkpoint reads a month of calls once, not once per part.
 */
import type { SettledCall } from "./replay";

/** A settled call as the journal holds it: with `at`, when it was journaled (what `since` filters by). */
export type JournaledCall = SettledCall & { at: string };

/** A journal with a checkpoint (the Ledger): the whole history, and the history past its checkpoint with the parts kept there. */
export interface CheckpointedHistory {
  settledSince(since: Date): AsyncIterable<JournaledCall>;
  settledSinceCheckpoint(since: Date): AsyncIterable<JournaledCall>;
  checkpointPart(name: string): unknown;
  /** False when open replayed the journal whole (no usable checkpoint): past the checkpoint is then the whole journal. */
  readonly fromCheckpoint: boolean;
}

/** One consumer of a pass: it is given the calls that reading from `since` alone would give it, oldest first. */
export interface SettledReader {
  since: Date;
  settled(call: SettledCall): void;
}

/** What open reads: readers of the whole journal, and readers of the part past the checkpoint (the rest came from it). */
export interface HistoryReaders {
  whole: SettledReader[];
  pastCheckpoint: SettledReader[];
}

/** Feeds one reader from `journal`, read from its since: a replay outside open (a cap or a quota added live). */
export async function readOne(journal: (since: Date) => AsyncIterable<SettledCall>, reader: SettledReader): Promise<void> {
  for await (const call of journal(reader.since)) reader.settled(call);
}

/** Both sets of readers in one (each reader keeps its source). */
export function joinReaders(...sets: HistoryReaders[]): HistoryReaders {
  return { whole: sets.flatMap((s) => s.whole), pastCheckpoint: sets.flatMap((s) => s.pastCheckpoint) };
}

/**
 * Feeds every reader its calls, one pass per source, from the earliest `since` of its readers; a
 * reader whose `since` is later is not shown the calls journaled before it. With no checkpoint
 * both sources are the whole journal: one pass in all.
 */
export async function readHistory(history: CheckpointedHistory, readers: HistoryReaders): Promise<void> {
  const passes: [SettledReader[], (since: Date) => AsyncIterable<JournaledCall>][] = history.fromCheckpoint
    ? [
        [readers.whole, (since) => history.settledSince(since)],
        [readers.pastCheckpoint, (since) => history.settledSinceCheckpoint(since)],
      ]
    : [[[...readers.whole, ...readers.pastCheckpoint], (since) => history.settledSince(since)]];
  for (const [group, source] of passes) {
    if (group.length === 0) continue;
    const since = Math.min(...group.map((r) => r.since.getTime()));
    // Only a reader whose since is later than the pass's parses each call's time.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a reader whose since is the pass's is shown only calls at or after it anyway.
    const cuts = group.map((r) => (r.since.getTime() > since ? r.since.getTime() : undefined));
    for await (const call of source(new Date(since))) {
      for (let i = 0; i < group.length; i++) {
        const cut = cuts[i];
        if (cut === undefined || Date.parse(call.at) >= cut) group[i]!.settled(call);
      }
    }
  }
}
