/** Cost-allocation tags through the real SDK: default `tags` setting < Converse requestMetadata < X-Bedrock-Budget-Tags header, the header never reaches Bedrock, bad tags are refused. */
import assert from "node:assert/strict";
import { ConverseCommand, InvokeModelCommand, type BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS, TOKEN_HEADER, type CallsResponse } from "../../server/protocol";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";

const calls = async (h: Harness) =>
  ((await (await fetch(`${h.gateway.url}${API_PATHS.calls}?limit=100`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).json()) as CallsResponse).calls;

/** Adds the tags header the way an application would: before the SDK signs the request. */
function withTagsHeader(client: BedrockRuntimeClient, value: string): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers["x-bedrock-budget-tags"] = value;
      return next(args);
    },
    { step: "build", name: "bedrockBudgetTags" },
  );
}

describe("gateway: tags", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ tags: { project: "chatbot", team: "support", env: "prod" } });
  });
  after(() => h.close());
  beforeEach(async () => {
    h.fake.reset();
    await h.restart(); // a fresh client (no header middleware) on the same settings
  });

  it("records the default tags on a call that sends none", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 20) }));
    const [call] = await calls(h);
    assert.deepEqual(call!.tags, { project: "chatbot", team: "support", env: "prod" });
  });

  it("the header wins over requestMetadata, which wins over the defaults; the header is stripped before Bedrock", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    withTagsHeader(h.client, "team=search; feature=summaries");
    await h.client.send(new ConverseCommand({
      modelId: SONNET_45,
      messages: [{ role: "user", content: [{ text: "Hi" }] }],
      inferenceConfig: { maxTokens: 20 },
      requestMetadata: { team: "billing", env: "staging" },
    }));
    assert.equal(h.fake.hits.length, 1);
    assert.equal(h.fake.hits[0]!.signatureValid, true, "re-signed without the header");
    assert.equal(h.fake.hits[0]!.headers["x-bedrock-budget-tags"], undefined, "the tags header never reaches Bedrock");
    const [call] = await calls(h);
    assert.deepEqual(call!.tags, { project: "chatbot", team: "search", env: "staging", feature: "summaries" });
  });

  it("refuses a call whose header tag breaks the grammar, naming it, without reaching Bedrock", async () => {
    withTagsHeader(h.client, "project=chat<script>");
    await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 20) })), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(err.name, "ValidationException");
      assert.equal(err.$metadata?.httpStatusCode, 400);
      assert.match(err.message, /X-Bedrock-Budget-Tags header has an invalid value for tag "project"/);
      return true;
    });
    assert.equal(h.fake.hits.length, 0);
  });

  it("a header value holding ',' is kept whole; pairs split on ';' only", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    withTagsHeader(h.client, "project=a,b; team=x");
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 20) }));
    const [call] = await calls(h);
    assert.deepEqual(call!.tags, { project: "a,b", team: "x", env: "prod" });
  });

  const refusedTags = async (send: () => Promise<unknown>, message: RegExp) => {
    await assert.rejects(send(), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(err.name, "ValidationException");
      assert.equal(err.$metadata?.httpStatusCode, 400);
      assert.match(err.message, message);
      return true;
    });
  };

  for (const [what, value, message] of [
    ["a 70-character key", `${"k".repeat(70)}=v`, /X-Bedrock-Budget-Tags header has an invalid tag key "k{70}"/],
    ["a 300-character value", `team=${"v".repeat(300)}`, /X-Bedrock-Budget-Tags header has an invalid value for tag "team"/],
    ["a part with no '='", "team=a; novalue", /X-Bedrock-Budget-Tags header has a part that is not key=value \("novalue"\)/],
    ["17 pairs", Array.from({ length: 17 }, (_, i) => `k${i}=v`).join("; "), /X-Bedrock-Budget-Tags header has 17 tags; at most 16/],
  ] as const) {
    it(`refuses a header with ${what} instead of cutting it, without reaching Bedrock`, async () => {
      withTagsHeader(h.client, value);
      await refusedTags(() => h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 20) })), message);
      assert.equal(h.fake.hits.length, 0);
    });
  }

  for (const [what, metadata, message] of [
    ["17 entries", Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])), /requestMetadata has 17 tags; at most 16/],
    ["a 70-character key", { ["k".repeat(70)]: "v" }, /requestMetadata has an invalid tag key "k{70}"/],
    ["a 300-character value", { team: "v".repeat(300) }, /requestMetadata has an invalid value for tag "team"/],
  ] as const) {
    it(`refuses Converse requestMetadata with ${what} instead of cutting it`, async () => {
      await refusedTags(() => h.client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Hi" }] }], inferenceConfig: { maxTokens: 20 }, requestMetadata: metadata })), message);
      assert.equal(h.fake.hits.length, 0);
    });
  }
});
