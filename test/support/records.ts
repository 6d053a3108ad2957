/** A settled call record for unit tests: an ok, one-token Converse call unless `o` says otherwise. */
import type { CallRecord } from "../../server/protocol";

export function settledCall(o: Partial<CallRecord> = {}): CallRecord {
  return {
    type: "settle",
    id: "c1",
    at: "2026-11-29T10:00:00.000Z",
    startedAt: "2026-11-29T10:00:00.000Z",
    user: "alice",
    tool: "boto3",
    operation: "Converse",
    modelId: "anthropic.claude-3-haiku-20240307-v1:0",
    baseModelId: "anthropic.claude-3-haiku-20240307-v1:0",
    usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false,
    costPicos: "1",
    worstCasePicos: "1",
    outcome: "ok",
    status: 200,
    latencyMs: 1,
    tags: {},
    ...o,
  };
}
