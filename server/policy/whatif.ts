/**
 * What-if (pure): replays settled calls of the journal, in the order they started, through a list
 * of policy steps built from a proposed configuration, and says what would have been refused and
 * what the period would have cost. The caps step runs the real BudgetEngine (the one cap
 * implementation); rate limits and cap actions plug in as further steps.
 */
import { windowBounds } from "../budget/windows";
import { BudgetEngine } from "../budget/engine";
import type { CapConfig } from "../config/schema";
import { picosToDecimalString, type Picos } from "../metering/money";
import type { CallRecord, Outcome, WhatIfResponse } from "../protocol";

/** A call as the steps see it: the journal's record; `amount` is what it reserves on start. */
export interface ReplayCall {
  record: CallRecord;
  amount: Picos;
}

/** A step's verdict on a call as it starts: let it through, or stop it (how, and by which rule). */
export type StepDecision =
  | { ok: true }
  | { ok: false; outcome: Extract<Outcome, "refused"> | "throttled" | "quota-exceeded"; by: string };

/**
 * One policy of the proposed configuration. `start` decides (and books) a call when it started;
 * `settle` books what an admitted call cost when it settled; `abandon` undoes `start` when a
 * later step stopped the call. Steps are synchronous and keep their own state.
 */
export interface PolicyStep {
  /** What the output says this step replays ("caps (action block)"). */
  readonly name: string;
  start(call: ReplayCall, now: Date): StepDecision;
  settle(call: ReplayCall, now: Date): void;
  abandon(call: ReplayCall): void;
}

/** Caps with action `block`, replayed through the gateway's own BudgetEngine. */
export function capsStep(caps: CapConfig[], timeZone: string): PolicyStep {
  const engine = new BudgetEngine(caps, timeZone);
  return {
    name: "caps (action block)",
    start(call, now) {
      const r = engine.reserve({ callId: call.record.id, modelId: call.record.modelId, baseModelId: call.record.baseModelId, amount: call.amount, now });
      return r.ok ? { ok: true } : { ok: false, outcome: "refused", by: r.refusal.capId };
    },
    settle(call, now) {
      engine.settle(call.record.id, BigInt(call.record.costPicos), now);
    },
    abandon(call) {
      engine.release(call.record.id);
    },
  };
}

export interface StoppedGroup {
  outcome: string;
  by: string;
  calls: number;
  savedPicos: Picos;
}

export interface WhatIfResult {
  /** Calls settled in the period that were replayed. */
  replayed: number;
  /** Calls the journal shows refused or throttled for real: never forwarded, so what they would have cost is unknown; not replayed. */
  notReplayed: number;
  actualPicos: Picos;
  wouldCostPicos: Picos;
  stopped: { calls: number; savedPicos: Picos; groups: StoppedGroup[] };
  /** The names of the steps replayed. */
  policies: string[];
}

/** Outcomes of calls that never reached Bedrock: the journal cannot say what they would have cost. */
const NEVER_FORWARDED = new Set<string>(["refused", "throttled", "quota-exceeded"]);

/**
 * Replays `history` (calls settled before the period, so windows that began earlier start with
 * their spend) and then `calls` (settled in the period) through `steps`, as the gateway would
 * have met them: events in time order, a call's start reserving its worst case (or its cost, if
 * it outgrew the estimate) and its settlement booking its cost; at one instant settlements first.
 * Only the period's calls are counted.
 */
export function whatIf(history: Iterable<CallRecord>, calls: Iterable<CallRecord>, steps: PolicyStep[]): WhatIfResult {
  type Event = { t: number; kind: 0 | 1; seq: number; call: ReplayCall; counted: boolean }; // kind 0: settle, 1: start
  const events: Event[] = [];
  let seq = 0;
  let notReplayed = 0;
  const push = (record: CallRecord, counted: boolean) => {
    if (NEVER_FORWARDED.has(record.outcome)) {
      if (counted) notReplayed++;
      return;
    }
    const cost = BigInt(record.costPicos);
    const worst = BigInt(record.worstCasePicos);
    const call = { record, amount: worst > cost ? worst : cost };
    const n = seq++;
    events.push({ t: Date.parse(record.startedAt), kind: 1, seq: n, call, counted });
    events.push({ t: Math.max(Date.parse(record.at), Date.parse(record.startedAt)), kind: 0, seq: n, call, counted });
  };
  for (const r of history) push(r, false);
  for (const r of calls) push(r, true);
  events.sort((a, b) => a.t - b.t || a.kind - b.kind || a.seq - b.seq);

  const admitted = new Set<ReplayCall>();
  const groups = new Map<string, StoppedGroup>();
  const result: WhatIfResult = { replayed: 0, notReplayed, actualPicos: 0n, wouldCostPicos: 0n, stopped: { calls: 0, savedPicos: 0n, groups: [] }, policies: steps.map((s) => s.name) };
  for (const e of events) {
    const now = new Date(e.t);
    const cost = BigInt(e.call.record.costPicos);
    if (e.kind === 0) {
      if (!admitted.delete(e.call)) continue;
      for (const s of steps) s.settle(e.call, now);
      if (e.counted) result.wouldCostPicos += cost;
      continue;
    }
    if (e.counted) {
      result.replayed++;
      result.actualPicos += cost;
    }
    const passed: PolicyStep[] = [];
    let stop: Extract<StepDecision, { ok: false }> | undefined;
    for (const s of steps) {
      const d = s.start(e.call, now);
      if (!d.ok) {
        stop = d;
        break;
      }
      passed.push(s);
    }
    if (!stop) {
      admitted.add(e.call);
      continue;
    }
    for (const s of passed) s.abandon(e.call);
    if (!e.counted) continue;
    result.stopped.calls++;
    result.stopped.savedPicos += cost;
    const key = `${stop.outcome}\u0000${stop.by}`;
    const g = groups.get(key) ?? { outcome: stop.outcome, by: stop.by, calls: 0, savedPicos: 0n };
    g.calls++;
    g.savedPicos += cost;
    groups.set(key, g);
  }
  result.stopped.groups = [...groups.values()].sort((a, b) => (b.savedPicos > a.savedPicos ? 1 : b.savedPicos < a.savedPicos ? -1 : a.by.localeCompare(b.by)));
  return result;
}

/** How far back the history must reach so every cap's window containing `from` starts with its spend. */
export function historyStart(caps: CapConfig[], timeZone: string, from: Date): Date {
  return caps.reduce((earliest, cap) => {
    const start = windowBounds(cap.window, timeZone, from).start;
    return start < earliest ? start : earliest;
  }, from);
}

/** What the what-if does not replay yet, said in every output so nobody reads more into it. */
export const NOT_REPLAYED = "rate limits and request quotas, and cap actions warn / downgrade / clamp (a cap is replayed as if its action were block)";

/** The result for people: counts, dollars, and by which rule, plus what was and was not replayed. */
export function formatWhatIf(r: WhatIfResponse, source: string): string {
  const plural = (n: number) => `${n} call${n === 1 ? "" : "s"}`;
  const lines = [
    `What-if for ${r.month} (${r.timeZone}), had the caps of ${source} been in force`,
    `Replayed: ${r.policies.join(", ")}. Not replayed: ${r.notReplayedPolicies}.`,
    `Calls replayed: ${r.replayed}${r.notReplayed ? ` (${r.notReplayed} refused or throttled in the journal were not: what they would have cost is unknown)` : ""}`,
    `Actual cost:      $${r.actualUsd}`,
    `Would be stopped: ${plural(r.stopped.calls)}, saving $${r.stopped.savedUsd}`,
    ...r.stopped.groups.map((g) => `  ${g.outcome} by cap ${g.by}: ${plural(g.calls)}, $${g.savedUsd}`),
    `Would have cost:  $${r.wouldCostUsd}`,
  ];
  return lines.join("\n") + "\n";
}

/** The result as JSON: money as exact decimal strings of USD. */
export function whatIfDto(r: WhatIfResult, month: string, timeZone: string): WhatIfResponse {
  return {
    month,
    timeZone,
    replayed: r.replayed,
    notReplayed: r.notReplayed,
    actualUsd: picosToDecimalString(r.actualPicos),
    wouldCostUsd: picosToDecimalString(r.wouldCostPicos),
    stopped: {
      calls: r.stopped.calls,
      savedUsd: picosToDecimalString(r.stopped.savedPicos),
      groups: r.stopped.groups.map((g) => ({ outcome: g.outcome, by: g.by, calls: g.calls, savedUsd: picosToDecimalString(g.savedPicos) })),
    },
    policies: r.policies,
    notReplayedPolicies: NOT_REPLAYED,
  };
}
