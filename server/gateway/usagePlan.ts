/**
 * The caller's usage plan at the door: over its rate a call is throttled (429 + Retry-After, which
 * the SDKs retry), over a request quota it is refused (400, not retried); either way it never
 * reaches Bedrock, and it is journaled ($0) and published like a cap refusal.
 */
import { formatLocalDateTime } from "../budget/windows";
import { rateLimitFor, tierOf } from "../policy/plans";
import { planCaller, type RateDecision } from "../policy/rateLimit";
import type { Operation } from "../metering/types";
import type { GatewayContext } from "./context";
import { refusal, throttled, type ErrorAnswer } from "./errors";
import { recordPlanRefusal, type CallIdentity } from "./meteredCall";
import { maskKey } from "./sigv4";

/**
 * The answer that stops the call, or undefined when its plan admits it (a token taken, the request
 * counted, the call running until `ctx.rateLimiter.finished(who.id)`).
 */
export async function checkUsagePlan(
  ctx: GatewayContext,
  who: Omit<CallIdentity, "operation"> & { operation: Operation; caller: string },
  baseModelId: string,
): Promise<ErrorAnswer | undefined> {
  const tier = tierOf(ctx.config, { ...who, user: ctx.user });
  const limit = rateLimitFor(ctx.config, tier);
  const key = planCaller(who);
  const decision = limit ? ctx.rateLimiter.admit(key, limit, ctx.now(), ctx.timeZone) : undefined;
  if (!decision || decision.ok) {
    if (!decision && ctx.rateLimiter.quotasInForce) ctx.rateLimiter.count(key, who.startedAt, ctx.timeZone);
    // In the turn it is admitted: a recount of the quotas, which shuts admission first, sees it.
    ctx.rateLimiter.started(who.id, key, who.startedAt);
    return undefined;
  }
  const message = planMessage(decision, describeCaller(who, tier), ctx.timeZone);
  ctx.logRepeat("info", `${decision.kind}:${key}`, `${decision.kind} ${who.operation} ${who.modelId}: ${message}`);
  if (decision.kind === "throttled") {
    await recordPlanRefusal(ctx, who, baseModelId, { outcome: "throttled", status: 429, message });
    return throttled(message, decision.retryAfterSeconds);
  }
  await recordPlanRefusal(ctx, who, baseModelId, { outcome: "quota-exceeded", status: 400, message });
  return refusal(message);
}

/** `caller AKIA…MPLE (tier "pro")`, or `caller profile "ci" (…)`: the key masked, as every message names keys. */
function describeCaller(who: { caller: string; callerProfile?: string | undefined }, tier: string | undefined): string {
  const name = who.callerProfile !== undefined ? `profile ${JSON.stringify(who.callerProfile)}` : who.caller.startsWith("apikey:") ? who.caller : maskKey(who.caller);
  return `caller ${name} (${tier === undefined ? "the top-level rateLimit" : `tier "${tier}"`})`;
}

/** One sentence: what limit, whose, and when to try again. */
export function planMessage(decision: Exclude<RateDecision, { ok: true }>, who: string, timeZone: string): string {
  if (decision.kind === "throttled") {
    return (
      `Bedrock Budget throttled this call: ${who} is over its rate limit of ${decision.requestsPerSecond} requests per second ` +
      `(burst ${decision.burst}); retry after ${decision.retryAfterSeconds} s.`
    );
  }
  const period = decision.quota === "requestsPerDay" ? "day" : "month";
  return (
    `Bedrock Budget refused this call: ${who} has used its quota of ${decision.limit} requests per ${period} (${decision.quota}); ` +
    `the quota resets at ${formatLocalDateTime(decision.resetsAt, timeZone)} ${timeZone}.`
  );
}
