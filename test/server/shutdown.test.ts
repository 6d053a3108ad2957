/**
 * Stopping a gateway with calls that never finish: after the deadline they are stopped, settled at
 * their worst case as "interrupted" and journaled before the ledger closes; a second request to
 * stop (a second SIGTERM) does it at once.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand, InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { validated } from "../../server/config/load";
import { startGateway } from "../../server/gateway/gateway";
import { readMonth } from "../../server/ledger/report";
import { silentLogger } from "../../server/log";
import type { CallRecord } from "../../server/ledger/types";
import { run, serve, type Served } from "../support/cliProcess";
import { FakeBedrock, type Behavior } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness } from "../support/harness";

const thisMonth = () => new Date().toISOString().slice(0, 7);

/** Makes the fake answer with `behavior`, resolving once `count` calls reached it. */
function reaching(fake: FakeBedrock, behavior: Behavior, count = 1): Promise<void> {
  let seen = 0;
  return new Promise((resolve) =>
    fake.behave(() => {
      if (++seen === count) setImmediate(resolve);
      return behavior;
    }),
  );
}

/** Input free and output at $15 per 1M tokens, so each worst case is worked out by hand. */
const PRICING = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };

function assertInterruptedAtWorstCase(call: CallRecord | undefined, operation: string): void {
  assert.ok(call, `${operation} was journaled`);
  assert.equal(call.outcome, "interrupted");
  assert.match(call.message ?? "", /shut down/);
  // Input free (PRICING): 1,000 max tokens × $15 per 1M = $0.015 = 15,000,000,000 picos.
  assert.equal(call.costPicos, "15000000000", "charged its worst case");
}

describe("shutdown: close() with calls that hang", function () {
  it("stops a hung call and a stalled stream at the deadline, answers both callers, and journals them before the ledger closes", async () => {
    const h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], pricing: PRICING });
    const client = clientFor(h.gateway.url);
    try {
      const hung = reaching(h.fake, { kind: "hang" });
      const buffered = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hang", 1000) })).catch((e: Error) => e);
      await hung;
      // One frame, then a pause far longer than any test: the stream is mid-way when the gateway stops.
      const stalled = reaching(h.fake, { kind: "ok", chunks: 3, chunkDelayMs: 600_000 });
      const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("stall", 1000) }));
      await stalled;
      const streamed = (async () => {
        for await (const _ of out.body!) void _;
      })().then(() => undefined, (e: Error) => e);

      await h.gateway.close({ deadlineMs: 200 });

      const streamError = await streamed;
      assert.equal(streamError?.name, "InternalServerException");
      assert.match(streamError!.message, /shut down/);
      assert.ok((await buffered) instanceof Error, "the hung call was answered with an error");
      const calls = await readMonth(h.ledgerDir, thisMonth(), "UTC");
      assert.equal(calls.length, 2);
      assertInterruptedAtWorstCase(calls.find((c) => c.operation === "InvokeModel"), "InvokeModel");
      assertInterruptedAtWorstCase(calls.find((c) => c.operation === "InvokeModelWithResponseStream"), "the stream");
    } finally {
      client.destroy();
      await h.close(); // close() again returns the same, finished shutdown
    }
  });

  it("a stream stopped mid-way is charged the input Bedrock reported in its first event, not the request's estimate", async () => {
    // Input priced this time: $3 per 1M; the request's own estimate is a handful of tokens.
    const h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], pricing: { [SONNET_45]: { inputPer1M: 3, outputPer1M: 15 } } });
    const client = clientFor(h.gateway.url);
    try {
      const stalled = reaching(h.fake, { kind: "ok", chunks: 3, chunkDelayMs: 600_000, usage: { input: 50_000 } });
      const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("stall", 1000) }));
      await stalled;
      const streamed = (async () => {
        for await (const _ of out.body!) void _;
      })().then(() => undefined, (e: Error) => e);

      await h.gateway.close({ deadlineMs: 0 });

      assert.equal((await streamed)?.name, "InternalServerException");
      const [call] = await readMonth(h.ledgerDir, thisMonth(), "UTC");
      assert.equal(call?.outcome, "interrupted");
      assert.equal(call.usage.inputTokens, 50_000);
      // 50,000 × $3 + 1,000 max tokens × $15, per 1M = $0.165.
      assert.equal(call.costPicos, "165000000000");
    } finally {
      client.destroy();
      await h.close();
    }
  });

  it("a second close() with deadline 0 stops the calls in flight at once", async () => {
    const h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], pricing: PRICING });
    const client = clientFor(h.gateway.url);
    try {
      const hung = reaching(h.fake, { kind: "hang" });
      const pending = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hang", 1000) })).catch((e: Error) => e);
      await hung;
      const closing = h.gateway.close({ deadlineMs: 3_600_000 });
      await h.gateway.close({ deadlineMs: 0 });
      await closing;
      assert.ok((await pending) instanceof Error);
      const [call] = await readMonth(h.ledgerDir, thisMonth(), "UTC");
      assertInterruptedAtWorstCase(call, "InvokeModel");
    } finally {
      client.destroy();
      await h.close();
    }
  });
});

describe("shutdown: a close step that fails", function () {
  it("still releases the ledger lock, so Restart Gateway (or another window) can open the ledger again", async () => {
    const h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], pricing: PRICING });
    const broken = h.gateway;
    try {
      // The ledger's close fails after its handles are closed (an EIO syncing the journal, say).
      const { ledger } = (h.gateway as unknown as { res: { ledger: { close(): Promise<void> } } }).res;
      const realClose = ledger.close.bind(ledger);
      ledger.close = async () => {
        await realClose();
        throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      };
      await assert.rejects(h.gateway.close(), /EIO/, "the failure is not hidden");
      assert.equal(existsSync(path.join(h.ledgerDir, "gateway.lock")), false, "the lock was released");

      // Restart Gateway: a new gateway takes the same ledger and serves.
      h.gateway = await startGateway({
        config: validated({ port: 0, upstreamEndpoint: h.fake.url, ledgerDir: h.ledgerDir, user: "tester", timeZone: "UTC", pricing: PRICING }, "test"),
        credentials: async () => CREDENTIALS,
        log: silentLogger(),
      });
      h.client.destroy();
      h.client = clientFor(h.gateway.url);
      h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
      const out = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("again", 100) }));
      assert.equal(out.$metadata.httpStatusCode, 200);
    } finally {
      if (h.gateway === broken) h.gateway = { close: async () => undefined } as unknown as typeof h.gateway; // its close failed already
      await h.close();
    }
  });
});

describe("shutdown: the CLI on SIGTERM with a hung call", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let dir: string;
  let configFile: string;
  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-stop-"));
    configFile = path.join(dir, "config.json");
    await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], timeZone: "UTC", pricing: PRICING }));
  });
  afterEach(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const flags = (...extra: string[]) => ["--config", configFile, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", fake.url, ...extra];

  async function journaled(): Promise<CallRecord[]> {
    const report = await run(["report", "--calls", "--format", "json", "--ledger", path.join(dir, "ledger"), "--config", configFile]);
    assert.equal(report.code, 0, report.stderr);
    return JSON.parse(report.stdout) as CallRecord[];
  }

  /** Starts a call that Bedrock never answers and resolves once it reached the fake. */
  async function hungCall(served: Served): Promise<{ settledByCaller: Promise<unknown>; done: () => void }> {
    const hung = reaching(fake, { kind: "hang" });
    const client = clientFor(served.url);
    const settledByCaller = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hang", 1000) })).catch((e: Error) => e);
    await hung;
    return { settledByCaller, done: () => client.destroy() };
  }

  it("exits after the default deadline, with the call journaled at its worst case", async () => {
    const served = await serve(flags());
    const call = await hungCall(served);
    served.child.kill("SIGTERM");
    assert.equal(await served.exited, 0, served.stderr());
    await call.settledByCaller;
    call.done();
    const [record] = await journaled();
    assertInterruptedAtWorstCase(record, "InvokeModel");
  });

  it("a second SIGTERM stops the call at once (with a deadline of an hour), after journaling it", async () => {
    const served = await serve(flags("--shutdown-deadline", "3600"));
    const call = await hungCall(served);
    const stopping = new Promise<void>((resolve) => {
      const onData = () => {
        if (!/stopping: calls in flight/.test(served.stderr())) return;
        served.child.stderr!.off("data", onData);
        resolve();
      };
      served.child.stderr!.on("data", onData);
    });
    served.child.kill("SIGTERM");
    await stopping; // the first signal was handled; the deadline now runs for an hour
    served.child.kill("SIGTERM");
    assert.equal(await served.exited, 0, served.stderr());
    await call.settledByCaller;
    call.done();
    const [record] = await journaled();
    assertInterruptedAtWorstCase(record, "InvokeModel");
  });
});
