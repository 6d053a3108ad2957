/**
 * Usage-plan limits per caller (pure, no I/O, every function takes `now`): a token bucket for the
 * rate and burst, and request counts per day and per month (windows in the configured time zone)
 * for the quotas. A refused request takes nothing: a throttled call does not use quota, a
 * quota-refused one no token.
 */
import type { RateLimitConfig } from "../config/schema";
import { windowBounds, windowKey } from "../budget/windows";

/**
 * Whose usage plan a call draws on: the credentials its signature was verified with (a `callers`
 * profile by name, else the gateway's own), or its API key. Not the access key id: temporary
 * credentials (SSO, an assumed role) get a new key at each refresh, and each new key would start
 * with a full bucket and unused quotas.
 */
export function planCaller(call: { caller: string; callerProfile?: string | undefined }): string {
  if (call.callerProfile !== undefined) return `profile:${call.callerProfile}`;
  if (call.caller.startsWith("apikey:")) return call.caller;
  return OWN_CREDENTIALS; // SigV4 without a profile name: only the gateway's own credentials verify it
}

/** The plan key of calls signed with the gateway's own credentials when no profile names them (the default chain). */
export const OWN_CREDENTIALS = "credentials:gateway";

/** A bucket's tokens at an instant; it refills at `rate` per second up to `burst`. */
export interface BucketState {
  tokens: number;
  atMs: number;
}

export type TakeResult = { ok: true; state: BucketState } | { ok: false; state: BucketState; retryAfterMs: number };

/** The bucket's size when `burst` is unset: one second's worth of requests, at least one. */
export function burstOf(limit: Pick<RateLimitConfig, "requestsPerSecond" | "burst">): number {
  return limit.burst ?? Math.max(1, Math.ceil(limit.requestsPerSecond ?? 1));
}

/** Takes one token from a bucket (a new one starts full), or says how long until one is there. */
export function takeToken(state: BucketState | undefined, rate: number, burst: number, nowMs: number): TakeResult {
  const start = state ?? { tokens: burst, atMs: nowMs };
  const elapsed = Math.max(0, nowMs - start.atMs); // a clock stepping back refills nothing
  const tokens = Math.min(burst, start.tokens + (elapsed * rate) / 1000);
  const now = { tokens, atMs: Math.max(nowMs, start.atMs) };
  if (tokens >= 1) return { ok: true, state: { ...now, tokens: tokens - 1 } };
  return { ok: false, state: now, retryAfterMs: Math.ceil(((1 - tokens) * 1000) / rate) };
}

/** Retry-After as HTTP wants it: whole seconds, rounded up, at least one. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

export type QuotaName = "requestsPerDay" | "requestsPerMonth";

export type RateDecision =
  | { ok: true }
  | { ok: false; kind: "throttled"; retryAfterSeconds: number; requestsPerSecond: number; burst: number }
  | { ok: false; kind: "quota-exceeded"; quota: QuotaName; limit: number; resetsAt: Date };

/** One caller's request counts in the current day and month (keys from windows.ts). */
export interface Counts {
  dayKey: string;
  day: number;
  monthKey: string;
  month: number;
}

const QUOTA_WINDOW = { requestsPerDay: "day", requestsPerMonth: "month" } as const;

/** The buckets and quota counts of every caller seen; one per gateway, kept across settings changes. */
export class RateLimiter {
  private readonly buckets = new Map<string, BucketState>();
  private readonly counts = new Map<string, Counts>();
  /** Calls past the plan whose settle is not journaled yet: a recount of the journal cannot see them. */
  private readonly running = new Map<string, { caller: string; at: Date }>();
  /**
   * Some caller has a quota: then every call is counted, under a limit or not, so a caller moved
   * onto a tier with one starts from the truth. With none, nothing is (a quota given later counts
   * the journal again).
   */
  quotasInForce = false;

  /**
   * Decides one request of `caller` under `limit` at `now`: over a quota, or over the rate, or
   * admitted (a token taken and the request counted against the quotas).
   */
  admit(caller: string, limit: RateLimitConfig, now: Date, timeZone: string): RateDecision {
    const counts = this.current(caller, now, timeZone);
    for (const quota of ["requestsPerDay", "requestsPerMonth"] as const) {
      const max = limit[quota];
      const used = quota === "requestsPerDay" ? counts.day : counts.month;
      if (max !== undefined && used >= max) {
        return { ok: false, kind: "quota-exceeded", quota, limit: max, resetsAt: windowBounds(QUOTA_WINDOW[quota], timeZone, now).end };
      }
    }
    if (limit.requestsPerSecond !== undefined) {
      const burst = burstOf(limit);
      const taken = takeToken(this.buckets.get(caller), limit.requestsPerSecond, burst, now.getTime());
      this.buckets.set(caller, taken.state);
      if (!taken.ok) return { ok: false, kind: "throttled", retryAfterSeconds: retryAfterSeconds(taken.retryAfterMs), requestsPerSecond: limit.requestsPerSecond, burst };
    }
    counts.day++;
    counts.month++;
    return { ok: true };
  }

  /** Call `id` of `caller`, started `at`, is past the plan (counted live, if a limit applied) until finished. */
  started(id: string, caller: string, at: Date): void {
    this.running.set(id, { caller, at });
  }

  /** Its settle is journaled (in the turn the journal's tallies count it), or it ended without one. */
  finished(id: string): void {
    this.running.delete(id);
  }

  /** The calls past the plan now, for a recount: they count once each, beside the journal's settles. */
  runningCalls(): { id: string; caller: string; at: Date }[] {
    return [...this.running].map(([id, c]) => ({ id, ...c }));
  }

  /** Forgets every request count (buckets stay): the journal is about to be counted again. */
  resetCounts(): void {
    this.counts.clear();
  }

  /** Counts a request made at `at` (journal replay): only the current day and month are kept. */
  count(caller: string, at: Date, timeZone: string): void {
    const dayKey = windowKey("day", timeZone, at);
    const monthKey = windowKey("month", timeZone, at);
    const c = this.counts.get(caller);
    if (!c) {
      this.counts.set(caller, { dayKey, day: 1, monthKey, month: 1 });
      return;
    }
    if (dayKey > c.dayKey) Object.assign(c, { dayKey, day: 0 });
    if (monthKey > c.monthKey) Object.assign(c, { monthKey, month: 0 });
    if (dayKey === c.dayKey) c.day++;
    if (monthKey === c.monthKey) c.month++;
  }

  /** Every caller's request counts (copies), for a checkpoint or another limiter. */
  countsSnapshot(): [string, Counts][] {
    return [...this.counts].map(([caller, c]) => [caller, { ...c }]);
  }

  /** Replaces every request count with `entries` (buckets stay). */
  restoreCounts(entries: readonly (readonly [string, Counts])[]): void {
    this.counts.clear();
    for (const [caller, c] of entries) this.counts.set(caller, { ...c });
  }

  /** The requests `caller` has made in the day and month containing `now`. */
  used(caller: string, now: Date, timeZone: string): { day: number; month: number } {
    const c = this.current(caller, now, timeZone);
    return { day: c.day, month: c.month };
  }

  private current(caller: string, now: Date, timeZone: string): Counts {
    const dayKey = windowKey("day", timeZone, now);
    const monthKey = windowKey("month", timeZone, now);
    let c = this.counts.get(caller);
    if (!c) this.counts.set(caller, (c = { dayKey, day: 0, monthKey, month: 0 }));
    if (c.dayKey !== dayKey) Object.assign(c, { dayKey, day: 0 });
    if (c.monthKey !== monthKey) Object.assign(c, { monthKey, month: 0 });
    return c;
  }
}
