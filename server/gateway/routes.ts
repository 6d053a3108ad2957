/** Which Bedrock Runtime operation a raw request path names. Pure. */
import { INVOKE_MODEL_ID_MAX, isInvokeModelId } from "../metering/modelId";
import type { Operation } from "../metering/types";

export type Route =
  | { kind: "model"; operation: Operation; modelId: string }
  | { kind: "guardrail"; operation: "ApplyGuardrail"; guardrailId: string; version: string }
  | { kind: "unsupported"; what: string } // known to Bedrock, not something the gateway can meter
  | { kind: "unknown" };

const MODEL_OPERATIONS: ReadonlyMap<string, Operation> = new Map(Object.entries({
  invoke: "InvokeModel",
  "invoke-with-response-stream": "InvokeModelWithResponseStream",
  converse: "Converse",
  "converse-stream": "ConverseStream",
  "count-tokens": "CountTokens",
} satisfies Record<string, Operation>));

export function routeOf(method: string, rawPath: string): Route {
  const path = rawPath.split("?")[0] ?? "";
  if (method === "POST") {
    const model = /^\/model\/([^/]+)\/([a-z-]+)$/.exec(path);
    if (model) {
      const operation = MODEL_OPERATIONS.get(model[2]!); // a Map: no inherited keys such as `constructor`
      const modelId = safeDecode(model[1]!);
      if (operation && modelId) return { kind: "model", operation, modelId };
      if (model[2] === "invoke-with-bidirectional-stream") {
        return { kind: "unsupported", what: "InvokeModelWithBidirectionalStream (speech, billed per audio second)" };
      }
    }
    const guardrail = /^\/guardrail\/([^/]+)\/version\/([^/]+)\/apply$/.exec(path);
    if (guardrail) {
      return { kind: "guardrail", operation: "ApplyGuardrail", guardrailId: safeDecode(guardrail[1]!) ?? guardrail[1]!, version: guardrail[2]! };
    }
    if (path === "/async-invoke") return { kind: "unsupported", what: "StartAsyncInvoke (billed later, output to S3)" };
  }
  if (method === "GET" && /^\/async-invoke(\/|$)/.test(path)) {
    return { kind: "unsupported", what: "GetAsyncInvoke / ListAsyncInvokes" };
  }
  return { kind: "unknown" };
}

/**
 * A path the gateway does not know that is another spelling of one it does (`/model/x/%69nvoke`,
 * `/model/x/./invoke`, `//model/x/invoke/`, `/model/x/Invoke`, `/model/x%2Finvoke`,
 * `/model/x/count-tokens%2F..%2Finvoke`, `/model/x/invoke;v=1`): AWS, or a proxy before it, may decode and normalize a
 * path before routing it, so under allowUnmeteredOperations such a spelling could reach a paid
 * operation unmetered. Returns the operation it spells, to be refused; undefined for any other path.
 * An escaped slash (`%2F`) is read both ways: kept inside its segment (an ARN model id holds one,
 * and its calls are routed before this is asked), and as a separator, where a path with an
 * operation's name among its segments is refused.
 */
export function disguisedRoute(method: string, rawPath: string): string | undefined {
  const raw = (rawPath.split("?")[0] ?? "").split("/");
  const decoded: string[] = [];
  for (const part of raw) {
    const segment = safeDecode(part);
    if (segment === undefined) return undefined; // targetProblem names it
    decoded.push(segment);
  }
  const kept = spelledRoute(method, normalized(decoded));
  if (kept) return kept;
  if (!decoded.some((segment) => segment.includes("/"))) return operationWithSuffix(method, normalized(decoded));
  // A decoded "/" read as a separator: the path must not look like an operation, nor hide one's name.
  const pieces = decoded.flatMap((segment) => segment.split("/"));
  const spelled = spelledRoute(method, normalized(pieces)) ?? operationWithSuffix(method, normalized(pieces));
  if (spelled) return spelled;
  // Before dot segments are applied: `invoke%2F..%2Fx` names InvokeModel to a server that decodes but does not normalize.
  const words = pieces.filter((s) => s !== "" && s !== ".").map((s) => s.toLowerCase());
  if (words[0] === "model") {
    for (const word of words.slice(2)) {
      const operation = MODEL_OPERATIONS.get(word);
      if (operation) return operation;
      if (word === "invoke-with-bidirectional-stream") return "InvokeModelWithBidirectionalStream";
    }
  }
  if (words[0] === "guardrail" && words.includes("apply")) return "ApplyGuardrail";
  if (words[0] === "async-invoke") return "StartAsyncInvoke / GetAsyncInvoke / ListAsyncInvokes";
  return undefined;
}

/**
 * A model operation's name followed by what a server before AWS may cut off (`invoke;v=1` path
 * parameters, `invoke.json` an extension, `invoke%00`, `invoke%20`, `invoke\`): the operation, when
 * the rest of the path is a model call's.
 */
function operationWithSuffix(method: string, segments: readonly string[]): string | undefined {
  if (method.toUpperCase() !== "POST" || segments.length !== 3 || segments[0]!.toLowerCase() !== "model") return undefined;
  const stem = /^([a-z-]+)[^a-z-]/i.exec(segments[2]!)?.[1]?.toLowerCase();
  return stem === undefined ? undefined : stem === "invoke-with-bidirectional-stream" ? "InvokeModelWithBidirectionalStream" : MODEL_OPERATIONS.get(stem);
}

/** Decoded segments with empty and `.` segments dropped and `..` applied, as a normalizing server would. */
function normalized(decoded: readonly string[]): string[] {
  const segments: string[] = [];
  for (const segment of decoded) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return segments;
}

/** The operation the segments spell, the operation (and route) words in lower case, the ids as they are, each re-encoded as the SDKs send them. */
function spelledRoute(method: string, segments: readonly string[]): string | undefined {
  const spelled = `/${segments.map((s, i) => encodeURIComponent(i === 1 || (segments[0] === "guardrail" && i === 3) ? s : s.toLowerCase())).join("/")}`;
  const route = routeOf(method.toUpperCase(), spelled);
  if (route.kind === "model" || route.kind === "guardrail") return route.operation;
  if (route.kind === "unsupported") return route.what;
  return undefined;
}

export function isStreaming(operation: Operation): boolean {
  return operation === "InvokeModelWithResponseStream" || operation === "ConverseStream";
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * A percent-escape in the path or query that does not decode (`%ZZ`, a cut `%E0%A4%A`, bytes
 * that are not UTF-8): the request cannot be routed, verified or re-signed as sent.
 */
export function targetProblem(rawTarget: string): string | undefined {
  // An absolute URL (`http://host/model/…`), `*` or anything else: the SDKs send a path, and only a path is routed and re-signed as sent.
  if (!rawTarget.startsWith("/")) return `the request target ${JSON.stringify(rawTarget.slice(0, 80))} is not a path beginning with "/"; send the path only, as the SDKs do`;
  const q = rawTarget.indexOf("?");
  const parts: Array<[string, string]> = q < 0 ? [["path", rawTarget]] : [["path", rawTarget.slice(0, q)], ["query", rawTarget.slice(q + 1)]];
  for (const [where, text] of parts) {
    try {
      decodeURIComponent(text); // throws on a malformed escape too: the slower search below runs only then
      continue;
    } catch {
      const bad = /%(?![0-9A-Fa-f]{2})/.exec(text);
      if (bad) return `the request ${where} has a malformed percent-escape "${text.slice(bad.index, bad.index + 3)}" at character ${bad.index + 1}; escape "%" as %25`;
      return `the percent-escapes in the request ${where} do not decode to UTF-8 text`;
    }
  }
  return undefined;
}

const FOUNDATION_MODEL_VERSION_IDENTIFIER = /^[a-zA-Z_.\-/0-9:]+$/;
const FOUNDATION_MODEL_VERSION_ID_MAX = 256;
/**
 * `GuardrailVersion`, same file. Its `GuardrailIdentifier` pattern, taken whole, would refuse the
 * hyphenated ids tools use (Bedrock matches it unanchored), so the id is held to printable ASCII
 * and the documented length.
 */
const GUARDRAIL_VERSION = /^(|([1-9][0-9]{0,7})|(DRAFT))$/;
const GUARDRAIL_IDENTIFIER = /^[\x21-\x7e]+$/;
const GUARDRAIL_ID_MAX = 2048;

/**
 * Why a routed request cannot name a Bedrock resource (undefined when it can): the model id (or
 * guardrail id and version), decoded, against the patterns Bedrock documents. Checked before
 * anything else, so an id such as `../../admin` is never priced or forwarded.
 */
export function routeProblem(route: Route): string | undefined {
  if (route.kind === "model") {
    const id = route.modelId;
    const shown = JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id);
    if (!isInvokeModelId(id)) {
      return `the model id ${shown} is not a Bedrock model id, inference profile or model ARN (Bedrock's modelId pattern, at most ${INVOKE_MODEL_ID_MAX} characters)`;
    }
    if (route.operation === "CountTokens" && (id.length > FOUNDATION_MODEL_VERSION_ID_MAX || !FOUNDATION_MODEL_VERSION_IDENTIFIER.test(id))) {
      return `the model id ${shown} is not one CountTokens accepts (a foundation model id or ARN of at most ${FOUNDATION_MODEL_VERSION_ID_MAX} characters)`;
    }
  }
  if (route.kind === "guardrail") {
    if (route.guardrailId.length > GUARDRAIL_ID_MAX || !GUARDRAIL_IDENTIFIER.test(route.guardrailId)) {
      return `the guardrail identifier ${JSON.stringify(route.guardrailId.slice(0, 80))} is not a guardrail id or guardrail ARN (printable ASCII, at most ${GUARDRAIL_ID_MAX} characters)`;
    }
    if (!GUARDRAIL_VERSION.test(route.version)) return `the guardrail version ${JSON.stringify(route.version.slice(0, 20))} is not a version number or DRAFT`;
  }
  return undefined;
}
