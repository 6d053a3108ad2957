/**
 * Starts what a user has: the fake Bedrock upstream, a gateway in front of it (in this process,
 * on a free loopback port, with its own ledger folder), and the real AWS SDK client pointed at
 * the gateway with default settings (HTTP/2 cleartext).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { validated } from "../../server/config/load";
import type { ConfigInput } from "../../server/config/schema";
import { startGateway, type GatewayOptions, type RunningGateway } from "../../server/gateway/gateway";
import { silentLogger } from "../../server/log";
import { FakeBedrock, type FakeCredentials } from "./fakeBedrock";

export const CREDENTIALS: FakeCredentials = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

export interface Harness {
  fake: FakeBedrock;
  gateway: RunningGateway;
  client: BedrockRuntimeClient;
  ledgerDir: string;
  /** Restarts the gateway on the same ledger (as after a reboot), with new settings if given. */
  restart(config?: Partial<ConfigInput>): Promise<void>;
  close(): Promise<void>;
}

/**
 * `options`: a logger to watch, the gateway's bounds on unproven work (short timeouts, small budgets), its clock (kept across
 * restarts), routes mounted instead of the dashboard, and other principals the fake Bedrock knows (callers signing with their own keys).
 */
export async function startHarness(
  config: Partial<ConfigInput> = {},
  options: Pick<GatewayOptions, "log" | "limits" | "now" | "mount"> & { moreCredentials?: FakeCredentials[]; upstreamKeepAliveMs?: number } = {},
): Promise<Harness> {
  const fake = await FakeBedrock.start({
    credentials: CREDENTIALS,
    ...(options.moreCredentials ? { moreCredentials: options.moreCredentials } : {}),
    ...(options.upstreamKeepAliveMs ? { keepAliveTimeoutMs: options.upstreamKeepAliveMs } : {}),
  });
  const ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-ledger-"));
  const configure = (extra: Partial<ConfigInput>) =>
    validated({ port: 0, upstreamEndpoint: fake.url, ledgerDir, user: "tester", timeZone: "UTC", ...extra }, "test");
  const launch = (extra: Partial<ConfigInput>) =>
    startGateway({ config: configure(extra), credentials: async () => CREDENTIALS, log: options.log ?? silentLogger(), limits: options.limits, now: options.now, ...(options.mount ? { mount: options.mount } : {}) });
  const harness: Harness = {
    fake,
    gateway: await launch(config),
    client: undefined as unknown as BedrockRuntimeClient,
    ledgerDir,
    async restart(next = config) {
      await harness.gateway.close();
      harness.gateway = await launch(next);
      harness.client = clientFor(harness.gateway.url);
    },
    async close() {
      harness.client.destroy();
      await harness.gateway.close();
      await fake.close();
      await rm(ledgerDir, { recursive: true, force: true });
    },
  };
  harness.client = clientFor(harness.gateway.url);
  return harness;
}

export function clientFor(endpoint: string, credentials: FakeCredentials = CREDENTIALS): BedrockRuntimeClient {
  return new BedrockRuntimeClient({ region: "us-east-1", endpoint, credentials });
}

export const SONNET_45 = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";

export function anthropicBody(text: string, maxTokens?: number): string {
  return JSON.stringify({
    anthropic_version: "bedrock-2023-05-31",
    ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
    messages: [{ role: "user", content: [{ type: "text", text }] }],
  });
}
