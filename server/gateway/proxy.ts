/** The flow of one Bedrock call: check, estimate, reserve, forward, relay, settle. */
import { randomUUID } from "node:crypto";
import type { GuardrailPricing } from "../config/schema";
import { EstimateError, estimateParsed } from "../metering/estimate";
import { appliedTierFromHeaders } from "../metering/usage";
import { guardrailCost, guardrailEstimate, guardrailTextUnits } from "../metering/guardrails";
import { guardrailModelKey } from "../shared/guardrailModel";
import { attachedGuardrail, AttachedGuardrailError, attachedGuardrailOf, guardedInputUnits, withAttachedGuardrail } from "../metering/attachedGuardrail";
import { checkRequestBody, type JsonObject } from "../metering/requestBody";
import { downgradeTargets, planCall, type PlannedCall } from "./capPlan";
import { parseModelId } from "../metering/modelId";
import type { ProfileAnswer } from "../metering/profiles";
import { ZERO_USAGE, type MeteredOperation, type Operation } from "../metering/types";
import { callerTool, parseTagsHeader } from "./callerTool";
import { mergeTags, tagProblem } from "../config/tags";
import type { GatewayContext } from "./context";
import { accessDenied, bedrockError, overloaded, refusal, requestTimeout, uncounted, uncountedMessage, upstreamUnreachable, validation, type ErrorAnswer } from "./errors";
import { answerUnread, authenticate, BodyRefused, checkAuthorizationHeader, readBody, type Authenticated, type HeaderCheck, type ReadBody } from "./inbound";
import type { CallScope } from "./callScope";
import type { CallRecord } from "../ledger/types";
import type { AnyRequest, AnyResponse } from "./listener";
import { admit, callerOf, journalRefusal, recordFreeCall, type CallIdentity, type MeteredCall } from "./meteredCall";
import { checkUsagePlan } from "./usagePlan";
import { callerGone, readAll, relayBuffered, relayHeaders, relayStream, send } from "./relay";
import { disguisedRoute, isStreaming, routeOf, routeProblem, targetProblem, type Route } from "./routes";
import { forwardableHeaders, signUpstream, type UpstreamTarget } from "./sigv4";
import { sendUpstream, upstreamTarget, UpstreamError } from "./upstream";

/**
 * `scope`: what the gateway stops if it must shut down while this call runs. `refusingAll`: why
 * every call is refused now (settings that decide money are invalid, team caps unknown), if so;
 * read once the caller is verified (see handleRead), and no call it refuses is forwarded.
 */
export async function handleBedrock(ctx: GatewayContext, req: AnyRequest, res: AnyResponse, scope: CallScope, refusingAll: () => string | undefined): Promise<void> {
  const method = req.method ?? "GET";
  const rawPath = req.url ?? "/";
  const refuse = (error: ErrorAnswer) => answerUnread(req, res, () => answer(res, error));

  const badTarget = targetProblem(rawPath);
  if (badTarget) return refuse(validation(`Bedrock Budget cannot read this request: ${badTarget}`));
  const route = routeOf(method, rawPath);
  if (route.kind === "unsupported") {
    return refuse(validation(`Bedrock Budget cannot meter ${route.what}, so it does not forward it. Call Bedrock directly for this operation.`));
  }
  const disguised = route.kind === "unknown" ? disguisedRoute(method, rawPath) : undefined;
  if (disguised) {
    return refuse(validation(`Bedrock Budget refused ${method} ${rawPath.split("?")[0]}: it is an unusual spelling of ${disguised} (escaped letters, dot segments, doubled slashes or capitals), which AWS may route as that operation. Send it as the SDKs do.`));
  }
  if (route.kind === "unknown" && !ctx.config.allowUnmeteredOperations) {
    return refuse(bedrockError(404, "UnknownOperationException",
      `Bedrock Budget does not know ${method} ${rawPath.split("?")[0]} as a Bedrock Runtime operation and does not forward unmetered calls (set allowUnmeteredOperations to allow them).`));
  }

  const badId = routeProblem(route);
  if (badId) return refuse(validation(`Bedrock Budget refused the request: ${badId}`));

  const header = await checkAuthorizationHeader({ headers: req.headers, credentials: ctx.credentials, allowApiKeys: ctx.config.allowApiKeys, profiles: ctx.callerProfiles, anyAccessKey: ctx.simulated });
  if (!header.ok) {
    const blocked = refusingAll();
    return refuse(blocked !== undefined ? refusal(blocked) : header.invalid ? validation(header.message) : accessDenied(header.message));
  }

  let read: ReadBody;
  try {
    read = await readBody(req, { maxBytes: ctx.config.maxRequestBytes, guard: ctx.inbound });
  } catch (err) {
    if (err instanceof BodyRefused) return refuse(bodyRefusal(err));
    throw err;
  }
  try {
    await handleRead(ctx, req, res, route, header, read.body, scope, refusingAll);
  } finally {
    read.release(); // the body's bytes stay counted until the call no longer holds them
  }
}

async function handleRead(
  ctx: GatewayContext,
  req: AnyRequest,
  res: AnyResponse,
  route: Exclude<Route, { kind: "unsupported" }>,
  header: Extract<HeaderCheck, { ok: true }>,
  body: Buffer,
  scope: CallScope,
  refusingAll: () => string | undefined,
): Promise<void> {
  const method = req.method ?? "GET";
  const rawPath = req.url ?? "/";
  const auth = await authenticate(header, {
    method, rawPath, headers: req.headers, body, defaultRegion: ctx.config.region ?? "us-east-1", now: ctx.now(),
  });
  if (!auth.ok) {
    const blocked = refusingAll();
    return answer(res, blocked !== undefined ? refusal(blocked) : accessDenied(auth.message));
  }

  // Every body of a known operation is read as its documented shape, free operations too.
  let json: JsonObject | undefined;
  if (route.kind !== "unknown") {
    try {
      json = checkRequestBody(route.operation, body);
    } catch (err) {
      if (err instanceof EstimateError) return answer(res, validation(`Bedrock Budget could not read the request body: ${err.message}`));
      throw err;
    }
  }

  // Verified by the gateway's own credentials: its awsProfile is the caller's profile (caps and tiers may name it).
  const profile = auth.kind === "sigv4" ? auth.callerProfile ?? ctx.config.awsProfile : undefined;
  const caller = { caller: auth.caller, ...(profile !== undefined ? { callerProfile: profile } : {}) };

  // The call's tags, read once: the usage plan, metering and the journal share them.
  const bodyTags = json && route.kind === "model" && isMetered(route.operation) ? requestMetadataTags(route.operation, json) : {};
  const tagged = route.kind === "unknown" ? { tags: {} } : callTags(ctx, req, bodyTags);

  // Every call refused now: decided before `forward` exists, so nothing of this call can reach the
  // upstream. Only here, past authenticate, is the refusal journaled: a record written for any request
  // would let anything on loopback (a web page's no-cors POST) write into the call log. The credentials
  // that verify it are the last valid settings' (or, at a start with invalid ones, those of the settings
  // the check kept); a request they cannot verify (none resolve, another key) is refused unjournaled,
  // with the same reason (the open /status shows it to any local process anyway). A Bedrock API key
  // (allowApiKeys, opted into) passes here as it passes everywhere in the gateway: a page cannot send one.
  const blocked = refusingAll();
  if (blocked !== undefined && route.kind === "unknown") return answer(res, refusal(blocked)); // an unmetered request has no record to journal
  const forward = (signal: AbortSignal | undefined, as?: Rewritten) =>
    forwardUpstream(ctx, auth, { method, rawPath: as?.rawPath ?? rawPath, headers: req.headers, body: as?.body ?? body, bodyRewritten: as?.bodyRewritten ?? false, signal, scope });

  if (route.kind === "unknown") return passThrough({ ctx, req, res, forward, scope, tagged }, route);

  // One identity per call (its id, start, model and tags): the usage plan, the reservation and the journal line share it.
  const modelId = route.kind === "model" ? route.modelId : guardrailModelKey(route.guardrailId);
  const who: Identity = { ...identify(req, route.operation, modelId, ctx.now(), tagged.tags), ...caller };
  if (blocked !== undefined) {
    // Tags that break the grammar are not journaled: the settings' default tags stand in.
    const recorded = tagged.problem ? { ...who, tags: mergeTags(ctx.config.tags, {}, {}) } : who;
    await journalUnsent(ctx, recorded, route.kind === "model" ? ctx.prices.rates(modelId).baseModelId : modelId, 400, blocked, false);
    return answer(res, refusal(blocked));
  }
  const x = { ctx, req, res, forward, scope, tagged, who };

  // What refuses a call without a ledger record is checked before the usage plan counts it: a
  // request the quota counted must be journaled, or a restart's recount gives it back.
  const metered = route.kind === "model" && json && isMetered(route.operation) ? { operation: route.operation, json } : undefined;
  const guardrailPricing = route.kind === "guardrail" && json ? ctx.config.guardrailPricing : undefined;
  let guardrailUnits: number | undefined;
  if ((metered || guardrailPricing) && tagged.problem) return answer(res, validation(`Bedrock Budget refused the request: ${tagged.problem}`));
  const tierHeader = metered && !TIER_HEADER_OPERATIONS.has(metered.operation) ? TIER_HEADERS.find((name) => req.headers[name] !== undefined) : undefined;
  if (tierHeader) {
    // Bedrock documents these headers for InvokeModel only: whether it would apply them to Converse (and bill the tier)
    // is unknown, so the call is neither priced at a guess nor forwarded with them.
    return answer(res, validation(
      `Bedrock Budget refused the request: ${metered!.operation} takes its service tier and latency in the request body (serviceTier, performanceConfig), ` +
        `not in the ${tierHeader} header (Bedrock documents it for InvokeModel only, so the gateway cannot tell what the call would be charged): move it into the body`,
    ));
  }
  // A guardrail attached to a model call is priced with it when guardrailPricing is set; one the
  // gateway cannot read is refused unsent (it could not say what the call would cost).
  let attached: Attached | undefined;
  const attachedPricing = ctx.config.guardrailPricing;
  if (metered && attachedPricing && ATTACHED_GUARDRAIL_OPERATIONS.has(metered.operation)) {
    try {
      const named = attachedGuardrailOf(metered.operation, metered.json, req.headers);
      if (named) attached = { id: named.id, inputUnits: guardedInputUnits(metered.operation, metered.json, body.toString("utf8").length), pricing: attachedPricing };
    } catch (err) {
      if (!(err instanceof AttachedGuardrailError)) throw err;
      return answer(res, validation(
        `Bedrock Budget refused the request: ${err.message}. guardrailPricing is set, so the guardrail a model call names is priced with it, and this one cannot be read: name the guardrail as Bedrock documents, or remove it.`,
      ));
    }
  }
  if (guardrailPricing && json) {
    try {
      guardrailUnits = guardrailTextUnits(json); // the body as checkRequestBody parsed it: one parse per call
    } catch (err) {
      return answer(res, validation(`Bedrock Budget could not read the request body: ${(err as Error).message}`));
    }
  }

  // The caller's usage plan (rate, quotas) before anything is estimated or reserved.
  while (!ctx.admissions.open) {
    // Not counted by the plan yet: its record names no caller, so a restart's quota recount skips it too.
    const shut = await atGate(ctx, who, route.kind === "model" ? ctx.prices.rates(modelId).baseModelId : modelId, false);
    if (shut) return answer(res, shut);
  }
  const stopped = await checkUsagePlan(ctx, who, route.kind === "model" ? ctx.prices.rates(modelId).baseModelId : modelId);
  if (stopped) return answer(res, stopped);

  try {
    if (route.kind === "model" && metered) return await meter(x, route, metered.operation, metered.json, auth.region, body, attached);
    if (route.kind === "guardrail" && guardrailPricing && guardrailUnits !== undefined) {
      return await meterGuardrail(x, route, guardrailPricing, guardrailUnits);
    }
    // CountTokens is free and ApplyGuardrail is billed per text unit, not per token: forwarded as
    // they are and journaled at $0; other paths only when unmetered calls are allowed.
    return await passThrough(x, route);
  } finally {
    ctx.rateLimiter.finished(who.id); // most often its journaled settle did already
  }
}

/** Each of `arns` looked up (at once when known; none: no wait). */
async function lookUpAll(profiles: NonNullable<GatewayContext["profiles"]>, arns: string[]): Promise<ReadonlyMap<string, ProfileAnswer> | undefined> {
  if (arns.length === 0) return undefined;
  return new Map(await Promise.all(arns.map(async (arn) => [arn, await profiles.resolve(arn)] as const)));
}

/** The call as the ledger sees it (identify() and the verified caller), built once per request. */
type Identity = Omit<CallIdentity, "operation" | "caller"> & { operation: Operation; caller: string };

/** One Bedrock request past its checks: what metering and forwarding it need. */
interface Exchange {
  ctx: GatewayContext;
  req: AnyRequest;
  res: AnyResponse;
  /** Re-signs the request (as a cap's action rewrote it, if it did) and sends it to Bedrock. */
  forward: (signal: AbortSignal | undefined, as?: Rewritten) => Promise<import("node:http").IncomingMessage>;
  /** What the gateway stops if it must shut down while this call runs. */
  scope: CallScope;
  /** The call's tags (callTags); `problem`: they break the grammar, so a metered call is refused. */
  tagged: { tags: Record<string, string>; problem?: string };
  /** The call's one identity, with who made it (CallRecord.caller) and the `callers` profile that verified it; absent for an unknown operation. */
  who?: Identity;
}

/** The request as a cap's action rewrote it (PlannedCall). */
type Rewritten = Pick<PlannedCall, "rawPath" | "body" | "bodyRewritten">;

/**
 * Waits while the admission gate is shut (see AdmissionGate); the answer when it stays shut. The
 * caller loops until the gate is open and decides the call in that same turn: another count may
 * shut it while this resumes.
 */
async function atGate(ctx: GatewayContext, who: Identity, baseModelId: string, planCounted: boolean): Promise<ErrorAnswer | undefined> {
  const failure = await ctx.admissions.passed();
  if (failure === undefined) return undefined;
  const shut = uncounted(failure);
  await journalUnsent(ctx, who, baseModelId, shut.status, `Bedrock Budget refused this call: ${uncountedMessage(failure)}`, planCounted);
  return shut;
}

/**
 * Journals and publishes a call refused before any cap saw it, at $0, like every other refusal
 * (call log, Refused tile, report's stopped). A journal that cannot take it is logged: the call is
 * refused all the same (it is never sent), only its record is missing.
 */
async function journalUnsent(ctx: GatewayContext, who: Identity, baseModelId: string, status: number, message: string, planCounted: boolean): Promise<void> {
  const now = ctx.now();
  const entry: CallRecord = {
    type: "settle", id: who.id, at: now.toISOString(), startedAt: who.startedAt.toISOString(), user: ctx.user, tool: who.tool,
    operation: who.operation, modelId: who.modelId, baseModelId, usage: { ...ZERO_USAGE }, usageEstimated: false, costPicos: "0",
    worstCasePicos: "0", outcome: "refused", status, latencyMs: now.getTime() - who.startedAt.getTime(), tags: who.tags,
    message: message.slice(0, 500),
  };
  // A call the usage plan did not count names no caller: a restart's quota recount counts every record that names one.
  if (planCounted) Object.assign(entry, callerOf(who));
  try {
    await ctx.ledger.settle(entry);
  } catch (err) {
    ctx.logRepeat("warn", `refusal-journal:${(err as Error).message}`, `could not journal a refused call: ${(err as Error).message}`);
    return;
  }
  ctx.publish(entry);
}

function bodyRefusal(err: BodyRefused): ErrorAnswer {
  switch (err.reason) {
    case "too-large":
      return validation(err.message, 413);
    case "buffers-full":
      return overloaded(err.message);
    case "stalled":
      return requestTimeout(err.message);
    case "aborted":
      return validation(err.message); // nobody is left to read it
  }
}

/** A priced guardrail a model call names: its id, the input text units it evaluates, the prices read when the call came in. */
interface Attached {
  id: string;
  inputUnits: number;
  pricing: GuardrailPricing;
}

/** The operations that can name a guardrail: Converse in its body (guardrailConfig), InvokeModel in its headers. */
const ATTACHED_GUARDRAIL_OPERATIONS: ReadonlySet<Operation> = new Set<Operation>(["Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"]);

async function meter(x: Exchange & { who: Identity }, route: Extract<Route, { kind: "model" }>, operation: MeteredOperation, json: JsonObject, region: string, body: Buffer, attached?: Attached): Promise<void> {
  const { ctx, req, res, scope } = x;
  // Priced in the caller's signing region; an application profile as the model behind it (looked up first, bounded).
  const profile = ctx.profiles && parseModelId(route.modelId).arnKind === "application-inference-profile" ? await ctx.profiles.resolve(route.modelId) : undefined;
  const pricing = { region, ...(profile ? { profile } : {}) };
  // A cap may downgrade to an application inference profile: what it stands for is looked up now,
  // as the planning that follows is synchronous. Unresolved, it is priced at the dearest rate.
  const downgradeProfiles = ctx.profiles ? await lookUpAll(ctx.profiles, downgradeTargets(ctx)) : undefined;
  // Planned and reserved in the turn the gate is found open.
  while (!ctx.admissions.open) {
    const shut = await atGate(ctx, { ...x.who, operation }, ctx.prices.rates(route.modelId).baseModelId, true);
    if (shut) return answer(res, shut);
  }
  // InvokeModel's tier and latency mode are asked in request headers (Converse's in its body, read by the estimator;
  // a Converse call with those headers was refused above).
  const requestedTier = TIER_HEADER_OPERATIONS.has(operation) ? appliedTierFromHeaders(req.headers) : undefined;
  const asked = estimateParsed(operation, route.modelId, json, ctx.prices, requestedTier, pricing);

  const { tagged } = x; // its tags were checked before the usage plan counted it
  // Caps' actions (downgrade, clamp, warn) shape the call; planned and admitted in one turn of the event loop.
  const asCalled = { ...x.who, operation };
  const plan = planCall(ctx, { operation, modelId: route.modelId, rawPath: req.url ?? "/", json, body, estimate: asked, ...(requestedTier ? { requestedTier } : {}), scope: pricing, ...(downgradeProfiles ? { downgradeProfiles } : {}), subject: { ...callerOf(asCalled), user: ctx.user, tags: tagged.tags }, ...(attached ? { guardrail: attached } : {}) });
  if (!plan.ok) {
    ctx.logRepeat("info", `unplanned:${plan.capId}:${route.modelId}`, `refused ${operation} ${route.modelId}: cap ${plan.capId} cannot rewrite it`);
    await journalRefusal(ctx, asCalled, asked, plan.capId, plan.message);
    return answer(res, plan.invalid ? validation(plan.message) : refusal(plan.message));
  }
  const planned = plan.call;
  // The guardrail's worst case on top of the model's, its output bound from the call as planned (a clamp lowers it).
  const estimate = attached
    ? withAttachedGuardrail(planned.estimate, attachedGuardrail(attached.id, attached.inputUnits, planned.estimate.maxOutputTokens, attached.pricing))
    : planned.estimate;
  if (!estimate.rates.known) ctx.logRepeat("warn", `unpriced:${planned.modelId}`, `model ${planned.modelId} has no price row; priced at the most expensive known rate (${estimate.rates.notes.join("; ")})`);
  const who = {
    ...asCalled,
    ...(planned.downgraded ? { answeredBy: planned.modelId } : {}),
    ...(planned.actions.length > 0 ? { actions: planned.actions } : {}),
  };
  const admission = await admit(ctx, who, estimate, scope);
  if (!admission.ok) {
    ctx.logRepeat("info", `refused:${admission.capId}:${route.modelId}`, `refused ${operation} ${route.modelId}: cap ${admission.capId}`); // a runaway loop meets it on every call
    return answer(res, refusal(admission.message));
  }
  const call = admission.call;
  const forward = (signal: AbortSignal | undefined) => x.forward(signal, planned);

  // A buffered call runs to completion so that it settles at the usage Bedrock reports rather
  // than at a guess. A streaming caller that leaves before Bedrock's status line: the status is
  // awaited (bounded), since an error costs nothing and only a started stream must be stopped.
  const aborter = isStreaming(operation) ? new AbortController() : undefined; // a buffered call is never given up on
  let callerLeft = false;
  let giveUp: NodeJS.Timeout | undefined;
  const onClientGone = () => {
    callerLeft = true;
    ctx.log.debug(`${operation} ${route.modelId}: the caller left before Bedrock answered; waiting up to ${ctx.inbound.limits.statusWaitMs} ms for its status`);
    giveUp = setTimeout(() => aborter?.abort(), ctx.inbound.limits.statusWaitMs);
  };
  // The reservation is journaled: whatever throws from here to the forward must settle it, or it
  // stays held until a restart charges it as interrupted although nothing was sent.
  try {
    // Checked in the turn the close listener below is attached: a caller that left while the call
    // was admitted fired its close already. Nothing reached Bedrock, so nothing is charged.
    if (callerGone(res)) {
      await call.settle({ outcome: "client-aborted", usage: { ...ZERO_USAGE }, usageEstimated: false, status: 499, message: "the caller left before the call was forwarded: it was not sent to Bedrock" }, 0n);
      ctx.log.info(`${operation} ${route.modelId}: the caller left before the call was forwarded (not sent, nothing charged)`);
      return;
    }
    for (const [name, value] of Object.entries(planned.headers)) res.setHeader(name, headerValue(value)); // sent with whatever answer follows
    if (isStreaming(operation)) res.once("close", onClientGone);
  } catch (err) {
    await call.settle({ outcome: "upstream-error", usage: { ...ZERO_USAGE }, usageEstimated: false, status: 500, message: `Bedrock Budget failed before forwarding the call, so it was not sent to Bedrock: ${(err as Error).message}` }, 0n);
    throw err; // the gateway's catch-all logs it and answers the caller
  }
  let upstream;
  try {
    upstream = await forward(aborter?.signal);
  } catch (err) {
    return failedBeforeAnswer(ctx, call, res, err, callerLeft);
  } finally {
    clearTimeout(giveUp);
    res.off("close", onClientGone);
  }
  if (callerLeft) return settleLeftCaller(ctx, call, upstream, res);

  try {
    if (isStreaming(operation) && (upstream.statusCode ?? 500) < 300) await relayStream(call, upstream, res);
    else await relayBuffered(call, upstream, res);
  } catch (err) {
    ctx.log.warn(`${operation} ${route.modelId}: ${(err as Error).message}`);
    answer(res, upstreamUnreachable(`Bedrock Budget lost the connection to Bedrock mid-response: ${(err as Error).message}`));
  }
}

/** ApplyGuardrail with configured prices: reserved per text unit, charged by the policy units it reports. */
async function meterGuardrail(x: Exchange & { who: Identity }, route: Extract<Route, { kind: "guardrail" }>, pricing: GuardrailPricing, units: number): Promise<void> {
  const { ctx, res, forward, scope } = x;
  // Its text units and tags were read before the usage plan counted it.
  const estimate = guardrailEstimate(route.guardrailId, units, pricing);
  while (!ctx.admissions.open) {
    const shut = await atGate(ctx, { ...x.who, operation: "ApplyGuardrail" }, estimate.rates.baseModelId, true);
    if (shut) return answer(res, shut);
  }
  const admission = await admit(ctx, { ...x.who, operation: "ApplyGuardrail" }, estimate, scope);
  if (!admission.ok) return answer(res, refusal(admission.message));
  const call = admission.call;
  // As for a model call: a caller gone meanwhile (or whose connection a refusal closed) could never read the answer.
  if (callerGone(res)) {
    await call.settle({ outcome: "client-aborted", usage: { ...ZERO_USAGE }, usageEstimated: false, status: 499, message: "the caller left before the call was forwarded: it was not sent to Bedrock" }, 0n);
    return;
  }
  let upstream;
  try {
    upstream = await forward(undefined); // runs to completion: it settles at what it reports
  } catch (err) {
    return failedBeforeAnswer(ctx, call, res, err);
  }
  const status = upstream.statusCode ?? 502;
  const requestId = typeof upstream.headers["x-amzn-requestid"] === "string" ? upstream.headers["x-amzn-requestid"] : undefined;
  let answerBody: Buffer;
  try {
    answerBody = await readAll(upstream);
  } catch (err) {
    await call.settleAtWorstCase("upstream-failed", 502, (err as Error).message);
    return answer(res, upstreamUnreachable(`Bedrock Budget lost the connection to Bedrock mid-response: ${(err as Error).message}`));
  }
  // Billed per text unit, not per token: a guardrail's record carries no tokens.
  const base = { usage: { ...ZERO_USAGE }, status, ...(requestId ? { requestId } : {}) };
  if (status >= 400) {
    await call.settle({ ...base, outcome: "upstream-error", usageEstimated: false }, 0n);
  } else {
    let cost: bigint | undefined;
    try {
      cost = guardrailCost(JSON.parse(answerBody.toString("utf8")), pricing);
    } catch {
      cost = undefined;
    }
    if (cost === undefined) await call.settleAtWorstCase("ok", status, "ApplyGuardrail reported no usage; charged the worst case");
    else await call.settle({ ...base, outcome: "ok", usageEstimated: false, message: `${units} text units` }, cost);
  }
  send(res, status, relayHeaders(upstream), answerBody);
}

/** The caller left before Bedrock's status: an error settles at $0; a started answer is stopped and charged the worst case. */
async function settleLeftCaller(ctx: GatewayContext, call: MeteredCall, upstream: import("node:http").IncomingMessage, res: AnyResponse): Promise<void> {
  if ((upstream.statusCode ?? 502) >= 400) return relayBuffered(call, upstream, res); // settles an error at $0; nobody is left to answer
  upstream.destroy(); // stop generation
  await call.settleAtWorstCase("client-aborted", 499, "the caller closed the stream before Bedrock's answer began");
  ctx.log.info(`${call.who.operation} ${call.who.modelId}: the caller left before the answer began (charged the worst case)`);
}

/** `callerLeft`: the caller went away first (the upstream request was then given up on its behalf). */
async function failedBeforeAnswer(ctx: GatewayContext, call: MeteredCall, res: AnyResponse, err: unknown, callerLeft = false): Promise<void> {
  const message = (err as Error).message;
  if (err instanceof UpstreamError && err.notSent) {
    // Never reached Bedrock: nothing can have been charged.
    await call.settle({ outcome: "upstream-error", usage: { ...ZERO_USAGE }, usageEstimated: false, status: 502, message }, 0n);
    return answer(res, upstreamUnreachable(`Bedrock Budget could not reach Bedrock: ${message}`));
  }
  const clientGone = callerLeft || callerGone(res);
  await call.settleAtWorstCase(clientGone ? "client-aborted" : "upstream-failed", clientGone ? 499 : 502, message);
  ctx.log.warn(`${call.who.operation} ${call.who.modelId}: ${message} (charged the worst case)`);
  return answer(res, upstreamUnreachable(`Bedrock Budget lost the connection to Bedrock: ${message}`));
}

async function passThrough(x: Exchange, route: Route): Promise<void> {
  const { ctx, res, forward, who } = x;
  const aborter = new AbortController();
  res.once("close", () => aborter.abort());
  try {
    const upstream = await forward(aborter.signal);
    const body = await readAll(upstream);
    const status = upstream.statusCode ?? 502;
    if (who && (route.kind === "model" || route.kind === "guardrail")) {
      const requestId = upstream.headers["x-amzn-requestid"];
      await recordFreeCall(ctx, who, route.kind === "model" ? ctx.prices.rates(who.modelId).baseModelId : who.modelId, {
        status,
        ...(typeof requestId === "string" ? { requestId } : {}),
        ...(route.operation === "ApplyGuardrail" ? { message: "ApplyGuardrail is billed per text unit, which Bedrock Budget does not price" } : {}),
      });
    } else {
      ctx.log.info(`forwarded an unmetered request (${status})`);
    }
    send(res, status, relayHeaders(upstream), body);
  } catch (err) {
    answer(res, upstreamUnreachable(`Bedrock Budget could not reach Bedrock: ${(err as Error).message}`));
  }
}

async function forwardUpstream(
  ctx: GatewayContext,
  auth: Extract<Authenticated, { ok: true }>,
  input: { method: string; rawPath: string; headers: AnyRequest["headers"]; body: Buffer; bodyRewritten: boolean; signal: AbortSignal | undefined; scope: CallScope },
) {
  let target: UpstreamTarget;
  let outbound: Record<string, string>;
  try {
    target = upstreamTarget(ctx.config.upstreamEndpoint, auth.region);
    const headers = forwardableHeaders(input.headers);
    if (auth.kind === "bearer") {
      outbound = { ...headers, authorization: String(input.headers.authorization), "content-length": String(input.body.byteLength) };
    } else {
      outbound = signUpstream({
        method: input.method,
        rawPath: input.rawPath,
        headers,
        body: input.body,
        target,
        region: auth.region,
        credentials: auth.credentials,
        // The caller's body hash only for the caller's bytes: a rewritten body is hashed anew as it is signed.
        ...(input.bodyRewritten ? {} : { bodySha256: auth.bodySha256 }),
      });
    }
  } catch (err) {
    // No request was issued yet (no upstream address, no signature): nothing can have been charged.
    return Promise.reject(new UpstreamError(`Bedrock Budget could not prepare the request for Bedrock: ${(err as Error).message}`, true));
  }
  return sendUpstream({ target, method: input.method, rawPath: input.rawPath, headers: outbound, body: input.body, ...(input.signal ? { signal: input.signal } : {}), scope: input.scope });
}

/**
 * A header carries printable ASCII only (a cap id may hold a caller's name, such as 李雷): anything
 * else is percent-encoded as UTF-8, '%' too, so the value decodes back exactly.
 */
function headerValue(value: string): string {
  return value.replace(/[^\x20-\x24\x26-\x7e]+/g, (text) => Array.from(Buffer.from(text, "utf8"), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`).join(""));
}

export function answer(res: AnyResponse, error: ErrorAnswer): void {
  send(res, error.status, error.headers, error.body);
}

/** Who is calling what: the ledger's view of one call. */
function identify<Op extends Operation>(req: AnyRequest, operation: Op, modelId: string, startedAt: Date, tags: Record<string, string>) {
  return { id: randomUUID(), operation, modelId, tool: callerTool(header(req, "user-agent")), tags, startedAt };
}

/**
 * A call's tags: its X-Bedrock-Budget-Tags header over its Converse requestMetadata over the
 * default `tags` setting. A metered call whose tags break the grammar is refused (`problem`):
 * a cap may be scoped to a tag, so the gateway does not guess what was meant.
 */
function callTags(ctx: GatewayContext, req: AnyRequest, bodyTags: Record<string, string> = {}): { tags: Record<string, string>; problem?: string } {
  const parsed = parseTagsHeader(header(req, "x-bedrock-budget-tags"));
  const headerTags = parsed.tags;
  const problem =
    (parsed.problem !== undefined ? `the X-Bedrock-Budget-Tags header ${parsed.problem}` : undefined) ??
    tagProblem(headerTags, "the X-Bedrock-Budget-Tags header") ??
    tagProblem(bodyTags, "requestMetadata");
  return { tags: mergeTags(ctx.config.tags, bodyTags, headerTags), ...(problem ? { problem } : {}) };
}

function header(req: AnyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The operations Bedrock takes the tier headers for (InvokeModel's request shapes); the others are refused with them. */
const TIER_HEADER_OPERATIONS: ReadonlySet<Operation> = new Set<Operation>(["InvokeModel", "InvokeModelWithResponseStream"]);
const TIER_HEADERS = ["x-amzn-bedrock-service-tier", "x-amzn-bedrock-performanceconfig-latency"] as const;

function isMetered(operation: Operation): operation is MeteredOperation {
  return operation !== "CountTokens" && operation !== "ApplyGuardrail";
}

/**
 * Converse's `requestMetadata` (string pairs the caller attaches for cost tracking) become tags,
 * every entry as sent: the grammar (tagProblem) refuses too many, too long or not strings, nothing is cut.
 */
function requestMetadataTags(operation: MeteredOperation, json: JsonObject): Record<string, string> {
  if (operation !== "Converse" && operation !== "ConverseStream") return {};
  const metadata = json.requestMetadata;
  if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) return {};
  return { ...(metadata as Record<string, string>) };
}
