/**
 * The packaged extension in a real VS Code (code-server) beside another editor's gateway: a debug
 * session started from launch.json gets both endpoint variables and its Anthropic SDK call is metered, and the
 * dashboard panel keeps working when the other window's gateway goes and this window takes over
 * on its own, different port. Needs `npm run test:e2e` (it packages the extension first).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS } from "../../server/protocol";
import { credentialEnv } from "../support/cliProcess";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import { readyUrl, startLsp, type LspSession } from "../support/lspProcess";
import { freePort } from "../support/ports";
import { journalCalls } from "../server/teamSupport";
import { ROOT, runCommand, startVsCode, waitForStatusBarItem, type VsCodeSession } from "./support/codeServer";

const VSIX = path.join(ROOT, "bedrock-budget.vsix");

describe("extension in a real VS Code, beside another window's gateway", function () {
  this.timeout(240_000);
  let fake: FakeBedrock;
  let vscode: VsCodeSession | undefined;
  let other: LspSession | undefined;
  let ledgerDir: string;
  let otherUrl: string;
  let ownUrl: string;

  before(async () => {
    if (!existsSync(VSIX)) throw new Error(`${VSIX} is missing: run npm run test:e2e (it packages the extension first)`);
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-e2e-moves-"));
    const [otherPort, ownPort] = [await freePort(), await freePort()];
    const common = { ledgerDir, upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "daily", window: "day", limitUsd: 5 }] };
    // The other window: the same background process another editor (or VS Code window) runs, first on the ledger.
    other = await startLsp({ ...common, port: otherPort });
    otherUrl = await other.waitFor("the other window's gateway", () => readyUrl(other!, "leader"), 30_000);
    ownUrl = `http://127.0.0.1:${ownPort}`;
    vscode = await startVsCode({
      vsix: VSIX,
      settings: Object.fromEntries(Object.entries({ ...common, port: ownPort }).map(([k, v]) => [`bedrockBudget.${k}`, v])),
      workspaceFiles: { "debug-call.cjs": debugProgram(), ".vscode/launch.json": launchJson() },
      env: credentialEnv(),
    });
    // It follows the other window's gateway: the meter shows the shared ledger.
    await waitForStatusBarItem(vscode.page, "$0.00 / $5.00 today", 60_000);
  });

  after(async function () {
    if (this.currentTest?.state === "failed" || process.env.E2E_LOGS) console.log(vscode?.logs().slice(-20_000));
    await vscode?.close();
    await other?.stop();
    await fake?.close();
    if (ledgerDir) await rm(ledgerDir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(vscode?.logs().slice(-20_000));
  });

  const resultFile = () => path.join(vscode!.workspace, "debug-call.json");

  /**
   * A program as a user debugs it, with Anthropic's Bedrock SDK (it reads ANTHROPIC_BEDROCK_BASE_URL,
   * not the AWS variable): no endpoint in the code, credentials from the environment.
   */
  function debugProgram(): string {
    return [
      `const fs = require("node:fs");`,
      `const path = require("node:path");`,
      `const { AnthropicBedrock } = require(${JSON.stringify(path.join(ROOT, "node_modules/@anthropic-ai/bedrock-sdk"))});`,
      `const out = path.join(__dirname, "debug-call.json");`,
      `const env = { endpoint: process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME, anthropicBaseUrl: process.env.ANTHROPIC_BEDROCK_BASE_URL };`,
      `const done = (r) => { fs.writeFileSync(out + ".tmp", JSON.stringify({ ...env, ...r })); fs.renameSync(out + ".tmp", out); };`,
      `new AnthropicBedrock({ awsRegion: "us-east-1", maxRetries: 0 }).messages`,
      `  .create({ model: ${JSON.stringify(SONNET_45)}, max_tokens: 1000, messages: [{ role: "user", content: "from the debugger" }] }).withResponse()`,
      `  .then(({ response }) => done({ status: response.status, requestId: response.headers.get("x-amzn-requestid") }), (e) => done({ error: e.name + ": " + e.message }));`,
    ].join("\n");
  }

  function launchJson(): string {
    return JSON.stringify({
      version: "0.2.0",
      configurations: [{ type: "node", request: "launch", name: "Debug the call", program: "${workspaceFolder}/debug-call.cjs", runtimeExecutable: process.execPath, console: "internalConsole" }],
    });
  }

  it("gives a debug session started from launch.json both endpoint variables, and meters its Anthropic SDK call", async () => {
    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 } }));
    await runCommand(vscode!.page, "Debug: Start Debugging");
    let written = "";
    for (let i = 0; i < 600 && !written; i++) {
      written = await readFile(resultFile(), "utf8").catch(() => "");
      if (!written) await vscode!.page.waitForTimeout(100);
    }
    assert.ok(written, "the debugged program finished within 60 s");
    const answer = JSON.parse(written) as { endpoint?: string; anthropicBaseUrl?: string; status?: number; requestId?: string; error?: string };
    assert.equal(answer.endpoint, otherUrl, "the debug session points the AWS SDKs at the gateway this window follows");
    assert.equal(answer.anthropicBaseUrl, otherUrl, "and Anthropic's SDK");
    assert.equal(answer.error, undefined);
    assert.equal(answer.status, 200);
    assert.equal(fake.hits.length, 1, "the call reached Bedrock once, through the gateway");
    // Metered: 1,000 × $3/1M + 1,000 × $15/1M = $0.018.
    await waitForStatusBarItem(vscode!.page, "$0.02 / $5.00 today", 15_000);
    const journaled = (await journalCalls(ledgerDir)).find((c) => c.requestId === answer.requestId);
    assert.equal(journaled?.costPicos, "18000000000", "the ledger has the debugged call at its real cost");
    assert.equal(journaled?.tool, "anthropic-sdk-js");
  });

  it("keeps the dashboard working when the other window's gateway goes and this window takes over on another port", async () => {
    const page = vscode!.page;
    await runCommand(page, "Bedrock Budget: Show Dashboard");
    const frame = page.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    const body = frame.locator("body[data-ready='true']");
    await body.waitFor({ state: "attached", timeout: 30_000 });
    await frame.locator(".live", { hasText: /^live$/ }).waitFor({ timeout: 30_000 });
    assert.equal(await body.getAttribute("data-series-calls"), "1", "the dashboard shows the debugged call");

    await other!.stop(); // the other window closes: its gateway goes with it
    other = undefined;
    // This window takes over on its own port (bounded: 30 s).
    let health = 0;
    for (let i = 0; i < 300 && health !== 200; i++) {
      health = await fetch(`${ownUrl}${API_PATHS.health}`).then((r) => r.status, () => 0);
      if (health !== 200) await page.waitForTimeout(100);
    }
    assert.equal(health, 200, `this window's gateway serves ${ownUrl}`);

    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 } }));
    const client = clientFor(ownUrl);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("after the take-over", 1000) }));
    client.destroy();
    await waitForStatusBarItem(page, "$0.04 / $5.00 today", 15_000);
    // The open panel follows: its live events and data come from the new gateway.
    await frame.locator("body[data-series-calls='2']").waitFor({ state: "attached", timeout: 30_000 });
    await frame.locator(".live", { hasText: /^live$/ }).waitFor({ timeout: 15_000 });
    assert.match(await frame.locator(".sub").first().innerText(), new RegExp(ownUrl.replace(/[.:/]/g, "\\$&")), "the panel names the gateway it now reads");
  });
});

