/**
 * The extension through the `vscode` API, inside a real extension host: what another extension
 * or a user's commands can observe. Runs under @vscode/test-electron (index.ts's run()) and, here,
 * inside code-server's extension host (test/e2e/hostSuite.test.ts).
 */
import assert from "node:assert/strict";
import * as vscode from "vscode";

const EXTENSION_ID = "bedrock-budget.bedrock-budget";

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const SOURCE = [
  'import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";',
  "const client = new BedrockRuntimeClient({});",
  "await client.send(new InvokeModelCommand({",
  '  modelId: "global.anthropic.claude-sonnet-4-5-20250929-v1:0",',
  '  body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", messages: [{ role: "user", content: "Hello" }] }),',
  "}));",
].join("\n");

describe("Bedrock Budget through the VS Code API", function () {
  this.timeout(60_000);
  let document: vscode.TextDocument;

  before(async () => {
    document = await vscode.workspace.openTextDocument({ language: "typescript", content: SOURCE });
    await vscode.window.showTextDocument(document);
  });

  it("activates and reports its gateway's endpoint to other extensions", async () => {
    const extension = await until("the extension", () => vscode.extensions.getExtension<{ endpoint(): string | undefined }>(EXTENSION_ID));
    const api = extension.isActive ? extension.exports : await extension.activate();
    const endpoint = await until("the gateway", () => api.endpoint());
    assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = (await (await fetch(`${endpoint}/__bedrock-budget/v1/health`)).json()) as { product: string };
    assert.equal(health.product, "bedrock-budget");
  });

  it("contributes its commands", async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const id of ["showDashboard", "copyEndpoint", "openRoutedTerminal", "restartGateway", "showLog", "openSettings"]) {
      assert.ok(commands.includes(`bedrockBudget.${id}`), `bedrockBudget.${id}`);
    }
  });

  it("opens a metered terminal on command (the walkthrough's step), pointed at the gateway", async () => {
    const endpoint = await until("the gateway", () => vscode.extensions.getExtension<{ endpoint(): string | undefined }>(EXTENSION_ID)!.exports.endpoint());
    let terminal: vscode.Terminal | undefined;
    const listener = vscode.window.onDidOpenTerminal((t) => {
      if (t.name === "Bedrock (metered)") terminal = t;
    });
    try {
      await vscode.commands.executeCommand("bedrockBudget.openRoutedTerminal");
      const opened = await until("the metered terminal", () => terminal);
      assert.equal((opened.creationOptions as vscode.TerminalOptions).env?.AWS_ENDPOINT_URL_BEDROCK_RUNTIME, endpoint);
      assert.equal((opened.creationOptions as vscode.TerminalOptions).env?.ANTHROPIC_BEDROCK_BASE_URL, endpoint, "the Anthropic SDK's variable too");
      opened.dispose();
    } finally {
      listener.dispose();
    }
  });

  it("ships its Getting Started walkthrough with every step's media in the installed extension", async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID)!;
    const walkthroughs = extension.packageJSON.contributes.walkthroughs as Array<{ id: string; steps: Array<{ media: Record<string, string> }> }>;
    assert.equal(walkthroughs[0]?.id, "gettingStarted");
    for (const step of walkthroughs[0]!.steps) {
      for (const file of Object.values(step.media)) await vscode.workspace.fs.stat(vscode.Uri.joinPath(extension.extensionUri, file)); // throws when missing
    }
  });

  it("restarts the gateway on command, serving the same endpoint again", async () => {
    const api = vscode.extensions.getExtension<{ endpoint(): string | undefined }>(EXTENSION_ID)!.exports;
    const before = api.endpoint()!;
    const health = async () => {
      const res = await fetch(`${before}/__bedrock-budget/v1/health`).catch(() => undefined);
      return res?.ok ? ((await res.json()) as { startedAt: string }) : undefined;
    };
    const first = (await health())!.startedAt;
    await vscode.commands.executeCommand("bedrockBudget.restartGateway");
    // A new gateway answers on the same port: its start time is later than the first one's.
    const restarted = await until("the restarted gateway", async () => {
      const now = await health();
      return now && now.startedAt !== first ? now.startedAt : undefined;
    });
    assert.ok(Date.parse(restarted) > Date.parse(first));
    // No endpoint is given out while the gateway is down (its port may be anyone's); once ready, the same one.
    assert.equal(await until("the endpoint again", () => api.endpoint()), before);
  });

  it("gives a Bedrock call a resolved cost lens, a hover with the breakdown, and a missing-max-tokens warning", async () => {
    const lenses = await until("a priced lens", async () => {
      const found = await vscode.commands.executeCommand<vscode.CodeLens[]>("vscode.executeCodeLensProvider", document.uri, 10);
      return found.find((l) => l.command?.title.startsWith("≈ $")) ? found : undefined;
    });
    const lens = lenses.find((l) => l.command?.title.startsWith("≈ $"))!;
    assert.match(lens.command!.title, /Claude Sonnet 4\.5 .*≤64,000 out \(no max tokens\)/);
    assert.equal(lens.command!.command, "bedrockBudget.showDashboard");

    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>("vscode.executeHoverProvider", document.uri, new vscode.Position(3, 10));
    const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === "string" ? c : "value" in c ? c.value : ""))).join("\n");
    assert.match(text, /per million|per 1M|\/ ?1M/i);

    const warnings = await until("the warning", () => {
      const found = vscode.languages.getDiagnostics(document.uri).filter((d) => d.source === "bedrock-budget");
      return found.length ? found : undefined;
    });
    assert.match(warnings[0]!.message, /max tokens/i);
  });

  it("drops the lenses when bedrockBudget.codeLens is turned off, live", async () => {
    const config = vscode.workspace.getConfiguration("bedrockBudget");
    await config.update("codeLens", false, vscode.ConfigurationTarget.Global);
    try {
      await until("no lenses", async () => {
        const found = await vscode.commands.executeCommand<vscode.CodeLens[]>("vscode.executeCodeLensProvider", document.uri, 10);
        return found.some((l) => l.command?.title.startsWith("≈ $")) ? undefined : true;
      });
    } finally {
      await config.update("codeLens", undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
