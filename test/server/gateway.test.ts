/**
 * The gateway as users meet it: the real AWS SDK (default handler: HTTP/2 cleartext) → gateway →
 * fake Bedrock that verifies signatures and speaks the real wire protocol.
 */
import assert from "node:assert/strict";
import http from "node:http";
import {
  ApplyGuardrailCommand,
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  CountTokensCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { createLogger } from "../../server/log";
import { API_PATHS, TOKEN_HEADER, type CallsResponse, type StatusResponse } from "../../server/protocol";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

async function getJson<T>(h: Harness, path: string): Promise<T> {
  const res = await fetch(`${h.gateway.url}${path}`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } }); // the call log needs the user's token
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return (await res.json()) as T;
}
const calls = async (h: Harness) => (await getJson<CallsResponse>(h, `${API_PATHS.calls}?limit=1000`)).calls;
const status = (h: Harness) => getJson<StatusResponse>(h, API_PATHS.status);
const utf8 = (b: Uint8Array | undefined) => Buffer.from(b ?? new Uint8Array()).toString("utf8");

describe("gateway: the four metered operations through the real SDK", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }] });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  it("InvokeModel: answers unchanged, and records the real cost from the usage headers", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
    const out = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hello", 1024), contentType: "application/json" }));
    const reply = JSON.parse(utf8(out.body));
    assert.equal(reply.type, "message");
    assert.equal(reply.usage.input_tokens, 1000);
    assert.equal(h.fake.hits.length, 1);
    assert.equal(h.fake.hits[0]!.signatureValid, true, "the gateway re-signed the call correctly");
    assert.equal(h.fake.hits[0]!.modelId, SONNET_45);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "ok");
    assert.equal(call!.operation, "InvokeModel");
    assert.equal(call!.usage.inputTokens, 1000);
    assert.equal(call!.usage.outputTokens, 500);
    // Sonnet 4.5 through a global profile: $3 / $15 per million tokens.
    assert.equal(call!.costPicos, String(10_500_000_000n));
    assert.equal(call!.tool, "aws-sdk-js");
    const s = await status(h);
    assert.equal(s.caps[0]!.spentExact, "0.0105");
    assert.equal(s.caps[0]!.reservedExact, "0");
  });

  it("InvokeModelWithResponseStream: relays every chunk and records the invocation metrics", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 2000, output: 300 }, chunks: 5 }));
    const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("Stream", 512) }));
    const events: string[] = [];
    for await (const part of out.body!) {
      if (part.chunk) events.push(JSON.parse(utf8(part.chunk.bytes)).type);
    }
    assert.deepEqual(events.filter((e) => e === "content_block_delta").length, 5);
    assert.equal(events.at(-1), "message_stop");
    const [call] = await calls(h);
    assert.equal(call!.operation, "InvokeModelWithResponseStream");
    assert.deepEqual([call!.usage.inputTokens, call!.usage.outputTokens, call!.usageEstimated], [2000, 300, false]);
    assert.equal(call!.costPicos, String(2000n * 3_000_000n + 300n * 15_000_000n));
  });

  it("Converse: records usage from the response body", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 120, output: 80 } }));
    const out = await h.client.send(new ConverseCommand({
      modelId: "us.amazon.nova-lite-v1:0",
      messages: [{ role: "user", content: [{ text: "Hi" }] }],
      inferenceConfig: { maxTokens: 200 },
    }));
    assert.equal(out.usage?.inputTokens, 120);
    const [call] = await calls(h);
    assert.equal(call!.operation, "Converse");
    assert.equal(call!.baseModelId, "amazon.nova-lite-v1:0");
    assert.deepEqual([call!.usage.inputTokens, call!.usage.outputTokens], [120, 80]);
    // Nova Lite: $0.06 in, $0.24 out per 1M tokens (1 µ$ = 1,000,000 picos):
    // 120 × 0.06 + 80 × 0.24 = 7.2 + 19.2 = 26.4 µ$ = 26,400,000 picos.
    assert.equal(call!.costPicos, "26400000");
  });

  it("ConverseStream: relays the events and records the metadata usage", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 50, output: 7 }, chunks: 4 }));
    const out = await h.client.send(new ConverseStreamCommand({
      modelId: SONNET_45,
      messages: [{ role: "user", content: [{ text: "Hi" }] }],
      inferenceConfig: { maxTokens: 100 },
    }));
    let text = "";
    let usage;
    for await (const event of out.stream!) {
      if (event.contentBlockDelta?.delta?.text) text += event.contentBlockDelta.delta.text;
      if (event.metadata) usage = event.metadata.usage;
    }
    assert.match(text, /tok0 tok1 tok2 tok3/);
    assert.equal(usage?.outputTokens, 7);
    const [call] = await calls(h);
    assert.equal(call!.operation, "ConverseStream");
    assert.equal(call!.costPicos, String(50n * 3_000_000n + 7n * 15_000_000n));
  });

  it("ConverseStream: prices by the service tier its metadata event reports", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 }, serviceTier: "flex" }));
    const out = await h.client.send(new ConverseStreamCommand({
      modelId: SONNET_45,
      messages: [{ role: "user", content: [{ text: "Hi" }] }],
      inferenceConfig: { maxTokens: 1000 },
    }));
    for await (const _ of out.stream!) void _;
    const [call] = await calls(h);
    assert.equal(call!.serviceTier, "flex");
    // $0.018 at the standard rate, half that on flex.
    assert.equal(call!.costPicos, String(9_000_000_000n));
  });

  it("CountTokens is forwarded and free", async () => {
    const out = await h.client.send(new CountTokensCommand({
      modelId: "anthropic.claude-sonnet-4-5-20250929-v1:0",
      input: { converse: { messages: [{ role: "user", content: [{ text: "How many?" }] }] } },
    }));
    assert.equal(typeof out.inputTokens, "number");
    assert.equal(h.fake.hits[0]?.operation, "CountTokens");
    const [call] = await calls(h);
    assert.deepEqual([call!.operation, call!.costPicos, call!.outcome], ["CountTokens", "0", "ok"], "journaled at $0");
  });

  it("records Converse requestMetadata as the call's tags", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    await h.client.send(new ConverseCommand({
      modelId: SONNET_45,
      messages: [{ role: "user", content: [{ text: "Hi" }] }],
      inferenceConfig: { maxTokens: 20 },
      requestMetadata: { team: "search", feature: "summaries" },
    }));
    const [call] = await calls(h);
    assert.deepEqual(call!.tags, { team: "search", feature: "summaries" });
  });

  it("honours AWS_ENDPOINT_URL_BEDROCK_RUNTIME, as tools pointed at the gateway do", async () => {
    const saved = process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME;
    process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME = h.gateway.url;
    const { BedrockRuntimeClient } = await import("@aws-sdk/client-bedrock-runtime");
    const client = new BedrockRuntimeClient({ region: "us-east-1", credentials: { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" } });
    try {
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("env", 10) }));
      assert.equal(h.fake.hits.length, 1);
    } finally {
      client.destroy();
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME;
      else process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME = saved;
    }
  });
});

describe("gateway: caps", function () {
  let h: Harness;
  afterEach(() => h?.close());

  it("refuses a call that could break a cap with ServiceQuotaExceededException, without reaching Bedrock or retrying", async () => {
    h = await startHarness({ caps: [{ id: "tiny", window: "day", limitUsd: 0.001 }] });
    const published: string[] = [];
    h.gateway.onCall((record) => published.push(`${record.outcome}:${record.refusedBy}`));
    const err = await h.client
      .send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Write a novel", 4096) }))
      .then(() => assert.fail("the call went through"), (e: Error & { $metadata?: { attempts?: number } }) => e);
    assert.equal(err.name, "ServiceQuotaExceededException");
    assert.match(err.message, /cap "tiny"/);
    assert.match(err.message, /\$0\.00 spent/);
    assert.match(err.message, /resets/);
    assert.equal(err.$metadata?.attempts, 1, "the SDK does not retry a refusal");
    assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
    const [call] = await calls(h);
    assert.equal(call!.outcome, "refused");
    assert.equal(call!.refusedBy, "tiny");
    assert.deepEqual(published, ["refused:tiny"], "listeners (the editor's alerts, the dashboard) hear of the refusal");
  });

  it("a runaway loop refused by a cap: every call is refused and recorded, and the log says so once, not once per call", async () => {
    const logged: string[] = [];
    h = await startHarness({ caps: [{ id: "tiny", window: "day", limitUsd: 0.001 }] }, { log: createLogger((level, line) => logged.push(`${level}: ${line}`), "info") });
    for (let i = 0; i < 5; i++) {
      const err = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Again", 4096) })).catch((e: Error) => e);
      assert.equal((err as Error).name, "ServiceQuotaExceededException");
    }
    assert.equal((await calls(h)).filter((c) => c.outcome === "refused").length, 5, "each refusal is in the call log");
    assert.equal(logged.filter((l) => l.includes("refused InvokeModel") && l.includes("cap tiny")).length, 1, logged.join("\n"));
  });

  it("with 120 concurrent callers, settled spend never passes the cap and refused calls never reach Bedrock", async () => {
    // Each call reserves its worst case (~$0.0153 for 1,000 output tokens) and settles at $0.0105.
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.5 }] });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 }, chunkDelayMs: 0 }));
    const clients = Array.from({ length: 6 }, () => clientFor(h.gateway.url));
    const results = await Promise.allSettled(
      Array.from({ length: 120 }, (_, i) => clients[i % clients.length]!.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody(`call ${i}`, 1000) }))),
    );
    clients.forEach((c) => c.destroy());
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const refused = results.filter((r) => r.status === "rejected" && (r.reason as Error).name === "ServiceQuotaExceededException").length;
    assert.equal(ok + refused, 120, "every call either went through or was refused by the cap");
    assert.ok(ok > 0 && refused > 0, `the cap admits some calls, not all (ok ${ok}, refused ${refused})`);
    assert.equal(h.fake.hits.length, ok, "only admitted calls reached Bedrock");
    const s = await status(h);
    assert.ok(s.caps[0]!.spentUsd <= 0.5, `settled spend ${s.caps[0]!.spentUsd} is within the cap`);
    assert.equal(s.caps[0]!.spentExact, (ok * 0.0105).toFixed(4).replace(/0+$/, ""));
    assert.equal(s.caps[0]!.reservedExact, "0");
  });

  it("cuts a stream whose running cost would cross its cap, and charges what was generated", async () => {
    h = await startHarness({ caps: [{ id: "stream-cap", window: "day", limitUsd: 0.005 }] });
    // The request asks for 10 tokens, but the model keeps going (as an underestimate would).
    h.fake.behave(() => ({ kind: "ok", usage: { input: 20, output: 3000 }, chunks: 1500 }));
    const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("go", 10) }));
    let deltas = 0;
    const err = await (async () => {
      for await (const part of out.body!) if (part.chunk) deltas++;
    })().then(() => undefined, (e: Error) => e);
    assert.ok(err, "the stream ended with an error");
    assert.equal(err.name, "ModelStreamErrorException");
    assert.match(err.message, /stopped this stream at its cap/);
    assert.ok(deltas > 10 && deltas < 1500, `the stream was cut part-way (${deltas} chunks)`);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "cut");
    const s = await status(h);
    assert.ok(s.caps[0]!.spentUsd > 0.003 && s.caps[0]!.spentUsd <= 0.005, `charged what was generated, within the cap: ${s.caps[0]!.spentUsd}`);
    assert.equal(s.caps[0]!.reservedExact, "0");
  });

  it("a stream that fits its cap is not cut near its end when the local count's margin reads past its output limit", async () => {
    // Input free, output $15 per 1M tokens: maxTokens 1,000 reserves $0.015, under the $0.0152 cap.
    // 300 deltas read as 900 tokens here, 1,080 with the ×1.2 margin: past the limit Bedrock stops
    // at, and past the cap. Bedrock bills the 1,000 it generated.
    h = await startHarness({ caps: [{ id: "tight", window: "day", limitUsd: 0.0152 }], pricing: { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } } });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 1000 }, chunks: 300 }));
    const out = await h.client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "go" }] }], inferenceConfig: { maxTokens: 1000 } }));
    let deltas = 0;
    for await (const part of out.stream!) if (part.contentBlockDelta) deltas++;
    assert.equal(deltas, 300, "the whole answer");
    const [call] = await calls(h);
    assert.equal(call!.outcome, "ok");
    assert.equal(call!.costPicos, String(1000n * 15_000_000n), "Bedrock's count, $0.015");
  });

  it("a stream whose first event reports far more input than estimated is not cut for it when the cap has room for that input", async () => {
    // 150,000 input tokens ($0.45 at $3 per 1M) the estimate did not see (hidden tool prompts, say);
    // the cap ($0.60) has room for it and the 4,096-token answer. The input was held twice.
    h = await startHarness({ caps: [{ id: "room", window: "day", limitUsd: 0.6 }] });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 150_000, output: 300 }, chunks: 100 }));
    const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("go", 4096) }));
    let chunks = 0;
    for await (const part of out.body!) if (part.chunk) chunks++;
    assert.ok(chunks > 100, `the whole answer (${chunks} chunks)`);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "ok");
    assert.equal(call!.costPicos, String(150_000n * 3_000_000n + 300n * 15_000_000n), "Bedrock's usage: $0.4545");
  });

  it("keeps settled spend across a restart", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }] });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("a", 100) }));
    await h.restart();
    const s = await status(h);
    assert.equal(s.caps[0]!.spentExact, "0.0105");
  });
});

describe("gateway: a stream stopped early closes its connection to Bedrock (else Bedrock goes on generating, and billing)", function () {
  let h: Harness;
  // Input free and output at $15 per 1M tokens (15,000,000 picos a token): worst cases by hand.
  const pricing = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };
  afterEach(() => h?.close());

  it("a stream cut at its cap: the gateway hangs up on Bedrock instead of letting it finish", async () => {
    // The request asks for 10 tokens (worst case 10 × 15,000,000 = $0.00015, admitted under $0.003),
    // the model goes on: 300 chunks of 10 tokens ($0.00015 each), a chunk every 2 ms, so the cap
    // is reached near chunk 20 while Bedrock still has some 280 to send.
    h = await startHarness({ caps: [{ id: "stream-cap", window: "day", limitUsd: 0.003 }], pricing });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 0, output: 3000 }, chunks: 300, chunkDelayMs: 2 }));
    const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("go", 10) }));
    const err = await (async () => {
      for await (const _ of out.body!) void _;
    })().then(() => undefined, (e: Error) => e);
    assert.equal(err?.name, "ModelStreamErrorException");
    assert.equal(await h.fake.responseEnded(0), "client-hung-up", "the gateway closed the connection to Bedrock when it cut the stream");
    const [call] = await calls(h);
    assert.equal(call!.outcome, "cut");
  });

  it("a stream the caller abandons: the gateway hangs up on Bedrock, and charges the worst case", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], pricing });
    // 200 chunks, one every 10 ms: Bedrock would still be sending for about 2 s when the caller leaves.
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 200 }, chunks: 200, chunkDelayMs: 10 }));
    const settledCall = new Promise<import("../../server/ledger/types").CallRecord>((resolve) => {
      const stop = h.gateway.onCall((record) => {
        stop();
        resolve(record);
      });
    });
    const abort = new AbortController();
    const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("x", 200) }), { abortSignal: abort.signal });
    let seen = 0;
    await (async () => {
      for await (const part of out.body!) {
        if (part.chunk && ++seen === 5) abort.abort();
      }
    })().catch(() => undefined);
    assert.equal(await h.fake.responseEnded(0), "client-hung-up", "the gateway closed the connection to Bedrock when its caller left");
    const settled = await settledCall;
    assert.equal(settled.outcome, "client-aborted");
    // Worst case: input free, 200 output tokens × 15,000,000 picos = 3,000,000,000 picos ($0.003).
    assert.equal(settled.costPicos, "3000000000");
    assert.equal((await status(h)).caps[0]!.reservedExact, "0");
  });
});

describe("gateway: a call that straddles midnight, replayed after a restart", function () {
  let h: Harness;
  afterEach(() => h?.close());

  it("counts to the day and month it started in: not to the new day's cap, but to the month's", async () => {
    // The gateway's clock: 23:59:59 on 28 November in New York (UTC-5), then 00:00:01 on the 29th.
    let clock = Date.parse("2026-11-29T04:59:59Z");
    const pricing = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };
    const caps = [{ id: "day", window: "day" as const, limitUsd: 1 }, { id: "month", window: "month" as const, limitUsd: 10 }];
    h = await startHarness({ caps, pricing, timeZone: "America/New_York" }, { now: () => new Date(clock) });
    // The caller's clock agrees with the gateway's (SigV4 dates are checked against it).
    const client = new BedrockRuntimeClient({ region: "us-east-1", endpoint: h.gateway.url, credentials: CREDENTIALS, systemClockOffset: clock - Date.now() });
    const held = h.fake.holdCalls({ input: 1000, output: 500 });
    const call = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("late", 1000) }));
    await held.reached; // admitted before midnight
    clock = Date.parse("2026-11-29T05:00:01Z");
    held.answer(); // settled after it
    await call;
    client.destroy();
    const [record] = await calls(h);
    assert.equal(record!.startedAt, "2026-11-29T04:59:59.000Z");
    assert.equal(record!.at, "2026-11-29T05:00:01.000Z");
    // 500 output tokens × $15 per 1M = $0.0075 (input free).
    const spent = async () => Object.fromEntries((await status(h)).caps.map((c) => [c.id, c.spentExact]));
    assert.deepEqual(await spent(), { day: "0", month: "0.0075" }, "live: the call belongs to the 28th");
    await h.restart();
    assert.deepEqual(await spent(), { day: "0", month: "0.0075" }, "replayed: the new day's cap does not count it, the month's does");
  });
});

describe("gateway: ApplyGuardrail", function () {
  let h: Harness;
  afterEach(() => h?.close());
  const apply = () =>
    h.client.send(new ApplyGuardrailCommand({ guardrailIdentifier: "gr-1", guardrailVersion: "1", source: "INPUT", content: [{ text: { text: "Is this fine?" } }] }));

  it("is forwarded and journaled at $0 when no guardrail prices are set", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }] });
    const out = await apply();
    assert.equal(out.action, "NONE");
    const [call] = await calls(h);
    assert.deepEqual([call!.operation, call!.modelId, call!.costPicos], ["ApplyGuardrail", "guardrail/gr-1", "0"]);
  });

  it("is charged by the policy units it reports when prices are set, and refused past a cap", async () => {
    h = await startHarness({
      caps: [{ id: "guardrails", window: "day", limitUsd: 0.0009, model: "guardrail/*" }],
      guardrailPricing: { contentPolicy: 0.15, topicPolicy: 0.15, wordPolicy: 0.1, sensitiveInformationPolicy: 0.1 },
    });
    await apply(); // one text unit; the fake reports one unit evaluated by each of the four policies
    const [call] = await calls(h);
    // (0.15 + 0.15 + 0.10 + 0.10) / 1,000 = $0.0005; the next call's worst case ($0.0005) would pass $0.0009.
    assert.equal(call!.costPicos, "500000000");
    const err = await apply().catch((e: Error) => e);
    assert.equal((err as Error).name, "ServiceQuotaExceededException");
    assert.equal(h.fake.hits.length, 1, "the refused call never reached Bedrock");
  });
});

describe("gateway: bad input and failures", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], maxRequestBytes: 64 * 1024 });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  it("refuses a request signed with other credentials (403 AccessDenied), forwarding nothing", async () => {
    const wrong = clientFor(h.gateway.url, { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "not-the-secret" });
    const err = await wrong.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("x", 10) })).catch((e: Error) => e);
    wrong.destroy();
    assert.equal((err as Error).name, "AccessDeniedException");
    assert.match((err as Error).message, /signature does not match/);
    assert.equal(h.fake.hits.length, 0);
  });

  it("answers a body that is not JSON with a ValidationException naming the problem, and keeps serving", async () => {
    const err = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: "{not json" })).catch((e: Error) => e);
    assert.equal((err as Error).name, "ValidationException");
    assert.match((err as Error).message, /JSON/i);
    const big = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("x".repeat(100_000), 10) })).catch((e: Error) => e);
    assert.equal((big as Error).name, "ValidationException");
    assert.match((big as Error).message, /maxRequestBytes/);
    assert.equal(h.fake.hits.length, 0);
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("still here", 10) }));
    assert.equal(h.fake.hits.length, 1);
  });

  it("passes Bedrock's errors through and releases the reservation (nothing charged)", async () => {
    const before = (await status(h)).caps[0]!.spentExact;
    h.fake.behave(() => ({ kind: "error", status: 400, type: "ValidationException", message: "The model returned an error" }));
    const err = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("x", 10) })).catch((e: Error) => e);
    assert.equal((err as Error).name, "ValidationException");
    assert.equal((err as Error).message, "The model returned an error");
    const s = await status(h);
    assert.equal(s.caps[0]!.spentExact, before);
    assert.equal(s.caps[0]!.reservedExact, "0");
    const [call] = await calls(h);
    assert.equal(call!.outcome, "upstream-error");
    assert.equal(call!.costPicos, "0");
  });

  it("keeps throttling retryable: Bedrock's 429 reaches the SDK, which retries", async () => {
    h.fake.behave(() => ({ kind: "error", status: 429, type: "ThrottlingException", message: "Too many requests" }));
    const err = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("x", 10) })).catch((e: Error & { $metadata?: { attempts?: number } }) => e);
    assert.equal((err as Error).name, "ThrottlingException");
    assert.equal(h.fake.hits.length, 3, "the SDK's three attempts each went through");
  });

  it("charges the worst case when the connection to Bedrock drops after the request was sent", async () => {
    const before = (await status(h)).caps[0]!.spentUsd;
    h.fake.behave(() => ({ kind: "drop" }));
    const err = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("x", 100) })).catch((e: Error) => e);
    assert.ok(err instanceof Error);
    const s = await status(h);
    assert.ok(s.caps[0]!.spentUsd > before, "conservatively charged");
    assert.equal(s.caps[0]!.reservedExact, "0");
    const failed = (await calls(h)).filter((c) => c.outcome === "upstream-failed");
    assert.ok(failed.length >= 1);
    assert.equal(failed[0]!.usageEstimated, true);
  });

  it("ends a stream that drops mid-way with an exception the SDK raises, and charges conservatively", async () => {
    h.fake.behave(() => ({ kind: "drop", afterChunks: 3 }));
    const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("x", 100) }));
    const err = await (async () => {
      for await (const _ of out.body!) void _;
    })().then(() => undefined, (e: Error) => e);
    assert.equal(err?.name, "InternalServerException");
    const [call] = await calls(h);
    assert.equal(call!.outcome, "upstream-failed");
    assert.equal((await status(h)).caps[0]!.reservedExact, "0");
  });

  it("refuses CountTokens whose inner InvokeModel body is not JSON or not UTF-8, without reaching Bedrock", async () => {
    for (const [body, message] of [
      [Buffer.from("{not json"), /input\.invokeModel\.body.*not valid JSON/],
      [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /input\.invokeModel\.body.*not valid UTF-8/],
    ] as const) {
      const err = await h.client
        .send(new CountTokensCommand({ modelId: "anthropic.claude-sonnet-4-5-20250929-v1:0", input: { invokeModel: { body } } }))
        .catch((e: Error) => e);
      assert.equal((err as Error).name, "ValidationException");
      assert.match((err as Error).message, message);
    }
    assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
  });

  it("answers a body nested too deep to read with a ValidationException, not a retryable failure", async () => {
    const body = `{"messages":${"[".repeat(20_000)}${"]".repeat(20_000)},"max_tokens":10}`;
    const err = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body })).catch((e: Error & { $metadata?: { attempts?: number } }) => e);
    assert.equal((err as Error).name, "ValidationException");
    assert.match((err as Error).message, /nested over 1000 levels deep/);
    assert.equal(h.fake.hits.length, 0);
  });

  it("refuses model ids that cannot be Bedrock ids (path tricks, control characters) before pricing or forwarding them", async () => {
    const published: string[] = [];
    const stop = h.gateway.onCall((record) => published.push(record.modelId));
    for (const modelId of ["../../admin", "anthropic.claude\u0007", "us.anthropic.claude sonnet", "a/b"]) {
      const invoke = await h.client.send(new InvokeModelCommand({ modelId, body: anthropicBody("x", 10) })).catch((e: Error) => e);
      assert.equal((invoke as Error).name, "ValidationException", modelId);
      assert.match((invoke as Error).message, /is not a Bedrock model id/);
      assert.ok((invoke as Error).message.includes(JSON.stringify(modelId)), (invoke as Error).message);
      const converse = await h.client.send(new ConverseStreamCommand({ modelId, messages: [{ role: "user", content: [{ text: "x" }] }] })).catch((e: Error) => e);
      assert.equal((converse as Error).name, "ValidationException", modelId);
      const count = await h.client.send(new CountTokensCommand({ modelId, input: { converse: { messages: [{ role: "user", content: [{ text: "x" }] }] } } })).catch((e: Error) => e);
      assert.equal((count as Error).name, "ValidationException", modelId);
    }
    stop();
    assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
    assert.deepEqual(published, [], "nothing was metered or journaled");
  });

  it("refuses requests addressed to a non-loopback Host (DNS rebinding)", async () => {
    const statusOf = (host: string) =>
      new Promise<number>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port: h.gateway.port, path: API_PATHS.status, headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).once("error", reject);
      });
    assert.equal(await statusOf("evil.example"), 403);
    assert.equal(await statusOf(`evil.example:${h.gateway.port}`), 403);
    assert.equal(await statusOf(`localhost:${h.gateway.port}`), 200);
  });

  it("refuses another spelling of a paid operation even where unmetered calls are allowed: it is never forwarded", async () => {
    const open = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], allowUnmeteredOperations: true });
    // The path as written (fetch would resolve its dot segments).
    const post = (rawPath: string) =>
      new Promise<{ status: number; message: string }>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: open.gateway.port, method: "POST", path: rawPath, headers: { "content-type": "application/json" } }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, message: (JSON.parse(body || "{}") as { message?: string }).message ?? "" }));
        });
        req.once("error", reject);
        req.end(anthropicBody("hi", 10));
      });
    try {
      for (const op of ["%69nvoke", "./invoke", "Invoke", "invoke/"]) {
        const res = await post(`/model/${encodeURIComponent(SONNET_45)}/${op}`);
        assert.equal(res.status, 400, op);
        assert.match(res.message, /unusual spelling of InvokeModel/, op);
      }
      assert.equal(open.fake.hits.length, 0, "nothing reached Bedrock");
      assert.notEqual((await post("/foo/bar")).status, 400, "an unknown path is still forwarded (unmetered) when allowed");
    } finally {
      await open.close();
    }
  });

  it("refuses an unknown operation clearly unless unmetered calls are allowed", async () => {
    const res = await fetch(`${h.gateway.url}/foo/bar`, { method: "POST", body: "{}" });
    assert.equal(res.status, 404);
    assert.match(String(res.headers.get("x-amzn-errortype")), /UnknownOperationException/);
    assert.match(((await res.json()) as { message: string }).message, /allowUnmeteredOperations/);
  });
});

describe("gateway: a mounted route that fails", function () {
  this.timeout(30_000);
  let h: Harness;
  const logged: string[] = [];
  before(async () => {
    // A route that throws before answering, and one that throws after it began its answer.
    const failing = (name: string, path: string, begin: boolean) => ({
      name,
      handles: (p: string) => p === path,
      async handle(_req: unknown, res: { writeHead(s: number): unknown; write(c: string): boolean }) {
        if (begin) {
          res.writeHead(200);
          res.write("part of an answer");
        }
        throw new Error("the aggregate is broken");
      },
    });
    h = await startHarness({}, { log: createLogger((level, line) => logged.push(`${level}: ${line}`), "info"), mount: () => [failing("dashboard", "/broken", false), failing("export", "/half", true)] });
  });
  after(() => h.close());

  it("answers 500 naming the failure instead of leaving the request waiting, and logs it", async () => {
    const res = await fetch(`${h.gateway.url}/broken`, { signal: AbortSignal.timeout(20_000) });
    assert.equal(res.status, 500);
    assert.match(((await res.json()) as { message: string }).message, /failed to answer this dashboard request: the aggregate is broken/);
    assert.ok(logged.some((l) => l === "error: dashboard: the aggregate is broken"), logged.join("\n"));
  });

  it("cuts an answer it had begun, so the asker sees it incomplete rather than waiting", async () => {
    const res = await fetch(`${h.gateway.url}/half`, { signal: AbortSignal.timeout(20_000) });
    assert.equal(res.status, 200);
    await assert.rejects(res.text(), (err: Error) => err.name !== "TimeoutError" && err.name !== "AbortError");
  });
});
