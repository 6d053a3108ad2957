/**
 * Self-test of the real-VS-Code harness (test/e2e/support/codeServer.ts) with a throw-away
 * extension generated here. Needs `bash scripts/e2e-setup.sh` first.
 *   npx mocha --timeout 180000 test/e2e/harness.test.ts
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import {
  codeLensTexts,
  notifications,
  openFile,
  ROOT,
  runCommand,
  screenshot,
  startVsCode,
  statusBarTexts,
  waitForNotification,
  waitForStatusBarItem,
  type VsCodeSession,
} from "./support/codeServer";

const EXTENSION_JS = `
const vscode = require("vscode");
exports.activate = function (context) {
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 1000);
  item.text = "harness-ok";
  item.show();
  context.subscriptions.push(item);
  context.subscriptions.push(vscode.commands.registerCommand("harnessSelfTest.ping", () => {
    item.text = "harness-pinged " + (process.env.HARNESS_MARKER || "no-env");
  }));
  context.subscriptions.push(vscode.languages.registerCodeLensProvider({ pattern: "**/*.txt" }, {
    provideCodeLenses(doc) {
      return [new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), { title: "lens-one", command: "" }),
              new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), { title: "lens-two", command: "" })];
    },
  }));
  console.log("harness self-test extension activated");
  void vscode.window.showInformationMessage("hello from harness");
};
exports.deactivate = function () {};
`;

async function makeExtension(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-e2e-ext-"));
  const pkg = {
    name: "harness-self-test",
    displayName: "Harness Self Test",
    description: "Throw-away extension for the e2e harness self-test",
    version: "0.0.1",
    publisher: "bbtest",
    license: "MIT",
    repository: { type: "git", url: "https://example.invalid/none" },
    engines: { vscode: "^1.100.0" },
    activationEvents: ["onStartupFinished"],
    main: "./extension.js",
    contributes: { commands: [{ command: "harnessSelfTest.ping", title: "Harness Self Test: Ping" }] },
  };
  await writeFile(path.join(dir, "package.json"), JSON.stringify(pkg, null, 2));
  await writeFile(path.join(dir, "extension.js"), EXTENSION_JS);
  await writeFile(path.join(dir, "LICENSE"), "MIT\n");
  await writeFile(path.join(dir, "README.md"), "# harness self test\n");
  return dir;
}

describe("e2e harness (code-server + chromium)", function () {
  this.timeout(180_000);
  let extDir = "";
  let vs: VsCodeSession | undefined;

  before(async () => {
    extDir = await makeExtension();
  });
  afterEach(async function () {
    if (vs && this.currentTest?.state === "failed") {
      await screenshot(vs.page, `harness-failed-${this.currentTest.title}`).catch(() => undefined);
      console.log(vs.logs());
    }
    await vs?.close();
    vs = undefined;
  });
  after(async () => {
    if (extDir) await rm(extDir, { recursive: true, force: true });
  });

  it("runs an unpacked extension: status bar, notification, command palette, code lens, env", async () => {
    const t0 = Date.now();
    vs = await startVsCode({
      extensionDirs: [extDir],
      workspaceFiles: { "notes.txt": "hello\n", "sub/deep.txt": "deep\n" },
      env: { HARNESS_MARKER: "env-passed" },
    });
    const started = Date.now();
    await waitForStatusBarItem(vs.page, "harness-ok", 60_000);
    const shown = Date.now();
    await waitForNotification(vs.page, /hello from harness/, 30_000);
    console.log(`      code-server+workbench up in ${started - t0} ms; "harness-ok" visible after ${shown - t0} ms`);
    assert.ok((await notifications(vs.page)).some((n) => n.includes("hello from harness")));
    await screenshot(vs.page, "harness-ok");

    await runCommand(vs.page, "Harness Self Test: Ping");
    assert.equal(await waitForStatusBarItem(vs.page, /^harness-pinged/, 15_000), "harness-pinged env-passed");

    await openFile(vs.page, "notes.txt");
    await waitForCodeLenses(vs, ["lens-one", "lens-two"]);
    await openFile(vs.page, "sub/deep.txt");
    await screenshot(vs.page, "harness-lenses");

    assert.match(vs.logs(), /harness self-test extension activated/, "extension host log is in logs()");
    assert.ok((await statusBarTexts(vs.page)).length > 0);
  });

  it("installs a VSIX with --install-extension", async function () {
    const vsix = path.join(extDir, "harness-self-test.vsix");
    const vsce = path.join(ROOT, "node_modules/.bin/vsce");
    await promisify(execFile)(vsce, ["package", "--no-dependencies", "--allow-missing-repository", "--skip-license", "-o", vsix], {
      cwd: extDir,
      timeout: 60_000,
      env: { ...process.env, CI: "true" },
    });
    assert.ok(existsSync(vsix));
    vs = await startVsCode({ vsix });
    await waitForStatusBarItem(vs.page, "harness-ok", 60_000);
    await waitForNotification(vs.page, /hello from harness/, 30_000);
  });

  it("close() ends everything it started and removes its temp dirs", async () => {
    const s = await startVsCode({ workspaceFiles: { "a.txt": "a\n" } });
    vs = s;
    await openFile(s.page, "a.txt");
    const { userDataDir, port } = s;
    await s.close();
    vs = undefined;
    assert.equal(existsSync(userDataDir), false);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3_000) }));
  });
});

async function waitForCodeLenses(vs: VsCodeSession, want: string[]): Promise<void> {
  const end = Date.now() + 20_000;
  let got: string[] = [];
  while (Date.now() < end) {
    got = await codeLensTexts(vs.page);
    if (want.every((w) => got.includes(w))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`code lenses ${JSON.stringify(want)} not shown; got ${JSON.stringify(got)}`);
}

