/**
 * Usage plans through the real SDK (default handler) against the fake Bedrock: rate limits the
 * SDK retries, quotas it does not, callers signing with their own profiles' keys on separate
 * caps and buckets, a tag-scoped cap, and quota counts that survive a restart.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import type { CallRecord } from "../../server/protocol";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";
import { FakeBedrock, type FakeCredentials } from "../support/fakeBedrock";
import { validated } from "../../server/config/load";
import { startGateway } from "../../server/gateway/gateway";
import { createLogger, silentLogger } from "../../server/log";

const STAGING: FakeCredentials = { accessKeyId: "AKIASTAGINGEXAMPLE01", secretAccessKey: "staging-secret-0000000000000000000000000" };
const PROD: FakeCredentials = { accessKeyId: "AKIAPRODUCTIONEXMPL1", secretAccessKey: "prod-secret-000000000000000000000000000" };
const STRANGER: FakeCredentials = { accessKeyId: "AKIASTRANGEREXAMPLE1", secretAccessKey: "stranger-secret-00000000000000000000000" };

/** Every call the gateway journals from now on (onCall hears each settled record, refusals included). */
function journalOf(h: Harness): CallRecord[] {
  const seen: CallRecord[] = [];
  h.gateway.onCall((r) => seen.push(r));
  return seen;
}

const invoke = (maxTokens = 10) => new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hello", maxTokens) });

function accessKeyOf(hit: { headers: Record<string, string> }): string | undefined {
  return /Credential=([^/]+)\//.exec(hit.headers.authorization ?? "")?.[1];
}

describe("usage plans: rate limits and quotas per caller, through the real SDK", function () {
  this.timeout(30_000);

  it("a 429 ThrottlingException with Retry-After: the SDK retries it, the throttled attempt never reaches Bedrock, and after Retry-After the call passes", async () => {
    const logged: string[] = [];
    const h = await startHarness({ rateLimit: { requestsPerSecond: 1, burst: 1 } }, { log: createLogger((level, line) => logged.push(`${level}: ${line}`), "info") });
    try {
      const journal = journalOf(h);
      await h.client.send(invoke());
      assert.equal(h.fake.hits.length, 1);
      const second = await h.client.send(invoke());
      assert.equal(second.$metadata.attempts, 2, "the first attempt was throttled and the SDK retried it");
      assert.equal(h.fake.hits.length, 2, "only the passing attempts reached Bedrock");
      const throttled = journal.filter((r) => r.outcome === "throttled");
      assert.equal(throttled.length, 1);
      assert.equal(throttled[0]!.status, 429);
      assert.equal(throttled[0]!.costPicos, "0");
      assert.equal(throttled[0]!.caller, "AKIAIOSFODNN7EXAMPLE");
      assert.match(throttled[0]!.message!, /rate limit of 1 requests per second \(burst 1\); retry after 1 s/);

      // With no retry left the SDK raises it, with the gateway's Retry-After in whole seconds.
      const once = new BedrockRuntimeClient({ region: "us-east-1", endpoint: h.gateway.url, credentials: CREDENTIALS, maxAttempts: 1 });
      const err = (await once.send(invoke()).catch((e: unknown) => e)) as Error & { $metadata: { httpStatusCode?: number }; $response?: { headers: Record<string, string> } };
      once.destroy();
      assert.equal(err.name, "ThrottlingException");
      assert.equal(err.$metadata.httpStatusCode, 429);
      assert.equal(err.$response?.headers["retry-after"], "1");
      assert.equal(h.fake.hits.length, 2);
      // Two throttled attempts from one caller: the log says it once (a retry loop would flood it).
      assert.equal(logged.filter((l) => l.startsWith("info: throttled")).length, 1, logged.join("\n"));
    } finally {
      await h.close();
    }
  });

  it("a quota refusal is a 400 ServiceQuotaExceededException the SDK tries once; it names the quota, the tier and the reset; the count survives a restart", async () => {
    const config = { rateLimit: { requestsPerDay: 2 } };
    const h = await startHarness(config);
    try {
      let journal = journalOf(h);
      await h.client.send(invoke());
      await h.client.send(invoke());
      const err = (await h.client.send(invoke()).catch((e: unknown) => e)) as Error & { $metadata: { attempts?: number } };
      assert.equal(err.name, "ServiceQuotaExceededException");
      assert.equal(err.$metadata.attempts, 1, "not retried");
      assert.match(err.message, /quota of 2 requests per day \(requestsPerDay\)/);
      assert.match(err.message, /the top-level rateLimit/);
      assert.match(err.message, /resets at \d{4}-\d{2}-\d{2} 00:00 UTC/);
      assert.deepEqual(journal.map((r) => r.outcome), ["ok", "ok", "quota-exceeded"], "one journaled attempt for the refusal");
      assert.equal(h.fake.hits.length, 2);

      await h.restart(config);
      journal = journalOf(h);
      const again = (await h.client.send(invoke()).catch((e: unknown) => e)) as Error;
      assert.equal(again.name, "ServiceQuotaExceededException", "the day's count was rebuilt from the journal");
      assert.equal(h.fake.hits.length, 2);
      assert.deepEqual(journal.map((r) => r.outcome), ["quota-exceeded"]);
    } finally {
      await h.close();
    }
  });

  it("a call refused for bad tags uses none of the quota (a restart, which recounts the journal, would not count it either)", async () => {
    const config = { rateLimit: { requestsPerDay: 2 } };
    const h = await startHarness(config);
    try {
      const tagged = new BedrockRuntimeClient({ region: "us-east-1", endpoint: h.gateway.url, credentials: CREDENTIALS, maxAttempts: 1 });
      const tooMany = Array.from({ length: 20 }, (_, i) => `k${i}=v`).join(",");
      tagged.middlewareStack.add(
        (next) => async (args) => {
          (args.request as { headers: Record<string, string> }).headers["x-bedrock-budget-tags"] = tooMany;
          return next(args);
        },
        { step: "build", name: "bedrockBudgetTags" },
      );
      for (let i = 0; i < 2; i++) {
        const err = (await tagged.send(invoke()).catch((e: unknown) => e)) as Error;
        assert.equal(err.name, "ValidationException");
        assert.match(err.message, /X-Bedrock-Budget-Tags header has 20 tags/);
      }
      tagged.destroy();
      await h.client.send(invoke()); // the quota's 2 requests are still there
      await h.client.send(invoke());
      const err = (await h.client.send(invoke()).catch((e: unknown) => e)) as Error;
      assert.equal(err.name, "ServiceQuotaExceededException");
      assert.equal(h.fake.hits.length, 2);
    } finally {
      await h.close();
    }
  });
});

describe("usage plans: temporary credentials (SSO, an assumed role) refreshed mid-day", function () {
  this.timeout(30_000);

  it("the quota is the credentials', not the access key's: a refreshed key starts with no new quota, live and after a restart", async () => {
    const A: FakeCredentials = { accessKeyId: "ASIAAAAAAAAAAAAAAAA1", secretAccessKey: "secretA000000000000000000000000000000000", sessionToken: "tokA" };
    const B: FakeCredentials = { accessKeyId: "ASIABBBBBBBBBBBBBBB2", secretAccessKey: "secretB000000000000000000000000000000000", sessionToken: "tokB" };
    const fake = await FakeBedrock.start({ credentials: A, moreCredentials: [B] });
    const ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-rotate-"));
    let current = A; // what the gateway's default credential chain gives now
    const launch = () =>
      startGateway({
        config: validated({ port: 0, upstreamEndpoint: fake.url, ledgerDir, user: "tester", timeZone: "UTC", rateLimit: { requestsPerDay: 3 } }, "test"),
        credentials: async () => current,
        log: silentLogger(),
      });
    let gateway = await launch();
    const send = async (creds: FakeCredentials) => {
      const client = clientFor(gateway.url, creds);
      try {
        await client.send(invoke());
        return "ok";
      } catch (err) {
        return (err as Error).name;
      } finally {
        client.destroy();
      }
    };
    try {
      fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
      const outcomes = [await send(A), await send(A)];
      current = B; // the session was refreshed: same principal, a new key
      outcomes.push(await send(B), await send(B));
      assert.deepEqual(outcomes, ["ok", "ok", "ok", "ServiceQuotaExceededException"]);
      await gateway.close();
      gateway = await launch();
      assert.equal(await send(B), "ServiceQuotaExceededException", "the journal's calls under either key count after a restart");
      assert.equal(fake.hits.length, 3, "three calls reached Bedrock under a quota of three");
    } finally {
      await gateway.close();
      await fake.close();
      await rm(ledgerDir, { recursive: true, force: true });
    }
  });
});

describe("usage plans: several callers on one gateway, each signing with its own profile", function () {
  this.timeout(30_000);
  let dir: string;
  const saved: Record<string, string | undefined> = {};
  const ENV = ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-profiles-"));
    const file = path.join(dir, "credentials");
    await writeFile(
      file,
      `[staging]\naws_access_key_id = ${STAGING.accessKeyId}\naws_secret_access_key = ${STAGING.secretAccessKey}\n\n` +
        `[prod]\naws_access_key_id = ${PROD.accessKeyId}\naws_secret_access_key = ${PROD.secretAccessKey}\n`,
    );
    for (const k of ENV) saved[k] = process.env[k];
    for (const k of ENV) delete process.env[k];
    process.env.AWS_SHARED_CREDENTIALS_FILE = file;
    process.env.AWS_CONFIG_FILE = path.join(dir, "config-none");
  });
  after(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("two access keys (two profiles) hit separate caps and separate rate limits; each call is re-signed with its own key", async () => {
    const h = await startHarness(
      {
        rateLimit: { requestsPerSecond: 0.01, burst: 1 },
        tiers: {
          basic: { caps: [{ id: "agent-day", window: "day", limitUsd: 0.01 }] },
          pro: { caps: [{ id: "agent-day", window: "day", limitUsd: 5 }], rateLimit: { requestsPerSecond: 100, burst: 10 } },
        },
        callers: { staging: "basic", prod: "pro" },
      },
      { moreCredentials: [STAGING, PROD] },
    );
    const staging = clientFor(h.gateway.url, STAGING);
    const prod = clientFor(h.gateway.url, PROD);
    try {
      const journal = journalOf(h);
      await staging.send(invoke());
      await prod.send(invoke());
      assert.deepEqual(h.fake.hits.map(accessKeyOf), [STAGING.accessKeyId, PROD.accessKeyId], "Bedrock saw each caller's own principal");

      // Separate buckets: staging's (basic: the top-level 0.01/s) is empty, prod's (pro: 100/s) is not.
      const stagingOnce = new BedrockRuntimeClient({ region: "us-east-1", endpoint: h.gateway.url, credentials: STAGING, maxAttempts: 1 });
      const throttled = (await stagingOnce.send(invoke()).catch((e: unknown) => e)) as Error;
      stagingOnce.destroy();
      assert.equal(throttled.name, "ThrottlingException");
      assert.deepEqual(journal.filter((r) => r.outcome === "throttled").map((r) => r.caller), [STAGING.accessKeyId]);
      await prod.send(invoke());
      await prod.send(invoke(1000)); // worst case about $0.015: under pro's $5 wall
      assert.equal(h.fake.hits.length, 4);

      // Separate caps: the tier cap is a wall per caller.
      await h.restart({
        tiers: { basic: { caps: [{ id: "agent-day", window: "day", limitUsd: 0.01 }] }, pro: { caps: [{ id: "agent-day", window: "day", limitUsd: 5 }] } },
        callers: { staging: "basic", prod: "pro" },
      });
      const staging2 = clientFor(h.gateway.url, STAGING);
      const prod2 = clientFor(h.gateway.url, PROD);
      const refused = (await staging2.send(invoke(1000)).catch((e: unknown) => e)) as Error;
      assert.equal(refused.name, "ServiceQuotaExceededException");
      assert.match(refused.message, /cap "agent-day@staging"/);
      await prod2.send(invoke(1000));
      assert.equal(accessKeyOf(h.fake.hits.at(-1)!), PROD.accessKeyId);
      staging2.destroy();
      prod2.destroy();

      const stranger = clientFor(h.gateway.url, STRANGER);
      const denied = (await stranger.send(invoke()).catch((e: unknown) => e)) as Error;
      stranger.destroy();
      assert.equal(denied.name, "AccessDeniedException");
      assert.match(denied.message, /no profile named in callers \(prod, staging\) holds it; add the caller's AWS profile as a key of callers/);
    } finally {
      staging.destroy();
      prod.destroy();
      await h.close();
    }
  });
});

describe("caps scoped to tags", function () {
  this.timeout(30_000);

  it("a cap on project=chatbot refuses the tagged call and lets the untagged one through", async () => {
    const h = await startHarness({ caps: [{ id: "chatbot-day", window: "day", limitUsd: 0.01, tags: { project: "chatbot" } }] });
    try {
      const converse = (metadata?: Record<string, string>) =>
        new ConverseCommand({
          modelId: SONNET_45,
          messages: [{ role: "user", content: [{ text: "hello" }] }],
          inferenceConfig: { maxTokens: 1000 },
          ...(metadata ? { requestMetadata: metadata } : {}),
        });
      const refused = (await h.client.send(converse({ project: "chatbot" })).catch((e: unknown) => e)) as Error;
      assert.equal(refused.name, "ServiceQuotaExceededException");
      assert.match(refused.message, /cap "chatbot-day"/);
      assert.equal(h.fake.hits.length, 0);
      await h.client.send(converse({ project: "other" }));
      await h.client.send(converse());
      assert.equal(h.fake.hits.length, 2);
    } finally {
      await h.close();
    }
  });
});
