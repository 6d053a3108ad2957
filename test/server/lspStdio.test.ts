/**
 * The language server outside VS Code: `out/server.js --stdio` driven by a plain JSON-RPC client
 * shaped like Neovim's (its capabilities, settings looked up by section in a `settings` table),
 * code lenses on a TypeScript and a Python file checked against the estimator, and the gateway
 * the server starts for that editor.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { estimateParsed } from "../../server/metering/estimate";
import { formatUsd } from "../../server/metering/money";
import { PriceBook } from "../../server/metering/prices";
import { cliEnv } from "../support/cliProcess";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import { readyUrl, startLsp, type EditorShape, type LspSession } from "../support/lspProcess";

/** What Neovim 0.10+ announces (vim.lsp.protocol.make_client_capabilities, the parts that matter here). */
const NEOVIM: EditorShape = {
  capabilities: {
    workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: false }, codeLens: { refreshSupport: true }, workspaceFolders: true },
    textDocument: {
      synchronization: { didSave: true, dynamicRegistration: false },
      codeLens: { dynamicRegistration: false },
      hover: { contentFormat: ["markdown", "plaintext"], dynamicRegistration: true },
      publishDiagnostics: { relatedInformation: true },
    },
  },
  // Neovim answers each item with the value at its dotted section in the client's `settings`, or null.
  configuration: (settings, section) => (section ? (section.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], settings) ?? null) : settings),
};

interface Lens {
  range: { start: { line: number } };
  command?: { title: string; command: string };
}

const HAIKU_45 = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
const SYSTEM = "You are a patient teacher.";
const QUESTION = "Explain what an inference profile is, in three sentences.";

const TS_FILE = [
  'import { BedrockRuntimeClient, ConverseCommand } from "@aws-sdk/client-bedrock-runtime";',
  "const client = new BedrockRuntimeClient({});",
  "await client.send(new ConverseCommand({",
  `  modelId: "${SONNET_45}",`,
  `  system: [{ text: "${SYSTEM}" }],`,
  `  messages: [{ role: "user", content: [{ text: "${QUESTION}" }] }],`,
  "  inferenceConfig: { maxTokens: 700 },",
  "}));",
].join("\n");

const PY_FILE = [
  "import boto3",
  "",
  'runtime = boto3.client("bedrock-runtime", region_name="us-east-1")',
  "response = runtime.converse(",
  `    modelId="${HAIKU_45}",`,
  `    system=[{"text": "${SYSTEM}"}],`,
  `    messages=[{"role": "user", "content": [{"text": "${QUESTION}"}]}],`,
  '    inferenceConfig={"maxTokens": 300},',
  ")",
].join("\n");

/** The estimator's figure for the request the file makes: what the lens must show. */
function expectedTitle(modelId: string, maxTokens: number): RegExp {
  const estimate = estimateParsed(
    "Converse",
    modelId,
    { system: [{ text: SYSTEM }], messages: [{ role: "user", content: [{ text: QUESTION }] }], inferenceConfig: { maxTokens } },
    new PriceBook(),
  );
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `^≈ ${escaped(formatUsd(estimate.worstCasePicos))} per call · ${escaped(estimate.rates.displayName)} · ~${estimate.inputTokens} in / ≤${maxTokens} out`,
  );
}

describe("language server over stdio, as another editor runs it (no VS Code)", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let dir: string;
  let lsp: LspSession | undefined;

  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-stdio-"));
  });
  afterEach(async () => {
    await lsp?.stop();
    lsp = undefined;
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (session: LspSession, uri: string, languageId: string, text: string): Promise<Lens[]> => {
    await session.connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId, version: 1, text } });
    const lenses = (await session.connection.sendRequest("textDocument/codeLens", { textDocument: { uri } })) as Lens[];
    return Promise.all(lenses.map(async (l) => (l.command ? l : ((await session.connection.sendRequest("codeLens/resolve", l)) as Lens))));
  };

  it("gives code lenses with the estimator's figures for a TypeScript and a Python file, with Neovim's settings shape", async () => {
    const settings = {
      bedrockBudget: { port: 0, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "daily", window: "day", limitUsd: 5 }] },
    };
    lsp = await startLsp(settings, NEOVIM);
    await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp!));

    const ts = await open(lsp, "file:///work/app.ts", "typescript", TS_FILE);
    assert.equal(ts.length, 1, "one lens over the one call");
    assert.equal(ts[0]!.range.start.line, 2);
    assert.match(ts[0]!.command!.title, expectedTitle(SONNET_45, 700));

    const py = await open(lsp, "file:///work/app.py", "python", PY_FILE);
    assert.equal(py.length, 1, "one lens over the one call");
    assert.equal(py[0]!.range.start.line, 3);
    assert.match(py[0]!.command!.title, expectedTitle(HAIKU_45, 300));
  });

  it("starts the gateway for the editor, meters calls through it, and the lens counts them", async () => {
    lsp = await startLsp({ bedrockBudget: { port: 0, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: fake.url, timeZone: "UTC" } }, NEOVIM);
    const url = await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp!, "leader"));
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
    const client = clientFor(url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 600) }));
    client.destroy();
    const call = await lsp.waitFor("the settled call", () => lsp!.calls[0]);
    assert.equal(call.costPicos, String(1000n * 3_000_000n + 500n * 15_000_000n));
    await lsp.waitFor("the status with the spend", () => lsp!.statuses.find((s) => s.todayByModel["anthropic.claude-sonnet-4-5-20250929-v1:0"]));

    const ts = await open(lsp, "file:///work/app.ts", "typescript", TS_FILE);
    assert.ok(ts[0]!.command!.title.endsWith(` · today: 1 call, ${formatUsd(10_500_000_000n)}`), ts[0]!.command!.title);
  });

  it("reads ~/.bedrock-budget/config.json when the editor cannot answer workspace/configuration", async () => {
    const home = path.join(dir, "home");
    await mkdir(path.join(home, ".bedrock-budget"), { recursive: true });
    const config = { port: 0, upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "from-file", window: "day", limitUsd: 2 }] };
    await writeFile(path.join(home, ".bedrock-budget", "config.json"), JSON.stringify(config));
    lsp = await startLsp({}, { capabilities: { textDocument: { codeLens: {} } }, env: cliEnv({ HOME: home }) });
    await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp!, "leader"));
    const status = await lsp.waitFor("a first status", () => lsp!.statuses[0]);
    assert.deepEqual(status.caps.map((c) => [c.id, c.limitUsd]), [["from-file", 2]]);
    const ts = await open(lsp, "file:///work/app.ts", "typescript", TS_FILE);
    assert.match(ts[0]!.command!.title, expectedTitle(SONNET_45, 700));
  });

  it("reads the config file too when the editor answers workspace/configuration with nothing for us (Neovim without bedrockBudget settings)", async () => {
    // Neovim answers null for a section it has no settings for; that was read as "nothing set":
    // the gateway ran without the file's caps.
    const home = path.join(dir, "home");
    await mkdir(path.join(home, ".bedrock-budget"), { recursive: true });
    const config = { port: 0, upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "from-file", window: "day", limitUsd: 2 }] };
    await writeFile(path.join(home, ".bedrock-budget", "config.json"), JSON.stringify(config));
    lsp = await startLsp({}, { ...NEOVIM, env: cliEnv({ HOME: home }) });
    await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp!, "leader"));
    const status = await lsp.waitFor("a first status", () => lsp!.statuses[0]);
    assert.deepEqual(status.caps.map((c) => [c.id, c.limitUsd]), [["from-file", 2]]);
  });
});
