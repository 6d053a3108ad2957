/**
 * What a call is charged when its answer does not end the usual way, through the real SDK: token
 * counts that are not whole numbers, a stream cut after Bedrock's final usage, a caller gone before
 * the call was forwarded, and the service tier InvokeModel asks for in its headers.
 */
import assert from "node:assert/strict";
import {
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import type { CallRecord } from "../../server/ledger/types";
import { API_PATHS, TOKEN_HEADER, type CallsResponse, type StatusResponse } from "../../server/protocol";
import { ZERO_USAGE } from "../../server/metering/types";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";

const getJson = async <T>(h: Harness, path: string): Promise<T> => {
  const res = await fetch(`${h.gateway.url}${path}`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } });
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return (await res.json()) as T;
};
const calls = async (h: Harness) => (await getJson<CallsResponse>(h, `${API_PATHS.calls}?limit=1000`)).calls;
const reserved = async (h: Harness) => (await getJson<StatusResponse>(h, API_PATHS.status)).caps[0]!.reservedExact;
const nextSettled = (h: Harness) =>
  new Promise<CallRecord>((resolve) => {
    const off = h.gateway.onCall((record) => {
      off();
      resolve(record);
    });
  });

/** Sonnet 4.5 through a global profile: $3 / $15 per million tokens (3,000,000 / 15,000,000 picos a token). */
const sonnetCost = (input: number, output: number) => String(BigInt(input) * 3_000_000n + BigInt(output) * 15_000_000n);

describe("settlement: what an unusual end of a call is charged", function () {
  this.timeout(20_000);
  let h: Harness;
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_BEDROCK;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }] });
    process.env.AWS_ENDPOINT_URL_BEDROCK = h.fake.url; // the control plane (application inference profiles)
  });
  after(async () => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_BEDROCK;
    else process.env.AWS_ENDPOINT_URL_BEDROCK = savedEndpoint;
    await h.close();
  });
  beforeEach(() => h.fake.reset());

  it("a token count that is not a whole number is unreadable: the answer is relayed and the call charged its worst case", async () => {
    h.fake.behave(() => ({ kind: "bad-body", body: JSON.stringify({ type: "message", content: [], usage: { input_tokens: 10.5, output_tokens: 3 } }) }));
    const settled = nextSettled(h);
    const out = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) }));
    assert.equal(JSON.parse(Buffer.from(out.body).toString("utf8")).usage.input_tokens, 10.5, "Bedrock's answer reached the caller unchanged");
    const call = await settled;
    assert.equal(call.outcome, "ok");
    assert.equal(call.usageEstimated, true);
    assert.equal(call.costPicos, call.worstCasePicos);
    assert.equal(h.fake.hits.length, 1, "answered once, not retried after a gateway error");
    assert.equal(await reserved(h), "0");
  });

  it("an error from Bedrock is journaled with no tokens, at $0", async () => {
    h.fake.behave(() => ({ kind: "error", status: 400, type: "ValidationException", message: "bad input" }));
    const settled = nextSettled(h);
    await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("x", 300) })), /bad input/);
    const call = await settled;
    assert.equal(call.outcome, "upstream-error");
    assert.equal(call.costPicos, "0");
    assert.deepEqual(call.usage, ZERO_USAGE, "no invented tokens in the token totals");
  });

  for (const op of ["InvokeModelWithResponseStream", "ConverseStream"] as const) {
    it(`${op}: a connection reset after the final usage is charged that usage, and the caller's stream completes`, async () => {
      // Every frame (the last carries the final usage), then the socket is destroyed instead of ending the response.
      h.fake.behave(() => ({ kind: "drop", afterChunks: 1_000 }));
      const settled = nextSettled(h);
      const stream =
        op === "ConverseStream"
          ? (await h.client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 300 } }))).stream
          : (await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) }))).body;
      let events = 0;
      for await (const _ of stream!) events++; // throws if the gateway sent an exception frame
      assert.ok(events > 0);
      const call = await settled;
      assert.equal(call.outcome, "upstream-failed");
      assert.equal(call.usageEstimated, false);
      assert.ok(call.usage.outputTokens > 0);
      assert.equal(call.costPicos, sonnetCost(call.usage.inputTokens, call.usage.outputTokens), "the usage Bedrock reported, at its rates");
      assert.ok(BigInt(call.costPicos) < BigInt(call.worstCasePicos), "not the worst case");
      assert.equal(await reserved(h), "0");
    });
  }

  it("a caller gone before its call is forwarded: nothing is sent to Bedrock and nothing charged", async () => {
    const profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/slow-lookup";
    let asked!: () => void;
    const lookupArrived = new Promise<void>((resolve) => (asked = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The gateway looks the profile up before it reserves: held there while the caller leaves.
    h.fake.inferenceProfiles.set(profile, { models: [`arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0`], asked, after: released });
    const settled = nextSettled(h);
    const aborter = new AbortController();
    const sent = h.client
      .send(new ConverseStreamCommand({ modelId: profile, messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 300 } }), { abortSignal: aborter.signal })
      .then(() => undefined, (e: Error) => e);
    await lookupArrived;
    aborter.abort();
    assert.equal((await sent)?.name, "AbortError");
    // A request answered on the same HTTP/2 session after the abort: the gateway has seen the stream close.
    await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: "a/b", body: anthropicBody("x", 10) })), /not a Bedrock model id/);
    release();
    const call = await settled;
    assert.equal(call.outcome, "client-aborted");
    assert.equal(call.status, 499);
    assert.equal(call.costPicos, "0");
    assert.equal(call.usageEstimated, false);
    assert.deepEqual(call.usage, ZERO_USAGE);
    assert.match(call.message ?? "", /not sent to Bedrock/);
    assert.deepEqual(h.fake.hits.map((hit) => hit.operation), ["GetInferenceProfile"], "the call itself never reached Bedrock");
    assert.equal(await reserved(h), "0");
  });

  it("an HTTP/2 caller that left before Bedrock failed is recorded as client-aborted, not as Bedrock's failure", async () => {
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    let cut!: () => void;
    const cutNow = new Promise<void>((resolve) => (cut = resolve));
    h.fake.behave(() => {
      arrived();
      return { kind: "drop", after: cutNow };
    });
    const settled = nextSettled(h);
    const aborter = new AbortController();
    const sent = h.client
      .send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) }), { abortSignal: aborter.signal })
      .then(() => undefined, (e: Error) => e);
    await reached;
    aborter.abort();
    assert.equal((await sent)?.name, "AbortError");
    // Answered on the same HTTP/2 session after the abort: the gateway has seen the stream close.
    await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: "a/b", body: anthropicBody("x", 10) })), /not a Bedrock model id/);
    cut();
    const call = await settled;
    assert.equal(call.outcome, "client-aborted");
    assert.equal(call.status, 499);
    assert.equal(await reserved(h), "0");
  });
});

describe("settlement: InvokeModel's service tier header", function () {
  this.timeout(20_000);
  let h: Harness;
  // 1,000 output tokens: $0.015 at the standard rate, ×1.75 at priority ($0.02625); the cap is between.
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.02 }] });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  it("a priority call whose worst case breaks the cap is refused before Bedrock, where a standard one fits", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    const refused = await h.client
      .send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 1000), serviceTier: "priority" }))
      .then(() => undefined, (e: Error) => e);
    assert.equal(refused?.name, "ServiceQuotaExceededException");
    assert.equal(h.fake.hits.length, 0, "never forwarded");
    const [record] = await calls(h);
    assert.equal(record!.outcome, "refused");

    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 1000) }));
    assert.equal(h.fake.hits.length, 1, "the same call at the standard tier fits");
  });
});
