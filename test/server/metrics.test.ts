/** Prometheus metrics after real SDK calls through the gateway: counts, tokens, exact dollars, caps, admission latency; the token rule. */
import assert from "node:assert/strict";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS, TOKEN_HEADER, type CallsResponse } from "../../server/protocol";
import { picosToUsd } from "../../server/metering/money";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (samples only; comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, "$1");
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

const pick = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const one = (samples: Sample[], name: string, labels: Record<string, string> = {}) => {
  const found = pick(samples, name, labels);
  assert.equal(found.length, 1, `one ${name} ${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
};

describe("metrics (Prometheus)", function () {
  this.timeout(30_000);
  let h: Harness;
  beforeEach(async () => {
    // Input $3, output $15 per 1M tokens; a $0.05 cap: a 5,000-token worst case ($0.075) is refused.
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.05 }], pricing: { [SONNET_45]: { inputPer1M: 3, outputPer1M: 15 } } });
  });
  afterEach(() => h.close());

  const scrape = async (headers: Record<string, string> = {}, query = "") => fetch(`${h.gateway.url}${API_PATHS.metrics}${query}`, { headers });

  it("needs the token: it shows model names and spend", async () => {
    const anonymous = await scrape();
    assert.equal(anonymous.status, 403);
    assert.match(((await anonymous.json()) as { message: string }).message, /token/);
    assert.equal((await scrape({ [TOKEN_HEADER]: "wrong" })).status, 403);
    assert.equal((await scrape({}, `?token=${h.gateway.api.token()}`)).status, 200, "a scraper that cannot set headers passes it as ?token=");
  });

  it("counts calls, tokens and exact dollars by model, tool and outcome, cap utilisation, and admission latency, after real SDK calls", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 200 } }));
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("one", 300) }));
    h.fake.behave(() => ({ kind: "ok", usage: { input: 500, output: 100 } }));
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("two", 300) }));
    await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("too dear", 5000) })), { name: "ServiceQuotaExceededException" });

    const calls = (await (await fetch(`${h.gateway.url}${API_PATHS.calls}`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).json()) as CallsResponse;
    assert.equal(calls.calls.length, 3);
    const ok = calls.calls.filter((c) => c.outcome === "ok");
    const model = ok[0]!.baseModelId;
    const tool = ok[0]!.tool;
    const okPicos = ok.reduce((sum, c) => sum + BigInt(c.costPicos), 0n);
    assert.equal(okPicos, 6_000_000_000n + 3_000_000_000n, "1000×$3/M + 200×$15/M, then 500×$3/M + 100×$15/M");

    const res = await scrape({ [TOKEN_HEADER]: h.gateway.api.token() });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const samples = parseMetrics(await res.text());

    assert.equal(one(samples, "bedrock_budget_calls_total", { model, tool, outcome: "ok" }), 2);
    assert.equal(one(samples, "bedrock_budget_calls_total", { model, tool, outcome: "refused" }), 1);
    assert.equal(one(samples, "bedrock_budget_tokens_total", { model, tool, outcome: "ok", kind: "input" }), 1500);
    assert.equal(one(samples, "bedrock_budget_tokens_total", { model, tool, outcome: "ok", kind: "output" }), 300);
    assert.equal(one(samples, "bedrock_budget_cost_usd_total", { model, tool, outcome: "ok" }), picosToUsd(okPicos));
    assert.equal(one(samples, "bedrock_budget_cost_usd_total", { model, tool, outcome: "refused" }), 0, "a refused call costs nothing");
    assert.equal(one(samples, "bedrock_budget_cap_utilisation_ratio", { cap: "daily", scope: "personal", window: "day" }), 0.18, "$0.009 of $0.05");
    assert.equal(one(samples, "bedrock_budget_cap_limit_usd", { cap: "daily" }), 0.05);
    assert.equal(pick(samples, "bedrock_budget_throttles_total").length, 0, "no call was throttled");
    assert.equal(one(samples, "bedrock_budget_admission_seconds_count"), 2, "the two forwarded calls; the refused one never left");
    assert.equal(one(samples, "bedrock_budget_admission_seconds_bucket", { le: "+Inf" }), 2);
    assert.ok(one(samples, "bedrock_budget_admission_seconds_sum") > 0);
    assert.equal(pick(samples, "process_cpu_seconds_total").length, 0, "its own registry: no default process metrics from the global one");
  });
});
