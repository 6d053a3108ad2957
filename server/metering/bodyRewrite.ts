/**
 * What a cap's action may change in a request before it is forwarded: the model id in the path
 * (downgrade) and, for InvokeModel, whether two models read one body format (pure, no I/O). The
 * output-limit rewrite lives with the paths it reads, in requestBody.ts (withMaxTokensAtMost), as does
 * the thinking budget a clamp must stay above (thinkingBudget).
 */
import { isConverse, type JsonObject } from "./requestBody";
import type { MeteredOperation } from "./types";

const ANTHROPIC_MESSAGES = "Anthropic Messages";
/** Claude 2.x and Instant read Text Completions bodies (`prompt`, `max_tokens_to_sample`) as well as Messages. */
const ANTHROPIC_LEGACY = "Anthropic Text Completions or Messages";

/**
 * The InvokeModel body format a base model reads, when the gateway knows it is shared by a whole
 * family (a body written for one member is valid for another); undefined when it does not know.
 */
export function invokeBodyFormat(baseModelId: string | undefined): string | undefined {
  if (!baseModelId) return undefined;
  const id = baseModelId.toLowerCase();
  if (/^anthropic\.claude-(?:v2|instant-v1)(?:$|[:-])/.test(id)) return ANTHROPIC_LEGACY;
  if (id.startsWith("anthropic.claude")) return ANTHROPIC_MESSAGES;
  // Only Nova's understanding (chat) models: Canvas, Reel, Sonic and the embedding models share the
  // prefix but read other bodies (taskType …), which Bedrock refuses on a chat model and vice versa.
  if (/^amazon\.nova-(?:2-)?(?:micro|lite|pro|premier)-/.test(id)) return "Amazon Nova";
  if (id.startsWith("amazon.titan-text")) return "Amazon Titan Text";
  if (id.startsWith("meta.llama")) return "Meta Llama";
  if (id.startsWith("cohere.command-r")) return "Cohere Command R";
  return undefined;
}

/** A Text Completions body (`prompt`, `max_tokens_to_sample`, no `messages`): Claude 2.x and Instant read it, Claude 3 and later refuse it. */
function isTextCompletions(body: JsonObject): boolean {
  return !Array.isArray(body.messages) && (typeof body.prompt === "string" || body.max_tokens_to_sample !== undefined);
}

/**
 * Why a call of `operation` on `from` cannot be sent to `to` with the same body, or undefined when
 * it can: Converse is one format for every model; InvokeModel bodies are the provider's own.
 * `body`: the request's, when known (the what-if has none: a legacy Claude's is then taken for Messages).
 */
export function downgradeProblem(operation: MeteredOperation, from: { modelId: string; baseModelId?: string }, to: { modelId: string; baseModelId?: string }, body?: JsonObject): string | undefined {
  if (isConverse(operation)) return undefined;
  const a = invokeBodyFormat(from.baseModelId);
  const b = invokeBodyFormat(to.baseModelId);
  if (a !== undefined && a === b) return undefined;
  // A Messages body (all a Claude 3 or later body can be) is read by the legacy models too. A legacy
  // model's body goes to Claude 3 and later when it is Messages; a Text Completions one is refused there.
  if (a === ANTHROPIC_MESSAGES && b === ANTHROPIC_LEGACY) return undefined;
  if (a === ANTHROPIC_LEGACY && b === ANTHROPIC_MESSAGES) {
    if (!body || !isTextCompletions(body)) return undefined;
    return (
      `the request is an Anthropic Text Completions body (prompt, max_tokens_to_sample), which "${from.modelId}" reads and "${to.modelId}" refuses (Claude 3 and later read Messages only), ` +
      `so the request cannot be downgraded safely. Send the Messages format (messages, max_tokens), use Converse, or set downgradeTo to Claude 2.x or Instant.`
    );
  }
  const said = (f: string | undefined) => f ?? "a body format Bedrock Budget does not know how to carry over";
  return (
    `${operation} sends the provider's own body format, and "${from.modelId}" reads ${said(a)} while "${to.modelId}" reads ${said(b)}, ` +
    `so the request cannot be downgraded safely. Use Converse (one format for every model), or set downgradeTo to a model of the same provider family.`
  );
}

/** The raw request target with the model id segment replaced (`/model/<id>/<operation>?query`). */
export function withModelInPath(rawPath: string, modelId: string): string {
  const q = rawPath.indexOf("?");
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  const m = /^\/model\/[^/]+\/([a-z-]+)$/.exec(path);
  if (!m) throw new Error(`withModelInPath: ${JSON.stringify(path)} is not a model path`);
  return `/model/${encodeURIComponent(modelId)}/${m[1]}${q < 0 ? "" : rawPath.slice(q)}`;
}
