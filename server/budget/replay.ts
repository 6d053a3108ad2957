/**
 * The one journal-replay loop: settled calls of the current windows count against caps after a
 * restart or a cap change. Pure over an async iterable of settled calls; each store decides what
 * a replayed call does to it (the local engine books it, the folder adds it to this machine's
 * file, Redis re-contributes it).
 */
import type { Picos } from "../metering/money";

/** The fields of a journal's settled call that a replay reads. */
export interface SettledCall {
  id: string;
  modelId: string;
  baseModelId?: string;
  /** The model that answered a downgraded call: caps count the call against it, as live. */
  answeredBy?: string;
  costPicos: string;
  startedAt: string;
}

/** The model id caps match a settled call by: the one that answered it (a downgrade), else the one asked. */
export function cappedModelId(call: Pick<SettledCall, "modelId" | "answeredBy">): string {
  return call.answeredBy ?? call.modelId;
}

/** One replayed call: what it cost, when it started (the window it was charged to), and the caps it applies to. */
export interface ReplayedSpend {
  id: string;
  amount: Picos;
  at: Date;
  capIds: string[];
}

/**
 * Feeds every settled call with a cost to `charge`, with the ids of the caps (`applicable`, given
 * when the call started) it counts against; calls no cap applies to are skipped. Awaits `charge` when it returns a promise
 * (a store that writes in batches). Returns how many calls were charged.
 */
export async function replaySettled(
  calls: AsyncIterable<SettledCall>,
  applicable: (modelId: string, baseModelId: string | undefined, at: Date) => string[],
  charge: (spend: ReplayedSpend) => void | Promise<unknown>,
): Promise<number> {
  let count = 0;
  for await (const call of calls) {
    const amount = BigInt(call.costPicos);
    if (amount <= 0n) continue;
    const at = new Date(call.startedAt);
    const capIds = applicable(cappedModelId(call), call.baseModelId, at);
    if (capIds.length === 0) continue;
    count++;
    const pending = charge({ id: call.id, amount, at, capIds });
    if (pending) await pending;
  }
  return count;
}
