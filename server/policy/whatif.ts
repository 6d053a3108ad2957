/**
 * What-if (pure): replays settled calls of the journal, in the order they started, through a list
 * of policy steps built from a proposed configuration, and says what would have been refused,
 * throttled, downgraded, clamped or warned, and what the period would have cost. Each step is a policy run through the gateway's own pure
 * modules: the usage plans through the RateLimiter, the caps and their actions through
 * decideCapActions and the BudgetEngine.
 */
import { windowBounds } from "../budget/windows";
import { BudgetEngine } from "../budget/engine";
import { cappedModelId } from "../budget/replay";
import { stoppedAtGateway } from "../ledger/outcomes";
import { capAction, capId, type CapConfig, type Config } from "../config/schema";
import { downgradeProblem } from "../metering/bodyRewrite";
import { guardrailPartOfRecord } from "../metering/attachedGuardrail";
import { estimateFromParts, worstCaseCost } from "../metering/estimate";
import { picosToDecimalString, type Picos } from "../metering/money";
import { parseModelId } from "../metering/modelId";
import { costOf, type PriceBook } from "../metering/prices";
import type { ResolvedProfile } from "../metering/profiles";
import type { TokenUsage } from "../metering/types";
import type { CallRecord, Outcome, WhatIfResponse } from "../protocol";
import { capFiguresOf, decideCapActions, worstCaseOf, type CallWorstCase } from "./capActions";
import { rateLimitFor, tierOf } from "./plans";
import { planCaller, RateLimiter } from "./rateLimit";
import { CAPS, groupLabel, USAGE_PLANS, usdText } from "../shared/whatIfLabel";

/**
 * A call as the steps see it: the journal's record, and the call as the proposed policies would
 * send it (steps may change it: a downgrade re-prices it, a clamp cuts its answer).
 */
export interface ReplayCall {
  record: CallRecord;
  /** The model caps match it by: the one that answered it for real (replay.ts cappedModelId) until a step downgrades it. */
  modelId: string;
  baseModelId: string;
  /** What it reserves on start: its worst case, or its cost if it outgrew the estimate. */
  amount: Picos;
  /** What it costs when it settles. */
  cost: Picos;
}

/** What a step did to a call it let through (counted, the call still made). `savedPicos`: how much cheaper the step made it. */
export interface StepMark {
  outcome: "throttled" | "warned" | "downgraded" | "clamped";
  by: string;
  savedPicos: Picos;
}

/** A step's verdict on a call as it starts: let it through (perhaps changed, marked), or stop it (how, and by which rule). */
export type StepDecision =
  | { ok: true; marks?: StepMark[] }
  | { ok: false; outcome: Extract<Outcome, "refused" | "quota-exceeded">; by: string };

/**
 * One policy of the proposed configuration. `start` decides (and books) a call when it started,
 * and may change it (model, amount, cost); `settle` books what an admitted call cost when it
 * settled; `abandon` undoes `start` when a later step stopped the call. Steps are synchronous and
 * keep their own state.
 */
export interface PolicyStep {
  /** What the output calls this policy ("caps and their actions"). */
  readonly name: string;
  start(call: ReplayCall, now: Date): StepDecision;
  settle(call: ReplayCall, now: Date): void;
  abandon(call: ReplayCall): void;
}

/**
 * The usage plans, replayed through the gateway's own RateLimiter per caller (planCaller of the
 * journal's record; its tier from the proposed `callers`), the bucket driven by each call's start. A
 * throttled call is marked, not stopped: the SDK retries it after Retry-After, and it is assumed
 * to go through then. A call the caps stop still used its token and quota, as at the gateway.
 */
const QUOTAS = ["requestsPerDay", "requestsPerMonth"] as const;

export function usagePlanStep(config: Pick<Config, "rateLimit" | "tiers" | "callers">, timeZone: string): PolicyStep {
  const limiter = new RateLimiter();
  return {
    name: USAGE_PLANS,
    start(call, now) {
      const caller = call.record.caller;
      if (caller === undefined) return { ok: true }; // an old journal line: whose plan is unknown
      const tier = tierOf(config, call.record);
      const limit = rateLimitFor(config, tier);
      if (!limit) return { ok: true };
      const key = planCaller({ ...call.record, caller });
      const d = limiter.admit(key, limit, now, timeZone);
      if (d.ok) return { ok: true };
      const plan = tier === undefined ? "top-level rateLimit" : `tier "${tier}" rateLimit`;
      if (d.kind === "throttled") {
        // Assumed to go through when the SDK retries it: then it uses quota as any call does, and
        // once the quota is used up the retry is refused instead.
        const used = limiter.used(key, now, timeZone);
        const over = QUOTAS.find((q) => limit[q] !== undefined && (q === "requestsPerDay" ? used.day : used.month) >= limit[q]!);
        if (over) return { ok: false, outcome: "quota-exceeded", by: `${plan}.${over}` };
        limiter.count(key, now, timeZone);
        return { ok: true, marks: [{ outcome: "throttled", by: plan, savedPicos: 0n }] };
      }
      return { ok: false, outcome: "quota-exceeded", by: `${plan}.${d.quota}` };
    },
    settle() {},
    abandon() {},
  };
}

/**
 * Caps (tier caps expanded, capsInForce) with their actions, as the gateway plans a call
 * (gateway/capPlan.ts): the one decision (decideCapActions) on the figures of the caps that
 * apply (the one capMatch rule over the call's model, caller, user and tags), then the real
 * BudgetEngine's reservation. A downgrade re-prices the call's recorded usage at the cheaper
 * model's rates; a clamp cuts its output tokens to the clamped limit; both with the one price book.
 */
export function capsStep(caps: CapConfig[], timeZone: string, prices: PriceBook): PolicyStep {
  const engine = new BudgetEngine(caps, timeZone);
  const byId = new Map(caps.map((c) => [capId(c), c]));
  const actions = caps.some((c) => capAction(c) !== "block");
  const subject = (call: ReplayCall) => ({ ...call.record, modelId: call.modelId, baseModelId: call.baseModelId });
  const decide = (call: ReplayCall, worst: CallWorstCase, now: Date, downgraded: boolean) =>
    decideCapActions(capFiguresOf(engine.status(now), engine.applicableCaps(subject(call)), byId), worst, downgraded);
  return {
    name: CAPS,
    start(call, now) {
      const marks: StepMark[] = [];
      if (actions) {
        const usage = call.record.usage;
        let worst = worstCaseOfRecord(call, prices);
        call.amount = worst.worstCasePicos; // the reservation holds what the decision weighed
        let d = decide(call, worst, now, false);
        if (d.kind === "downgrade") {
          const before = call.cost;
          const parts = { modelId: d.to, inputTokens: inputTokensOf(usage), maxOutputTokens: worst.maxOutputTokens, usesPromptCache: usesCache(usage) };
          let estimate = estimateFromParts(parts, prices);
          // As at the gateway (capPlan.ts): an output limit above what the answering model can write is lowered to its maximum.
          if (estimate.rates.known && parts.maxOutputTokens > estimate.rates.maxOutputTokens) estimate = estimateFromParts({ ...parts, maxOutputTokens: estimate.rates.maxOutputTokens }, prices);
          // As at the gateway (capPlan.ts): an InvokeModel body another provider's model cannot read
          // is refused, not downgraded. An application inference profile's model is looked up live
          // and not known here: left to the approximation.
          const op = call.record.operation;
          if ((op === "InvokeModel" || op === "InvokeModelWithResponseStream") && parseModelId(d.to).arnKind !== "application-inference-profile" &&
            downgradeProblem(op, { modelId: call.modelId, baseModelId: call.baseModelId }, { modelId: d.to, baseModelId: estimate.rates.baseModelId })) {
            return { ok: false, outcome: "refused", by: d.capId };
          }
          // A guardrail attached to the call evaluates the same text whichever model answers: its part stays.
          const guard = guardrailPartOfRecord(call.record);
          Object.assign(call, { modelId: d.to, baseModelId: estimate.rates.baseModelId, cost: costOf(usage, estimate.rates) + (guard?.costPicos ?? 0n) });
          worst = withGuardrailWorstCase(worstCaseOf(d.to, estimate), guard?.worstCasePicos ?? 0n);
          call.amount = max(worst.worstCasePicos, call.cost);
          marks.push({ outcome: "downgraded", by: d.capId, savedPicos: before - call.cost });
          d = decide(call, worst, now, true);
        }
        if (d.kind === "clamp") {
          const before = call.cost;
          // The tokens cut off the answer, at the answering model's output rate, come off its cost.
          const cut = Math.max(0, usage.outputTokens - d.toTokens);
          call.cost = max(0n, call.cost - BigInt(cut) * worst.outputRatePicos);
          call.amount = max(worst.fixedPicos + BigInt(d.toTokens) * worst.outputRatePicos, call.cost);
          marks.push({ outcome: "clamped", by: d.capId, savedPicos: before - call.cost });
        }
        if (d.kind === "go" || d.kind === "clamp") for (const id of d.warned) marks.push({ outcome: "warned", by: id, savedPicos: 0n });
      }
      // The reservation checks every cap, as at the gateway: a plan that no longer fits is refused here.
      const r = engine.reserve({ callId: call.record.id, ...subject(call), amount: call.amount, now });
      return r.ok ? { ok: true, marks } : { ok: false, outcome: "refused", by: r.refusal.capId };
    },
    settle(call, now) {
      engine.settle(call.record.id, call.cost, now);
    },
    abandon(call) {
      engine.release(call.record.id);
    },
  };
}

/** A call's worst case with an attached guardrail's on top, as a part the output limit does not change. */
function withGuardrailWorstCase(worst: CallWorstCase, guardPicos: Picos): CallWorstCase {
  return guardPicos === 0n ? worst : { ...worst, worstCasePicos: worst.worstCasePicos + guardPicos, fixedPicos: worst.fixedPicos + guardPicos };
}

const max = (a: Picos, b: Picos) => (a > b ? a : b);
const min = (a: Picos, b: Picos) => (a < b ? a : b);
const inputTokensOf = (u: TokenUsage) => u.inputTokens + u.cacheReadInputTokens + u.cacheWrite5mInputTokens + u.cacheWrite1hInputTokens;
const usesCache = (u: TokenUsage) => u.cacheWrite5mInputTokens + u.cacheWrite1hInputTokens > 0;

/**
 * A journaled call's worst case, split as the cap actions need it: the journal keeps the worst case
 * but not the request, so the input is taken as used and the output limit is what the recorded
 * worst case leaves after it, at the price book's rates (at least the tokens the answer used).
 * An id that names no model (an application inference profile's ARN) is priced as the model the
 * journal recorded behind it, as the gateway priced it. A worst case rebuilt from rates the
 * journal does not pin down (the dearest rate of an unknown model, or the record's model with the
 * profile's routing unknown) never weighs more than the one the gateway reserved for real.
 */
export function worstCaseOfRecord(call: Pick<ReplayCall, "record" | "modelId" | "amount">, prices: PriceBook): CallWorstCase {
  const usage = call.record.usage;
  const behind = modelBehind(call);
  const rates = prices.rates(call.modelId, { inputTokens: inputTokensOf(usage), ...behind });
  // An attached guardrail's worst case is part of the recorded one: counted as fixed (a clamp does
  // not lower it here, which errs high), not read as output tokens the model could have written.
  const fixed = worstCaseCost(inputTokensOf(usage), 0, rates, usesCache(usage)) + (guardrailPartOfRecord(call.record)?.worstCasePicos ?? 0n);
  const left = call.amount - fixed;
  const fromWorst = rates.output > 0n && left > 0n ? Number(left / rates.output) : 0;
  const maxOutputTokens = Math.max(usage.outputTokens, fromWorst);
  const rebuilt = fixed + BigInt(maxOutputTokens) * rates.output;
  const guessed = !rates.known || behind.profile !== undefined || behind.invokedModelId !== undefined;
  return {
    modelId: call.modelId,
    worstCasePicos: guessed ? call.amount : max(call.amount, rebuilt),
    fixedPicos: guessed ? min(fixed, call.amount) : fixed,
    outputRatePicos: rates.output,
    maxOutputTokens,
  };
}

/**
 * What stands behind an id that names no model, from the journal: the gateway recorded the model
 * it priced the call as (`baseModelId`). For an application inference profile that is the looked-up
 * model (its routing is not journaled: priced in-region, the dearer kind); for another opaque id
 * (a prompt router) the model that answered.
 */
function modelBehind(call: Pick<ReplayCall, "record" | "modelId">): { profile?: ResolvedProfile; invokedModelId?: string } {
  const parsed = parseModelId(call.modelId);
  if (parsed.baseModelId !== undefined) return {};
  const base = parseModelId(call.record.baseModelId).baseModelId;
  if (base === undefined) return {};
  if (parsed.arnKind === "application-inference-profile") {
    return { profile: { baseModelId: base, profile: "none", modelArns: [], resolvedAt: call.record.startedAt } };
  }
  return { invokedModelId: call.record.baseModelId };
}

/** Calls a policy stopped or changed, grouped by policy, outcome and the rule (cap id, plan). */
export interface WhatIfGroup {
  policy: string;
  outcome: string;
  by: string;
  calls: number;
  savedPicos: Picos;
}

export interface WhatIfTally {
  calls: number;
  savedPicos: Picos;
  groups: WhatIfGroup[];
}

export interface WhatIfResult {
  /** Calls settled in the period that were replayed. */
  replayed: number;
  /** Calls the journal shows refused, throttled or quota-refused for real: never forwarded, so what they would have cost is unknown; not replayed. */
  notReplayed: number;
  actualPicos: Picos;
  wouldCostPicos: Picos;
  /** Calls that would not have been made (refused by a cap, over a quota); saved: what they cost. */
  stopped: WhatIfTally;
  /** Calls made but throttled, warned, downgraded or clamped; saved: how much cheaper they would have been. */
  changed: WhatIfTally;
  /** Per policy: calls it stopped, calls it changed, and the dollars it saved. */
  policies: { name: string; stopped: number; changed: number; savedPicos: Picos }[];
}

/**
 * Replays `history` (calls settled before the period, so windows that began earlier start with
 * their spend) and then `calls` (settled in the period) through `steps`, as the gateway would
 * have met them: events in time order, a call's start reserving its worst case (or its cost, if
 * it outgrew the estimate) and its settlement booking its cost (as the steps changed it); at one
 * instant settlements first. Only the period's calls are counted.
 */
export function whatIf(history: Iterable<CallRecord>, calls: Iterable<CallRecord>, steps: PolicyStep[]): WhatIfResult {
  type Event = { t: number; kind: 0 | 1; seq: number; call: ReplayCall; counted: boolean }; // kind 0: settle, 1: start
  const events: Event[] = [];
  let seq = 0;
  let notReplayed = 0;
  const push = (record: CallRecord, counted: boolean) => {
    if (stoppedAtGateway(record.outcome)) {
      if (counted) notReplayed++;
      return;
    }
    const cost = BigInt(record.costPicos);
    const worst = BigInt(record.worstCasePicos);
    const call: ReplayCall = { record, modelId: cappedModelId(record), baseModelId: record.baseModelId, amount: max(worst, cost), cost };
    const n = seq++;
    events.push({ t: Date.parse(record.startedAt), kind: 1, seq: n, call, counted });
    events.push({ t: Math.max(Date.parse(record.at), Date.parse(record.startedAt)), kind: 0, seq: n, call, counted });
  };
  for (const r of history) push(r, false);
  for (const r of calls) push(r, true);
  events.sort((a, b) => a.t - b.t || a.kind - b.kind || a.seq - b.seq);

  const admitted = new Set<ReplayCall>();
  const stopped = new Map<string, WhatIfGroup>();
  const changed = new Map<string, WhatIfGroup>();
  const perPolicy = new Map(steps.map((s) => [s.name, { name: s.name, stopped: 0, changed: 0, savedPicos: 0n }]));
  const result: WhatIfResult = {
    replayed: 0, notReplayed, actualPicos: 0n, wouldCostPicos: 0n,
    stopped: { calls: 0, savedPicos: 0n, groups: [] }, changed: { calls: 0, savedPicos: 0n, groups: [] }, policies: [],
  };
  const tally = (groups: Map<string, WhatIfGroup>, policy: string, outcome: string, by: string, saved: Picos) => {
    const key = `${policy}\u0000${outcome}\u0000${by}`;
    const g = groups.get(key) ?? { policy, outcome, by, calls: 0, savedPicos: 0n };
    g.calls++;
    g.savedPicos += saved;
    groups.set(key, g);
  };
  for (const e of events) {
    const now = new Date(e.t);
    if (e.kind === 0) {
      if (!admitted.delete(e.call)) continue;
      for (const s of steps) s.settle(e.call, now);
      if (e.counted) result.wouldCostPicos += e.call.cost;
      continue;
    }
    const actual = e.call.cost; // before any step changes it
    if (e.counted) {
      result.replayed++;
      result.actualPicos += actual;
    }
    const passed: { step: PolicyStep; marks: StepMark[] }[] = [];
    let stop: Extract<StepDecision, { ok: false }> | undefined;
    let stoppedBy: PolicyStep | undefined;
    for (const s of steps) {
      const d = s.start(e.call, now);
      if (!d.ok) {
        stop = d;
        stoppedBy = s;
        break;
      }
      passed.push({ step: s, marks: d.marks ?? [] });
    }
    if (!stop || !stoppedBy) {
      admitted.add(e.call);
      if (!e.counted) continue;
      const marked = passed.filter((p) => p.marks.length > 0);
      if (marked.length > 0) result.changed.calls++;
      for (const { step, marks } of marked) {
        const policy = perPolicy.get(step.name)!;
        policy.changed++;
        for (const m of marks) {
          tally(changed, step.name, m.outcome, m.by, m.savedPicos);
          policy.savedPicos += m.savedPicos;
          result.changed.savedPicos += m.savedPicos;
        }
      }
      continue;
    }
    for (const p of passed) p.step.abandon(e.call);
    if (!e.counted) continue;
    result.stopped.calls++;
    result.stopped.savedPicos += actual;
    const policy = perPolicy.get(stoppedBy.name)!;
    policy.stopped++;
    policy.savedPicos += actual;
    tally(stopped, stoppedBy.name, stop.outcome, stop.by, actual);
  }
  const order = (a: WhatIfGroup, b: WhatIfGroup) => (b.savedPicos > a.savedPicos ? 1 : b.savedPicos < a.savedPicos ? -1 : b.calls - a.calls || a.by.localeCompare(b.by));
  result.stopped.groups = [...stopped.values()].sort(order);
  result.changed.groups = [...changed.values()].sort(order);
  result.policies = [...perPolicy.values()];
  return result;
}

/** How far back the history must reach so every cap's window containing `from` starts with its spend. */
export function historyStart(caps: CapConfig[], timeZone: string, from: Date): Date {
  return caps.reduce((earliest, cap) => {
    const start = windowBounds(cap.window, timeZone, from).start;
    return start < earliest ? start : earliest;
  }, from);
}

/** What the what-if can only approximate, said in every output so nobody reads more into it. */
export const APPROXIMATIONS: readonly string[] = [
  "a throttled call is counted, not stopped: the SDK retries it after Retry-After, and it is assumed to go through then at the same cost, using quota (refused once the quota is used up; the delay and the retry's token are not replayed)",
  "a downgraded call's usage is assumed the same on the cheaper model, re-priced at its rates",
  "a downgrade the gateway refuses for what the request asks (thinking, sampling, tools, images, documents, model-specific fields the cheaper model does not take) is replayed as made: the journal keeps no request to tell",
  "a clamped call's answer is assumed cut at the clamped output limit",
  "the journal keeps no request: worst cases are rebuilt from the input used and the recorded worst case, at the price book's rates in the default region",
  "a call downgraded for real is replayed as the model that answered it",
  "calls refused, throttled or over a quota for real are not replayed (what they would have cost is unknown)",
  "team caps count this ledger's calls only (other machines' spend is not in this journal)",
];

const plural = (n: number) => `${n} call${n === 1 ? "" : "s"}`;

/** The result for people: counts and dollars per rule and per policy, and what is approximate. */
export function formatWhatIf(r: WhatIfResponse, source: string): string {
  const lines = [
    `What-if for ${r.month} (${r.timeZone}), had the policies of ${source} been in force`,
    `Replayed: ${r.policies.map((p) => p.name).join(", ")}.`,
    `Calls replayed: ${r.replayed}${r.notReplayed ? ` (${r.notReplayed} refused or throttled in the journal were not: what they would have cost is unknown)` : ""}`,
    `Actual cost:      ${usdText(r.actualUsd)}`,
    `Would be stopped: ${plural(r.stopped.calls)}, saving ${usdText(r.stopped.savedUsd)}`,
    ...r.stopped.groups.map((g) => `  ${groupLabel(g)}: ${plural(g.calls)}, ${usdText(g.savedUsd)}`),
    `Would be changed: ${plural(r.changed.calls)}, saving ${usdText(r.changed.savedUsd)}`,
    ...r.changed.groups.map((g) => `  ${groupLabel(g)}: ${plural(g.calls)}, ${usdText(g.savedUsd)}`),
    `Would have cost:  ${usdText(r.wouldCostUsd)}`,
    `Per policy:`,
    ...r.policies.map((p) => `  ${p.name}: ${p.stoppedCalls} stopped, ${p.changedCalls} changed, ${usdText(p.savedUsd)} saved`),
    `Approximate: ${r.approximations.join("; ")}.`,
  ];
  return lines.join("\n") + "\n";
}

/** The result as JSON: money as exact decimal strings of USD. */
export function whatIfDto(r: WhatIfResult, month: string, timeZone: string): WhatIfResponse {
  const tally = (t: WhatIfTally) => ({
    calls: t.calls,
    savedUsd: picosToDecimalString(t.savedPicos),
    groups: t.groups.map((g) => ({ policy: g.policy, outcome: g.outcome, by: g.by, calls: g.calls, savedUsd: picosToDecimalString(g.savedPicos) })),
  });
  return {
    month,
    timeZone,
    replayed: r.replayed,
    notReplayed: r.notReplayed,
    actualUsd: picosToDecimalString(r.actualPicos),
    wouldCostUsd: picosToDecimalString(r.wouldCostPicos),
    stopped: tally(r.stopped),
    changed: tally(r.changed),
    policies: r.policies.map((p) => ({ name: p.name, stoppedCalls: p.stopped, changedCalls: p.changed, savedUsd: picosToDecimalString(p.savedPicos) })),
    approximations: [...APPROXIMATIONS],
  };
}
