/**
 * What a cap's action may change in a request before it is forwarded: the model id in the path
 * (downgrade) and, for InvokeModel, whether two models read one body format (pure, no I/O). The
 * output-limit rewrite lives with the paths it reads, in requestBody.ts (withMaxTokensAtMost), as does
 * the thinking budget a clamp must stay above (thinkingBudgetTokens).
 */
import { isConverse } from "./requestBody";
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

/**
 * Why a call of `operation` on `from` cannot be sent to `to` with the same body, or undefined when
 * it can: Converse is one format for every model; InvokeModel bodies are the provider's own.
 */
export function downgradeProblem(operation: MeteredOperation, from: { modelId: string; baseModelId?: string }, to: { modelId: string; baseModelId?: string }): string | undefined {
  if (isConverse(operation)) return undefined;
  const a = invokeBodyFormat(from.baseModelId);
  const b = invokeBodyFormat(to.baseModelId);
  if (a !== undefined && a === b) return undefined;
  // A Messages body (all a Claude 3 or later body can be) is read by the legacy models too; the other
  // way, a Text Completions body is refused by Claude 3 and later.
  if (a === ANTHROPIC_MESSAGES && b === ANTHROPIC_LEGACY) return undefined;
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
