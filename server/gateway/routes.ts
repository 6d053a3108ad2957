/** Which Bedrock Runtime operation a raw request path names. Pure. */
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
