/**
 * What the caps that apply to a call do to it, decided from their figures and the call's worst case
 * (pure, no I/O): let it through (warning for `warn` caps past their limit), send it to a cheaper
 * model (`downgrade`), lower its output limit so its worst case fits (`clamp`), or refuse it.
 */
import { capAction, DEFAULT_DOWNGRADE_AT, type CapAction, type CapConfig } from "../config/schema";
import { worstCaseCost, type Estimate } from "../metering/estimate";
import type { Picos } from "../metering/money";

/** A cap that applies to the call, as it stands now. */
export interface CapFigures {
  id: string;
  action: CapAction;
  /** `downgrade` caps: the model calls go to. */
  downgradeTo?: string;
  /** `downgrade` caps: the fraction of the limit from which they downgrade (default 0.8). */
  downgradeAt?: number;
  limitPicos: Picos;
  spentPicos: Picos;
  reservedPicos: Picos;
}

/** The call's worst case, split so an output limit can be solved for. */
export interface CallWorstCase {
  modelId: string;
  /** Everything the call could cost: fixedPicos + maxOutputTokens × outputRatePicos. */
  worstCasePicos: Picos;
  /** The part that does not depend on the output limit (input at its dearest rate). */
  fixedPicos: Picos;
  /** Price of one output token. */
  outputRatePicos: Picos;
  maxOutputTokens: number;
}

/**
 * The smallest answer a clamped call may be lowered to. One token: Bedrock accepts a limit of 1 on
 * every provider, and any lower limit (0) is refused by Bedrock itself, so a cap with less room
 * than the input plus one output token refuses the call instead.
 */
export const MIN_CLAMPED_OUTPUT_TOKENS = 1;

export type CapDecision =
  /** Forward as asked; `warned`: warn caps this call takes past their limit. */
  | { kind: "go"; warned: string[] }
  /** Re-price the call as `to` and decide again with `downgraded` set. */
  | { kind: "downgrade"; capId: string; to: string }
  /** Lower the output limit to `toTokens` (from `fromTokens`), then forward. */
  | { kind: "clamp"; capId: string; fromTokens: number; toTokens: number; warned: string[] }
  /** Refuse: `capId` cannot admit the call (`clampImpossible`: a clamp cap without room for a minimal answer). */
  | { kind: "block"; capId: string; clampImpossible?: boolean };

const PPM = 1_000_000n;

/**
 * Decides in this order: a downgrade cap whose threshold the call reaches (once per call:
 * `downgraded` says it already was), then clamp caps the worst case does not fit, then every
 * `block` / `downgrade` cap against the (clamped) worst case, then warn caps.
 *
 * A downgrade cap applies when spent + reserved + this call's worst case ≥ downgradeAt × limit:
 * the call's own worst case counts, so one large call cannot jump from below the threshold to past
 * the limit on the dear model. Past its limit a downgrade cap still refuses (as `block`).
 */
export function decideCapActions(caps: readonly CapFigures[], call: CallWorstCase, downgraded = false): CapDecision {
  const committed = (c: CapFigures) => c.spentPicos + c.reservedPicos;
  if (!downgraded) {
    for (const c of caps) {
      if (c.action !== "downgrade" || c.downgradeTo === undefined || c.downgradeTo === call.modelId) continue;
      const at = BigInt(Math.round((c.downgradeAt ?? DEFAULT_DOWNGRADE_AT) * Number(PPM)));
      if ((committed(c) + call.worstCasePicos) * PPM >= c.limitPicos * at) return { kind: "downgrade", capId: c.id, to: c.downgradeTo };
    }
  }

  let tokens = call.maxOutputTokens;
  let binding: string | undefined;
  for (const c of caps) {
    if (c.action !== "clamp" || committed(c) + call.worstCasePicos <= c.limitPicos) continue;
    const room = c.limitPicos - committed(c) - call.fixedPicos;
    const fits = call.outputRatePicos > 0n ? room / call.outputRatePicos : -1n; // free output: only the input can be over
    if (room < 0n || fits < BigInt(MIN_CLAMPED_OUTPUT_TOKENS)) return { kind: "block", capId: c.id, clampImpossible: true };
    if (fits < BigInt(tokens)) {
      tokens = Number(fits);
      binding = c.id;
    }
  }
  const worst = binding === undefined ? call.worstCasePicos : call.fixedPicos + BigInt(tokens) * call.outputRatePicos;

  const over = (c: CapFigures) => committed(c) + worst > c.limitPicos;
  const refusing = caps.find((c) => c.action !== "warn" && over(c));
  if (refusing) return { kind: "block", capId: refusing.id };
  const warned = caps.filter((c) => c.action === "warn" && over(c)).map((c) => c.id);
  if (binding !== undefined) return { kind: "clamp", capId: binding, fromTokens: call.maxOutputTokens, toTokens: tokens, warned };
  return { kind: "go", warned };
}

/**
 * The figures of the caps that apply (`applicable` ids), from their status and their settings
 * (`caps` by id): the gateway's planning and the what-if decide on the same figures.
 */
export function capFiguresOf(
  statuses: readonly { id: string; limitPicos: Picos; spentPicos: Picos; reservedPicos: Picos }[],
  applicable: Iterable<string>,
  caps: ReadonlyMap<string, CapConfig>,
): CapFigures[] {
  const ids = new Set(applicable);
  return statuses
    .filter((s) => ids.has(s.id))
    .map((s): CapFigures => {
      const cap = caps.get(s.id);
      return {
        id: s.id,
        action: cap ? capAction(cap) : "block", // a cap the settings do not describe is a wall
        ...(cap?.downgradeTo !== undefined ? { downgradeTo: cap.downgradeTo } : {}),
        ...(cap?.downgradeAt !== undefined ? { downgradeAt: cap.downgradeAt } : {}),
        limitPicos: s.limitPicos,
        spentPicos: s.spentPicos,
        reservedPicos: s.reservedPicos,
      };
    });
}

/** An estimate split into what the output limit moves and what it does not. */
export function worstCaseOf(modelId: string, e: Estimate): CallWorstCase {
  return {
    modelId,
    worstCasePicos: e.worstCasePicos,
    fixedPicos: worstCaseCost(e.inputTokens, 0, e.rates, e.usesPromptCache),
    outputRatePicos: e.rates.output,
    maxOutputTokens: e.maxOutputTokens,
  };
}
