/**
 * A guardrail attached to a model call (Converse's guardrailConfig, InvokeModel's guardrail header), priced when guardrailPricing is set:
 * reserved with the model's worst case, charged at the units Bedrock's trace reports (else at the
 * text it evaluated), through the real AWS SDK against the fake Bedrock.
 */
import assert from "node:assert/strict";
import {
  ConverseCommand, ConverseStreamCommand, InvokeModelCommand, InvokeModelWithResponseStreamCommand, type ConverseCommandInput,
} from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS, TOKEN_HEADER, type CallsResponse } from "../../server/protocol";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";

const calls = async (h: Harness) =>
  ((await (await fetch(`${h.gateway.url}${API_PATHS.calls}?limit=1000`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).json()) as CallsResponse).calls;

/** $0.15 + $0.15 + $0.10 + $0.10 per 1,000 units: every unit on every priced policy costs $0.0005. */
const PRICING = { contentPolicy: 0.15, topicPolicy: 0.15, wordPolicy: 0.1, sensitiveInformationPolicy: 0.1 };
const PER_UNIT = 500_000_000n;
/** Sonnet 4.5: $3 / $15 per million tokens. */
const modelCost = (input: number, output: number) => BigInt(input) * 3_000_000n + BigInt(output) * 15_000_000n;

const converse = (trace: boolean, maxTokens = 100): ConverseCommandInput => ({
  modelId: SONNET_45,
  messages: [{ role: "user", content: [{ text: "Is this fine?" }] }],
  inferenceConfig: { maxTokens },
  guardrailConfig: { guardrailIdentifier: "gr-1", guardrailVersion: "1", ...(trace ? { trace: "enabled" as const } : {}) },
});

describe("gateway: a guardrail attached to Converse, priced", function () {
  let h: Harness;
  afterEach(() => h?.close());

  it("reserves the guardrail's worst case with the model's and charges the units its trace reports", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    const out = await h.client.send(new ConverseCommand(converse(true)));
    assert.ok(out.trace?.guardrail, "the trace reaches the caller");
    const [call] = await calls(h);
    // The fake reports 1 input + 1 output unit on each of the four priced policies.
    assert.equal(call!.costPicos, String(modelCost(10, 20) + 2n * PER_UNIT));
    assert.match(call!.message ?? "", /guardrail gr-1: charged \$0\.001 for the 8 policy units Bedrock reported/);
    // Reserved: 1 input unit + (100 tokens × 128 characters → 13 units, +1) output units, on every policy.
    assert.ok(BigInt(call!.worstCasePicos) >= 100n * 15_000_000n + 15n * PER_UNIT, call!.worstCasePicos);
  });

  it("charges from the text evaluated when Bedrock reports no guardrail usage, and says so", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    await h.client.send(new ConverseCommand(converse(false)));
    const [call] = await calls(h);
    assert.equal(call!.costPicos, String(modelCost(10, 20) + 2n * PER_UNIT));
    assert.match(call!.message ?? "", /guardrail gr-1: charged \$0\.001 estimated from text \(1 input \+ 1 output text units/);
  });

  it("prices ConverseStream's guardrail from the trace in its metadata event", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    const out = await h.client.send(new ConverseStreamCommand(converse(true)));
    let sawTrace = false;
    for await (const event of out.stream!) if (event.metadata?.trace?.guardrail) sawTrace = true;
    assert.ok(sawTrace);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "ok");
    assert.equal(call!.costPicos, String(modelCost(10, 20) + 2n * PER_UNIT));
    assert.match(call!.message ?? "", /Bedrock reported/);
  });

  it("charges a stream Bedrock dropped the guardrail's worst case with the model's, and says so", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "drop", afterChunks: 2 }));
    const out = await h.client.send(new ConverseStreamCommand(converse(true)));
    await (async () => {
      for await (const _ of out.stream!) void _;
    })().catch(() => undefined);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "upstream-failed");
    assert.ok(BigInt(call!.costPicos) >= 100n * 15_000_000n + 15n * PER_UNIT, call!.costPicos);
    assert.match(call!.message ?? "", /guardrail gr-1: charged its worst case, \$0\.0075 \(1 input \+ 14 output text units/);
  });

  it("refuses, unsent, a call whose guardrail would take it past a cap the model alone fits", async () => {
    // The model's worst case (100 output tokens ≈ $0.0015) fits $0.005; with the guardrail's
    // (15 units × $0.0005 = $0.0075) it does not.
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.005 }], guardrailPricing: PRICING });
    const err = await h.client.send(new ConverseCommand(converse(true))).catch((e: Error) => e);
    assert.equal((err as Error).name, "ServiceQuotaExceededException");
    assert.equal(h.fake.hits.length, 0);
    // The caller and the record are told the guardrail's share, which the model alone would not need.
    const share = /Of that, \$0\.0075 is the worst case of the attached guardrail gr-1 \(1 input \+ 14 output text units/;
    assert.match((err as Error).message, share);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "refused");
    assert.match(call!.message ?? "", share);
  });

  it("a clamp cap lowers the output limit so that the model's and the guardrail's worst cases fit together, instead of refusing the call", async () => {
    // Asked: 100 tokens, $0.0015 for the model + $0.0075 for the guardrail, past $0.005. Clamped on
    // the model's part alone the call would fit as asked, and the guardrail's part would refuse it.
    h = await startHarness({ caps: [{ id: "tight", window: "day", limitUsd: 0.005, action: "clamp" }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    await h.client.send(new ConverseCommand(converse(true)));
    assert.equal(h.fake.hits.length, 1, "forwarded, clamped");
    const sent = (JSON.parse(h.fake.hits[0]!.body.toString("utf8")) as { inferenceConfig: { maxTokens: number } }).inferenceConfig.maxTokens;
    assert.ok(sent > 0 && sent < 100, `the output limit was lowered (sent ${sent})`);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "ok");
    assert.deepEqual(call!.actions?.map((a) => [a.capId, a.action]), [["tight", "clamp"]]);
    assert.ok(BigInt(call!.worstCasePicos) <= 5_000_000_000n, `reserved ${call!.worstCasePicos}, within the cap`);
  });

  it("refuses, unsent, a guardrailConfig without a guardrailIdentifier, saying what is wrong", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    const input = { ...converse(true), guardrailConfig: { guardrailVersion: "1" } } as unknown as ConverseCommandInput;
    const err = await h.client.send(new ConverseCommand(input)).catch((e: Error) => e);
    assert.equal((err as Error).name, "ValidationException");
    assert.match((err as Error).message, /guardrailIdentifier/);
    assert.equal(h.fake.hits.length, 0);
  });

  it("prices a message of very many content blocks instead of failing on it", async () => {
    // 150,000 short blocks (about 2 MB, well under maxRequestBytes): one text unit each.
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1000 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    const blocks = 150_000;
    const input = { ...converse(false), messages: [{ role: "user" as const, content: Array.from({ length: blocks }, () => ({ text: "a" })) }] };
    await h.client.send(new ConverseCommand(input));
    const [call] = await calls(h);
    assert.equal(call!.outcome, "ok");
    assert.match(call!.message ?? "", new RegExp(`estimated from text \\(${blocks} input \\+ 1 output`));
  });

  it("forwards the guardrail unpriced when guardrailPricing is unset, as before", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.005 }] });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    await h.client.send(new ConverseCommand(converse(true)));
    const [call] = await calls(h);
    assert.equal(call!.costPicos, String(modelCost(10, 20)));
    assert.equal(call!.message, undefined);
  });
});

describe("gateway: a guardrail attached to InvokeModel (X-Amzn-Bedrock-GuardrailIdentifier), priced", function () {
  let h: Harness;
  afterEach(() => h?.close());
  const invoke = (trace: boolean, maxTokens = 100) => ({
    modelId: SONNET_45,
    body: anthropicBody("Is this fine?", maxTokens),
    guardrailIdentifier: "gr-2",
    guardrailVersion: "1",
    ...(trace ? { trace: "ENABLED" as const } : {}),
  });

  it("charges the units amazon-bedrock-trace reports on top of the model's tokens", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    const out = await h.client.send(new InvokeModelCommand(invoke(true)));
    assert.ok(JSON.parse(Buffer.from(out.body).toString("utf8"))["amazon-bedrock-trace"], "the trace reaches the caller");
    const [call] = await calls(h);
    assert.equal(call!.costPicos, String(modelCost(10, 20) + 2n * PER_UNIT));
    assert.match(call!.message ?? "", /guardrail gr-2: charged \$0\.001 for the 8 policy units Bedrock reported/);
  });

  it("charges from the request and answer text when no trace is asked, and says so", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    await h.client.send(new InvokeModelCommand(invoke(false)));
    const [call] = await calls(h);
    // The request body and the answer body are each under 1,000 characters: one unit each.
    assert.equal(call!.costPicos, String(modelCost(10, 20) + 2n * PER_UNIT));
    assert.match(call!.message ?? "", /estimated from text \(1 input \+ 1 output/);
  });

  it("prices InvokeModelWithResponseStream's guardrail from the trace in its last chunk", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    const out = await h.client.send(new InvokeModelWithResponseStreamCommand(invoke(true)));
    for await (const _ of out.body!) void _;
    const [call] = await calls(h);
    assert.equal(call!.outcome, "ok");
    assert.equal(call!.costPicos, String(modelCost(10, 20) + 2n * PER_UNIT));
    assert.match(call!.message ?? "", /Bedrock reported/);
  });

  it("refuses, unsent, a call whose guardrail would take it past a cap the model alone fits", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.005 }], guardrailPricing: PRICING });
    const err = await h.client.send(new InvokeModelCommand(invoke(true))).catch((e: Error) => e);
    assert.equal((err as Error).name, "ServiceQuotaExceededException");
    assert.equal(h.fake.hits.length, 0);
  });

  it("forwards the guardrail unpriced when guardrailPricing is unset, as before", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.005 }] });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    await h.client.send(new InvokeModelCommand(invoke(true)));
    const [call] = await calls(h);
    assert.equal(call!.costPicos, String(modelCost(10, 20)));
  });
});
