/**
 * One admitted call's money: the reservation it holds, and its settlement, which happens exactly
 * once, is made durable in the journal, and only then is released in the engine and published.
 */
import type { CapHold } from "../budget/caps";
import type { CallRecord, Outcome } from "../ledger/types";
import type { CapActionTaken } from "../protocol";
import { formatUsd, type Picos } from "../metering/money";
import { costOf, type PriceBook } from "../metering/prices";
import type { Estimate } from "../metering/estimate";
import { attachedGuardrailCharge, guardrailPart, worstCaseGuardrailCharge, type GuardrailCharge } from "../metering/attachedGuardrail";
import { ZERO_USAGE, type AppliedTier, type MeteredOperation, type Operation, type Rates, type TokenUsage } from "../metering/types";
import type { CallScope } from "./callScope";
import type { GatewayContext } from "./context";

export interface CallIdentity {
  id: string;
  operation: MeteredOperation | "ApplyGuardrail";
  modelId: string;
  tool: string;
  tags: Record<string, string>;
  startedAt: Date;
  /** The model that answers when a cap downgraded the call: it is priced, reserved and capped as this one. */
  answeredBy?: string;
  /** What caps' actions did to the call (journaled with it). */
  actions?: CapActionTaken[];
  /** Who made the call (CallRecord.caller) and the `callers` profile that verified it. */
  caller?: string;
  callerProfile?: string;
}

/** The model a call is priced and capped as: the one that answered. */
export function answeringModel(who: Pick<CallIdentity, "modelId" | "answeredBy">): string {
  return who.answeredBy ?? who.modelId;
}

export type Admission = { ok: true; call: MeteredCall } | { ok: false; message: string; capId: string };

/**
 * Reserves the call's worst case on every cap that applies (ctx.caps: personal and team, all or
 * nothing), then journals the reservation; a refused call is journaled and never forwarded.
 */
/** `scope`, when the gateway opened one for this request: it can stop and settle the call at shutdown. */
export async function admit(ctx: GatewayContext, who: CallIdentity, estimate: Estimate, scope?: CallScope): Promise<Admission> {
  const refuse = async (message: string, capId: string): Promise<Admission> => {
    await journalRefusal(ctx, who, estimate, capId, message);
    return { ok: false, message, capId };
  };
  const held = await ctx.caps.reserve({
    callId: who.id, modelId: answeringModel(who), baseModelId: estimate.rates.baseModelId, amount: estimate.worstCasePicos, now: who.startedAt,
    ...callerOf(who), user: ctx.user, tags: who.tags,
  });
  if (!held.ok) return refuse(held.message + guardrailShare(estimate), held.capId);
  const hold: CapHold = { capIds: held.capIds, ...(held.team ? { team: held.team } : {}) };
  try {
    // Durable before the request leaves: a crash from here on is charged at the worst case on restart,
    // as a call that started at `at`: the instant the caps reserved it at, so the charge lands in
    // the window it was checked against (admission may come seconds later, past a window's end).
    await ctx.ledger.reserve({
      type: "reserve", id: who.id, at: who.startedAt.toISOString(), user: ctx.user, tool: who.tool, operation: who.operation,
      modelId: answeringModel(who), baseModelId: estimate.rates.baseModelId, worstCasePicos: String(estimate.worstCasePicos), capIds: hold.capIds,
      ...callerOf(who), tags: who.tags,
    });
  } catch (err) {
    ctx.caps.release(who.id, hold);
    throw err;
  }
  return { ok: true, call: new MeteredCall(ctx, who, estimate, hold, scope) };
}

/**
 * What of a refused call's worst case is its attached guardrail's, so that a call the model alone
 * would fit is not refused with a figure the caller cannot account for ("" without one).
 */
function guardrailShare(estimate: Estimate): string {
  const guard = estimate.guardrail;
  if (!guard) return "";
  return ` Of that, ${formatUsd(guard.worstCasePicos)} is the worst case of the attached guardrail ${guard.id} (${guard.inputUnits} input + ${guard.maxOutputUnits} output text units on every policy priced in guardrailPricing): a lower output limit lowers it.`;
}

/** Journals a call a cap refused (never forwarded, nothing charged) and publishes it. */
export async function journalRefusal(ctx: GatewayContext, who: CallIdentity, estimate: Estimate, capId: string, message: string): Promise<void> {
  const entry = record(ctx, who, pricedOf(estimate), {
    outcome: "refused", usage: { ...ZERO_USAGE }, usageEstimated: false, cost: 0n, status: 400, refusedBy: capId, message,
  });
  await ctx.ledger.settle(entry);
  ctx.publish(entry); // the editor's alerts and the dashboard hear of refusals too
}

export interface Settlement {
  outcome: Outcome;
  usage: TokenUsage;
  usageEstimated: boolean;
  status: number;
  tier?: AppliedTier;
  requestId?: string;
  message?: string;
}

export class MeteredCall {
  private reserved: Picos;
  /** The reservation the journal holds for this call (what a crash would charge). */
  private journaled: Picos;
  /** The journaling of a grown reservation under way; it writes the latest amount before it ends. */
  private raising: Promise<void> | undefined;
  private settled = false;
  /** Set when the team store refused a growth that was let through meanwhile: the next frame is cut. */
  private teamRefusal: string | undefined;
  /** What the attached guardrail (if priced) evaluated, as the answer showed it: its trace and the answer's text. */
  private guardrailSeen: () => { trace: unknown; outputChars: number } = () => ({ trace: undefined, outputChars: 0 });
  /** The last rates ratesFor looked up, and what they were looked up for. */
  private lastRates: { prices: PriceBook; inputTokens: number; serviceTier: string | undefined; latency: string | undefined; invokedModelId: string | undefined; rates: Rates } | undefined;

  constructor(
    private readonly ctx: GatewayContext,
    readonly who: CallIdentity,
    readonly estimate: Estimate,
    /** The caps and team store this call holds its reservation on. */
    private readonly hold: CapHold,
    /** The request's scope: a gateway that must stop settles the call through it. */
    readonly scope?: CallScope,
  ) {
    this.reserved = estimate.worstCasePicos;
    this.journaled = estimate.worstCasePicos;
    scope?.adopt(this);
  }

  /** What this usage costs at the rates that applied (tier, long context). */
  costOf(usage: TokenUsage, tier?: AppliedTier): Picos {
    const inputTokens = usage.inputTokens + usage.cacheReadInputTokens + usage.cacheWrite5mInputTokens + usage.cacheWrite1hInputTokens;
    return costOf(usage, this.ratesFor(inputTokens, tier));
  }

  /**
   * The rates for this call at a tier and input size. A stream prices every frame, almost always
   * at the same tier and input: the last look-up is kept (the price book never changes in place,
   * and the model and scope are the call's own), so a frame does not build a rate query and key.
   */
  private ratesFor(inputTokens: number, tier: AppliedTier | undefined): Rates {
    const last = this.lastRates;
    const prices = this.ctx.prices;
    if (last && last.prices === prices && last.inputTokens === inputTokens && last.serviceTier === tier?.serviceTier && last.latency === tier?.latency && last.invokedModelId === tier?.invokedModelId) {
      return last.rates;
    }
    const rates = prices.rates(answeringModel(this.who), { ...tier, ...this.estimate.scope, inputTokens });
    this.lastRates = { prices, inputTokens, serviceTier: tier?.serviceTier, latency: tier?.latency, invokedModelId: tier?.invokedModelId, rates };
    return rates;
  }

  /**
   * What a stream holds while it runs: the model's running cost plus the attached guardrail's whole
   * worst case, which stays reserved until the call settles (its units are reported at the end).
   */
  runningCost(usage: TokenUsage, tier?: AppliedTier): Picos {
    return this.costOf(usage, tier) + (this.estimate.guardrail?.worstCasePicos ?? 0n);
  }

  /** Where settlement reads what the attached guardrail evaluated: the answer's guardrail trace and its text's length. */
  watchGuardrail(seen: () => { trace: unknown; outputChars: number }): void {
    this.guardrailSeen = seen;
  }

  /** The attached guardrail's part of the settled cost, when one is priced. */
  private guardrailCharge(): GuardrailCharge | undefined {
    const guard = this.estimate.guardrail;
    if (!guard) return undefined;
    const seen = this.guardrailSeen();
    return attachedGuardrailCharge(guard, seen.trace, seen.outputChars);
  }

  /** Usage assumed when nothing better is known: the estimate's worst case. */
  worstCaseUsage(): TokenUsage {
    return { ...ZERO_USAGE, inputTokens: this.estimate.inputTokens, outputTokens: this.estimate.maxOutputTokens };
  }

  /** A stream outgrew its reservation: reserve the difference or report the cap that refuses it. */
  grow(runningCost: Picos): { ok: true } | { ok: false; message: string } {
    if (this.teamRefusal) return { ok: false, message: this.teamRefusal };
    if (runningCost <= this.reserved) return { ok: true };
    const extra = runningCost - this.reserved;
    // The team store answers asynchronously: a refusal there cuts the stream at its next frame.
    const result = this.ctx.caps.grow(this.who.id, this.hold, extra, this.ctx.now(), (message) => (this.teamRefusal = message));
    if (!result.ok) return result;
    this.reserved = runningCost;
    this.journalGrowth();
    return { ok: true };
  }

  /**
   * Journals the grown reservation in the background (the frame is not held for the disk): one
   * write at a time, each of the latest amount, so a crash charges what was held up to the last
   * frames. Stops once the call settles: its settle line is the last word.
   */
  private journalGrowth(): void {
    if (this.raising) return; // the write under way is followed by one of the latest amount
    this.raising = (async () => {
      while (!this.settled && this.reserved > this.journaled) {
        const amount = this.reserved;
        try {
          await this.ctx.ledger.raiseReservation(this.who.id, amount);
        } catch (err) {
          this.ctx.logRepeat("warn", "grown-reservation", `call ${this.who.id}: its grown reservation could not be journaled (${(err as Error).message}); a crash now would charge the last amount journaled`);
          return;
        }
        this.journaled = amount;
      }
    })().finally(() => (this.raising = undefined));
  }

  /**
   * Journals the call, then settles it in the engine. If the journal cannot be written now (a full
   * disk) the reservation stays held, counted against the caps, and the ledger writes the record
   * as soon as the journal recovers, settling it then; a gateway that stops first leaves the
   * durable reserve entry, charged at the worst case on the next start.
   * The cost is the usage at its rates whatever the outcome: Bedrock bills what a failed stream
   * generated. Only callers that know nothing was generated (an error status before any token)
   * pass a cost of 0. `guardrailCharged`: with a cost given outright, what of it is the attached
   * guardrail's (the record keeps that part apart).
   */
  async settle(s: Settlement, costOverride?: Picos, guardrailCharged?: Omit<GuardrailCharge, "note">): Promise<CallRecord | undefined> {
    if (this.settled) return undefined;
    // Computed before the call counts as settled: if pricing throws, a later settle can still book it.
    // An attached guardrail's part is added to the model's (a cost given outright already holds it,
    // or is 0 for a call Bedrock never ran), and said in the record's message.
    const guardrail = costOverride === undefined ? this.guardrailCharge() : undefined;
    const cost = costOverride ?? this.costOf(s.usage, s.tier) + (guardrail?.picos ?? 0n);
    const priceNote = lookupFailure(this.estimate);
    const message = [s.message ?? priceNote, guardrail?.note].filter((m) => m !== undefined).join("; ");
    const entry = record(this.ctx, this.who, pricedOf(this.estimate), { ...s, ...(message ? { message } : {}), cost });
    // The guardrail's part, apart: the CSV export, reconcile and the what-if read it.
    const charged = guardrail ?? guardrailCharged;
    if (this.estimate.guardrail && charged) entry.guardrail = guardrailPart(this.estimate.guardrail, charged);
    this.settled = true;
    const settleInEngine = (written: CallRecord) => {
      // Every settled call goes to the team store too (also those admitted while it was unreachable).
      this.ctx.caps.settle(written, this.hold);
      this.ctx.publish(written);
    };
    try {
      await this.ctx.ledger.settleReserved(entry, (written) => {
        try {
          settleInEngine(written);
          this.ctx.log.info(`call ${this.who.id} journaled once the ledger could be written again`);
        } catch (err) {
          this.ctx.log.error(`call ${this.who.id} was journaled late but not released: ${(err as Error).message}`);
        }
      });
    } catch (err) {
      this.ctx.log.error(`could not journal call ${this.who.id}: ${(err as Error).message}; its reservation stays held until the journal can be written`);
      return undefined;
    }
    settleInEngine(entry);
    return entry;
  }

  /** Conservative settlement when Bedrock may have charged but reported nothing. */
  /** `tier`: the tier the answer says applied, so that what was seen is priced as billed. */
  settleAtWorstCase(outcome: Outcome, status: number, message: string, atLeast?: TokenUsage, tier?: AppliedTier): Promise<CallRecord | undefined> {
    // What Bedrock may have billed at most: the input as far as it is known (a stream's first event
    // reports it; until then the estimate's), and the whole output allowance, or more if more was
    // seen. Never less than what was reserved.
    const usage = atLeast ? { ...atLeast, outputTokens: Math.max(atLeast.outputTokens, this.estimate.maxOutputTokens) } : this.worstCaseUsage();
    // An attached guardrail at its worst case too, or at what it reported if that is more.
    const guard = this.estimate.guardrail;
    const seen = guard ? this.guardrailCharge() : undefined;
    const guardPart = guard ? (seen && !seen.estimated && seen.picos > guard.worstCasePicos ? seen.picos : guard.worstCasePicos) : 0n;
    const atMost = this.costOf(usage, tier) + guardPart;
    const cost = atMost > this.estimate.worstCasePicos ? atMost : this.estimate.worstCasePicos;
    const guardNote = !guard ? "" : guardPart === guard.worstCasePicos
      ? `; guardrail ${guard.id}: charged its worst case, ${formatUsd(guardPart)} (${guard.inputUnits} input + ${guard.maxOutputUnits} output text units on every priced policy)`
      : `; ${seen!.note}`;
    const guardCharged = !guard ? undefined : guardPart === guard.worstCasePicos ? worstCaseGuardrailCharge(guard) : seen!;
    return this.settle({ outcome, usage, usageEstimated: true, status, message: message + guardNote }, cost, guardCharged);
  }
}

/**
 * Journals a call a usage plan stopped before anything else (throttled, over a quota: never
 * forwarded, $0) and publishes it like a refusal.
 */
export async function recordPlanRefusal(
  ctx: GatewayContext,
  who: Omit<CallIdentity, "operation"> & { operation: Operation },
  baseModelId: string,
  s: { outcome: "throttled" | "quota-exceeded"; status: number; message: string },
): Promise<void> {
  const entry = record(ctx, who, { baseModelId, worstCasePicos: 0n }, { ...s, usage: { ...ZERO_USAGE }, usageEstimated: false, cost: 0n });
  await ctx.ledger.settle(entry);
  ctx.publish(entry);
}

/** The caller fields of a record, only those known. */
export function callerOf(who: Pick<CallIdentity, "caller" | "callerProfile">): { caller?: string; callerProfile?: string } {
  // Assigned, not spread from conditional objects: this runs twice per call, and spreads cost more.
  const out: { caller?: string; callerProfile?: string } = {};
  if (who.caller !== undefined) out.caller = who.caller;
  if (who.callerProfile !== undefined) out.callerProfile = who.callerProfile;
  return out;
}

/**
 * Journals a call that costs nothing (CountTokens; ApplyGuardrail, billed per text unit, which
 * the gateway does not price) before the caller sees its answer, and publishes it.
 */
export async function recordFreeCall(
  ctx: GatewayContext,
  who: Omit<CallIdentity, "operation"> & { operation: Operation },
  baseModelId: string,
  s: Pick<Settlement, "status" | "requestId" | "message">,
): Promise<void> {
  const entry = record(ctx, who, { baseModelId, worstCasePicos: 0n }, {
    ...s, outcome: s.status < 400 ? "ok" : "upstream-error", usage: { ...ZERO_USAGE }, usageEstimated: false, cost: 0n,
  });
  await ctx.ledger.settle(entry);
  ctx.publish(entry);
}

function record(
  ctx: GatewayContext,
  who: Omit<CallIdentity, "operation"> & { operation: Operation },
  priced: { baseModelId: string; worstCasePicos: Picos },
  s: Settlement & { cost: Picos; refusedBy?: string },
): CallRecord {
  const now = ctx.now();
  // Optional fields are assigned rather than spread from conditional objects: this runs once per call.
  const entry: CallRecord = {
    type: "settle",
    id: who.id,
    at: now.toISOString(),
    startedAt: who.startedAt.toISOString(),
    user: ctx.user,
    tool: who.tool,
    operation: who.operation,
    modelId: who.modelId,
    baseModelId: priced.baseModelId,
    usage: s.usage,
    usageEstimated: s.usageEstimated,
    costPicos: String(s.cost),
    worstCasePicos: String(priced.worstCasePicos),
    outcome: s.outcome,
    status: s.status,
    latencyMs: now.getTime() - who.startedAt.getTime(),
    tags: who.tags,
  };
  if (s.refusedBy) entry.refusedBy = s.refusedBy;
  if (s.requestId) entry.requestId = s.requestId;
  Object.assign(entry, callerOf(who));
  if (s.tier?.serviceTier) entry.serviceTier = s.tier.serviceTier;
  if (s.message) entry.message = s.message.slice(0, 500);
  // A refused call was answered by no model; its downgrade still shows in `actions`.
  if ("answeredBy" in who && who.answeredBy !== undefined && s.outcome !== "refused") entry.answeredBy = who.answeredBy;
  if ("actions" in who && who.actions?.length) entry.actions = who.actions;
  return entry;
}

/** A failed application-profile lookup, said in the call's record (the dashboard and the log show it). */
function lookupFailure(estimate: Estimate): string | undefined {
  const profile = estimate.scope?.profile;
  return profile && "failed" in profile ? `priced at the dearest rate: the application inference profile could not be looked up (${profile.failed})` : undefined;
}

function pricedOf(estimate: Estimate): { baseModelId: string; worstCasePicos: Picos } {
  return { baseModelId: estimate.rates.baseModelId, worstCasePicos: estimate.worstCasePicos };
}
