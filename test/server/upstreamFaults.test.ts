/**
 * Upstream bytes that are not Bedrock's (corrupt event-stream frames, garbage bodies, impossible
 * statuses) stop that one call with a Bedrock-shaped error, charge it conservatively, and leave
 * the gateway serving: through the real SDK, in process and as the CLI.
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { unrelayable } from "../../server/gateway/relay";
import type { CallRecord } from "../../server/ledger/types";
import { GatewaySecret } from "../../server/ledger/secret";
import { API_PATHS, TOKEN_HEADER, type CallsResponse, type StatusResponse } from "../../server/protocol";
import { serve } from "../support/cliProcess";
import { FakeBedrock, type Behavior } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

const NOVA = "us.amazon.nova-lite-v1:0";
const CORRUPTIONS = ["prelude-crc", "message-crc", "length", "garbage"] as const;
/**
 * Input free, so a worst case is the request's 300 max tokens at the output price (1 µ$ = 1,000,000 picos):
 * Nova Lite 300 × $0.24/1M = 72 µ$ = 72,000,000 picos; Sonnet 4.5 300 × $15/1M = 4,500 µ$ = 4,500,000,000 picos.
 */
const PRICING = { [NOVA]: { inputPer1M: 0, outputPer1M: 0.24 }, [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };
const NOVA_WORST = "72000000";
const SONNET_WORST = "4500000000";

const getJson = async <T>(url: string, headers: Record<string, string> = {}): Promise<T> => {
  const res = await fetch(url, { headers });
  assert.equal(res.status, 200, `${url} answered ${res.status}`);
  return (await res.json()) as T;
};
/** The newest call in the log; the call log needs the user's token (read from the ledger folder, as the CLI does). */
const lastCall = async (url: string, token: string): Promise<CallRecord> =>
  (await getJson<CallsResponse>(`${url}${API_PATHS.calls}?limit=1`, { [TOKEN_HEADER]: token })).calls[0]!;
const reserved = async (url: string) => (await getJson<StatusResponse>(`${url}${API_PATHS.status}`)).caps[0]!.reservedExact;

/** Reads a whole response stream; returns the events seen and the error that ended it, if any. */
async function drain(stream: AsyncIterable<object> | undefined): Promise<{ events: string[]; error?: Error }> {
  const events: string[] = [];
  try {
    for await (const part of stream!) events.push(Object.keys(part)[0]!);
    return { events };
  } catch (error) {
    return { events, error: error as Error };
  }
}

/** Starts a stream; resolves to its events. */
const converseStream = async (client: BedrockRuntimeClient) =>
  (await client.send(new ConverseStreamCommand({ modelId: NOVA, messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 300 } }))).stream;
const invokeStream = async (client: BedrockRuntimeClient) =>
  (await client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) }))).body;

describe("upstream faults: a corrupt event-stream frame stops only its own call", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], pricing: PRICING });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  const operations = [
    { name: "ConverseStream", send: converseStream, firstEvent: "messageStart", worstCase: NOVA_WORST, outputPicos: 240_000n },
    { name: "InvokeModelWithResponseStream", send: invokeStream, firstEvent: "chunk", worstCase: SONNET_WORST, outputPicos: 15_000_000n },
  ];
  for (const op of operations) {
    for (const corruption of CORRUPTIONS) {
      it(`${op.name}, ${corruption}: the SDK raises InternalServerException, the call is charged its worst case, and the next call succeeds`, async () => {
        h.fake.behave(() => ({ kind: "corrupt-frame", afterChunks: 2, corruption }));
        const { events, error } = await drain(await op.send(h.client));
        assert.equal(events[0], op.firstEvent, "the good frames before the bad one were relayed");
        assert.equal(events.length, 2);
        assert.equal(error?.name, "InternalServerException");
        assert.match(error!.message, /could not read Bedrock's stream/);
        // The fake keeps its side open after the bad frame: only the gateway closing the connection ends it.
        await h.fake.faultResponsesClosed();

        const call = await lastCall(h.gateway.url, h.gateway.api.token());
        assert.equal(call.operation, op.name);
        assert.equal(call.outcome, "upstream-failed");
        assert.equal(call.usageEstimated, true);
        assert.equal(call.costPicos, op.worstCase, "charged what was reserved: the worst case covers what was delivered");
        assert.match(call.message ?? "", /could not be read/);
        assert.equal(await reserved(h.gateway.url), "0");

        h.fake.behave(() => ({ kind: "ok", usage: { input: 20, output: 10 } }));
        const after = await drain(await op.send(h.client));
        assert.equal(after.error, undefined);
        const ok = await lastCall(h.gateway.url, h.gateway.api.token());
        assert.equal(ok.outcome, "ok");
        assert.equal(ok.usage.outputTokens, 10);
      });
    }
  }

  for (const op of operations) {
    it(`${op.name}: bytes no frame can start with, in the same read as the last frames, spoil nothing delivered: the whole answer, no error, charged its real usage`, async () => {
      h.fake.behave(() => ({ kind: "ok" }));
      const clean = await drain(await op.send(h.client));
      assert.equal(clean.error, undefined);

      // Every frame (the final usage included), then trailing garbage, in one write.
      h.fake.behave(() => ({ kind: "corrupt-frame", afterChunks: Infinity, corruption: "bad-prefix", oneWrite: true }));
      const { events, error } = await drain(await op.send(h.client));
      assert.equal(error, undefined, "the caller has the whole answer: an error could make it retry and pay twice");
      assert.deepEqual(events, clean.events);
      await h.fake.faultResponsesClosed();

      const call = await lastCall(h.gateway.url, h.gateway.api.token());
      assert.equal(call.outcome, "upstream-failed");
      assert.match(call.message ?? "", /could not be read: event-stream frame of 3 bytes is not valid/);
      assert.equal(call.usageEstimated, false);
      assert.equal(call.usage.outputTokens, 40);
      assert.equal(call.costPicos, String(40n * op.outputPicos), "Bedrock's own usage, not the worst case");
      assert.equal(await reserved(h.gateway.url), "0");
    });

    it(`${op.name}: good frames and bad bytes in one read: the good frames are relayed, then InternalServerException, charged its worst case`, async () => {
      h.fake.behave(() => ({ kind: "corrupt-frame", afterChunks: 2, corruption: "bad-prefix", oneWrite: true }));
      const { events, error } = await drain(await op.send(h.client));
      assert.equal(events[0], op.firstEvent);
      assert.equal(events.length, 2, "both good frames reached the caller");
      assert.equal(error?.name, "InternalServerException");
      assert.match(error!.message, /could not read Bedrock's stream/);
      await h.fake.faultResponsesClosed();
      const call = await lastCall(h.gateway.url, h.gateway.api.token());
      assert.equal(call.outcome, "upstream-failed");
      assert.equal(call.costPicos, op.worstCase);
      assert.equal(await reserved(h.gateway.url), "0");
    });
  }

  it("ConverseStream answered with a JSON body instead of an event stream: a clear error, charged its worst case", async () => {
    h.fake.behave(() => ({ kind: "bad-body", body: "{}", contentType: "application/json" }));
    const client = clientWithOneAttempt(h);
    const error = await converseStream(client).then((stream) => drain(stream).then((r) => r.error), (e: Error) => e);
    client.destroy();
    assert.equal(error?.name, "InternalServerException");
    assert.match(error!.message, /not an event stream/);
    const call = await lastCall(h.gateway.url, h.gateway.api.token());
    assert.equal(call.outcome, "upstream-failed");
    assert.equal(call.costPicos, NOVA_WORST);
    assert.equal(await reserved(h.gateway.url), "0");
  });
});

describe("upstream faults: unary answers that are not what Bedrock sends", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], pricing: PRICING });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  it("Converse answered 200 with a body that is not JSON: InternalServerException naming it, charged its worst case, and the gateway serves on", async () => {
    h.fake.behave(() => ({ kind: "bad-body", body: "<html><body>upstream proxy error</body></html>", contentType: "text/html" }));
    const client = clientWithOneAttempt(h);
    const error = await client.send(new ConverseCommand({ modelId: NOVA, messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 300 } })).catch((e: Error) => e);
    assert.equal((error as Error).name, "InternalServerException");
    assert.match((error as Error).message, /could not read Bedrock's answer.*not a JSON object/);
    const call = await lastCall(h.gateway.url, h.gateway.api.token());
    assert.equal(call.outcome, "upstream-failed");
    assert.equal(call.costPicos, NOVA_WORST);
    assert.equal(await reserved(h.gateway.url), "0");

    h.fake.behave(() => ({ kind: "ok", usage: { input: 12, output: 7 } }));
    const ok = await client.send(new ConverseCommand({ modelId: NOVA, messages: [{ role: "user", content: [{ text: "Hi" }] }] }));
    assert.equal(ok.usage?.outputTokens, 7);
    client.destroy();
  });

  it("InvokeModel answered 200 with a truncated body: relayed unchanged (it is the model's), charged its worst case", async () => {
    const truncated = JSON.stringify({ type: "message", content: [{ type: "text", text: "cut short" }] }).slice(0, 30);
    h.fake.behave(() => ({ kind: "bad-body", body: truncated }));
    const out = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) }));
    assert.equal(Buffer.from(out.body).toString("utf8"), truncated);
    const call = await lastCall(h.gateway.url, h.gateway.api.token());
    assert.equal(call.outcome, "ok");
    assert.equal(call.usageEstimated, true);
    assert.equal(call.costPicos, SONNET_WORST);
    assert.equal(await reserved(h.gateway.url), "0");
  });

  it("an answer with an HTTP status outside 200–599 is refused as unreadable and charged its worst case", async () => {
    h.fake.behave(() => ({ kind: "bad-body", body: "{}", status: 999 }));
    const client = clientWithOneAttempt(h);
    const error = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) })).catch((e: Error) => e);
    client.destroy();
    assert.equal((error as Error).name, "InternalServerException");
    assert.match((error as Error).message, /HTTP status 999/);
    const call = await lastCall(h.gateway.url, h.gateway.api.token());
    assert.equal(call.outcome, "upstream-failed");
    assert.equal(call.costPicos, SONNET_WORST);
    assert.equal(await reserved(h.gateway.url), "0");
  });
});

describe("upstream faults: kept-alive connections the upstream is closing", function () {
  // The upstream keeps idle connections 2 s and says so (Keep-Alive: timeout=2, as Node's server
  // does). A call written onto a connection at the moment the upstream closes it is reset
  // unanswered; Bedrock may have read it, so the gateway must charge it its worst case.
  // The fake models that crossing: it resets any call on a connection idle for 1.3 s or more.
  const KEEP_ALIVE_MS = 2000;
  const CROSSING_MS = 1300;
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], pricing: PRICING }, { upstreamKeepAliveMs: KEEP_ALIVE_MS });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  it("reuses a warm connection, but never one idle long enough for the upstream to be closing it: the call succeeds at its real cost", async function () {
    this.timeout(10_000);
    h.fake.behave((hit) => (hit.idleMs !== undefined && hit.idleMs >= CROSSING_MS ? { kind: "drop" } : { kind: "ok", usage: { input: 0, output: 10 } }));
    const client = clientWithOneAttempt(h);
    const invoke = () => client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) }));
    await invoke();
    await invoke();
    assert.equal(h.fake.hits[1]!.connection, h.fake.hits[0]!.connection, "back-to-back calls share one kept-alive connection");

    await new Promise((resolve) => setTimeout(resolve, CROSSING_MS + 200));
    const out = await invoke().catch((e: Error) => e);
    client.destroy();
    assert.ok(!(out instanceof Error), `the call after an idle pause failed: ${(out as Error).message}`);
    assert.notEqual(h.fake.hits[2]!.connection, h.fake.hits[1]!.connection, "the idle connection was dropped before the upstream's keep-alive ran out");
    const call = await lastCall(h.gateway.url, h.gateway.api.token());
    assert.equal(call.outcome, "ok");
    assert.equal(call.costPicos, "150000000"); // 10 output tokens × $15/1M
  });
});

describe("upstream faults: answers that cannot be relayed as they are", () => {
  /** An upstream answer as Node's HTTP client would hand it over. */
  const answer = (statusCode: number, headers: http.IncomingHttpHeaders) => Object.assign(new http.IncomingMessage(new net.Socket()), { statusCode, headers });

  it("names a status HTTP/2 cannot carry and a header value HTTP cannot carry; passes Bedrock's own", () => {
    assert.equal(unrelayable(answer(200, { "content-type": "application/json", "x-amzn-requestid": "abc" })), undefined);
    assert.equal(unrelayable(answer(503, { "x-amzn-errortype": "ServiceUnavailableException" })), undefined);
    assert.match(unrelayable(answer(999, {})) ?? "", /HTTP status 999/);
    assert.match(unrelayable(answer(101, {})) ?? "", /HTTP status 101/);
    assert.match(unrelayable(answer(200, { "x-odd": "line\nbreak" })) ?? "", /header that cannot be relayed \("x-odd"\)/);
  });
});

describe("upstream faults: the CLI gateway", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let dir: string;
  before(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-faults-"));
  });
  after(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("survives a corrupt frame: the call fails alone, /status still answers, and the next call succeeds", async () => {
    const configFile = path.join(dir, "config.json");
    await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], timeZone: "UTC" }));
    const served = await serve(["--config", configFile, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", fake.url]);
    const client = clientFor(served.url);
    try {
      const corrupt: Behavior = { kind: "corrupt-frame", afterChunks: 1, corruption: "prelude-crc" };
      fake.behave(() => corrupt);
      const { error } = await drain(await converseStream(client));
      assert.equal(error?.name, "InternalServerException");
      assert.equal(served.child.exitCode, null, `the gateway process is still running (stderr: ${served.stderr()})`);
      const status = await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
      const token = (await GatewaySecret.read(path.join(dir, "ledger")))!.token();
      assert.equal(status.caps[0]!.reservedExact, "0");
      assert.equal((await lastCall(served.url, token)).outcome, "upstream-failed");

      fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 3 } }));
      const after = await drain(await converseStream(client));
      assert.equal(after.error, undefined);
      assert.equal((await lastCall(served.url, token)).outcome, "ok");
    } finally {
      client.destroy();
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });
});

/** The SDK retries 5xx answers; one attempt shows the gateway's own answer. */
function clientWithOneAttempt(h: Harness): BedrockRuntimeClient {
  return new BedrockRuntimeClient({ region: "us-east-1", endpoint: h.gateway.url, credentials: CREDENTIALS, maxAttempts: 1 });
}
