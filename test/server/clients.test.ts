/**
 * Every client people use with Bedrock, pointed at the gateway the way README says, signing with
 * credentials from the environment: boto3 (a Python child process), the JS SDK v3, the Anthropic
 * Bedrock SDK, the Vercel AI SDK and LangChain's ChatBedrockConverse. Each call, streaming or not,
 * reaches the fake Bedrock once (SigV4 verified) and is metered at exactly the reported usage.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import AnthropicBedrock from "@anthropic-ai/bedrock-sdk";
import { createAmazonBedrock } from "@ai-sdk/amazon-bedrock";
import { generateText, streamText } from "ai";
import { ChatBedrockConverse } from "@langchain/aws";
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { PROXY_BYPASS_SUFFIX } from "../../client/terminalModel";
import type { CallRecord } from "../../server/ledger/types";
import { API_PATHS, TOKEN_HEADER } from "../../server/protocol";
import { credentialEnv } from "../support/cliProcess";
import { SONNET_45, startHarness, type Harness } from "../support/harness";

/** Sonnet 4.5 through a global profile: $3 and $15 per million input and output tokens, in picos a token. */
const INPUT_PICOS = 3_000_000n;
const OUTPUT_PICOS = 15_000_000n;
const USAGE = { input: 1200, output: 340 };
const EXPECTED_COST = String(BigInt(USAGE.input) * INPUT_PICOS + BigInt(USAGE.output) * OUTPUT_PICOS);

/** What a routed terminal holds: the test's credentials, a region, and the endpoint variable. */
function clientEnv(gatewayUrl: string): Record<string, string> {
  return { ...credentialEnv(), AWS_REGION: "us-east-1", AWS_DEFAULT_REGION: "us-east-1", AWS_ENDPOINT_URL_BEDROCK_RUNTIME: gatewayUrl };
}

describe("every Bedrock client through the gateway, metered exactly", function () {
  this.timeout(60_000);
  let h: Harness;
  const saved = new Map<string, string | undefined>();

  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 10 }] });
    // The in-process clients read the environment as they would in a routed terminal.
    for (const [k, v] of Object.entries(clientEnv(h.gateway.url))) {
      saved.set(k, process.env[k]);
      process.env[k] = v;
    }
  });
  after(async () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await h.close();
  });
  /** The ids the ledger held before each test: its call is the one record not among them. */
  let known = new Set<string>();
  const ledgerCalls = async () =>
    ((await (await fetch(`${h.gateway.url}${API_PATHS.calls}?limit=1000`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).json()) as { calls: CallRecord[] }).calls;
  beforeEach(async () => {
    known = new Set((await ledgerCalls()).map((c) => c.id));
    h.fake.reset();
    h.fake.behave(() => ({ kind: "ok", usage: USAGE, chunks: 4 }));
  });

  /** The one call the gateway recorded during this test, checked against the usage the fake reported. */
  async function meteredOnce(operation: string, tool: string): Promise<CallRecord> {
    assert.equal(h.fake.hits.length, 1, "exactly one request reached Bedrock");
    assert.equal(h.fake.hits[0]!.signatureValid, true, "the gateway re-signed it");
    assert.equal(h.fake.hits[0]!.operation, operation);
    const fresh = (await ledgerCalls()).filter((c) => !known.has(c.id));
    assert.deepEqual(fresh.map((c) => [c.operation, c.tool]), [[operation, tool]], "one new ledger record, its operation and tool (the dashboard's columns)");
    const latest = fresh[0]!;
    assert.equal(latest.outcome, "ok");
    assert.deepEqual([latest.usage.inputTokens, latest.usage.outputTokens, latest.usageEstimated], [USAGE.input, USAGE.output, false]);
    assert.equal(latest.costPicos, EXPECTED_COST, "cost = the hand-computed price of the usage Bedrock reported");
    return latest;
  }

  describe("boto3 (Python, AWS_ENDPOINT_URL_BEDROCK_RUNTIME)", function () {
    before(function () {
      // 1.28 is the first boto3 that reads AWS_ENDPOINT_URL_BEDROCK_RUNTIME: an older one would call AWS itself.
      const probe = spawnSync("python3", ["-c", "import boto3; print(boto3.__version__)"], { encoding: "utf8" });
      const version = probe.status === 0 ? probe.stdout.trim() : undefined;
      const [major, minor] = (version ?? "").split(".").map(Number);
      if (version === undefined || !(major! > 1 || (major === 1 && minor! >= 28))) {
        const found = version !== undefined ? `boto3 ${version}, too old` : (probe.error?.message ?? probe.stderr.trim().split("\n").at(-1));
        const why = `python3 with boto3 >= 1.28 is not available (${found}): scripts/test-setup.sh installs it from local wheels when the machine has them; else \`python3 -m pip install 'boto3>=1.28'\` (Debian's python3-boto3 is too old)`;
        // CI runs on a machine with boto3: there a missing one is a failure, not a skip.
        if (process.env.CI === "true") throw new Error(why);
        console.log(`    (skipped: ${why})`);
        this.skip();
      }
    });

    /** Runs one boto3 call in a child process with only the routed terminal's environment. */
    const boto3 = (operation: "converse" | "converse_stream", extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> => {
      const script = `
import json, boto3
rt = boto3.client("bedrock-runtime")
args = dict(modelId=${JSON.stringify(SONNET_45)}, messages=[{"role": "user", "content": [{"text": "Hello from boto3"}]}], inferenceConfig={"maxTokens": 500})
if ${JSON.stringify(operation)} == "converse":
    out = rt.converse(**args)
    print(json.dumps({"usage": out["usage"], "text": out["output"]["message"]["content"][0]["text"]}))
else:
    out = rt.converse_stream(**args)
    deltas, usage = 0, None
    for event in out["stream"]:
        if "contentBlockDelta" in event: deltas += 1
        if "metadata" in event: usage = event["metadata"]["usage"]
    print(json.dumps({"usage": usage, "deltas": deltas}))
`;
      return new Promise((resolve) => {
        const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...clientEnv(h.gateway.url), ...extraEnv };
        const child = spawn("python3", ["-c", script], { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.once("exit", (code) => resolve({ code, stdout, stderr }));
      });
    };

    it("converse", async () => {
      const out = await boto3("converse");
      assert.equal(out.code, 0, out.stderr);
      assert.equal(JSON.parse(out.stdout).usage.outputTokens, USAGE.output);
      await meteredOnce("Converse", "boto3");
    });

    it("converse_stream", async () => {
      const out = await boto3("converse_stream");
      assert.equal(out.code, 0, out.stderr);
      const seen = JSON.parse(out.stdout) as { deltas: number; usage: { outputTokens: number } };
      assert.equal(seen.deltas, 4, "every delta relayed");
      assert.equal(seen.usage.outputTokens, USAGE.output);
      await meteredOnce("ConverseStream", "boto3");
    });

    it("behind a corporate HTTP proxy (HTTP_PROXY set): with a routed terminal's NO_PROXY the call goes to the gateway, not to the proxy", async () => {
      // botocore sends http:// requests through HTTP_PROXY unless NO_PROXY names the host, loopback included.
      const proxied: string[] = [];
      const proxy = http.createServer((req, res) => {
        proxied.push(req.url ?? "");
        res.writeHead(502).end();
      });
      await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
      try {
        const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
        // What VS Code gives a routed terminal whose NO_PROXY was corp.example: the suffix appended.
        const out = await boto3("converse", { HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, NO_PROXY: `corp.example${PROXY_BYPASS_SUFFIX}` });
        assert.equal(out.code, 0, out.stderr);
        assert.deepEqual(proxied, [], "nothing went to the proxy");
        await meteredOnce("Converse", "boto3");
      } finally {
        proxy.closeAllConnections();
        await new Promise((resolve) => proxy.close(resolve));
      }
    });
  });

  describe("AWS SDK for JavaScript v3 (AWS_ENDPOINT_URL_BEDROCK_RUNTIME, no endpoint option)", function () {
    let client: BedrockRuntimeClient;
    before(() => (client = new BedrockRuntimeClient({})));
    after(() => client.destroy());
    const input = { modelId: SONNET_45, messages: [{ role: "user" as const, content: [{ text: "Hello from JS" }] }], inferenceConfig: { maxTokens: 500 } };

    it("Converse", async () => {
      const out = await client.send(new ConverseCommand(input));
      assert.equal(out.usage?.outputTokens, USAGE.output);
      await meteredOnce("Converse", "aws-sdk-js");
    });

    it("ConverseStream", async () => {
      const out = await client.send(new ConverseStreamCommand(input));
      let deltas = 0;
      for await (const event of out.stream!) if (event.contentBlockDelta) deltas++;
      assert.equal(deltas, 4);
      await meteredOnce("ConverseStream", "aws-sdk-js");
    });
  });

  describe("@anthropic-ai/bedrock-sdk (ANTHROPIC_BEDROCK_BASE_URL: it does not read the endpoint variable)", function () {
    // Credentials come from the AWS chain (the environment here); the endpoint from its own
    // variable (or the `baseURL` option).
    before(() => {
      saved.set("ANTHROPIC_BEDROCK_BASE_URL", process.env.ANTHROPIC_BEDROCK_BASE_URL);
      process.env.ANTHROPIC_BEDROCK_BASE_URL = h.gateway.url;
    });
    const anthropic = () => new AnthropicBedrock({ maxRetries: 0 });
    const request = { model: SONNET_45, max_tokens: 500, messages: [{ role: "user" as const, content: "Hello from Anthropic's SDK" }] };

    it("messages.create", async () => {
      const out = await anthropic().messages.create(request);
      assert.equal(out.usage.output_tokens, USAGE.output);
      await meteredOnce("InvokeModel", "anthropic-sdk-js");
    });

    it("messages.stream", async () => {
      const stream = anthropic().messages.stream(request);
      let deltas = 0;
      stream.on("text", () => deltas++);
      const final = await stream.finalMessage();
      assert.equal(deltas, 4);
      assert.equal(final.usage.output_tokens, USAGE.output);
      await meteredOnce("InvokeModelWithResponseStream", "anthropic-sdk-js");
    });
  });

  describe("Vercel AI SDK, @ai-sdk/amazon-bedrock (AWS_ENDPOINT_URL_BEDROCK_RUNTIME)", function () {
    const model = () => createAmazonBedrock()(SONNET_45);

    it("generateText", async () => {
      const out = await generateText({ model: model(), prompt: "Hello from the AI SDK", maxOutputTokens: 500, maxRetries: 0 });
      assert.equal(out.usage.outputTokens, USAGE.output);
      await meteredOnce("Converse", "ai-sdk");
    });

    it("streamText", async () => {
      const out = streamText({ model: model(), prompt: "Hello from the AI SDK", maxOutputTokens: 500, maxRetries: 0 });
      let parts = 0;
      for await (const _ of out.textStream) parts++;
      assert.equal(parts, 4);
      assert.equal((await out.usage).outputTokens, USAGE.output);
      await meteredOnce("ConverseStream", "ai-sdk");
    });
  });

  describe("LangChain, @langchain/aws ChatBedrockConverse (AWS_ENDPOINT_URL_BEDROCK_RUNTIME)", function () {
    const chat = (streaming: boolean) => new ChatBedrockConverse({ model: SONNET_45, region: "us-east-1", maxTokens: 500, streaming });

    it("invoke", async () => {
      const out = await chat(false).invoke("Hello from LangChain");
      assert.equal(out.usage_metadata?.output_tokens, USAGE.output);
      // @langchain/aws sends the JS SDK's User-Agent unchanged: the ledger names the SDK.
      await meteredOnce("Converse", "aws-sdk-js");
    });

    it("stream", async () => {
      let chunks = 0;
      let output = 0;
      for await (const chunk of await chat(true).stream("Hello from LangChain")) {
        if (typeof chunk.content === "string" && chunk.content !== "") chunks++;
        output += chunk.usage_metadata?.output_tokens ?? 0;
      }
      assert.equal(chunks, 4);
      assert.equal(output, USAGE.output);
      await meteredOnce("ConverseStream", "aws-sdk-js");
    });
  });
});
