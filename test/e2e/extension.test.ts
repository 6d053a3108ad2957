/**
 * Bedrock Budget in a real VS Code (code-server 4.100.3 = VS Code 1.100.3, its Node extension
 * host, Debian's Chromium): the packaged VSIX installed as a user would, the meter, alerts,
 * refusals, live settings, code lenses and the dashboard, read from what the user sees.
 * Needs `npm run test:e2e` (it runs scripts/e2e-setup.sh and `npm run package` first).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand, type BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import {
  codeLensTexts, notificationCenterItems, openFile, readmeImage, ROOT, runCommand, screenshot, startVsCode, toastsSeen, waitForNotification, waitForStatusBarItem, watchToasts,
  type NotificationItem, type VsCodeSession,
} from "./support/codeServer";
import { journalCalls } from "../server/teamSupport";
import { freePort } from "../support/ports";
import { credentialEnv } from "../support/cliProcess";

const VSIX = path.join(ROOT, "bedrock-budget.vsix");


const TS_FILE = `import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";

const client = new BedrockRuntimeClient({ region: "us-east-1" });
const MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";

export async function summarize(text: string) {
  return client.send(new InvokeModelCommand({
    modelId: MODEL,
    body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 1024, messages: [{ role: "user", content: "Summarize this." }] }),
  }));
}
`;

const PY_FILE = `import boto3

bedrock = boto3.client("bedrock-runtime", region_name="us-east-1")

response = bedrock.converse(
    modelId="us.amazon.nova-lite-v1:0",
    messages=[{"role": "user", "content": [{"text": "Hello, Nova"}]}],
    inferenceConfig={"maxTokens": 512},
)
`;

/**
 * A cloned repository's .vscode/settings.json that tries to price every model at $0 through a key
 * VS Code does not filter by scope (an unregistered dotted sub-key of the machine-scoped `pricing`).
 * Every figure the tests below read is the real price: it must not reach the gateway.
 */
const HOSTILE_WORKSPACE_SETTINGS = JSON.stringify({ "bedrockBudget.pricing.*": { inputPer1M: 0, outputPer1M: 0 }, "bedrockBudget.alertThresholds": [] });

describe("extension in a real VS Code", function () {
  this.timeout(240_000);
  let fake: FakeBedrock;
  let vscode: VsCodeSession;
  let client: BedrockRuntimeClient;
  let ledgerDir: string;
  let endpoint: string;
  let patchFile: string;

  const settings = (limitUsd: number) => ({
    "bedrockBudget.port": Number(new URL(endpoint).port),
    "bedrockBudget.ledgerDir": ledgerDir,
    "bedrockBudget.upstreamEndpoint": fake.url,
    "bedrockBudget.timeZone": "UTC",
    "bedrockBudget.caps": [{ id: "daily", window: "day", limitUsd }],
  });

  before(async function () {
    if (!existsSync(VSIX)) throw new Error(`${VSIX} is missing: run npm run test:e2e (it packages the extension first)`);
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-e2e-ledger-"));
    endpoint = `http://127.0.0.1:${await freePort()}`;
    patchFile = path.join(ledgerDir, "settings-patch.json");
    vscode = await startVsCode({
      vsix: VSIX,
      extensionDirs: [path.join(__dirname, "fixtures", "settings-driver")],
      settings: settings(0.05),
      workspaceFiles: { "summarize.ts": TS_FILE, "chat.py": PY_FILE, ".vscode/settings.json": HOSTILE_WORKSPACE_SETTINGS },
      // The gateway resolves credentials through the default chain, as the SDKs do: here, the environment.
      env: {
        ...credentialEnv(),
        BB_E2E_SETTINGS_PATCH: patchFile,
      },
    });
    client = clientFor(endpoint);
  });

  after(async function () {
    client?.destroy();
    if (this.currentTest?.state === "failed" || process.env.E2E_LOGS) console.log(vscode?.logs().slice(-20_000));
    await vscode?.close();
    await fake?.close();
    if (ledgerDir) await rm(ledgerDir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(vscode.logs().slice(-20_000));
  });

  /** One call through the gateway whose real cost is input × $3 + output × $15 per million. */
  const call = (maxTokens: number, output: number) => {
    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output } }));
    return client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hello", maxTokens) }));
  };

  it("shows $0.00 of the cap in the status bar once the gateway runs", async () => {
    await waitForStatusBarItem(vscode.page, "$0.00 / $0.05 today", 60_000);
    await screenshot(vscode.page, "status-bar-0-zero");
  });

  it("moves the meter to the call's real cost, pushed when the call settles (the repository's $0 pricing does not reach the gateway)", async () => {
    await call(1000, 1000); // $0.003 + $0.015
    await waitForStatusBarItem(vscode.page, "$0.02 / $0.05 today", 10_000);
    await screenshot(vscode.page, "status-bar-1-normal");
    await readmeImage(vscode.page, "statusbar-ok.png", meter(vscode));
  });

  it("notifies once when spend crosses a threshold, and turns the meter to a warning from 80%", async () => {
    await watchToasts(vscode.page);
    await call(1000, 1000); // $0.036 in all: 72%
    await waitForNotification(vscode.page, /cap "daily" has passed 50%: \$0\.04 of \$0\.05 today/, 15_000);
    await call(200, 600); // + $0.012 = $0.048: 96%
    await waitForNotification(vscode.page, /cap "daily" has passed 90%/, 15_000);
    await waitForStatusBarItem(vscode.page, "$0.05 / $0.05 today", 10_000);
    // One notification per crossing: 50% (information) after the first call; the second crosses 80%
    // and 90% at once, reported once, as 90% (a warning). None repeats, none for 80% later.
    const crossings = (list: NotificationItem[]) => list.filter((n) => /cap "daily" (has passed|is used up)/.test(n.message)).map((n) => `${/passed (\d+)%/.exec(n.message)?.[1] ?? "100"}% ${n.severity}`);
    assert.deepEqual(crossings(await notificationCenterItems(vscode.page)).sort(), ["50% info", "90% warning"]);
    const toasted = crossings(await toastsSeen(vscode.page));
    assert.equal(new Set(toasted).size, toasted.length, `no threshold toasted twice: ${JSON.stringify(toasted)}`);
    const background = await meterBackground(vscode);
    assert.match(background, /statusBarItem-warningBackground|warning/i);
    await screenshot(vscode.page, "status-bar-2-warning");
    await readmeImage(vscode.page, "statusbar-near.png", meter(vscode));
  });

  it("refuses a call that could break the cap and says so in an error notification", async () => {
    const err = await call(1000, 10).catch((e: Error) => e);
    assert.equal((err as Error).name, "ServiceQuotaExceededException");
    await waitForNotification(vscode.page, /refused this call.*cap "daily"/, 15_000);
    const refusals = (list: NotificationItem[]) => list.filter((n) => /refused this call.*cap "daily"/.test(n.message)).map((n) => n.severity);
    assert.deepEqual(refusals(await notificationCenterItems(vscode.page)), ["error"], "one notification, shown as an error");
    assert.ok(refusals(await toastsSeen(vscode.page)).every((severity) => severity === "error"), "toasted as an error");
    await screenshot(vscode.page, "status-bar-3-refused");
  });

  it("applies an edited cap live: over the new limit, the meter turns to an error", async () => {
    await writeFile(patchFile, JSON.stringify(settings(0.04)));
    await runCommand(vscode.page, "BB Test: Apply Settings Patch");
    await waitForStatusBarItem(vscode.page, "$0.05 / $0.04 today", 20_000);
    assert.match(await meterBackground(vscode), /statusBarItem-errorBackground|error/i);
    await screenshot(vscode.page, "status-bar-4-error");
    await readmeImage(vscode.page, "statusbar-blocked.png", meter(vscode));
  });

  it("puts a cost estimate over the Bedrock calls of a TypeScript and a Python file", async () => {
    await openFile(vscode.page, "summarize.ts");
    const ts = await waitForLens(vscode, /Claude Sonnet 4\.5/);
    assert.match(ts, /^≈ \$0\.02 per call · Claude Sonnet 4\.5 · ~\d+ in \/ ≤1,024 out · today: 3 calls, \$0\.05$/);
    await screenshot(vscode.page, "code-lens-typescript");
    // The lens and the call under it, the editor's width at most 900 px.
    const lens = await vscode.page.locator(".codelens-decoration", { hasText: /Claude Sonnet 4\.5/ }).first().boundingBox();
    const editor = await vscode.page.locator(".editor-instance .monaco-editor").first().boundingBox();
    assert.ok(lens && editor, "the lens and the editor are on screen");
    await readmeImage(vscode.page, "codelens.png", { x: editor.x, y: lens.y - 12, width: Math.min(editor.width, 900), height: lens.height * 4 + 24 });
    await openFile(vscode.page, "chat.py");
    const py = await waitForLens(vscode, /Nova Lite/);
    assert.match(py, /^≈ \$0\.0001\d* per call · Amazon Nova Lite · ~\d+ in \/ ≤512 out/);
    await screenshot(vscode.page, "code-lens-python");
  });

  it("routes a new integrated terminal through the gateway: a call made there is metered (AWS_ENDPOINT_URL_BEDROCK_RUNTIME)", async () => {
    // Room for the call: the cap goes up to $1 ($0.048 spent so far).
    await writeFile(patchFile, JSON.stringify(settings(1)));
    await runCommand(vscode.page, "BB Test: Apply Settings Patch");
    await waitForStatusBarItem(vscode.page, "$0.05 / $1.00 today", 20_000);
    // A small program using the AWS SDK as any tool would: no endpoint in the code, credentials from the environment.
    const result = path.join(vscode.workspace, "terminal-call.json");
    const script = path.join(vscode.workspace, "terminal-call.cjs");
    await writeFile(script, [
      `const fs = require("node:fs");`,
      `const { BedrockRuntimeClient, InvokeModelCommand } = require(${JSON.stringify(path.join(ROOT, "node_modules/@aws-sdk/client-bedrock-runtime"))});`,
      `const done = (r) => { fs.writeFileSync(${JSON.stringify(result + ".tmp")}, JSON.stringify({ endpoint: process.env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME, anthropicBaseUrl: process.env.ANTHROPIC_BEDROCK_BASE_URL, ...r })); fs.renameSync(${JSON.stringify(result + ".tmp")}, ${JSON.stringify(result)}); };`,
      `new BedrockRuntimeClient({ region: "us-east-1" })`,
      `  .send(new InvokeModelCommand({ modelId: ${JSON.stringify(SONNET_45)}, body: ${JSON.stringify(anthropicBody("from the terminal", 1000))} }))`,
      `  .then((out) => done({ status: out.$metadata.httpStatusCode, requestId: out.$metadata.requestId }), (e) => done({ error: e.name + ": " + e.message }));`,
    ].join("\n"));
    const hitsBefore = fake.hits.length;
    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 } }));
    await runCommand(vscode.page, "Terminal: Create New Terminal");
    const terminal = vscode.page.locator(".terminal-wrapper.active .xterm").first();
    await terminal.waitFor({ state: "visible", timeout: 20_000 });
    await terminal.click();
    await vscode.page.keyboard.type(`${JSON.stringify(process.execPath)} ${JSON.stringify(script)}\n`, { delay: 5 });
    let written = "";
    for (let i = 0; i < 300 && !written; i++) {
      written = await readFile(result, "utf8").catch(() => "");
      if (!written) await vscode.page.waitForTimeout(100);
    }
    assert.ok(written, "the program in the terminal finished within 30 s");
    const answer = JSON.parse(written) as { endpoint?: string; anthropicBaseUrl?: string; status?: number; requestId?: string; error?: string };
    assert.equal(answer.endpoint, endpoint, "the terminal's environment points the SDK at the gateway");
    assert.equal(answer.anthropicBaseUrl, endpoint, "and Anthropic's Bedrock SDK, which reads only its own variable");
    assert.equal(answer.error, undefined);
    assert.equal(answer.status, 200);
    assert.equal(fake.hits.length, hitsBefore + 1, "the call reached Bedrock once, through the gateway");
    assert.equal(fake.hits[hitsBefore]!.signatureValid, true);
    // Metered: 1,000 × $3/1M + 1,000 × $15/1M = $0.018, so $0.048 + $0.018 = $0.066.
    await waitForStatusBarItem(vscode.page, "$0.07 / $1.00 today", 10_000);
    const journaled = (await journalCalls(ledgerDir)).find((c) => c.requestId === answer.requestId);
    assert.equal(journaled?.costPicos, "18000000000", "the ledger has the call at its real cost");
  });

  it("opens the dashboard from the status bar, with its chart drawn", async () => {
    await meter(vscode).click();
    const frame = vscode.page.frameLocator("iframe.webview").frameLocator("iframe#active-frame");
    await frame.locator("canvas").first().waitFor({ state: "visible", timeout: 30_000 });
    const canvases = await frame.locator("canvas").count();
    assert.ok(canvases >= 3, `charts on the page: ${canvases}`);
    // Drawn, not just present: count painted pixels of the cap's chart and of spend by model.
    for (const chart of [frame.locator("canvas").first(), frame.locator("#chart-model")]) {
      let painted = 0;
      for (let i = 0; i < 50 && painted < 500; i++) {
        painted = await chart.evaluate((el) => {
          const c = el as unknown as { width: number; height: number; getContext(k: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } };
          const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let j = 3; j < data.length; j += 4) if (data[j]! > 0) n++;
          return n;
        });
        if (painted < 500) await vscode.page.waitForTimeout(200);
      }
      assert.ok(painted >= 500, `a chart drew only ${painted} pixels`);
    }
    await screenshot(vscode.page, "dashboard-in-vscode");
    await readmeImage(vscode.page, "dashboard.png", vscode.page.locator("iframe.webview").first());
  });
});

/** The meter is the status bar item reading "$x / $y <window>". */
const meter = (vscode: VsCodeSession) => vscode.page.locator(".statusbar-item", { hasText: /\$\d+\.\d\d \/ \$\d+\.\d\d/ }).first();

/** Classes and inline style of the meter item: VS Code marks warning and error items there. */
async function meterBackground(vscode: VsCodeSession): Promise<string> {
  return meter(vscode).evaluate((el) => {
    const e = el as unknown as { className: string; getAttribute(n: string): string | null; querySelector(s: string): { getAttribute(n: string): string | null } | null };
    return `${e.className} ${e.getAttribute("style") ?? ""} ${e.querySelector("a")?.getAttribute("style") ?? ""}`;
  });
}

async function waitForLens(vscode: VsCodeSession, re: RegExp, timeoutMs = 30_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let seen: string[] = [];
  while (Date.now() < end) {
    seen = await codeLensTexts(vscode.page);
    const hit = seen.find((t) => re.test(t));
    if (hit) return hit;
    await vscode.page.waitForTimeout(250);
  }
  throw new Error(`no code lens matching ${re}; lenses: ${JSON.stringify(seen)}`);
}
