/**
 * Cap accounting. Pure and synchronous: reserve() checks and books every applicable cap in one
 * turn of the event loop, so two concurrent calls can never both squeeze under the same limit.
 * Windows roll over lazily, whenever an operation's `now` (or a replayed `at`) passes resetsAt.
 */
import { capAction, capId, type CapAction, type CapConfig } from "../config/schema";
import { formatUsd, usdToPicos, type Picos } from "../metering/money";
import { capsFor, capMatcher, type CallSubject, type CapMatcher } from "./capMatch";
import { formatLocalDateTime, windowBounds, type CapWindow } from "./windows";

export interface CapStatus {
  id: string;
  scope: CapConfig["scope"];
  window: CapWindow;
  model?: string;
  /** Whom the cap applies to and the tags it needs, when scoped so (a code lens cannot tell whether it applies). */
  callers?: string[];
  tags?: Record<string, string>;
  /** What the cap does at its limit, when not `block` (a `warn` cap lets calls through). */
  action?: Exclude<CapAction, "block">;
  limitPicos: Picos;
  spentPicos: Picos;
  reservedPicos: Picos;
  windowStart: Date;
  resetsAt: Date;
}

export interface Refusal {
  capId: string;
  scope: CapConfig["scope"];
  window: CapWindow;
  limitPicos: Picos;
  spentPicos: Picos;
  reservedPicos: Picos;
  /** What this call asked for: its worst case on reserve, the extra amount on extend. */
  worstCasePicos: Picos;
  resetsAt: Date;
}

export type ReserveResult = { ok: true; capIds: string[] } | { ok: false; refusal: Refusal };

/** A call's subject (model, caller, user, tags: what decides which caps apply) and what it reserves. */
export interface ReserveRequest extends CallSubject {
  callId: string;
  amount: Picos;
  now: Date;
}

/** A cap's spend in one window, as a checkpoint keeps it (see BudgetEngine.totals). */
export interface CapTotal {
  id: string;
  key: string;
  /** Epoch ms. */
  windowStart: number;
  /** Picos, decimal. */
  spent: string;
}

export interface SpendRecord extends CallSubject {
  amount: Picos;
  at: Date;
}

interface CapState {
  id: string;
  cap: CapConfig;
  limit: Picos;
  matches: CapMatcher;
  spent: Picos;
  reserved: Picos;
  /** Undefined until the first operation gives a time; the constructor has no clock. */
  start?: number;
  end?: number;
  /** Bumped on every rollover or reset, so a reservation knows whether its window is still current. */
  epoch: number;
}

interface Hold {
  state: CapState;
  epoch: number;
  amount: Picos;
}

/** A call's reservation: what it reserved on each cap, and its subject, start and amount (a cap added while it runs takes it on too). */
interface HeldCall {
  subject: CallSubject;
  at: number;
  amount: Picos;
  holds: Hold[];
}

export class BudgetEngine {
  private caps: CapState[] = [];
  private readonly holds = new Map<string, HeldCall>();

  constructor(caps: CapConfig[], private timeZone: string) {
    this.setCaps(caps);
  }

  /**
   * Replaces the caps, and the time zone their windows are in (kept when not given); a cap whose id
   * persists keeps its spend and reservations (reset if its window kind, scope or zone changed).
   * Returns the ids of caps whose totals start from zero (new, or their window, model or zone
   * changed): replay history into them, except the calls holding a reservation now (heldCallIds):
   * each fresh cap takes on the reservations of those it applies to, so they count when they
   * settle, as if the cap had been there when they were admitted.
   */
  setCaps(caps: CapConfig[], timeZone: string = this.timeZone): string[] {
    // Another zone moves every window's bounds: no cap's totals carry over.
    const zoneChanged = timeZone !== this.timeZone;
    this.timeZone = timeZone;
    const old = new Map(this.caps.map((s) => [s.id, s]));
    const fresh: string[] = [];
    this.caps = caps.map((cap) => {
      const id = capId(cap);
      const fields = {
        cap,
        limit: usdToPicos(cap.limitUsd),
        matches: capMatcher(cap),
      };
      const kept = old.get(id);
      if (!kept) {
        fresh.push(id);
        return { id, ...fields, spent: 0n, reserved: 0n, epoch: 0 };
      }
      if (zoneChanged || kept.cap.window !== cap.window || scopeKey(kept.cap) !== scopeKey(cap)) {
        // Another zone, window or scope (model, callers, tags) makes the old totals meaningless; outstanding holds go stale.
        fresh.push(id);
        Object.assign(kept, { spent: 0n, reserved: 0n, start: undefined, end: undefined, epoch: kept.epoch + 1 });
      }
      return Object.assign(kept, fields);
    });
    this.holdOnFresh(new Set(fresh));
    return fresh;
  }

  /** The calls that hold a reservation now: a replay into the caps setCaps just made fresh leaves them out, as they count when they settle. */
  heldCallIds(): Set<string> {
    return new Set(this.holds.keys());
  }

  /** Reserves each running call's amount on the fresh caps that apply to it, in the window it started in. */
  private holdOnFresh(fresh: ReadonlySet<string>): void {
    const states = this.caps.filter((s) => fresh.has(s.id));
    for (const call of this.holds.values()) {
      for (const s of capsFor(states, call.subject)) {
        this.roll(s, call.at);
        // A call that started before the cap's current window belongs to an earlier one (as a roll-over leaves it).
        if (call.at < s.start!) continue;
        s.reserved += call.amount;
        call.holds.push({ state: s, epoch: s.epoch, amount: call.amount });
      }
    }
  }

  /** Ids of the caps that apply to a call: its subject, or a model id (and base model id) whose caller and tags are unknown. */
  applicableCaps(subject: CallSubject | string, baseModelId?: string): string[] {
    return this.applicable(subject, baseModelId).map((s) => s.id);
  }

  reserve(r: ReserveRequest): ReserveResult {
    if (r.amount < 0n) throw new Error("reserve: negative amount");
    if (this.holds.has(r.callId)) throw new Error(`reserve: call ${r.callId} already holds a reservation`);
    const states = this.applicable(r);
    for (const s of states) this.roll(s, r.now.getTime());
    const refused = states.find((s) => walls(s) && s.spent + s.reserved + r.amount > s.limit);
    if (refused) return { ok: false, refusal: this.refusal(refused, r.amount) };
    for (const s of states) s.reserved += r.amount;
    this.holds.set(r.callId, { subject: r, at: r.now.getTime(), amount: r.amount, holds: states.map((s) => ({ state: s, epoch: s.epoch, amount: r.amount })) });
    return { ok: true, capIds: states.map((s) => s.id) };
  }

  /** Grows a reservation (a stream outgrowing its estimate). Caps whose window has since rolled are not checked: the call's cost belongs to the closed window. */
  extend(callId: string, extra: Picos, now: Date): ReserveResult {
    if (extra < 0n) throw new Error("extend: negative amount");
    const call = this.holds.get(callId);
    if (!call) throw new Error(`extend: no reservation for call ${callId}`);
    const live = this.liveHolds(call.holds, now);
    const refused = live.find((h) => walls(h.state) && h.state.spent + h.state.reserved + extra > h.state.limit);
    if (refused) return { ok: false, refusal: this.refusal(refused.state, extra) };
    for (const h of live) {
      h.state.reserved += extra;
      h.amount += extra;
    }
    call.amount += extra;
    return { ok: true, capIds: live.map((h) => h.state.id) };
  }

  /** Books `actual` in the window the call reserved in (if still current) and drops the whole hold. Unknown ids are ignored (idempotent). */
  settle(callId: string, actual: Picos, now: Date): void {
    const call = this.holds.get(callId);
    if (!call) return;
    this.holds.delete(callId);
    for (const h of this.liveHolds(call.holds, now)) {
      h.state.reserved -= h.amount;
      h.state.spent += actual;
    }
  }

  /** Drops a hold without charging (the call was never forwarded). Idempotent. */
  release(callId: string): void {
    const call = this.holds.get(callId);
    if (!call) return;
    this.holds.delete(callId);
    for (const h of call.holds) if (this.isCurrent(h)) h.state.reserved -= h.amount;
  }

  /** Adds spend that happened at `at` (journal replay, or a settle without a reservation). Spend in an older window than a cap's current one is ignored. */
  recordSpent(r: SpendRecord): void {
    for (const s of this.applicable(r)) this.addSpent(s, r.at.getTime(), r.amount);
  }

  /** Spend from elsewhere (e.g. a team's other members) for one cap, at any instant inside the window it belongs to. */
  recordExternalSpent(capIdToCharge: string, at: Date, amount: Picos): void {
    const s = this.caps.find((c) => c.id === capIdToCharge);
    if (s) this.addSpent(s, at.getTime(), amount);
  }

  status(now: Date): CapStatus[] {
    return this.caps.map((s) => {
      this.roll(s, now.getTime());
      const status: CapStatus = {
        id: s.id,
        scope: s.cap.scope,
        window: s.cap.window,
        limitPicos: s.limit,
        spentPicos: s.spent,
        reservedPicos: s.reserved,
        windowStart: new Date(s.start!),
        resetsAt: new Date(s.end!),
      };
      Object.assign(status, capScopeFields(s.cap));
      return status;
    });
  }

  /**
   * Each cap's spend in its current window, under a key that names everything the spend depends on
   * (id, window, scope, time zone): a checkpoint's cap totals. Caps with no window yet are left out.
   */
  totals(): CapTotal[] {
    return this.caps.flatMap((s) => (s.start === undefined ? [] : [{ id: s.id, key: this.totalKey(s), windowStart: s.start, spent: String(s.spent) }]));
  }

  /**
   * Takes checkpoint totals for the caps whose key matches (call before anything is spent): the
   * cap's window at `now` is the total's (its spend), or a later one (no spend of the checkpoint
   * can be in it: a call in a later window would have moved the total's window on). Returns the ids
   * restored; every other cap needs the full replay.
   */
  restoreTotals(totals: readonly CapTotal[], now: Date): Set<string> {
    const byKey = new Map(totals.map((t) => [t.key, t]));
    const restored = new Set<string>();
    for (const s of this.caps) {
      const t = byKey.get(this.totalKey(s));
      if (!t || s.spent !== 0n || s.reserved !== 0n) continue;
      this.roll(s, now.getTime());
      if (t.windowStart > s.start!) continue; // a window ahead of now (a clock set back): replay it whole
      s.spent = t.windowStart === s.start ? BigInt(t.spent) : 0n;
      restored.add(s.id);
    }
    return restored;
  }

  /** A copy with the same caps, windows and spend, and no reservations: a tally kept beside the live engine. */
  copy(): BudgetEngine {
    const twin = new BudgetEngine(this.caps.map((s) => s.cap), this.timeZone);
    twin.caps.forEach((t, i) => {
      const s = this.caps[i]!;
      Object.assign(t, { spent: s.spent, start: s.start, end: s.end });
    });
    return twin;
  }

  private totalKey(s: CapState): string {
    return JSON.stringify([s.id, s.cap.window, scopeKey(s.cap), this.timeZone]);
  }

  private applicable(subject: CallSubject | string, baseModelId?: string): CapState[] {
    return capsFor(this.caps, subject, baseModelId);
  }

  /** Moves a cap to the window containing `t` if `t` is past its end. Holds from the old window go stale with it. */
  private roll(s: CapState, t: number): void {
    // Stryker disable next-line ConditionalExpression: without a window `t < undefined` is false anyway (the check is for the compiler).
    if (s.start !== undefined && t < s.end!) return;
    const b = windowBounds(s.cap.window, this.timeZone, new Date(t));
    // Stryker disable next-line ConditionalExpression: a cap's first window starts from zero spent, zero reserved and no holds.
    if (s.start !== undefined) {
      s.spent = 0n;
      s.reserved = 0n;
      s.epoch++;
    }
    s.start = b.start.getTime();
    s.end = b.end.getTime();
  }

  private addSpent(s: CapState, t: number, amount: Picos): void {
    this.roll(s, t);
    if (t >= s.start!) s.spent += amount;
  }

  private isCurrent(h: Hold): boolean {
    return this.caps.includes(h.state) && h.epoch === h.state.epoch;
  }

  private liveHolds(holds: Hold[], now: Date): Hold[] {
    for (const h of holds) this.roll(h.state, now.getTime());
    return holds.filter((h) => this.isCurrent(h));
  }

  private refusal(s: CapState, asked: Picos): Refusal {
    return {
      capId: s.id,
      scope: s.cap.scope,
      window: s.cap.window,
      limitPicos: s.limit,
      spentPicos: s.spent,
      reservedPicos: s.reserved,
      worstCasePicos: asked,
      resetsAt: new Date(s.end!),
    };
  }
}

/** A `warn` cap counts a call past its limit instead of refusing it (the gateway says so); every other action is a wall at its limit. */
function walls(s: CapState): boolean {
  return capAction(s.cap) !== "warn";
}

/** The scope fields of a cap that are set (model, callers, tags), and its action unless `block`, for its status. */
export function capScopeFields(cap: CapConfig): Pick<CapStatus, "model" | "callers" | "tags" | "action"> {
  const action = capAction(cap);
  return {
    ...(action !== "block" ? { action } : {}),
    ...(cap.model !== undefined ? { model: cap.model } : {}),
    ...(cap.callers !== undefined ? { callers: [...cap.callers] } : {}),
    ...(cap.tags !== undefined ? { tags: { ...cap.tags } } : {}),
  };
}

/** What a cap applies to, as one comparable string: a change of it starts the cap's totals afresh. */
export function scopeKey(cap: CapConfig): string {
  return JSON.stringify([cap.model ?? null, cap.callers ? [...cap.callers].sort() : null, cap.tags ? Object.entries(cap.tags).sort() : null]);
}

/** One sentence for the person whose call was refused. */
export function refusalMessage(refusal: Refusal, timeZone: string): string {
  return (
    `Bedrock Budget refused this call: it could cost up to ${formatUsd(refusal.worstCasePicos)}, ` +
    `and cap "${refusal.capId}" (${refusal.scope}, ${refusal.window}) has ${formatUsd(refusal.spentPicos)} spent ` +
    `and ${formatUsd(refusal.reservedPicos)} reserved of ${formatUsd(refusal.limitPicos)}. ` +
    `The cap resets at ${formatLocalDateTime(refusal.resetsAt, timeZone)} ${timeZone}.`
  );
}
