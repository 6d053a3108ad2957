/**
 * Cost accuracy as a user sees it in the ledger: the real AWS SDK → gateway → fake Bedrock (which
 * verifies SigV4, also on the control plane's GetInferenceProfile). Application inference profiles,
 * prompt routers, long context, failed streams, regions, new rows, tiers, provisioned throughput.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { validated } from "../../server/config/load";
import { startGateway } from "../../server/gateway/gateway";
import { createLogger, silentLogger } from "../../server/log";
import { PriceBook } from "../../server/metering/prices";
import { API_PATHS, TOKEN_HEADER, type CallsResponse } from "../../server/protocol";
import type { CallRecord } from "../../server/ledger/types";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

const calls = async (url: string, token: string) => {
  const res = await fetch(`${url}${API_PATHS.calls}?limit=1000`, { headers: { [TOKEN_HEADER]: token } });
  assert.equal(res.status, 200);
  return ((await res.json()) as CallsResponse).calls;
};
const lastCall = async (h: Harness) => (await calls(h.gateway.url, h.gateway.api.token()))[0]!;
/** The next call the gateway settles (a stream's caller can see its error before the settlement). */
const nextSettled = (h: Harness) =>
  new Promise<CallRecord>((resolve) => {
    const off = h.gateway.onCall((record) => {
      off();
      resolve(record);
    });
  });
const converse = (modelId: string, maxTokens = 600) =>
  new ConverseCommand({ modelId, messages: [{ role: "user", content: [{ text: "Hello" }] }], inferenceConfig: { maxTokens } });

const ACCOUNT = "123456789012";
const HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0";
const PROFILE = `arn:aws:bedrock:us-east-1:${ACCOUNT}:application-inference-profile/team-a-haiku`;
const UNKNOWN_PROFILE = `arn:aws:bedrock:us-east-1:${ACCOUNT}:application-inference-profile/nobody-knows`;

describe("pricing: every call priced as AWS bills it", function () {
  this.timeout(20_000);
  let h: Harness;
  const logged: string[] = [];
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_BEDROCK;

  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 50 }] }, { log: createLogger((level, line) => logged.push(`${level}: ${line}`), "info") });
    process.env.AWS_ENDPOINT_URL_BEDROCK = h.fake.url; // the control plane, as every SDK reads it
  });
  after(async () => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_BEDROCK;
    else process.env.AWS_ENDPOINT_URL_BEDROCK = savedEndpoint;
    await h.close();
  });
  beforeEach(() => h.fake.reset());

  describe("1. application inference profiles and prompt routers", () => {
    it("prices a call through an application inference profile as the model behind it (looked up once, signed for bedrock)", async () => {
      h.fake.inferenceProfiles.set(PROFILE, {
        models: ["us-east-1", "us-east-2", "us-west-2"].map((r) => `arn:aws:bedrock:${r}::foundation-model/${HAIKU_45}`),
      });
      h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
      await h.client.send(converse(PROFILE));
      const call = await lastCall(h);
      // Haiku 4.5 through a cross-region (geographic) profile: $1.10 / $5.50 per million, not the dearest rate.
      assert.equal(call.costPicos, String(1000n * 1_100_000n + 500n * 5_500_000n));
      assert.equal(call.baseModelId, HAIKU_45);
      const lookups = h.fake.hits.filter((hit) => hit.operation === "GetInferenceProfile");
      assert.equal(lookups.length, 1);
      assert.equal(lookups[0]!.signatureValid, true, "signed with the gateway's credentials for service bedrock");
      assert.equal(lookups[0]!.modelId, PROFILE);

      await h.client.send(converse(PROFILE));
      assert.equal(h.fake.hits.filter((hit) => hit.operation === "GetInferenceProfile").length, 1, "the answer is cached");
      // The answer is persisted in the background (the call does not wait for the disk): poll, bounded.
      let file: import("node:fs").Stats | undefined;
      for (let i = 0; i < 50 && !file; i++) {
        file = await stat(path.join(h.ledgerDir, "profiles.json")).catch(() => undefined);
        if (!file) await new Promise((r) => setTimeout(r, 40));
      }
      assert.ok(file, "profiles.json was written");
      if (process.platform !== "win32") assert.equal(file.mode & 0o777, 0o600);
    });

    it("still knows the profile after a restart with the control plane unreachable", async () => {
      h.fake.inferenceProfiles.clear();
      process.env.AWS_ENDPOINT_URL_BEDROCK = "http://127.0.0.1:9"; // nothing listens there
      try {
        await h.restart();
        h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
        await h.client.send(converse(PROFILE));
        const call = await lastCall(h);
        assert.equal(call.costPicos, String(1000n * 1_100_000n + 500n * 5_500_000n));
      } finally {
        process.env.AWS_ENDPOINT_URL_BEDROCK = h.fake.url;
      }
    });

    it("a failed lookup: the call is priced at the dearest rate, and the log and the call's record say why", async () => {
      h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
      await h.client.send(converse(UNKNOWN_PROFILE));
      const call = await lastCall(h);
      const dearest = new PriceBook().rates(UNKNOWN_PROFILE);
      assert.equal(call.costPicos, String(1000n * dearest.input + 500n * dearest.output));
      assert.match(call.message ?? "", /dearest rate.*could not be looked up.*ResourceNotFoundException/);
      assert.ok(logged.some((l) => l.startsWith("warn:") && l.includes(UNKNOWN_PROFILE) && l.includes("dearest rate")), logged.join("\n"));
    });

    it("a model with no price row: each call is charged the dearest rate, and the log says so once, not once per call", async () => {
      const unpriced = "acme.future-model-v9:0";
      h.fake.behave(() => ({ kind: "ok", usage: { input: 100, output: 50 } }));
      const dearest = new PriceBook().rates(unpriced);
      assert.equal(dearest.known, false);
      for (let i = 0; i < 3; i++) {
        await h.client.send(converse(unpriced));
        assert.equal((await lastCall(h)).costPicos, String(100n * dearest.input + 50n * dearest.output));
      }
      const warnings = logged.filter((l) => l.startsWith("warn:") && l.includes(unpriced) && l.includes("no price row"));
      assert.equal(warnings.length, 1, logged.join("\n"));
    });

    it("a prompt router's call is priced at the model its answer names", async () => {
      const router = `arn:aws:bedrock:us-east-1:${ACCOUNT}:default-prompt-router/anthropic.claude:1`;
      const invoked = `arn:aws:bedrock:us-east-1:${ACCOUNT}:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0`;
      h.fake.behave(() => ({
        kind: "bad-body", // a Converse answer written out whole, with the router's trace
        body: JSON.stringify({
          output: { message: { role: "assistant", content: [{ text: "hi" }] } },
          stopReason: "end_turn",
          usage: { inputTokens: 1000, outputTokens: 500, totalTokens: 1500 },
          metrics: { latencyMs: 5 },
          trace: { promptRouter: { invokedModelId: invoked } },
        }),
      }));
      const out = await h.client.send(converse(router));
      assert.equal(out.trace?.promptRouter?.invokedModelId, invoked);
      const call = await lastCall(h);
      // Claude 3 Haiku: $0.25 / $1.25 per million.
      assert.equal(call.costPicos, String(1000n * 250_000n + 500n * 1_250_000n));
    });
  });

  it("2. no long-context premium on Sonnet 4.6: 250K input is charged the standard rate", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 250_000, output: 1000 } }));
    await h.client.send(converse("global.anthropic.claude-sonnet-4-6", 1000));
    const call = await lastCall(h);
    assert.equal(call.costPicos, String(250_000n * 3_000_000n + 1000n * 15_000_000n)); // $0.765, not $1.52
  });

  describe("3. a stream that fails part-way is charged what it generated", () => {
    it("InvokeModelWithResponseStream: an exception after the final metrics is charged those metrics", async () => {
      h.fake.behave(() => ({ kind: "stream-exception", afterChunks: 1_000, exceptionType: "internalServerException", message: "late failure" }));
      const settled = nextSettled(h);
      const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("Stream", 512) }));
      await assert.rejects(async () => {
        for await (const _ of out.body!) void _;
      }, /late failure/);
      const call = await settled;
      assert.equal(call.outcome, "upstream-error");
      const u = call.usage;
      assert.ok(u.outputTokens > 0);
      assert.equal(call.costPicos, String(BigInt(u.inputTokens) * 3_000_000n + BigInt(u.outputTokens) * 15_000_000n));
    });

    it("ConverseStream: an exception mid-stream is charged the input and the output delivered", async () => {
      h.fake.behave(() => ({ kind: "stream-exception", afterChunks: 3, exceptionType: "modelStreamErrorException", message: "the model stumbled" }));
      const settled = nextSettled(h);
      const out = await h.client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 300 } }));
      await assert.rejects(async () => {
        for await (const _ of out.stream!) void _;
      }, /the model stumbled/);
      const call = await settled;
      assert.equal(call.outcome, "upstream-error");
      assert.ok(call.usage.inputTokens > 0 && call.usage.outputTokens > 0, JSON.stringify(call.usage));
      assert.ok(BigInt(call.costPicos) > 0n, "never $0 for a call that produced tokens");
      assert.ok(BigInt(call.costPicos) <= BigInt(call.worstCasePicos));
    });

    it("a throttle sent inside the stream before any event costs nothing, on each of the SDK's attempts", async () => {
      // Bedrock can answer 200 and then throttle in the stream; the same throttle as a 429 is $0 too.
      h.fake.behave(() => ({ kind: "stream-exception", afterChunks: 0, exceptionType: "throttlingException", message: "Too many requests" }));
      const attempts: CallRecord[] = [];
      const off = h.gateway.onCall((record) => void attempts.push(record));
      const sent = h.fake.hits.length;
      // The SDK reads the first event while it deserializes, so the send itself fails (after its retries).
      await assert.rejects(async () => {
        const out = await h.client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 300 } }));
        for await (const _ of out.stream!) void _;
      }, /Too many requests/);
      // Each attempt that reached the fake settles (a stream's caller can see its error first): bounded wait.
      for (let i = 0; i < 100 && attempts.length < h.fake.hits.length - sent; i++) await new Promise((r) => setTimeout(r, 20));
      off();
      assert.ok(attempts.length >= 1 && attempts.length === h.fake.hits.length - sent, `${attempts.length} settled of ${h.fake.hits.length - sent} sent`);
      for (const call of attempts) {
        assert.equal(call.outcome, "upstream-error");
        assert.equal(call.costPicos, "0", "nothing generated, nothing billed");
        assert.match(call.message ?? "", /throttlingException before any output: not billed/);
      }
    });

    it("an error status before any token still costs nothing", async () => {
      h.fake.behave(() => ({ kind: "error", status: 400, type: "ValidationException", message: "bad input" }));
      await assert.rejects(h.client.send(converse(SONNET_45)), /bad input/);
      assert.equal((await lastCall(h)).costPicos, "0");
    });
  });

  describe("4. region", () => {
    it("Nova 2 Lite through a geographic profile costs $0.33 / $2.75, through global $0.30 / $2.50", async () => {
      h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 } }));
      await h.client.send(converse("us.amazon.nova-2-lite-v1:0"));
      assert.equal((await lastCall(h)).costPicos, String(1000n * 330_000n + 1000n * 2_750_000n));
      await h.client.send(converse("global.amazon.nova-2-lite-v1:0"));
      assert.equal((await lastCall(h)).costPicos, String(1000n * 300_000n + 1000n * 2_500_000n));
    });

    it("a call signed for an EU region is priced at that region's rate", async () => {
      const fake = await FakeBedrock.start({ credentials: CREDENTIALS, region: "eu-north-1" });
      const ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-ledger-"));
      const gateway = await startGateway({
        config: validated({ port: 0, upstreamEndpoint: fake.url, ledgerDir, user: "tester", timeZone: "UTC", caps: [{ window: "day", limitUsd: 5 }] }, "test"),
        credentials: async () => CREDENTIALS,
        log: silentLogger(),
      });
      const client = new BedrockRuntimeClient({ region: "eu-north-1", endpoint: gateway.url, credentials: CREDENTIALS });
      try {
        fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 } }));
        await client.send(converse("eu.amazon.nova-pro-v1:0"));
        assert.equal(fake.hits[0]!.signatureValid, true);
        const [call] = await calls(gateway.url, gateway.api.token());
        assert.equal(call!.costPicos, String(1000n * 870_000n + 1000n * 3_480_000n)); // not us-east-1's $0.80 / $3.20
      } finally {
        client.destroy();
        await gateway.close();
        await fake.close();
        await rm(ledgerDir, { recursive: true, force: true });
      }
    });
  });

  describe("5. missing rows, tiers, provisioned throughput", () => {
    it("prices DeepSeek V3.2 and Mistral Large 3 from their rows, not the dearest rate", async () => {
      h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 } }));
      await h.client.send(converse("deepseek.v3.2"));
      assert.equal((await lastCall(h)).costPicos, String(1000n * 620_000n + 1000n * 1_850_000n));
      await h.client.send(converse("mistral.mistral-large-3-675b-instruct"));
      assert.equal((await lastCall(h)).costPicos, String(1000n * 500_000n + 1000n * 1_500_000n));
    });

    it("a service tier the table does not know is charged the dearest listed tier, never the standard rate", async () => {
      h.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 }, serviceTier: "turbo" }));
      await h.client.send(converse("amazon.nova-pro-v1:0"));
      assert.equal((await lastCall(h)).costPicos, String(1000n * 1_400_000n + 1000n * 5_600_000n)); // 0.80 / 3.20 × 1.75
    });

    it("a tier asked in InvokeModel's header is reserved as settlement would charge it: any case, an unknown tier at the dearest listed one, flex at standard", async () => {
      const invoke = (serviceTier?: string) =>
        new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 1000), contentType: "application/json", ...(serviceTier ? { serviceTier: serviceTier as "priority" } : {}) });
      await h.client.send(invoke());
      const standard = BigInt((await lastCall(h)).worstCasePicos);
      for (const [asked, basisPoints] of [["Priority", 17_500n], ["PRIORITY", 17_500n], ["turbo", 17_500n], ["flex", 10_000n]] as const) {
        await h.client.send(invoke(asked));
        assert.equal(h.fake.hits.at(-1)!.headers["x-amzn-bedrock-service-tier"], asked, "forwarded as asked");
        assert.equal(BigInt((await lastCall(h)).worstCasePicos) * 10_000n, standard * basisPoints, `${asked} reserved at ×${Number(basisPoints) / 10_000}`);
      }
    });

    it("Converse's tier in its body is read in any case; a tier header on Converse (which Bedrock documents for InvokeModel only) is refused, not forwarded unpriced", async () => {
      await h.client.send(converse(SONNET_45, 1000));
      const standard = BigInt((await lastCall(h)).worstCasePicos);
      await h.client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Hello" }] }], inferenceConfig: { maxTokens: 1000 }, serviceTier: { type: "PRIORITY" as "priority" } }));
      assert.equal(BigInt((await lastCall(h)).worstCasePicos) * 10_000n, standard * 17_500n);
      const hits = h.fake.hits.length;
      for (const [name, value] of [["x-amzn-bedrock-service-tier", "priority"], ["x-amzn-bedrock-performanceconfig-latency", "optimized"]] as const) {
        const client = new BedrockRuntimeClient({ region: "us-east-1", endpoint: h.gateway.url, credentials: CREDENTIALS });
        client.middlewareStack.add(
          (next) => async (args) => {
            (args.request as { headers: Record<string, string> }).headers[name] = value;
            return next(args);
          },
          { step: "build", name: "tierHeader" },
        );
        try {
          await assert.rejects(client.send(converse(SONNET_45, 1000)), (err: Error) => {
            assert.equal(err.name, "ValidationException");
            assert.match(err.message, /Converse takes its service tier and latency in the request body \(serviceTier, performanceConfig\), not in the x-amzn-bedrock-/);
            return true;
          });
        } finally {
          client.destroy();
        }
      }
      assert.equal(h.fake.hits.length, hits, "neither reached Bedrock");
    });

    it("a provisioned model declared at $0 per token with an hourly figure is charged $0 per call", async () => {
      const provisioned = `arn:aws:bedrock:us-east-1:${ACCOUNT}:provisioned-model/abc123def456`;
      const p = await startHarness({ pricing: { [provisioned]: { inputPer1M: 0, outputPer1M: 0, hourlyUsd: 39.6 } }, caps: [{ window: "day", limitUsd: 1 }] });
      try {
        p.fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
        await p.client.send(new InvokeModelCommand({ modelId: provisioned, body: anthropicBody("Hi", 500), contentType: "application/json" }));
        assert.equal((await lastCall(p)).costPicos, "0");
      } finally {
        await p.close();
      }
    });
  });
});
