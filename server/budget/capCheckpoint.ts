/**
 * The cap totals a ledger checkpoint keeps: a tally beside the live engine that books every
 * journaled settle by the replay rule (not by the live holds), so that its totals plus the journal
 * past the checkpoint equal a full replay, and their restore on open.
 */
import { z } from "zod";
import type { CapConfig } from "../config/schema";
import { PICOS_TEXT } from "../metering/money";
import type { Caps } from "./caps";
import type { BudgetEngine, CapTotal } from "./engine";
import type { CheckpointedHistory, HistoryReaders } from "./historyPass";
import { replayedSpend, type SettledCall } from "./replay";

/**
 * The personal caps' part of open (`fresh`: the caps the engine just took, all at zero): a cap
 * whose total the checkpoint holds (same id, window, scope and time zone) takes it and reads only
 * the journal past the checkpoint; every other cap reads its window whole. Once readHistory has fed
 * the readers, `new CapTally(caps.local.engine.copy())` is the tally the next checkpoint keeps.
 */
export function capReadersAtOpen(caps: Caps, fresh: readonly string[], history: CheckpointedHistory, now: Date): HistoryReaders {
  const restored = caps.local.engine.restoreTotals(parseCapTotals(history.checkpointPart(CAPS_CHECKPOINT)), now);
  const whole = caps.replayReader(new Set(fresh.filter((id) => !restored.has(id))));
  const pastCheckpoint = caps.replayReader(restored);
  return { whole: whole ? [whole] : [], pastCheckpoint: pastCheckpoint ? [pastCheckpoint] : [] };
}

/** The checkpoint part's name in the ledger's state (Ledger.addCheckpointPart). */
export const CAPS_CHECKPOINT = "caps";

const totalsSchema = z.array(
  z.object({
    id: z.string(),
    key: z.string(),
    windowStart: z.number().int(),
    spent: z.string().regex(PICOS_TEXT),
  }),
);

/** The totals a checkpoint holds, or none when it holds none or they are unreadable (every cap then replays whole). */
export function parseCapTotals(part: unknown): CapTotal[] {
  const parsed = totalsSchema.safeParse(part);
  return parsed.success ? parsed.data : [];
}

/**
 * Books each journaled settle on a copy of the engine, by the replay rule. Caps that start from
 * zero after it was made (added or changed live) are left out of its snapshots: their totals
 * come from a replay this tally did not see, so the next open replays them whole.
 */
export class CapTally {
  private readonly incomplete = new Set<string>();

  /** `engine`: the live engine right after open's replay, before any call is admitted. */
  constructor(private readonly engine: BudgetEngine) {}

  /**
   * Mirrors BudgetEngine.setCaps on the live engine, but keeps the zone the tally opened in: its
   * totals name that zone (BudgetEngine.totals), so after a live change of zone a start in the new
   * one takes none of them and counts the journal whole, and one back in this zone takes them.
   */
  setCaps(caps: CapConfig[]): void {
    for (const id of this.engine.setCaps(caps)) this.incomplete.add(id);
  }

  settled(call: SettledCall): void {
    const spend = replayedSpend(call, (c) => this.engine.applicableCaps(c));
    if (spend) for (const id of spend.capIds) this.engine.recordExternalSpent(id, spend.at, spend.amount);
  }

  snapshot(): CapTotal[] {
    return this.engine.totals().filter((t) => !this.incomplete.has(t.id));
  }
}
