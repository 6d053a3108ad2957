/**
 * The one journal-replay loop: settled calls of the current windows count against caps after a
 * restart or a cap change. Pure over an async iterable of settled calls; each store decides what
 * a replayed call does to it (the local engine books it, the folder adds it to this machine's
 * file, Redis re-contributes it).
 */
import type { Outcome } from "../protocol";
import type { Picos } from "../metering/money";
import type { CallSubject } from "./capMatch";

/** The fields of a journal's settled call that a replay reads: its subject (which caps apply), cost, start and outcome. */
export interface SettledCall extends CallSubject {
  id: string;
  /** The model that answered a downgraded call: caps count the call against it, as live. */
  answeredBy?: string;
  costPicos: string;
  startedAt: string;
  outcome?: Outcome;
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
 * the call and when it started) it counts against; calls no cap applies to are skipped. Awaits `charge` when it returns a promise
 * (a store that writes in batches). `observe`, when given, sees every call first, free ones too
 * (request quotas count calls, not dollars). Returns how many calls were charged.
 */
export async function replaySettled(
  calls: AsyncIterable<SettledCall>,
  applicable: (call: SettledCall, at: Date) => string[],
  charge: (spend: ReplayedSpend) => void | Promise<unknown>,
  observe?: (call: SettledCall) => void,
): Promise<number> {
  let count = 0;
  for await (const call of calls) {
    observe?.(call);
    const spend = replayedSpend(call, applicable);
    if (!spend) continue;
    count++;
    const pending = charge(spend);
    // Stryker disable next-line ConditionalExpression: awaiting undefined only yields a tick.
    if (pending) await pending;
  }
  return count;
}

/** What one settled call adds to the caps on replay (the rule replaySettled applies to each): nothing when free or no cap applies. */
export function replayedSpend(call: SettledCall, applicable: (call: SettledCall, at: Date) => string[]): ReplayedSpend | undefined {
  const amount = BigInt(call.costPicos);
  if (amount <= 0n) return undefined;
  const at = new Date(call.startedAt);
  // A downgraded call counts against the model that answered it, as it did live.
  // Stryker disable next-line ConditionalExpression: without answeredBy the copy carries the same model id (the check saves a copy).
  const capIds = applicable(call.answeredBy === undefined ? call : { ...call, modelId: cappedModelId(call) }, at);
  if (capIds.length === 0) return undefined;
  return { id: call.id, amount, at, capIds };
}
