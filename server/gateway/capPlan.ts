/**
 * Applies caps' actions to one call before it is admitted: reads the figures of the caps that apply,
 * asks the pure decision (policy/capActions.ts), and rewrites the request it names (model id in the
 * path, output limit in the body), re-priced by the one estimator. The reservation that follows
 * still checks every cap: a plan that no longer fits is refused there (fail closed).
 */
import { capAction, capId, type CapConfig, type GuardrailPricing } from "../config/schema";
import { capFiguresOf, decideCapActions, worstCaseOf, type CallWorstCase, type CapDecision } from "../policy/capActions";
import { attachedGuardrail, guardrailWorstCaseLine } from "../metering/attachedGuardrail";
import { estimateParsed, type Estimate } from "../metering/estimate";
import { downgradeProblem, invokeBodyFormat, withModelInPath } from "../metering/bodyRewrite";
import { adaptiveThinkingField, additionalFieldNames, isConverse, mediaBlockAt, reasoningBlockAt, samplingFields, thinkingBudget, toolRequest, withMaxTokensAtMost, type JsonObject } from "../metering/requestBody";
import type { PricingScope } from "../metering/prices";
import type { ProfileAnswer } from "../metering/profiles";
import { parseModelId } from "../metering/modelId";
import type { AppliedTier, MeteredOperation } from "../metering/types";
import type { CapActionTaken } from "../protocol";
import type { CallSubject } from "../budget/capMatch";
import { capsInForce } from "../policy/plans";
import type { GatewayContext } from "./context";

/** The request as it will be forwarded, and what caps did to it. */
export interface PlannedCall {
  /** The model that answers (the asked one unless downgraded). */
  modelId: string;
  downgraded: boolean;
  rawPath: string;
  body: Buffer;
  /** True when `body` is not the bytes the caller signed (its hash must be recomputed). */
  bodyRewritten: boolean;
  estimate: Estimate;
  actions: CapActionTaken[];
  /** Response headers that say what happened (x-bedrock-budget-*). */
  headers: Record<string, string>;
}

/**
 * A call a cap's action cannot be applied to safely is refused, never forwarded: `capId` names the
 * cap; `invalid`: the request cannot take the action (a 400 ValidationException), else the cap refuses it.
 */
export type Plan = { ok: true; call: PlannedCall } | { ok: false; capId: string; message: string; invalid: boolean };

export interface AskedCall {
  operation: MeteredOperation;
  modelId: string;
  rawPath: string;
  json: JsonObject;
  body: Buffer;
  estimate: Estimate;
  /** The tier asked for in InvokeModel's request headers: re-estimates of a rewritten call price it too. */
  requestedTier?: AppliedTier;
  /** The pricing scope the asked call was estimated with (region; profile). */
  scope: PricingScope;
  /** What the application inference profiles caps downgrade to stand for, looked up before planning (downgradeTargets). */
  downgradeProfiles?: ReadonlyMap<string, ProfileAnswer>;
  /** Who calls, for caps scoped to callers, users or tags. */
  subject: Omit<CallSubject, "modelId" | "baseModelId">;
  /** A priced guardrail the call names: its worst case counts in every decision, as it will in the reservation. */
  guardrail?: { id: string; inputUnits: number; pricing: GuardrailPricing };
}

/** downgradeTargets per settings object: a context's config is replaced, never changed, when settings change. */
const targetsOf = new WeakMap<GatewayContext["config"], string[]>();

/**
 * Application inference profiles that caps in force downgrade to: looked up (bounded, cached)
 * before a call is planned. Worked out once per settings, not on every call.
 */
export function downgradeTargets(ctx: GatewayContext): string[] {
  const known = targetsOf.get(ctx.config);
  if (known) return known;
  const targets = new Set<string>();
  for (const cap of capsInForce(ctx.config)) {
    if (capAction(cap) === "downgrade" && cap.downgradeTo && parseModelId(cap.downgradeTo).arnKind === "application-inference-profile") targets.add(cap.downgradeTo);
  }
  const list = [...targets];
  targetsOf.set(ctx.config, list);
  return list;
}

/**
 * Plans the call. Synchronous on purpose: the caller admits the plan in the same turn of the
 * event loop, so the personal caps' figures it was decided on are the ones the reservation meets.
 */
export function planCall(ctx: GatewayContext, asked: AskedCall): Plan {
  const inForce = capsInForce(ctx.config); // tier caps too, one per caller
  const caps = new Map(inForce.map((c) => [capId(c), c]));
  let call: PlannedCall = { modelId: asked.modelId, downgraded: false, rawPath: asked.rawPath, body: asked.body, bodyRewritten: false, estimate: asked.estimate, actions: [], headers: {} };
  // Without any action other than block, nothing to decide: the reservation is the whole check.
  if (!inForce.some((c) => capAction(c) !== "block")) return { ok: true, call };

  let decision = decide(ctx, caps, asked, call, false);
  // The body as it will be sent: a downgrade may lower its output limit, and a clamp then reads that.
  let json = asked.json;
  if (decision.kind === "downgrade") {
    const { capId: by, to: target } = decision;
    const refuse = (why: string): Plan => ({ ok: false, capId: by, invalid: true, message: `Bedrock Budget cap "${by}" downgrades "${asked.modelId}" to "${target}", but ${why}` });
    // An application inference profile is priced as the model behind it, as when a call names it.
    const profile = asked.downgradeProfiles?.get(decision.to);
    const scope = { ...(asked.scope.region ? { region: asked.scope.region } : {}), ...(profile ? { profile } : {}) };
    let estimate = estimateParsed(asked.operation, decision.to, json, ctx.prices, asked.requestedTier, scope);
    const from = { modelId: asked.modelId, baseModelId: asked.estimate.rates.baseModelId };
    const to = { modelId: decision.to, baseModelId: estimate.rates.baseModelId };
    const problem = downgradeProblem(asked.operation, from, to, json) ?? requestFieldsProblem(asked.operation, json, from, to);
    if (problem) return refuse(problem);
    const actions: CapActionTaken[] = [{ capId: decision.capId, action: "downgrade", detail: `${asked.modelId} -> ${decision.to}` }];
    const headers: Record<string, string> = { "x-bedrock-budget-answered-by": decision.to };
    // An output limit above what the answering model can write is refused by Bedrock. The cap chose
    // that model, not the caller: the limit is lowered to its maximum (it could write no more), and said so.
    const targetMax = estimate.rates.maxOutputTokens;
    if (estimate.rates.known && estimate.outputFromRequest && estimate.maxOutputTokens > targetMax && outputBeta(json, isConverse(asked.operation)) === undefined) {
      const thinking = thinkingBudget(json, isConverse(asked.operation));
      if (thinking !== undefined && targetMax <= thinking.tokens) {
        return refuse(`"${decision.to}" writes at most ${targetMax} output tokens, at or below the request's thinking budget (${thinking.field} ${thinking.tokens}), so Bedrock would refuse the call. Lower ${thinking.field} below ${targetMax}, or set downgradeTo to a model that writes more.`);
      }
      const lowered = withMaxTokensAtMost(json, targetMax, asked.operation);
      if (!lowered) return refuse(`the request's output limit (${estimate.maxOutputTokens}) is above "${decision.to}"'s maximum of ${targetMax} tokens, and the gateway cannot lower it. Set an output limit of ${targetMax} or less.`);
      const detail = `maxTokens=${estimate.maxOutputTokens}->${targetMax}`;
      actions.push({ capId: decision.capId, action: "clamp", detail: `${detail}, the most ${decision.to} writes` });
      headers["x-bedrock-budget-clamped"] = `${detail}; cap=${decision.capId}`;
      json = lowered;
      estimate = estimateParsed(asked.operation, decision.to, json, ctx.prices, asked.requestedTier, scope);
      call = { ...call, body: Buffer.from(JSON.stringify(json), "utf8"), bodyRewritten: true };
    }
    call = {
      ...call,
      modelId: decision.to,
      downgraded: true,
      rawPath: withModelInPath(asked.rawPath, decision.to),
      estimate,
      actions,
      headers,
    };
    decision = decide(ctx, caps, asked, call, true);
  }
  if (decision.kind === "block" || decision.kind === "downgrade") return { ok: true, call }; // the reservation refuses it, with the cap's figures

  if (decision.kind === "clamp") {
    const converse = isConverse(asked.operation);
    const cannotClamp = (why: string) => ({
      ok: false as const,
      capId: decision.capId,
      invalid: false,
      message: `Bedrock Budget cap "${decision.capId}" would lower this call's output limit to ${decision.toTokens} tokens so that it fits, but ${why}`,
    });
    const thinking = thinkingBudget(json, converse);
    if (thinking !== undefined && decision.toTokens <= thinking.tokens) {
      return cannotClamp(
        `the request's thinking budget (budget_tokens ${thinking.tokens}) needs an output limit above it, which the cap has no room for. ` +
          `Lower ${thinking.field}, or wait for the cap to reset.`,
      );
    }
    const clamped = withMaxTokensAtMost(json, decision.toTokens, asked.operation);
    if (!clamped) return cannotClamp("the request body sets no output limit the gateway can lower (e.g. max_tokens). Set the model's output limit in the request.");
    const body = Buffer.from(JSON.stringify(clamped), "utf8");
    const estimate = estimateParsed(asked.operation, call.modelId, clamped, ctx.prices, asked.requestedTier, call.estimate.scope);
    const clamp = `maxTokens=${decision.fromTokens}->${decision.toTokens}; cap=${decision.capId}`;
    call = {
      ...call,
      body,
      bodyRewritten: true,
      estimate,
      actions: [...call.actions, { capId: decision.capId, action: "clamp", detail: `maxTokens=${decision.fromTokens}->${decision.toTokens}` }],
      // After a downgrade lowered the limit to its model's maximum, both rewrites are said.
      headers: { ...call.headers, "x-bedrock-budget-clamped": [call.headers["x-bedrock-budget-clamped"], clamp].filter(Boolean).join(", ") },
    };
  }
  if (decision.warned.length > 0) {
    call = {
      ...call,
      actions: [...call.actions, ...decision.warned.map((id): CapActionTaken => ({ capId: id, action: "warn", detail: "could pass its limit: let through (action warn)" }))],
      headers: { ...call.headers, "x-bedrock-budget-warning": decision.warned.map((id) => `cap=${id} could pass its limit`).join(", ") },
    };
  }
  return { ok: true, call };
}

/**
 * Why a call's model-specific request fields cannot go to the downgrade's model, or undefined:
 * Converse hands `additionalModelRequestFields` to the model as they are, and a model of another
 * family refuses another's (Anthropic's thinking, top_k, anthropic_beta on Nova or Llama); an
 * extended-thinking budget (either operation) is refused by a Claude without extended thinking or
 * one that thinks adaptively only, adaptive thinking by a Claude before 4.6, sampling parameters by
 * the latter, the output beta by any Claude but 3.7 Sonnet, temperature with top_p by a Claude that
 * takes only one; another provider's reasoning blocks, images, documents and tools (in a stream, or a
 * forced tool choice) by a model without them. The model facts are the tables below. Such fields are
 * never dropped: they change what the caller asked for.
 */
function requestFieldsProblem(operation: MeteredOperation, json: JsonObject, from: { modelId: string; baseModelId: string }, to: { modelId: string; baseModelId: string }): string | undefined {
  const converse = isConverse(operation);
  const fields = converse ? additionalFieldNames(json) : [];
  const was = fieldFamily(from.baseModelId);
  const now = fieldFamily(to.baseModelId);
  // A family the gateway cannot tell (an ARN that does not name its model) is never taken for the same one.
  if (fields.length > 0 && (was === undefined || was !== now)) {
    const named = fields.map((f) => `additionalModelRequestFields.${f}`).join(", ");
    const said = (family: string | undefined) => family ?? "a provider Bedrock Budget cannot tell from its id";
    return (
      `the request sets ${named}, which Converse passes to the model as it is: fields for "${from.modelId}" (${said(was)}) ` +
      `that "${to.modelId}" (${said(now)}) ${now === undefined ? "may not take, so Bedrock may refuse the call" : "does not take, so Bedrock would refuse the call"}. ` +
      `Remove them from calls this cap may downgrade, or set downgradeTo to a model of the same provider family.`
    );
  }
  const thinking = thinkingBudget(json, converse);
  if (thinking !== undefined && fieldFamily(to.baseModelId) === "Anthropic" && !EXTENDED_THINKING.test(to.baseModelId.toLowerCase())) {
    return (
      `the request enables extended thinking (${thinking.field} ${thinking.tokens}), which "${to.modelId}" does not support, so Bedrock would refuse the call. ` +
      `Turn thinking off for calls this cap may downgrade, or set downgradeTo to a model with extended thinking (Claude 3.7 Sonnet, Claude 4 and later).`
    );
  }
  const target = to.baseModelId.toLowerCase();
  if (thinking !== undefined && ADAPTIVE_ONLY.test(target)) {
    return (
      `the request sets an extended-thinking budget (${thinking.field} ${thinking.tokens}), which "${to.modelId}" does not take (it thinks adaptively only: thinking.type "adaptive"), so Bedrock would refuse the call. ` +
      `Turn thinking off (or ask adaptive thinking) in calls this cap may downgrade, or set downgradeTo to a model that takes a budget (Claude 3.7 Sonnet to Claude 4.6).`
    );
  }
  const sampling = samplingFields(json, converse);
  // Adaptive-only models refuse a non-default sampler: temperature 1 (the default) is sent on.
  const nonDefault = samplingFields(json, converse, { exceptDefaultTemperature: true });
  const samplers = [nonDefault.temperature, nonDefault.topP, nonDefault.topK].filter((f): f is string => f !== undefined);
  if (samplers.length > 0 && ADAPTIVE_ONLY.test(target)) {
    return (
      `the request sets ${samplers.join(", ")}, sampling parameters "${to.modelId}" does not take, so Bedrock would refuse the call. ` +
      `Leave temperature, top_p and top_k unset in calls this cap may downgrade, or set downgradeTo to a model that takes them (Claude 4.6 and earlier).`
    );
  }
  const adaptive = adaptiveThinkingField(json, converse);
  if (adaptive !== undefined && fieldFamily(to.baseModelId) === "Anthropic" && !ADAPTIVE_THINKING.test(target) && !ADAPTIVE_ONLY.test(target)) {
    return (
      `the request asks adaptive thinking (${adaptive} "adaptive"), which "${to.modelId}" does not support (Claude Opus and Sonnet 4.6 and later do), so Bedrock would refuse the call. ` +
      `Turn thinking off for calls this cap may downgrade, or set downgradeTo to a model with adaptive thinking.`
    );
  }
  const beta = outputBeta(json, converse);
  if (beta !== undefined && fieldFamily(to.baseModelId) === "Anthropic" && !OUTPUT_BETA.test(target)) {
    return (
      `the request asks Anthropic's output beta ${beta} (${converse ? "additionalModelRequestFields." : ""}anthropic_beta), which only Claude 3.7 Sonnet takes: "${to.modelId}" refuses it and writes less, so Bedrock would refuse the call. ` +
      `Remove the beta (and keep the output limit within the cheaper model's maximum) in calls this cap may downgrade, or set downgradeTo to Claude 3.7 Sonnet.`
    );
  }
  if (sampling.temperature && sampling.topP && ONE_SAMPLER.test(target)) {
    return (
      `the request sets both ${sampling.temperature} and ${sampling.topP}, and "${to.modelId}" refuses temperature and top_p together, so Bedrock would refuse the call. ` +
      `Send only one of them in calls this cap may downgrade, or set downgradeTo to a model that takes both (Claude 3.x, Claude Sonnet 4, Claude Opus 4).`
    );
  }
  // Reasoning is signed by the model that wrote it: another provider's model refuses the block (Nova,
  // which reasons too, and a family the id does not say are left to Bedrock: their rule is not known here).
  const reasoning = converse ? reasoningBlockAt(json) : undefined;
  if (reasoning !== undefined && now !== undefined && now !== was && now !== "Amazon Nova") {
    return (
      `the conversation carries reasoning from an earlier turn (${reasoning}), which "${to.modelId}" (${now}) does not take from another provider's model, so Bedrock would refuse the call. ` +
      `Leave reasoning blocks out of the history in calls this cap may downgrade, or set downgradeTo to a model of the same provider family.`
    );
  }
  const image = mediaBlockAt(json, "image");
  if (image !== undefined && NO_VISION.test(target)) {
    return (
      `the request carries an image (${image}), and "${to.modelId}" takes no images, so Bedrock would refuse the call. ` +
      `Set downgradeTo to a model with vision (Claude 3 and later but 3.5 Haiku, Nova Lite, Pro and Premier, Llama 3.2 11B/90B and Llama 4), or keep calls with images out of this cap.`
    );
  }
  const document = mediaBlockAt(json, "document");
  if (document !== undefined && NO_DOCUMENTS.test(target)) {
    return (
      `the request carries a document (${document}), and "${to.modelId}" takes no documents, so Bedrock would refuse the call. ` +
      `Set downgradeTo to a model with document chat (Claude, Nova Lite, Pro and Premier, Llama, Mistral), or keep calls with documents out of this cap.`
    );
  }
  const tools = toolRequest(json, converse);
  if (tools.tools && NO_TOOL_USE.test(target)) {
    return (
      `the request offers tools (${tools.tools}), and "${to.modelId}" has no tool use, so Bedrock would refuse the call. ` +
      `Set downgradeTo to a model with tool use (Claude 3 and later, Amazon Nova, Llama 3.1 and later, Mistral Large, Command R), or keep tool calls out of this cap.`
    );
  }
  if (tools.tools && operation === "ConverseStream" && NO_STREAMING_TOOL_USE.test(target)) {
    return (
      `the request offers tools (${tools.tools}) in a stream, and "${to.modelId}" takes tools only in Converse, not ConverseStream, so Bedrock would refuse the call. ` +
      `Set downgradeTo to a model with streaming tool use (Claude 3 and later, Amazon Nova, Command R), or call Converse for tool calls this cap may downgrade.`
    );
  }
  // A family the gateway cannot tell is left to Bedrock: tool choice is Converse's own field, not a provider's.
  if (tools.forced && fieldFamily(to.baseModelId) !== undefined && !takesToolChoice(target, tools.forced.form)) {
    const why = tools.forced.form === "any" ? "Meta Llama refuses toolChoice any" : "Bedrock documents a named tool choice for Claude 3 and later and Amazon Nova only";
    return (
      `the request forces a tool choice (${tools.forced.field}), which "${to.modelId}" does not take (${why}), so Bedrock would refuse the call. ` +
      `Leave the tool choice to the model (auto) in calls this cap may downgrade, or set downgradeTo to one of those models.`
    );
  }
  return undefined;
}

/**
 * The first Anthropic output beta (`output-128k-…` on Claude 3.7 Sonnet) a request's anthropic_beta
 * asks, or undefined. It raises the model's maximum past the price table's: a limit asked with one
 * is left to Bedrock, not lowered (a downgrade to another model with one is refused first).
 */
function outputBeta(json: JsonObject, converse: boolean): string | undefined {
  const fields = converse ? json.additionalModelRequestFields : json;
  const betas = fields && typeof fields === "object" && !Array.isArray(fields) ? (fields as JsonObject).anthropic_beta : undefined;
  return Array.isArray(betas) ? betas.find((b): b is string => typeof b === "string" && b.startsWith("output-")) : undefined;
}

/** Claude models with extended thinking: 3.7 Sonnet, and the Sonnet, Opus and Haiku of generation 4 and later. */
const EXTENDED_THINKING = /^anthropic\.claude-(?:3-7-|(?:sonnet|opus|haiku)-[4-9])/;

/**
 * Claude models with adaptive thinking (`thinking.type` "adaptive"): Opus and Sonnet 4.6, and every
 * Claude after them; Claude 4.5 and earlier refuse it.
 */
const ADAPTIVE_THINKING = /^anthropic\.claude-(?:(?:sonnet|opus|haiku)-(?:4-[6-9]|[5-9]))/;

/**
 * Claude models that think adaptively only and take no sampling parameters: Opus 4.7 and later, and
 * generation 5 (Anthropic's migration guide to Opus 4.7: `thinking.type` "enabled" and a non-default
 * temperature, top_p or top_k are answered with a 400).
 */
const ADAPTIVE_ONLY = /^anthropic\.claude-(?:opus-4-[7-9]|[a-z]+-[5-9](?:$|[-.:]))/;

/**
 * The Claude that takes Anthropic's output beta (`output-128k-2025-02-19`): 3.7 Sonnet only; Bedrock
 * answers another Claude "invalid beta flag".
 */
const OUTPUT_BETA = /^anthropic\.claude-3-7-sonnet/;

/**
 * Claude models that refuse temperature and top_p set together ("`temperature` and `top_p` cannot
 * both be specified for this model"): Opus 4.1 and every Claude from 4.5 on (Anthropic's migration
 * guide to Claude 4.5: use only one of them).
 */
const ONE_SAMPLER = /^anthropic\.claude-(?:opus-4-1|(?:sonnet|opus|haiku)-(?:4-[5-9]|[5-9]))/;

/**
 * Models Bedrock documents without tool use (Converse's supported-models table): Titan Text, Claude 2.x
 * and Instant, Llama 2, 3 and 3.2 1B/3B (3.1, 3.2 11B/90B and later have it), Mistral 7B and Mixtral,
 * Cohere Command (text), AI21 Jurassic-2 and Jamba-Instruct.
 */
const NO_TOOL_USE = /^(?:amazon\.titan-text|anthropic\.claude-(?:v2|instant-v1)|meta\.llama(?:2|3-(?:8b|70b)|3-2-(?:1b|3b))-|mistral\.(?:mistral-7b|mixtral-8x7b)|cohere\.command-(?:text|light-text)|ai21\.(?:j2|jamba-instruct))/;

/**
 * Models that take no images (Converse's supported-models table, "vision"; text-only models): Claude
 * 2.x, Instant and 3.5 Haiku, Nova Micro, Titan Text, Cohere Command, Llama 2, 3, 3.1, 3.2 1B/3B and
 * 3.3, Mistral's text models, AI21, DeepSeek and gpt-oss.
 */
const NO_VISION =
  /^(?:anthropic\.claude-(?:v2|instant-v1|3-5-haiku)|amazon\.(?:nova-micro|titan-text)|cohere\.command|meta\.llama(?:2|3-(?:8b|70b)|3-1-|3-2-(?:1b|3b)-|3-3-)|mistral\.(?:mistral-7b|mixtral|mistral-small|mistral-large-24)|ai21\.|deepseek\.|openai\.gpt-oss)/;

/** Models without document chat (Converse's supported-models table): Nova Micro, Titan Text Premier, Cohere Command Light, AI21 Jamba-Instruct. */
const NO_DOCUMENTS = /^(?:amazon\.(?:nova-micro|titan-text-premier)|cohere\.command-light|ai21\.jamba-instruct)/;

/**
 * Models with tool use but not in a stream (the same table's "streaming tool use"; Bedrock answers
 * ConverseStream "doesn't support tool use in streaming mode"): Llama 3.1, 3.2 11B/90B and 3.3, Mistral Large (2402, 2407).
 */
const NO_STREAMING_TOOL_USE = /^(?:meta\.llama3-(?:1-|2-(?:11b|90b)-|3-)|mistral\.mistral-large-(?:2402|2407))/;

/**
 * Whether a model takes a forced tool choice: `tool` (a named tool) only on Claude 3 and later and
 * Nova's chat models (Bedrock's ToolChoice reference); `any`, which that reference restricts to no
 * model, is refused by Meta Llama (reported live: "toolChoice.any") and left to Bedrock elsewhere
 * (gpt-oss takes it).
 */
function takesToolChoice(baseModelId: string, form: "any" | "tool"): boolean {
  const format = invokeBodyFormat(baseModelId);
  if (format === "Anthropic Messages" || format === "Amazon Nova") return true;
  return form === "any" && !baseModelId.startsWith("meta.llama");
}

/**
 * Which family's model-specific fields a base model reads: the InvokeModel body format when the gateway
 * knows it (Claude's two are one family), else the provider prefix (`mistral`, `deepseek`, …);
 * undefined when the id names no provider (an ARN that does not say which model it is).
 */
function fieldFamily(baseModelId: string): string | undefined {
  const format = invokeBodyFormat(baseModelId);
  if (format !== undefined) return format.startsWith("Anthropic") ? "Anthropic" : format;
  return /^([a-z0-9-]+)\./.exec(baseModelId.toLowerCase())?.[1];
}

/** The decision on the caps that apply to the call's (answering) model, at their figures now. */
function decide(ctx: GatewayContext, caps: ReadonlyMap<string, CapConfig>, asked: AskedCall, call: PlannedCall, downgraded: boolean): CapDecision {
  const ids = ctx.caps.applicable({ ...asked.subject, modelId: call.modelId, baseModelId: call.estimate.rates.baseModelId });
  const figures = capFiguresOf(ctx.caps.status(ctx.now()), ids, caps);
  return decideCapActions(figures, withGuardrail(worstCaseOf(call.modelId, call.estimate), asked.guardrail), downgraded);
}

/**
 * The call's worst case with its guardrail's: exact at the asked limit, and a line in the limit
 * never below it for a clamp to solve. Decided on the model's part alone, a clamp filled the cap's
 * room exactly and the guardrail's part then made the reservation refuse the call.
 */
function withGuardrail(call: CallWorstCase, guardrail: AskedCall["guardrail"]): CallWorstCase {
  if (!guardrail) return call;
  const line = guardrailWorstCaseLine(guardrail.inputUnits, guardrail.pricing);
  return {
    ...call,
    worstCasePicos: call.worstCasePicos + attachedGuardrail(guardrail.id, guardrail.inputUnits, call.maxOutputTokens, guardrail.pricing).worstCasePicos,
    fixedPicos: call.fixedPicos + line.fixedPicos,
    outputRatePicos: call.outputRatePicos + line.perOutputTokenPicos,
  };
}
