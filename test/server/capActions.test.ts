/**
 * Caps' actions as users meet them: the real AWS SDK (default handler) → gateway → the fake
 * Bedrock that verifies SigV4. Downgrade sends the call to a cheaper model, clamp lowers its
 * output limit, warn lets it through; each says so in a response header and in the ledger.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import type { ConfigInput } from "../../server/config/schema";
import { CAP_ACTION_EVENT, type CapActionEvent } from "../../server/gateway/localApi";
import { usdToPicos } from "../../server/metering/money";
import { API_PATHS, TOKEN_HEADER, type CallRecord, type CallsResponse, type StatusResponse } from "../../server/protocol";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";

const HAIKU_45 = "global.anthropic.claude-haiku-4-5-20251001-v1:0";
const NOVA_MICRO = "amazon.nova-micro-v1:0";
const PICOS_PER_USD = 1_000_000_000_000n;

async function getJson<T>(h: Harness, path: string): Promise<T> {
  const res = await fetch(`${h.gateway.url}${path}`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } });
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return (await res.json()) as T;
}
const calls = async (h: Harness): Promise<CallRecord[]> => (await getJson<CallsResponse>(h, `${API_PATHS.calls}?limit=1000`)).calls;
const capStatus = async (h: Harness, id: string) => (await getJson<StatusResponse>(h, API_PATHS.status)).caps.find((c) => c.id === id)!;

/** The response headers of the client's last successful call (a middleware that reads, never replaces, the default handler). */
function watchHeaders(client: BedrockRuntimeClient): { last: Record<string, string> } {
  const seen = { last: {} as Record<string, string> };
  client.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      seen.last = (out.response as { headers: Record<string, string> }).headers;
      return out;
    },
    { step: "deserialize", name: "watchResponseHeaders" },
  );
  return seen;
}

const converse = (modelId: string, text: string, maxTokens: number) =>
  new ConverseCommand({ modelId, messages: [{ role: "user", content: [{ text }] }], inferenceConfig: { maxTokens } });

async function withHarness(config: Partial<ConfigInput>, run: (h: Harness, headers: { last: Record<string, string> }) => Promise<void>): Promise<void> {
  const h = await startHarness(config);
  try {
    await run(h, watchHeaders(h.client));
  } finally {
    await h.close();
  }
}

describe("gateway: cap actions through the real SDK", function () {
  this.timeout(60_000);

  describe("downgrade", () => {
    // $0.02 a day on Sonnet; from 80% of it (spent + reserved + the call's worst case), calls go to Haiku.
    const config: Partial<ConfigInput> = {
      caps: [{ id: "sonnet-day", window: "day", limitUsd: 0.02, model: "*sonnet*", action: "downgrade", downgradeTo: HAIKU_45 }],
    };

    it("Converse: below the threshold the asked model answers; past it, the call goes to the cheaper model (path only), re-signed, priced as it, both ids journaled", async () => {
      await withHarness(config, async (h, headers) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 1000 } })); // $0.01503 on Sonnet
        await h.client.send(converse(SONNET_45, "first", 100));
        assert.equal(h.fake.hits[0]!.modelId, SONNET_45, "below the threshold: not downgraded");
        assert.equal(headers.last["x-bedrock-budget-answered-by"], undefined);

        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 100 } }));
        const out = await h.client.send(converse(SONNET_45, "second", 100));
        assert.ok(out.output?.message, "the caller gets its answer");
        const hit = h.fake.hits[1]!;
        assert.equal(hit.modelId, HAIKU_45, "the fake received the downgraded model id");
        assert.equal(hit.signatureValid, true, "re-signed for the new path");
        assert.equal(JSON.parse(hit.body.toString("utf8")).inferenceConfig.maxTokens, 100, "Converse: the body is unchanged");
        assert.equal(headers.last["x-bedrock-budget-answered-by"], HAIKU_45);

        const record = (await calls(h)).find((c) => c.answeredBy !== undefined)!;
        assert.equal(record.modelId, SONNET_45, "the ledger keeps the model asked");
        assert.equal(record.answeredBy, HAIKU_45);
        assert.match(record.baseModelId, /haiku-4-5/);
        assert.deepEqual(record.actions, [{ capId: "sonnet-day", action: "downgrade", detail: `${SONNET_45} -> ${HAIKU_45}` }]);
        // Haiku 4.5: $1 / $5 per million tokens: 10 in, 100 out.
        assert.equal(record.costPicos, String((10n * 1n + 100n * 5n) * PICOS_PER_USD / 1_000_000n));
        // Capped as Haiku: the Sonnet cap holds only the first call, live and after a restart (journal replay).
        assert.equal((await capStatus(h, "sonnet-day")).spentExact, "0.01503");
        await h.restart();
        assert.equal((await capStatus(h, "sonnet-day")).spentExact, "0.01503", "replay counts a downgraded call against the model that answered");
      });
    });

    it("Anthropic InvokeModel: the body goes as it is to the other Anthropic model; the answering model is in a header and the ledger", async () => {
      await withHarness({ caps: [{ ...config.caps![0]!, downgradeAt: 0 }] }, async (h, headers) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 20, output: 30 } }));
        const body = anthropicBody("Hello", 256);
        await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" }));
        const hit = h.fake.hits[0]!;
        assert.equal(hit.modelId, HAIKU_45);
        assert.equal(hit.signatureValid, true);
        assert.equal(hit.body.toString("utf8"), body, "same provider format: the body is forwarded byte for byte");
        assert.equal(headers.last["x-bedrock-budget-answered-by"], HAIKU_45);
        const [record] = await calls(h);
        assert.equal(record!.modelId, SONNET_45);
        assert.equal(record!.answeredBy, HAIKU_45);
        assert.equal(record!.outcome, "ok");
      });
    });

    it("ConverseStream: the stream comes from the cheaper model, with the header, and settles at its price", async () => {
      await withHarness({ caps: [{ ...config.caps![0]!, downgradeAt: 0 }] }, async (h, headers) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 }, chunks: 3 }));
        const out = await h.client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "stream" }] }], inferenceConfig: { maxTokens: 50 } }));
        let events = 0;
        for await (const _ of out.stream!) events++;
        assert.ok(events > 0);
        assert.equal(h.fake.hits[0]!.modelId, HAIKU_45);
        assert.equal(h.fake.hits[0]!.signatureValid, true);
        assert.equal(headers.last["x-bedrock-budget-answered-by"], HAIKU_45);
        const [record] = await calls(h);
        assert.equal(record!.answeredBy, HAIKU_45);
        assert.equal(record!.costPicos, String((10n * 1n + 20n * 5n) * PICOS_PER_USD / 1_000_000n), "Haiku's price");
      });
    });

    it("to an application inference profile: priced and capped as the model behind it, as a call naming it is (Converse and Anthropic InvokeModel)", async () => {
      const profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/cheap";
      const caps = [
        { id: "sonnet-day", window: "day" as const, limitUsd: 5, model: "*sonnet*", action: "downgrade" as const, downgradeTo: profile, downgradeAt: 0 },
        { id: "haiku-day", window: "day" as const, limitUsd: 0.001, model: "*haiku*" },
      ];
      const saved = process.env.AWS_ENDPOINT_URL_BEDROCK;
      await withHarness({ caps }, async (h) => {
        process.env.AWS_ENDPOINT_URL_BEDROCK = h.fake.url; // the control plane, as every SDK reads it
        h.fake.inferenceProfiles.set(profile, { models: [`arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0`] });
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 100 } }));
        // Haiku's cap ($0.001) has no room for a 1,000-token answer from Haiku: the downgraded call meets it.
        await assert.rejects(h.client.send(converse(SONNET_45, "hi", 1000)), (err: Error) => err.name === "ServiceQuotaExceededException" && /haiku-day/.test(err.message));
        assert.equal(h.fake.hits.filter((hit) => hit.operation !== "GetInferenceProfile").length, 0, "nothing forwarded past Haiku's cap");
        // Within it: charged Haiku 4.5 with its regional premium ($1.10 / $5.50 per million), as a call
        // naming the profile is (test/server/pricing.test.ts), not at the dearest model's rates.
        await h.client.send(converse(SONNET_45, "hi", 100));
        const record = (await calls(h)).find((c) => c.outcome === "ok")!;
        assert.equal(record.answeredBy, profile);
        assert.equal(record.baseModelId, "anthropic.claude-haiku-4-5-20251001-v1:0");
        assert.equal(record.costPicos, String(10n * 1_100_000n + 100n * 5_500_000n));
        // InvokeModel: the profile stands for an Anthropic model, so the Anthropic body goes as it is.
        await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hello", 50), contentType: "application/json" }));
        const invoked = h.fake.hits.filter((hit) => hit.operation === "InvokeModel");
        assert.equal(invoked.length, 1);
        assert.equal(invoked[0]!.modelId, profile);
      }).finally(() => {
        if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_BEDROCK;
        else process.env.AWS_ENDPOINT_URL_BEDROCK = saved;
      });
    });

    it("InvokeModel to another provider's body format: a 400 naming both models and why, nothing forwarded", async () => {
      await withHarness({ caps: [{ id: "to-nova", window: "day", limitUsd: 1, model: "*sonnet*", action: "downgrade", downgradeTo: NOVA_MICRO, downgradeAt: 0 }] }, async (h) => {
        await assert.rejects(
          h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hello", 256), contentType: "application/json" })),
          (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
            assert.equal(err.name, "ValidationException");
            assert.equal(err.$metadata?.httpStatusCode, 400);
            assert.ok(err.message.includes(SONNET_45) && err.message.includes(NOVA_MICRO), err.message);
            assert.match(err.message, /Anthropic Messages.*Amazon Nova|cannot be downgraded safely/);
            return true;
          },
        );
        assert.equal(h.fake.hits.length, 0);
        const [record] = await calls(h);
        assert.equal(record!.outcome, "refused", "the refusal is journaled");
        assert.equal(record!.refusedBy, "to-nova");
        assert.equal(record!.answeredBy, undefined);
      });
    });
  });

  describe("downgrade: a body the answering model would refuse", () => {
    const CLAUDE_35_HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0";
    const toModel = (id: string, to: string, model = "*sonnet*"): Partial<ConfigInput> => ({ caps: [{ id, window: "day", limitUsd: 5, model, action: "downgrade", downgradeTo: to, downgradeAt: 0 }] });
    /** Refused by the gateway with a 400 naming the cap, both models and `why`; nothing forwarded, the refusal journaled. */
    const refusedAs = (capId: string, from: string, to: string, why: RegExp) => (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(err.name, "ValidationException");
      assert.equal(err.$metadata?.httpStatusCode, 400);
      assert.ok(err.message.includes(`cap "${capId}" downgrades "${from}" to "${to}"`), err.message);
      assert.match(err.message, why);
      return true;
    };

    it("Converse with Anthropic's additionalModelRequestFields to a Nova model: a 400 naming the fields and both models, nothing forwarded; without them it goes", async () => {
      await withHarness(toModel("to-nova", NOVA_MICRO), async (h) => {
        await assert.rejects(
          h.client.send(new ConverseCommand({
            modelId: SONNET_45,
            messages: [{ role: "user", content: [{ text: "hi" }] }],
            inferenceConfig: { maxTokens: 500 },
            additionalModelRequestFields: { top_k: 40, anthropic_beta: ["token-efficient-tools-2025-02-19"] },
          })),
          refusedAs("to-nova", SONNET_45, NOVA_MICRO, /additionalModelRequestFields\.top_k, additionalModelRequestFields\.anthropic_beta.*\(Anthropic\).*\(Amazon Nova\).*same provider family/),
        );
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
        const [record] = await calls(h);
        assert.equal(record!.outcome, "refused");
        assert.equal(record!.refusedBy, "to-nova");
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(converse(SONNET_45, "hi", 500));
        assert.equal(h.fake.hits[0]!.modelId, NOVA_MICRO, "a body with nothing model-specific is downgraded as before");
      });
    });

    it("Converse with additionalModelRequestFields to a model whose provider its id does not say: refused, saying so, never guessed the same", async () => {
      const deployment = "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdef123456";
      await withHarness(toModel("to-custom", deployment), async (h) => {
        await assert.rejects(
          h.client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 500 }, additionalModelRequestFields: { top_k: 40 } })),
          refusedAs("to-custom", SONNET_45, deployment, /additionalModelRequestFields\.top_k.*\(Anthropic\) that ".*" \(a provider Bedrock Budget cannot tell from its id\) may not take/),
        );
        assert.equal(h.fake.hits.length, 0);
      });
    });

    it("extended thinking to a Claude without it (Converse and InvokeModel): a 400 naming the budget, nothing forwarded", async () => {
      await withHarness(toModel("to-35-haiku", CLAUDE_35_HAIKU), async (h) => {
        const why = /extended thinking \((?:additionalModelRequestFields\.)?thinking\.budget_tokens 2000\).*does not support/;
        await assert.rejects(
          h.client.send(new ConverseCommand({
            modelId: SONNET_45,
            messages: [{ role: "user", content: [{ text: "think" }] }],
            inferenceConfig: { maxTokens: 4000 },
            additionalModelRequestFields: { thinking: { type: "enabled", budget_tokens: 2000 } },
          })),
          refusedAs("to-35-haiku", SONNET_45, CLAUDE_35_HAIKU, why),
        );
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 4000, thinking: { type: "enabled", budget_tokens: 2000 }, messages: [{ role: "user", content: "think" }] });
        await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" })), refusedAs("to-35-haiku", SONNET_45, CLAUDE_35_HAIKU, why));
        assert.equal(h.fake.hits.length, 0);
      });
    });
  });

  describe("downgrade: sampling and tool fields the answering model would refuse", () => {
    const SONNET_4 = "anthropic.claude-sonnet-4-20250514-v1:0";
    const LLAMA3_8B = "meta.llama3-8b-instruct-v1:0";
    const LLAMA31_8B = "meta.llama3-1-8b-instruct-v1:0";
    const toModel = (id: string, to: string, model = "*sonnet*"): Partial<ConfigInput> => ({ caps: [{ id, window: "day", limitUsd: 5, model, action: "downgrade", downgradeTo: to, downgradeAt: 0 }] });
    const refused = (capId: string, from: string, to: string, why: RegExp) => (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(err.name, "ValidationException");
      assert.equal(err.$metadata?.httpStatusCode, 400);
      assert.ok(err.message.includes(`cap "${capId}" downgrades "${from}" to "${to}"`), err.message);
      assert.match(err.message, why);
      return true;
    };
    const ask = (modelId: string, extra: Record<string, unknown>) =>
      new ConverseCommand({ modelId, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 500 }, ...extra });

    it("temperature with top_p from Claude Sonnet 4 to Claude Haiku 4.5 (which refuses both at once): a 400 naming both fields, nothing forwarded; one of them goes", async () => {
      await withHarness(toModel("to-haiku", HAIKU_45), async (h) => {
        await assert.rejects(
          h.client.send(ask(SONNET_4, { inferenceConfig: { maxTokens: 500, temperature: 0.5, topP: 0.9 } })),
          refused("to-haiku", SONNET_4, HAIKU_45, /both inferenceConfig\.temperature and inferenceConfig\.topP.*refuses temperature and top_p together.*Send only one/),
        );
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 500, temperature: 0.5, top_p: 0.9, messages: [{ role: "user", content: "hi" }] });
        await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_4, body, contentType: "application/json" })), refused("to-haiku", SONNET_4, HAIKU_45, /both temperature and top_p/));
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(ask(SONNET_4, { inferenceConfig: { maxTokens: 500, temperature: 0.5 } }));
        assert.equal(h.fake.hits[0]!.modelId, HAIKU_45, "temperature alone is downgraded as before");
      });
    });

    it("adaptive thinking from Claude Sonnet 4.6 to Claude Haiku 4.5 (which has none): a 400 naming the field (Converse and InvokeModel), nothing forwarded; to a model with it, it goes", async () => {
      const SONNET_46 = "anthropic.claude-sonnet-4-6";
      await withHarness(toModel("to-haiku", HAIKU_45), async (h) => {
        const why = /asks adaptive thinking \((?:additionalModelRequestFields\.)?thinking\.type "adaptive"\).*does not support/;
        await assert.rejects(h.client.send(ask(SONNET_46, { additionalModelRequestFields: { thinking: { type: "adaptive" } } })), refused("to-haiku", SONNET_46, HAIKU_45, why));
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 500, thinking: { type: "adaptive" }, messages: [{ role: "user", content: "hi" }] });
        await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_46, body, contentType: "application/json" })), refused("to-haiku", SONNET_46, HAIKU_45, why));
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      });
      const OPUS_47 = "anthropic.claude-opus-4-7";
      await withHarness(toModel("to-opus", OPUS_47), async (h) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(ask(SONNET_46, { additionalModelRequestFields: { thinking: { type: "adaptive" } } }));
        assert.equal(h.fake.hits[0]!.modelId, OPUS_47);
      });
      // A generation-5 Claude of another name thinks adaptively only: it takes adaptive thinking.
      const FABLE_5 = "anthropic.claude-fable-5-1";
      await withHarness(toModel("to-fable", FABLE_5), async (h) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(ask(SONNET_46, { additionalModelRequestFields: { thinking: { type: "adaptive" } } }));
        assert.equal(h.fake.hits[0]!.modelId, FABLE_5);
      });
    });

    it("from Claude Opus 4.1 to Opus 4.7 (adaptive thinking only, no sampling parameters): a thinking budget or a temperature is a 400 naming it, nothing forwarded; adaptive thinking goes", async () => {
      const OPUS_41 = "anthropic.claude-opus-4-1-20250805-v1:0";
      const OPUS_47 = "anthropic.claude-opus-4-7";
      await withHarness(toModel("to-opus-47", OPUS_47, "*opus-4-1*"), async (h) => {
        await assert.rejects(
          h.client.send(ask(OPUS_41, { inferenceConfig: { maxTokens: 4000 }, additionalModelRequestFields: { thinking: { type: "enabled", budget_tokens: 2000 } } })),
          refused("to-opus-47", OPUS_41, OPUS_47, /extended-thinking budget \(additionalModelRequestFields\.thinking\.budget_tokens 2000\).*thinks adaptively only/),
        );
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 500, temperature: 0.2, messages: [{ role: "user", content: "hi" }] });
        await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: OPUS_41, body, contentType: "application/json" })), refused("to-opus-47", OPUS_41, OPUS_47, /sets temperature, sampling parameters .* does not take/));
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(ask(OPUS_41, { additionalModelRequestFields: { thinking: { type: "adaptive" } } }));
        assert.equal(h.fake.hits[0]!.modelId, OPUS_47);
        // temperature 1 is the default (many clients send it): not a non-default sampler.
        await h.client.send(ask(OPUS_41, { inferenceConfig: { maxTokens: 500, temperature: 1 } }));
        assert.equal(h.fake.hits[1]!.modelId, OPUS_47);
      });
    });

    it("an image to a model without vision (Nova Micro; Claude 3.5 Haiku, in a tool result): a 400 naming the block, nothing forwarded; to Nova Lite it goes", async () => {
      const png = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489", "hex");
      const withImage = (h: Harness) =>
        h.client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "what is this" }, { image: { format: "png", source: { bytes: png } } }] }], inferenceConfig: { maxTokens: 500 } }));
      await withHarness(toModel("to-micro", NOVA_MICRO), async (h) => {
        await assert.rejects(withImage(h), refused("to-micro", SONNET_45, NOVA_MICRO, /carries an image \(messages\[0\]\.content\[1\]\).*takes no images/));
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      });
      const CLAUDE_35_HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0";
      await withHarness(toModel("to-35-haiku", CLAUDE_35_HAIKU), async (h) => {
        const image = { type: "image", source: { type: "base64", media_type: "image/png", data: png.toString("base64") } };
        const body = JSON.stringify({
          anthropic_version: "bedrock-2023-05-31",
          max_tokens: 500,
          messages: [
            { role: "user", content: "look" },
            { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "screenshot", input: {} }] },
            { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: [image] }] },
          ],
        });
        await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" })), refused("to-35-haiku", SONNET_45, CLAUDE_35_HAIKU, /carries an image \(messages\[2\]\.content\[0\]\.content\[0\]\)/));
        assert.equal(h.fake.hits.length, 0);
      });
      const NOVA_LITE = "amazon.nova-lite-v1:0";
      await withHarness(toModel("to-lite", NOVA_LITE), async (h) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await withImage(h);
        assert.equal(h.fake.hits[0]!.modelId, NOVA_LITE);
      });
    });

    it("a document to a model without document chat (Nova Micro): a 400 naming the block, nothing forwarded", async () => {
      await withHarness(toModel("to-micro", NOVA_MICRO), async (h) => {
        const document = { name: "notes", format: "txt" as const, source: { bytes: Buffer.from("some notes") } };
        await assert.rejects(
          h.client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "summarise" }, { document }] }], inferenceConfig: { maxTokens: 500 } })),
          refused("to-micro", SONNET_45, NOVA_MICRO, /carries a document \(messages\[0\]\.content\[1\]\).*takes no documents/),
        );
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      });
    });

    it("tools to a model without tool use (Llama 3 8B): a 400 naming toolConfig.tools, nothing forwarded", async () => {
      await withHarness(toModel("to-llama3", LLAMA3_8B), async (h) => {
        const toolConfig = { tools: [{ toolSpec: { name: "lookup", inputSchema: { json: { type: "object" } } } }] };
        await assert.rejects(h.client.send(ask(SONNET_45, { toolConfig })), refused("to-llama3", SONNET_45, LLAMA3_8B, /offers tools \(toolConfig\.tools\).*has no tool use/));
        assert.equal(h.fake.hits.length, 0);
      });
    });

    it("tools in ConverseStream to Llama 3.1 (tool use only unstreamed): a 400 saying so, nothing forwarded; in Converse they go; tools to Llama 3.2 1B (none): refused", async () => {
      const toolConfig = { tools: [{ toolSpec: { name: "lookup", inputSchema: { json: { type: "object" } } } }] };
      await withHarness(toModel("to-llama31", LLAMA31_8B), async (h) => {
        await assert.rejects(
          h.client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 500 }, toolConfig })),
          refused("to-llama31", SONNET_45, LLAMA31_8B, /offers tools \(toolConfig\.tools\) in a stream.*only in Converse, not ConverseStream/),
        );
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(ask(SONNET_45, { toolConfig }));
        assert.equal(h.fake.hits[0]!.modelId, LLAMA31_8B, "unstreamed, Llama 3.1 takes the tools");
      });
      const LLAMA32_1B = "meta.llama3-2-1b-instruct-v1:0";
      await withHarness(toModel("to-llama32", LLAMA32_1B), async (h) => {
        await assert.rejects(h.client.send(ask(SONNET_45, { toolConfig })), refused("to-llama32", SONNET_45, LLAMA32_1B, /has no tool use/));
        assert.equal(h.fake.hits.length, 0);
      });
    });

    it("reasoning from an earlier Claude turn to Llama 3.1 (another provider): a 400 naming the block, nothing forwarded; to Claude Haiku 4.5 and to Nova it goes", async () => {
      const messages = [
        { role: "user" as const, content: [{ text: "think" }] },
        { role: "assistant" as const, content: [{ reasoningContent: { reasoningText: { text: "because", signature: "c2ln" } } }, { text: "done" }] },
        { role: "user" as const, content: [{ text: "again" }] },
      ];
      const send = (h: Harness) => h.client.send(new ConverseCommand({ modelId: SONNET_45, messages, inferenceConfig: { maxTokens: 500 } }));
      await withHarness(toModel("to-llama31", LLAMA31_8B), async (h) => {
        await assert.rejects(send(h), refused("to-llama31", SONNET_45, LLAMA31_8B, /carries reasoning from an earlier turn \(messages\[1\]\.content\[0\]\.reasoningContent\).*does not take from another provider's model/));
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      });
      for (const to of [HAIKU_45, NOVA_MICRO]) {
        await withHarness(toModel("to-other", to), async (h) => {
          h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
          await send(h);
          assert.equal(h.fake.hits[0]!.modelId, to);
        });
      }
    });

    it("a forced tool choice (any) to Llama 3.1, which does not take one: a 400 naming it; to Nova, which does, it goes", async () => {
      const toolConfig = { tools: [{ toolSpec: { name: "lookup", inputSchema: { json: { type: "object" } } } }], toolChoice: { any: {} } };
      await withHarness(toModel("to-llama31", LLAMA31_8B), async (h) => {
        await assert.rejects(h.client.send(ask(SONNET_45, { toolConfig })), refused("to-llama31", SONNET_45, LLAMA31_8B, /forces a tool choice \(toolConfig\.toolChoice\.any\).*does not take/));
        assert.equal(h.fake.hits.length, 0);
      });
      await withHarness(toModel("to-nova", NOVA_MICRO), async (h) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(ask(SONNET_45, { toolConfig }));
        assert.equal(h.fake.hits[0]!.modelId, NOVA_MICRO);
      });
      // Bedrock restricts `any` to no model (gpt-oss takes it); a named tool to Claude 3+ and Nova only.
      const GPT_OSS = "openai.gpt-oss-120b-1:0";
      await withHarness(toModel("to-gpt-oss", GPT_OSS), async (h) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(ask(SONNET_45, { toolConfig }));
        assert.equal(h.fake.hits[0]!.modelId, GPT_OSS);
        const named = { ...toolConfig, toolChoice: { tool: { name: "lookup" } } };
        await assert.rejects(h.client.send(ask(SONNET_45, { toolConfig: named })), refused("to-gpt-oss", SONNET_45, GPT_OSS, /forces a tool choice \(toolConfig\.toolChoice\.tool\)/));
      });
    });
  });

  describe("downgrade to a model that writes less than the call's output limit", () => {
    const CLAUDE_3_HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"; // 4,096 output tokens at most
    const OPUS_46 = "anthropic.claude-opus-4-6-v1"; // 128,000
    const toModel = (id: string, to: string, model = "*sonnet*"): Partial<ConfigInput> => ({ caps: [{ id, window: "day", limitUsd: 5, model, action: "downgrade", downgradeTo: to, downgradeAt: 0 }] });

    it("the limit is lowered to the answering model's maximum (InvokeModel and Converse), said in a header and the ledger, so Bedrock does not refuse it", async () => {
      await withHarness(toModel("to-haiku-3", CLAUDE_3_HAIKU), async (h, headers) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 32_000, messages: [{ role: "user", content: "Hello" }] });
        await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" }));
        const hit = h.fake.hits[0]!;
        assert.equal(hit.modelId, CLAUDE_3_HAIKU);
        assert.equal(hit.signatureValid, true, "re-signed for the rewritten body");
        const sent = JSON.parse(hit.body.toString("utf8"));
        assert.equal(sent.max_tokens, 4096, "Claude 3 Haiku writes at most 4,096 tokens: Bedrock refuses more");
        assert.deepEqual(sent.messages, [{ role: "user", content: "Hello" }], "the rest of the body is as asked");
        assert.equal(headers.last["x-bedrock-budget-answered-by"], CLAUDE_3_HAIKU);
        assert.equal(headers.last["x-bedrock-budget-clamped"], "maxTokens=32000->4096; cap=to-haiku-3");
        const [record] = await calls(h);
        assert.equal(record!.outcome, "ok");
        assert.deepEqual(record!.actions?.map((a) => [a.capId, a.action, a.detail]), [
          ["to-haiku-3", "downgrade", `${SONNET_45} -> ${CLAUDE_3_HAIKU}`],
          ["to-haiku-3", "clamp", `maxTokens=32000->4096, the most ${CLAUDE_3_HAIKU} writes`],
        ]);
      });
      await withHarness(toModel("to-nova", NOVA_MICRO), async (h) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        await h.client.send(converse(SONNET_45, "hi", 20_000));
        assert.equal(h.fake.hits[0]!.modelId, NOVA_MICRO);
        assert.equal(JSON.parse(h.fake.hits[0]!.body.toString("utf8")).inferenceConfig.maxTokens, 10_000, "Nova Micro writes at most 10,000 tokens");
      });
    });

    it("a limit asked with Anthropic's 128K output beta is left as asked (the beta raises Claude 3.7 Sonnet's maximum past the table's 64,000)", async () => {
      const SONNET_37 = "anthropic.claude-3-7-sonnet-20250219-v1:0";
      await withHarness(toModel("to-sonnet-37", SONNET_37), async (h, headers) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", anthropic_beta: ["output-128k-2025-02-19"], max_tokens: 100_000, messages: [{ role: "user", content: "Hello" }] });
        await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" }));
        assert.equal(h.fake.hits[0]!.modelId, SONNET_37);
        assert.equal(JSON.parse(h.fake.hits[0]!.body.toString("utf8")).max_tokens, 100_000);
        assert.equal(headers.last["x-bedrock-budget-clamped"], undefined);
      });
    });

    it("a call asking the 128K output beta, downgraded from Claude 3.7 Sonnet to another Claude: a 400 naming the beta (only 3.7 Sonnet takes it), nothing forwarded", async () => {
      const SONNET_37 = "anthropic.claude-3-7-sonnet-20250219-v1:0";
      await withHarness(toModel("to-haiku", HAIKU_45), async (h) => {
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", anthropic_beta: ["output-128k-2025-02-19"], max_tokens: 100_000, messages: [{ role: "user", content: "Hello" }] });
        await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_37, body, contentType: "application/json" })), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(err.$metadata?.httpStatusCode, 400);
          assert.match(err.message, /cap "to-haiku" downgrades .*output beta output-128k-2025-02-19 \(anthropic_beta\), which only Claude 3\.7 Sonnet takes.*Remove the beta/);
          return true;
        });
        assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      });
    });

    it("then clamped by another cap: the body carries the lower limit and the header says both rewrites", async () => {
      const caps = [...toModel("to-haiku-3", CLAUDE_3_HAIKU).caps!, { id: "haiku-clamp", window: "day" as const, limitUsd: 0.002, model: "*haiku*", action: "clamp" as const }];
      await withHarness({ caps }, async (h, headers) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 32_000, messages: [{ role: "user", content: "Hello" }] });
        await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" }));
        const sent = JSON.parse(h.fake.hits[0]!.body.toString("utf8")).max_tokens as number;
        assert.ok(sent < 4096, `clamped below Claude 3 Haiku's maximum, got ${sent}`);
        assert.equal(headers.last["x-bedrock-budget-clamped"], `maxTokens=32000->4096; cap=to-haiku-3, maxTokens=4096->${sent}; cap=haiku-clamp`);
      });
    });

    it("a thinking budget the answering model's maximum cannot hold: a 400 naming the budget and both models, nothing forwarded", async () => {
      await withHarness(toModel("opus-to-haiku", HAIKU_45, "*opus*"), async (h) => {
        const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 100_000, thinking: { type: "enabled", budget_tokens: 64_000 }, messages: [{ role: "user", content: "think" }] });
        await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: OPUS_46, body, contentType: "application/json" })), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(err.name, "ValidationException");
          assert.equal(err.$metadata?.httpStatusCode, 400);
          assert.ok(err.message.includes(`cap "opus-to-haiku" downgrades "${OPUS_46}" to "${HAIKU_45}"`), err.message);
          assert.match(err.message, /writes at most 64000 output tokens, at or below the request's thinking budget \(thinking\.budget_tokens 64000\)/);
          return true;
        });
        assert.equal(h.fake.hits.length, 0);
        assert.equal((await calls(h))[0]!.refusedBy, "opus-to-haiku");
      });
    });
  });

  describe("clamp", () => {
    it("lowers the output limit the fake receives so the worst case fits; spent never passes the limit over calls in a row (property)", async () => {
      // Sonnet 4.5 global: $15 per million output tokens. $0.05 holds about 3,300 output tokens.
      const limitUsd = 0.05;
      const samples = fc.sample(fc.record({ words: fc.integer({ min: 1, max: 400 }), maxTokens: fc.integer({ min: 200, max: 3000 }), invoke: fc.boolean() }), { numRuns: 40, seed: 11 });
      await withHarness({ caps: [{ id: "clamped", window: "day", limitUsd, action: "clamp" }] }, async (h, headers) => {
        // Bedrock generates the whole output limit it was sent: the worst case every time.
        h.fake.behave((hit) => {
          const json = JSON.parse(hit.body.toString("utf8"));
          return { kind: "ok", usage: { input: 1, output: json.max_tokens ?? json.inferenceConfig.maxTokens } };
        });
        const limit = usdToPicos(limitUsd);
        let clamped = 0;
        let refused = 0;
        for (const s of samples) {
          const text = "word ".repeat(s.words);
          const before = h.fake.hits.length;
          headers.last = {};
          try {
            if (s.invoke) await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody(text, s.maxTokens), contentType: "application/json" }));
            else await h.client.send(converse(SONNET_45, text, s.maxTokens));
          } catch (err) {
            assert.equal((err as Error).name, "ServiceQuotaExceededException", (err as Error).message);
            assert.equal(h.fake.hits.length, before, "a refused call never reaches Bedrock");
            refused++;
            continue;
          }
          const hit = h.fake.hits[before]!;
          assert.equal(hit.signatureValid, true, "the rewritten body is re-signed (its hash is of the new bytes)");
          const sent = JSON.parse(hit.body.toString("utf8"));
          const sentMax: number = s.invoke ? sent.max_tokens : sent.inferenceConfig.maxTokens;
          const header = headers.last["x-bedrock-budget-clamped"];
          if (sentMax < s.maxTokens) {
            clamped++;
            assert.equal(header, `maxTokens=${s.maxTokens}->${sentMax}; cap=clamped`);
            assert.equal(sent.messages[0].content[0].text, text, "only the output limit changed");
          } else {
            assert.equal(header, undefined);
          }
          const spent = usdToPicos((await capStatus(h, "clamped")).spentExact);
          assert.ok(spent <= limit, `spent ${spent} picos passed the limit ${limit}`);
        }
        assert.ok(clamped >= 1, "some calls were clamped");
        assert.ok(refused >= 1, "once not even one output token fits, calls are refused");
        const records = await calls(h);
        const clampedRecords = records.filter((r) => r.actions?.some((a) => a.action === "clamp"));
        assert.equal(clampedRecords.length, clamped, "each clamped call is marked in the ledger");
        const total = records.reduce((sum, r) => sum + BigInt(r.costPicos), 0n);
        assert.ok(total <= limit, `the journal's total ${total} passed the limit ${limit}`);
      });
    });
  });

  it("clamp under concurrency: 24 calls at once, each generating its whole (clamped) limit, never take the journal past the cap", async () => {
    const limitUsd = 0.03;
    await withHarness({ caps: [{ id: "clamped", window: "day", limitUsd, action: "clamp" }] }, async (h) => {
      h.fake.behave((hit) => ({ kind: "ok", usage: { input: 1, output: JSON.parse(hit.body.toString("utf8")).inferenceConfig.maxTokens } }));
      const results = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => h.client.send(converse(SONNET_45, `call ${i}`, 400))));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      for (const f of failed) assert.equal((f.reason as Error).name, "ServiceQuotaExceededException", (f.reason as Error).message);
      const records = await calls(h);
      const total = records.reduce((sum, r) => sum + BigInt(r.costPicos), 0n);
      assert.ok(total <= usdToPicos(limitUsd), `the journal's total ${total} passed the limit`);
      assert.ok(records.some((r) => r.actions?.some((a) => a.action === "clamp")), "some calls were clamped");
      assert.equal(h.fake.hits.length, results.length - failed.length, "refused calls never reached Bedrock");
    });
  });

  it("clamp on an InvokeModel body that sets no output limit: refused, naming the cap and the fix, nothing forwarded", async () => {
    await withHarness({ caps: [{ id: "clamped", window: "day", limitUsd: 0.05, action: "clamp" }] }, async (h) => {
      await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("no limit"), contentType: "application/json" })), (err: Error) => {
        assert.equal(err.name, "ServiceQuotaExceededException");
        assert.match(err.message, /cap "clamped" would lower this call's output limit to \d+ tokens.*sets no output limit/);
        return true;
      });
      assert.equal(h.fake.hits.length, 0);
      assert.equal((await calls(h))[0]!.refusedBy, "clamped");
    });
  });

  it("clamp below an Anthropic thinking budget: refused before Bedrock would refuse it, naming the budget and the fix", async () => {
    // $0.03 leaves room for ~2,000 Sonnet output tokens; the request thinks with a 4,000-token budget.
    await withHarness({ caps: [{ id: "clamped", window: "day", limitUsd: 0.03, action: "clamp" }] }, async (h) => {
      const body = JSON.stringify({
        anthropic_version: "bedrock-2023-05-31",
        max_tokens: 8_000,
        thinking: { type: "enabled", budget_tokens: 4_000 },
        messages: [{ role: "user", content: [{ type: "text", text: "Prove it step by step." }] }],
      });
      await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" })), (err: Error) => {
        assert.equal(err.name, "ServiceQuotaExceededException");
        assert.match(err.message, /cap "clamped" would lower this call's output limit to \d+ tokens.*thinking budget \(budget_tokens 4000\).*Lower thinking\.budget_tokens/);
        return true;
      });
      assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      assert.equal((await calls(h))[0]!.refusedBy, "clamped");
      // Through Converse the budget sits in additionalModelRequestFields: the same rule.
      await assert.rejects(
        h.client.send(new ConverseCommand({
          modelId: SONNET_45,
          messages: [{ role: "user", content: [{ text: "Prove it step by step." }] }],
          inferenceConfig: { maxTokens: 8_000 },
          additionalModelRequestFields: { thinking: { type: "enabled", budget_tokens: 4_000 } },
        })),
        /thinking budget \(budget_tokens 4000\)/,
      );
      assert.equal(h.fake.hits.length, 0);
    });
  });

  it("clamp below Claude 3.7's reasoning_config budget: refused by the gateway naming the field, never sent for Bedrock to refuse", async () => {
    // $0.03 leaves room for ~2,000 Sonnet output tokens; the request reasons with a 4,000-token budget,
    // set as Claude 3.7 Sonnet's Converse examples set it (reasoning_config, not thinking).
    await withHarness({ caps: [{ id: "clamped", window: "day", limitUsd: 0.03, action: "clamp" }] }, async (h) => {
      await assert.rejects(
        h.client.send(new ConverseCommand({
          modelId: SONNET_45,
          messages: [{ role: "user", content: [{ text: "Prove it step by step." }] }],
          inferenceConfig: { maxTokens: 8_000 },
          additionalModelRequestFields: { reasoning_config: { type: "enabled", budget_tokens: 4_000 } },
        })),
        (err: Error) => {
          assert.equal(err.name, "ServiceQuotaExceededException");
          assert.match(err.message, /cap "clamped" would lower this call's output limit to \d+ tokens.*thinking budget \(budget_tokens 4000\).*Lower additionalModelRequestFields\.reasoning_config\.budget_tokens/);
          return true;
        },
      );
      const body = JSON.stringify({
        anthropic_version: "bedrock-2023-05-31",
        max_tokens: 8_000,
        reasoning_config: { type: "enabled", budget_tokens: 4_000 },
        messages: [{ role: "user", content: [{ type: "text", text: "Prove it step by step." }] }],
      });
      await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body, contentType: "application/json" })), /thinking budget \(budget_tokens 4000\).*Lower reasoning_config\.budget_tokens/);
      assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      assert.deepEqual((await calls(h)).map((c) => c.refusedBy), ["clamped", "clamped"]);
    });
  });

  describe("warn", () => {
    it("lets a call past the limit through, counts it, says so in a header and marks the ledger record", async () => {
      await withHarness({ caps: [{ id: "soft", window: "day", limitUsd: 0.001, action: "warn" }] }, async (h, headers) => {
        h.fake.behave(() => ({ kind: "ok", usage: { input: 100, output: 500 } }));
        const events: CapActionEvent[] = [];
        h.gateway.api.events.on(CAP_ACTION_EVENT, (e: CapActionEvent) => events.push(e));
        const out = await h.client.send(converse(SONNET_45, "over the limit", 1000));
        assert.ok(out.output?.message);
        assert.equal(h.fake.hits.length, 1, "forwarded");
        assert.match(headers.last["x-bedrock-budget-warning"] ?? "", /cap=soft/);
        const [record] = await calls(h);
        assert.equal(record!.outcome, "ok");
        assert.deepEqual(record!.actions?.map((a) => [a.capId, a.action]), [["soft", "warn"]]);
        assert.deepEqual(events.map((e) => [e.capId, e.action, e.record.id]), [["soft", "warn", record!.id]], "alert channels hear of it once, after it is journaled");
        const soft = await capStatus(h, "soft");
        assert.ok(soft.spentUsd > soft.limitUsd, "the call counts toward the cap's spend");
      });
    });
  });
});
