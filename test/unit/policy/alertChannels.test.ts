/** The SNS alert channel against a local fake of SNS that checks what real SNS checks of a Publish. */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { snsChannel, webhookChannel } from "../../../server/policy/alertChannels";
import type { AlertMessage } from "../../../server/policy/alertJournal";
import type { FakeCredentials } from "../../support/fakeBedrock";
import { FakeSns } from "../../support/fakeSns";

const CREDENTIALS: FakeCredentials = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const TOPIC = "arn:aws:sns:eu-west-1:123456789012:budget-alerts.fifo";

const alertFor = (capId: string): AlertMessage => ({
  key: `${capId}@2026-11-29T00:00:00.000Z#80`,
  covers: [],
  capId,
  threshold: 80,
  spentUsd: 8,
  limitUsd: 10,
  window: "day",
  resetsAt: "2026-11-30T00:00:00.000Z",
  text: `Bedrock Budget: cap "${capId}" has passed 80%: $8.00 of $10.00 today. (user alice)`,
});

describe("SNS alert channel", function () {
  this.timeout(20_000);
  let sns: FakeSns;
  let endpoint: string | undefined;
  before(async () => {
    sns = await FakeSns.start(CREDENTIALS, "eu-west-1");
    endpoint = process.env.AWS_ENDPOINT_URL_SNS;
    process.env.AWS_ENDPOINT_URL_SNS = sns.url;
  });
  after(async () => {
    if (endpoint === undefined) delete process.env.AWS_ENDPOINT_URL_SNS;
    else process.env.AWS_ENDPOINT_URL_SNS = endpoint;
    await sns.close();
  });

  it("a FIFO topic gets the alerts of tier caps whose caller names are not ASCII (pro-day@李雷) or are long, each cap in its own message group", async () => {
    const channel = snsChannel(TOPIC, async () => CREDENTIALS);
    const long = `pro-day@${"x".repeat(200)}`;
    const capIds = ["pro-day@李雷", "pro-day@韩梅梅", long, `${long}y`, "daily"];
    try {
      for (const capId of capIds) await channel.send(alertFor(capId), new AbortController().signal);
    } finally {
      channel.close();
    }
    assert.deepEqual(sns.refused, []);
    const groups = sns.publishes.map((p) => p.params.MessageGroupId!);
    assert.equal(groups.length, capIds.length);
    assert.equal(new Set(groups).size, capIds.length, "a group per cap");
    assert.equal(groups[0], "pro-day@%E6%9D%8E%E9%9B%B7", "readable where it can be");
    assert.equal(groups[4], "daily", "an ASCII cap id is its own group, as before");
    assert.equal(sns.publishes[0]!.params.Message, alertFor("pro-day@李雷").text, "the message keeps the name");
  });
});

describe("webhook alert channel", () => {
  it("a webhook that answers with a redirect is not followed: the alert goes to the configured URL only, and the send fails saying why", async () => {
    let elsewhere = 0;
    const other = createServer((_req, res) => {
      elsewhere++;
      res.end();
    }).listen(0, "127.0.0.1");
    const hook = createServer((_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${(other.address() as AddressInfo).port}/` }).end()).listen(0, "127.0.0.1");
    await Promise.all([once(other, "listening"), once(hook, "listening")]);
    const channel = webhookChannel(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`);
    try {
      await assert.rejects(channel.send(alertFor("daily"), new AbortController().signal), /the webhook answered HTTP 302 \(a redirect, not followed/);
      assert.equal(elsewhere, 0);
    } finally {
      channel.close();
      hook.close();
      other.close();
    }
  });

  it("a webhook post says who sends it (User-Agent): receivers behind a firewall that refuses requests without one get the alert", async () => {
    let agent: string | undefined;
    const hook = createServer((req, res) => {
      agent = req.headers["user-agent"];
      req.resume();
      req.on("end", () => res.end("ok"));
    }).listen(0, "127.0.0.1");
    await once(hook, "listening");
    const channel = webhookChannel(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`);
    try {
      await channel.send(alertFor("daily"), new AbortController().signal);
      assert.equal(agent, "bedrock-budget");
    } finally {
      channel.close();
      hook.close();
    }
  });
});
