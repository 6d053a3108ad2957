/**
 * Runs the `vscode`-API suites (test/vscode) inside the real extension host of code-server, next
 * to the installed VSIX: a test-only runner extension loads them with mocha and writes the
 * results to a file this test reads (code-server ignores --extensionTestsPath).
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import type { HostResults } from "../vscode/index";
import { FakeBedrock } from "../support/fakeBedrock";
import { CREDENTIALS } from "../support/harness";
import { freePort } from "../support/ports";
import { ROOT, startVsCode, type VsCodeSession } from "./support/codeServer";
import { credentialEnv } from "../support/cliProcess";

describe("vscode-API suites inside code-server's extension host", function () {
  this.timeout(240_000);
  let fake: FakeBedrock;
  let vscode: VsCodeSession | undefined;
  let dir: string;

  before(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-host-suite-"));
  });
  after(async () => {
    await vscode?.close();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("passes every test", async () => {
    const runner = path.join(dir, "runner");
    await build({
      entryPoints: [path.join(ROOT, "test/vscode/hostRunner.ts")],
      outfile: path.join(runner, "extension.js"),
      bundle: true, platform: "node", target: "node20", format: "cjs", external: ["vscode"], logLevel: "error",
    });
    await writeFile(path.join(runner, "package.json"), JSON.stringify({
      name: "host-suite-runner", displayName: "Bedrock Budget host suite runner", version: "0.0.1", publisher: "bbtest", license: "MIT",
      engines: { vscode: "^1.100.0" }, activationEvents: ["onStartupFinished"], main: "./extension.js",
      extensionDependencies: ["bedrock-budget.bedrock-budget"],
    }));
    const results = path.join(dir, "results.json");
    vscode = await startVsCode({
      vsix: path.join(ROOT, "bedrock-budget.vsix"),
      extensionDirs: [runner],
      settings: {
        "bedrockBudget.port": await freePort(),
        "bedrockBudget.ledgerDir": path.join(dir, "ledger"),
        "bedrockBudget.upstreamEndpoint": fake.url,
        "bedrockBudget.caps": [{ id: "daily", window: "day", limitUsd: 5 }],
      },
      env: {
        ...credentialEnv(),
        BB_HOST_RESULTS: results,
      },
    });
    let text = "";
    for (let i = 0; i < 1_200 && !text; i++) {
      text = await readFile(results, "utf8").catch(() => "");
      if (!text) await new Promise((r) => setTimeout(r, 100));
    }
    if (!text) assert.fail(`the suites wrote no results in 120 s:\n${vscode.logs().slice(-10_000)}`);
    const outcome = JSON.parse(text) as HostResults;
    for (const title of outcome.passes) console.log(`      ✔ (in the extension host) ${title}`);
    assert.deepEqual(outcome.failures, [], outcome.failures.map((f) => `${f.title}\n${f.error}`).join("\n\n"));
    assert.ok(outcome.passes.length >= 5, `only ${outcome.passes.length} tests ran`);
  });
});
