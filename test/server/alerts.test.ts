/** Alert channels through the real CLI: a webhook (retried after a 500, never sent twice across a restart) and SNS (SigV4, query protocol). */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { ALERTS_FILE } from "../../server/policy/alertJournal";
import { cliEnv, serve, type Served } from "../support/cliProcess";
import { FakeBedrock } from "../support/fakeBedrock";
import { FakeSns } from "../support/fakeSns";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";

/** A local incoming-webhook receiver: records each POST, answers each with the next status of `statuses` (then 200). */
class Receiver {
  readonly hits: { status: number; body: unknown; contentType: string }[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private readonly server: http.Server, private readonly statuses: number[]) {}

  static async start(statuses: number[]): Promise<Receiver> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const receiver = new Receiver(server, [...statuses]);
    server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const status = receiver.statuses.shift() ?? 200;
        receiver.hits.push({ status, body: JSON.parse(Buffer.concat(chunks).toString("utf8")), contentType: req.headers["content-type"] ?? "" });
        res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "try later");
        for (const wake of receiver.waiters.splice(0)) wake();
      });
    });
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Resolves once `n` posts arrived (the test's timeout bounds the wait). */
  async received(n: number): Promise<void> {
    while (this.hits.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe("alert channels (CLI)", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let dir: string;
  let configFile: string;
  const running: Served[] = [];
  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-alerts-"));
    configFile = path.join(dir, "config.json");
  });
  afterEach(async () => {
    for (const served of running.splice(0)) {
      served.child.kill("SIGKILL");
      await served.exited;
    }
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Output at $1,000 per 1M tokens (input free): each output token costs $0.001 of the $1 cap. */
  const writeConfig = (extra: Record<string, unknown>) =>
    writeFile(
      configFile,
      JSON.stringify({ user: "alice", timeZone: "UTC", caps: [{ id: "daily", window: "day", limitUsd: 1 }], alertThresholds: [50, 80], pricing: { [SONNET_45]: { inputPer1M: 0, outputPer1M: 1000 } }, ...extra }),
    );
  const start = async (env = cliEnv()) => {
    const served = await serve(["--config", configFile, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", fake.url], env);
    running.push(served);
    return served;
  };
  const stop = async (served: Served) => {
    served.child.kill("SIGTERM");
    assert.equal(await served.exited, 0, served.stderr());
    running.splice(running.indexOf(served), 1);
  };
  /** One call that spends `outputTokens` × $0.001. */
  const spend = async (served: Served, outputTokens: number) => {
    fake.behave(() => ({ kind: "ok", usage: { input: 10, output: outputTokens } }));
    const client = clientFor(served.url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", outputTokens) }));
    client.destroy();
  };

  it("posts {text} to the webhook once per cap, window and threshold: retried after a 500, not sent again after a restart", async () => {
    const receiver = await Receiver.start([500]);
    try {
      await writeConfig({ alertWebhook: receiver.url });
      const first = await start();
      await spend(first, 600); // $0.60 of $1: past 50%
      await receiver.received(2);
      assert.deepEqual(
        receiver.hits.map((h) => h.status),
        [500, 200],
        "the 500 was retried",
      );
      const fifty = { text: 'Bedrock Budget: cap "daily" has passed 50%: $0.60 of $1.00 today. (user alice)' };
      assert.deepEqual(receiver.hits[0]!.body, fifty);
      assert.deepEqual(receiver.hits[1]!.body, fifty, "the retry carries the same alert");
      assert.match(receiver.hits[0]!.contentType, /^application\/json/);
      await stop(first);
      const journal = path.join(dir, "ledger", ALERTS_FILE);
      assert.equal((await stat(journal)).mode & 0o777, 0o600, "the alert journal is private like the rest of the ledger");
      assert.match(await readFile(journal, "utf8"), /"state":"sent"/);

      // Restarted: 60% is still past 50%, but that alert was sent. The next one (80%) goes out, and
      // nothing before it: alerts on one channel go out in order, so a resent 50% would come first.
      const second = await start();
      await spend(second, 250); // $0.85: past 80%
      await receiver.received(3);
      assert.deepEqual(receiver.hits[2]!.body, { text: 'Bedrock Budget: cap "daily" has passed 80%: $0.85 of $1.00 today. (user alice)' });
      await stop(second);
      assert.equal(receiver.hits.length, 3, "no alert was sent twice");
    } finally {
      await receiver.close();
    }
  });

  it("a cap with action warn that lets a call through past its limit tells the webhook, once per window", async () => {
    const receiver = await Receiver.start([]);
    try {
      await writeConfig({ alertWebhook: receiver.url, alertThresholds: [100], caps: [{ id: "daily", window: "day", limitUsd: 1, action: "warn" }] });
      const served = await start();
      await spend(served, 1200); // $1.20 of $1: the warn cap lets it through
      await spend(served, 100); // past the limit again: no second warn alert this window
      await receiver.received(2);
      const texts = receiver.hits.map((h) => (h.body as { text: string }).text).sort();
      assert.deepEqual(texts, [
        'Bedrock Budget: cap "daily" (action warn) is over its limit ($1.20 of $1.00 spent today); calls still go through and are marked in the ledger. (user alice)',
        // A warn cap refuses nothing at 100%: the threshold alert says what really happens.
        'Bedrock Budget: cap "daily" is used up: $1.20 of $1.00 today. Calls still go through (action warn) and are counted past the limit; each is marked in the ledger. (user alice)',
      ].sort());
      await stop(served);
      assert.equal(receiver.hits.length, 2, "one warn alert per cap and window, and one threshold alert");
    } finally {
      await receiver.close();
    }
  });

  it("publishes to the SNS topic with the gateway's credentials, signed for sns in the ARN's region", async () => {
    const sns = await FakeSns.start(CREDENTIALS, "eu-west-1");
    try {
      const topic = "arn:aws:sns:eu-west-1:123456789012:budget-alerts";
      await writeConfig({ alertSnsTopicArn: topic });
      const served = await start(cliEnv({ AWS_ENDPOINT_URL_SNS: sns.url }));
      await spend(served, 900); // $0.90: past 80%, so only 80% is sent (it covers 50%)
      await sns.published(1);
      await stop(served);
      assert.deepEqual(sns.refused, []);
      assert.equal(sns.publishes.length, 1);
      const { params, contentType } = sns.publishes[0]!;
      assert.match(contentType, /^application\/x-www-form-urlencoded/, "the SDK speaks the query protocol");
      assert.equal(params.TopicArn, topic);
      assert.equal(params.Subject, "Bedrock Budget: cap daily at 80%");
      assert.equal(params.Message, 'Bedrock Budget: cap "daily" has passed 80%: $0.90 of $1.00 today. (user alice)');
    } finally {
      await sns.close();
    }
  });
});
