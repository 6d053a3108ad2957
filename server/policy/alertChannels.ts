/**
 * Adapters that deliver one alert: an incoming webhook (a JSON POST of `{"text": …}`, the body Slack
 * and Teams incoming webhooks both accept) and an Amazon SNS topic (Publish with the gateway's own
 * credentials, in the ARN's region; the SDK honours AWS_ENDPOINT_URL_SNS). Each send throws on
 * failure; retries are the dispatcher's (server/policy/alerts.ts), so the SNS client makes one attempt.
 * Both go through HTTPS_PROXY / NO_PROXY as model calls do (never around a broken one).
 */
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import type { AwsCredentialIdentity } from "@smithy/types";
import { SNS_TOPIC_ARN } from "../config/schema";
import { OutboundHttpsAgent } from "../httpsProxy";
import type { AlertChannelName, AlertMessage } from "./alertJournal";

/** How long one delivery may take before it counts as failed. */
const SEND_TIMEOUT_MS = 10_000;

export interface AlertChannel {
  readonly name: AlertChannelName;
  /** Where it sends (the URL or the topic ARN): a changed target is a new channel. */
  readonly target: string;
  send(alert: AlertMessage, signal: AbortSignal): Promise<void>;
  close(): void;
}

/** The webhook's JSON body: `text` is what Slack and Teams incoming webhooks show. */
export function webhookBody(alert: AlertMessage): { text: string } {
  return { text: alert.text };
}

export function webhookChannel(url: string): AlertChannel {
  // node:https rather than fetch, which takes no agent and so could not go through HTTPS_PROXY.
  // A connection per alert: alerts are rare, and a kept-alive one the receiver has since closed would fail the next.
  const agent = new OutboundHttpsAgent({ keepAlive: false });
  return {
    name: "webhook",
    target: url,
    async send(alert, signal) {
      const status = await postJson(url, JSON.stringify(webhookBody(alert)), agent, AbortSignal.any([signal, AbortSignal.timeout(SEND_TIMEOUT_MS)]));
      // A redirect is not followed: the configured URL is where alerts go, nowhere else.
      if (status >= 300 && status < 400) throw new Error(`the webhook answered HTTP ${status} (a redirect, not followed: alerts go to the configured URL only)`);
      if (status < 200 || status >= 300) throw new Error(`the webhook answered HTTP ${status}`);
    },
    close() {
      agent.destroy();
    },
  };
}

/** POSTs `body` to `url` and resolves with the answer's status (its body is discarded). */
function postJson(url: string, body: string, agent: https.Agent, signal: AbortSignal): Promise<number> {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      target,
      {
        method: "POST",
        // A User-Agent as fetch sent one: some receivers' firewalls (Cloudflare, WAFs) refuse a request without.
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), "user-agent": "bedrock-budget" },
        // http:// is only ever loopback (the settings allow no other), which is never proxied.
        ...(target.protocol === "https:" ? { agent } : {}),
        signal,
      },
      (res) => {
        res.resume();
        res.on("error", () => undefined);
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`the webhook could not be reached: ${err.name === "AbortError" ? (signal.reason instanceof Error ? signal.reason.message : "aborted") : `${err.code ?? err.name}: ${err.message}`}`)),
    );
    req.end(body);
  });
}

/** The SNS Subject: ASCII, one line, at most 100 characters. */
export function snsSubject(alert: AlertMessage): string {
  // The text's own decision (exact money); an alert journaled before it was kept compares the figures.
  const over = alert.overLimit ?? alert.spentUsd > alert.limitUsd;
  const what = alert.threshold === "warn" ? (over ? "over its limit (warn)" : "let a call through that could pass its limit (warn)") : `at ${alert.threshold}%`;
  return `Bedrock Budget: cap ${alert.capId} ${what}`.replace(/[^\x20-\x7e]/g, "?").slice(0, 100);
}

/** What SNS accepts in a message group id: ASCII letters, digits and punctuation (no space), 1 to 128 of them. */
const SNS_GROUP_ID_CHAR = /[A-Za-z0-9!"#$&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;

/**
 * A FIFO topic's message group for a cap: the cap id where SNS accepts it as it is, else with every
 * other character (and "%") percent-encoded as UTF-8, so a tier cap `<cap>@李雷` keeps a readable,
 * distinct group; one longer than 128 characters is cut and ends with a hash of the whole id.
 */
export function snsGroupId(capId: string): string {
  let encoded = "";
  for (const ch of capId) encoded += SNS_GROUP_ID_CHAR.test(ch) ? ch : Array.from(Buffer.from(ch, "utf8"), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");
  if (encoded.length > 0 && encoded.length <= 128) return encoded;
  const hash = createHash("sha256").update(capId).digest("hex").slice(0, 16);
  return `${encoded.slice(0, 128 - 1 - hash.length)}~${hash}`;
}

export function snsChannel(topicArn: string, credentials: () => Promise<AwsCredentialIdentity>): AlertChannel {
  const match = SNS_TOPIC_ARN.exec(topicArn);
  if (!match) throw new Error(`alertSnsTopicArn: ${topicArn} is not an SNS topic ARN`);
  const region = match[2]!;
  const fifo = topicArn.endsWith(".fifo");
  const client = new SNSClient({ region, credentials, maxAttempts: 1, requestHandler: { httpsAgent: new OutboundHttpsAgent() } });
  return {
    name: "sns",
    target: topicArn,
    async send(alert, signal) {
      const command = new PublishCommand({
        TopicArn: topicArn,
        Subject: snsSubject(alert),
        Message: alert.text,
        // A FIFO topic needs a group (one per cap, in the characters SNS accepts), and deduplicates a
        // resend of the same alert within 5 minutes.
        ...(fifo ? { MessageGroupId: snsGroupId(alert.capId), MessageDeduplicationId: createHash("sha256").update(alert.key).digest("hex") } : {}),
      });
      await client.send(command, { abortSignal: AbortSignal.any([signal, AbortSignal.timeout(SEND_TIMEOUT_MS)]) });
    },
    close() {
      client.destroy();
    },
  };
}
