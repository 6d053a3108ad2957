/** GatewayMetrics alone: throttled calls counted as throttles, dollars summed exactly before the float. */
import assert from "node:assert/strict";
import { GatewayMetrics } from "../../../server/gateway/metrics";
import type { GatewaySecret } from "../../../server/ledger/secret";
import type { CallRecord } from "../../../server/protocol";
import { settledCall } from "../../support/records";

const record = (outcome: string, costPicos: string): CallRecord =>
  settledCall({
    id: `c-${Math.random()}`,
    usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    costPicos,
    worstCasePicos: costPicos,
    // "throttled" is the usage plans' outcome (HTTP 429), added to Outcome by that part of issue #11.
    outcome: outcome as CallRecord["outcome"],
    status: outcome === "throttled" ? 429 : 200,
  });

describe("gateway metrics", () => {
  const metrics = () => new GatewayMetrics(() => [], () => ({}) as GatewaySecret);

  it("counts a throttled call as a call and as a throttle", async () => {
    const m = metrics();
    m.record(record("throttled", "0"));
    m.record(record("ok", "1"));
    const text = await m.registry.metrics();
    assert.match(text, /^bedrock_budget_throttles_total\{model="anthropic\.claude-3-haiku-20240307-v1:0",tool="boto3"\} 1$/m);
    assert.match(text, /^bedrock_budget_calls_total\{model="[^"]+",tool="boto3",outcome="throttled"\} 1$/m);
  });

  it("sums dollars in pico-dollars: 100,000 calls of 10 pico-dollars make $0.000001, not float drift", async () => {
    const m = metrics();
    for (let i = 0; i < 100_000; i++) m.record(record("ok", "10"));
    m.record(record("ok", "100000000000")); // $0.1
    assert.match(await m.registry.metrics(), /^bedrock_budget_cost_usd_total\{model="[^"]+",tool="boto3",outcome="ok"\} 0\.100001$/m);
  });
});
