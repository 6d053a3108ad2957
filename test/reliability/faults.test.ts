/**
 * Upstream faults of every kind, each through the real SDK client against a gateway process: the
 * process stays up, the caller gets a clear typed error, the call is charged as README's "When
 * something goes wrong" says, nothing stays reserved, and the next call succeeds.
 */
import assert from "node:assert/strict";
import {
  ConverseCommand, ConverseStreamCommand, InvokeModelCommand, InvokeModelWithResponseStreamCommand, type BedrockRuntimeClient,
} from "@aws-sdk/client-bedrock-runtime";
import type { CallRecord } from "../../server/ledger/types";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, CREDENTIALS } from "../support/harness";
import { cleanup, eventually, GatewayProcess, HAIKU_3, sdkClient, settledCalls, tempDir } from "./support";

type Op = "InvokeModel" | "Converse" | "InvokeModelWithResponseStream" | "ConverseStream";

type Outcome = { ok: true; requestId: string | undefined } | { ok: false; error: Error & { $metadata?: { httpStatusCode?: number } } };

/** One call as a program makes it, streams read to their end; what the caller ends up with. */
async function callWith(client: BedrockRuntimeClient, op: Op, signal?: AbortSignal): Promise<Outcome> {
  const options = signal ? { abortSignal: signal } : {};
  const converse = { modelId: HAIKU_3, messages: [{ role: "user" as const, content: [{ text: "hello" }] }], inferenceConfig: { maxTokens: 200 } };
  try {
    switch (op) {
      case "InvokeModel": {
        const out = await client.send(new InvokeModelCommand({ modelId: HAIKU_3, body: anthropicBody("hello", 200) }), options);
        return { ok: true, requestId: out.$metadata.requestId };
      }
      case "Converse": {
        const out = await client.send(new ConverseCommand(converse), options);
        return { ok: true, requestId: out.$metadata.requestId };
      }
      case "InvokeModelWithResponseStream": {
        const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: HAIKU_3, body: anthropicBody("hello", 200) }), options);
        for await (const _ of out.body!) void _;
        return { ok: true, requestId: out.$metadata.requestId };
      }
      case "ConverseStream": {
        const out = await client.send(new ConverseStreamCommand(converse), options);
        for await (const _ of out.stream!) void _;
        return { ok: true, requestId: out.$metadata.requestId };
      }
    }
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

/** The exceptions Bedrock itself raises inside a stream (a caller's code handles these by name). */
const STREAM_EXCEPTIONS = ["InternalServerException", "ModelStreamErrorException", "ServiceUnavailableException", "ThrottlingException", "ValidationException", "ModelTimeoutException"];

/**
 * Input free, output at Claude 3 Haiku's $1.25 per 1M tokens: every call here asks for 200 tokens,
 * so its worst case is 200 × $0.00000125 = $0.00025 = 250,000,000 picos, worked out by hand.
 */
const PRICING = { [HAIKU_3]: { inputPer1M: 0, outputPer1M: 1.25 } };
const WORST_CASE = 250_000_000n;

describe("reliability: upstream faults", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let dir: string;
  let gateway: GatewayProcess;
  let client: BedrockRuntimeClient;
  let settledBefore = 0;

  before(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await tempDir("faults");
    gateway = await GatewayProcess.start({ dir, upstream: fake.url, config: { caps: [{ id: "month", window: "month", limitUsd: 1000 }], pricing: PRICING } });
  });
  beforeEach(async () => {
    fake.reset();
    // A case that killed the gateway has failed already; the next one gets a fresh process on the same ledger.
    if (!gateway.alive()) await gateway.start();
    client = sdkClient(gateway.url);
    settledBefore = (await settledCalls(gateway.ledgerDir)).length;
  });
  afterEach(() => client?.destroy());
  after(async () => {
    await fake?.close(); // ends any call still hanging first
    await gateway?.stop();
    await cleanup(dir);
  });

  /** The settled line of the one call the case made. */
  /** The one call settled since the test began; `tries` × 50 ms to wait for it. */
  async function theCall(tries = 100): Promise<CallRecord> {
    let fresh: CallRecord[] = [];
    await eventually(async () => {
      fresh = (await settledCalls(gateway.ledgerDir)).slice(settledBefore);
      return fresh.length > 0 || !gateway.alive();
    }, "the call is settled in the journal", tries);
    assert.ok(gateway.alive(), `the gateway process died:\n${gateway.stderr().slice(-2000)}`);
    assert.equal(fresh.length, 1, `one settled line: ${JSON.stringify(fresh)}`);
    return fresh[0]!;
  }

  /** What every case ends with: the process is up, nothing stays reserved, the next call works. */
  async function stillServing(opts: { idle?: boolean } = {}): Promise<void> {
    assert.ok(gateway.alive() && (await gateway.answers()), `the gateway process stays up:\n${gateway.stderr().slice(-2000)}`);
    if (opts.idle !== false) await gateway.idle();
    fake.behave(() => ({ kind: "ok" }));
    const next = await callWith(client, "InvokeModel");
    assert.ok(next.ok, `the next call succeeds: ${next.ok ? "" : `${next.error.name}: ${next.error.message}`}`);
  }

  function failed(outcome: Outcome): Extract<Outcome, { ok: false }>["error"] {
    assert.ok(!outcome.ok, "the call must fail");
    return outcome.error;
  }

  describe("Bedrock error statuses pass through typed, and cost nothing", () => {
    const errors: [number, string][] = [
      [400, "ValidationException"],
      [403, "AccessDeniedException"],
      [404, "ResourceNotFoundException"],
      [408, "ModelTimeoutException"],
      [424, "ModelErrorException"],
      [429, "ThrottlingException"],
      [500, "InternalServerException"],
      [503, "ServiceUnavailableException"],
    ];
    for (const op of ["InvokeModel", "ConverseStream"] as const) {
      for (const [status, type] of errors) {
        it(`${op}: ${status} ${type}`, async () => {
          fake.behave(() => ({ kind: "error", status, type, message: `upstream says ${type}` }));
          const error = failed(await callWith(client, op));
          assert.equal(error.name, type);
          assert.equal(error.$metadata?.httpStatusCode, status);
          assert.match(error.message, new RegExp(`upstream says ${type}`));
          const call = await theCall();
          assert.equal(call.outcome, "upstream-error");
          assert.equal(call.costPicos, "0");
          await stillServing();
        });
      }
    }
  });

  describe("broken connections and bytes", () => {
    for (const op of ["InvokeModel", "ConverseStream"] as const) {
      it(`${op}: connection reset before the response headers → 502 ServiceUnavailableException, charged the worst case`, async () => {
        fake.behave(() => ({ kind: "drop" }));
        const error = failed(await callWith(client, op));
        assert.equal(error.name, "ServiceUnavailableException");
        assert.equal(error.$metadata?.httpStatusCode, 502);
        const call = await theCall();
        assert.equal(call.outcome, "upstream-failed");
        assert.equal(call.costPicos, String(WORST_CASE));
        await stillServing();
      });
    }

    for (const op of ["InvokeModelWithResponseStream", "ConverseStream"] as const) {
      it(`${op}: the stream cut in the middle of a frame → a typed stream exception, charged the worst case`, async () => {
        fake.behave(() => ({ kind: "cut-mid-frame", afterChunks: 2 }));
        const error = failed(await callWith(client, op));
        assert.ok(STREAM_EXCEPTIONS.includes(error.name), `${error.name}: ${error.message}`);
        const call = await theCall();
        assert.equal(call.outcome, "upstream-failed");
        assert.equal(call.costPicos, String(WORST_CASE));
        await stillServing();
      });

      for (const corruption of ["prelude-crc", "message-crc", "length", "garbage"] as const) {
        it(`${op}: a corrupt frame (${corruption}) → a typed stream exception, settled conservatively, the gateway keeps serving`, async () => {
          fake.behave(() => ({ kind: "corrupt-frame", afterChunks: 2, corruption }));
          const outcome = await callWith(client, op);
          const call = await theCall();
          const error = failed(outcome);
          assert.ok(STREAM_EXCEPTIONS.includes(error.name), `${error.name}: ${error.message}`);
          assert.ok(error.message.length > 0);
          assert.notEqual(call.outcome, "ok");
          assert.ok(BigInt(call.costPicos) >= WORST_CASE, `charged ${call.costPicos}, below the worst case ${WORST_CASE}`);
          await stillServing();
        });
      }

      it(`${op}: an exception event mid-stream → the caller gets it typed; charged no more than the worst case`, async () => {
        fake.behave(() => ({ kind: "stream-exception", afterChunks: 2, exceptionType: "modelStreamErrorException", message: "the model stumbled" }));
        const error = failed(await callWith(client, op));
        assert.equal(error.name, "ModelStreamErrorException");
        assert.match(error.message, /the model stumbled/);
        const call = await theCall();
        assert.equal(call.outcome, "upstream-error");
        assert.ok(BigInt(call.costPicos) <= WORST_CASE, `charged ${call.costPicos}, above the worst case ${WORST_CASE}`);
        await stillServing();
      });
    }

    it("InvokeModel: a 200 whose body is not JSON → relayed as it is (the body is the model's), charged the worst case", async () => {
      fake.behave(() => ({ kind: "bad-body", body: "{not json" }));
      const outcome = await callWith(client, "InvokeModel");
      assert.ok(outcome.ok, "InvokeModel's body is opaque to the SDK");
      const call = await theCall();
      assert.equal(call.costPicos, String(WORST_CASE), "Bedrock reported no usage");
      await stillServing();
    });

    it("Converse: a 200 whose body is not JSON → the caller gets an error, charged the worst case", async () => {
      fake.behave(() => ({ kind: "bad-body", body: "<html>not json</html>" }));
      failed(await callWith(client, "Converse"));
      const call = await theCall();
      assert.equal(call.costPicos, String(WORST_CASE), "Bedrock reported no usage");
      await stillServing();
    });

    it("Converse: a 502 with an HTML page from a proxy → an error with its status, charged nothing", async () => {
      fake.behave(() => ({ kind: "bad-body", status: 502, contentType: "text/html", body: "<html><h1>502 Bad Gateway</h1></html>" }));
      const error = failed(await callWith(client, "Converse"));
      assert.equal(error.$metadata?.httpStatusCode, 502);
      const call = await theCall();
      assert.equal(call.outcome, "upstream-error");
      assert.equal(call.costPicos, "0");
      await stillServing();
    });
  });

  describe("a hang", () => {
    it("ConverseStream: Bedrock never answers; the caller aborts → the stream is stopped and charged the worst case", async () => {
      fake.behave(() => ({ kind: "hang" }));
      const aborter = new AbortController();
      const pending = callWith(client, "ConverseStream", aborter.signal);
      await eventually(() => fake.hits.length === 1, "the call reached Bedrock");
      aborter.abort();
      const error = failed(await pending);
      assert.equal(error.name, "AbortError");
      // A stream whose caller left waits up to 5 s for Bedrock's status (an error would cost $0): allow 10.
      const call = await theCall(200);
      assert.equal(call.costPicos, String(WORST_CASE));
      assert.equal(call.outcome, "client-aborted", `settled as ${call.outcome} (HTTP ${call.status}): ${call.message}`);
      await stillServing();
    });

    it("InvokeModel: Bedrock never answers; the caller aborts → the gateway keeps serving others", async () => {
      fake.behave(() => ({ kind: "hang" }));
      const aborter = new AbortController();
      const pending = callWith(client, "InvokeModel", aborter.signal);
      await eventually(() => fake.hits.length === 1, "the call reached Bedrock");
      aborter.abort();
      assert.equal(failed(await pending).name, "AbortError");
      // A buffered call runs on upstream to settle at its real usage (README), so it is still in flight.
      await stillServing({ idle: false });
      assert.equal((await gateway.status()).inFlight, 1);
    });
  });
});
