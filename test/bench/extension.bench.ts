/**
 * Extension benchmark in a real VS Code (code-server + Chromium, as the e2e suite): activation
 * time (measured inside activate(), read from the extension's log) and the time from a call
 * settling (the SDK call returns only after its settlement is journaled) to the status bar
 * showing the new figure. Reports, asserts nothing. Run: npm run bench:extension
 * (after `bash scripts/e2e-setup.sh` and `npm run package`).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { startVsCode, statusBarTexts, waitForStatusBarItem, ROOT } from "../e2e/support/codeServer";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import { freePort } from "../support/ports";
import { credentialEnv } from "../support/cliProcess";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
const CALLS = 30;


function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const fake = await FakeBedrock.start({ credentials: CREDENTIALS });
  const ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-bench-ext-"));
  const port = await freePort();
  const vscode = await startVsCode({
    vsix: path.join(ROOT, "bedrock-budget.vsix"),
    settings: {
      "bedrockBudget.port": port,
      "bedrockBudget.ledgerDir": ledgerDir,
      "bedrockBudget.upstreamEndpoint": fake.url,
      "bedrockBudget.timeZone": "UTC",
      "bedrockBudget.caps": [{ id: "daily", window: "day", limitUsd: 1000 }],
    },
    env: {
      ...credentialEnv(),
    },
  });
  const client = clientFor(`http://127.0.0.1:${port}`);
  try {
    await waitForStatusBarItem(vscode.page, "/ $1000.00 today", 60_000);
    const activation = /activated in ([\d.]+) ms/.exec(vscode.logs())?.[1];

    // Each call costs 1,000 input and 1,000 output tokens of Sonnet 4.5 = $0.018 (never a half cent to round).
    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 1000 } }));
    const latencies: number[] = [];
    for (let i = 1; i <= CALLS; i++) {
      const expected = `$${(i * 0.018).toFixed(2)} / $1000.00 today`;
      // Watch the DOM from the page itself, so polling does not add a round trip per check.
      const seen = vscode.page.waitForFunction(
        `Array.from(document.querySelectorAll(".statusbar-item")).some((e) => e.innerText.includes(${JSON.stringify(expected)}))`,
        undefined,
        { polling: "raf", timeout: 10_000 },
      );
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody(`call ${i}`, 1000) }));
      const settled = performance.now();
      await seen;
      // Two calls can round to the same cents: skip those, they would read as 0 ms.
      if ((i * 0.018).toFixed(2) !== ((i - 1) * 0.018).toFixed(2)) latencies.push(performance.now() - settled);
    }
    console.log("Bedrock Budget extension in VS Code 1.100.3 (code-server), Chromium headless");
    console.log(`activation (inside activate())            ${activation ?? "?"} ms`);
    console.log(`settled call → status bar shows it (n=${latencies.length})  p50 ${percentile(latencies, 50).toFixed(1)} ms  p95 ${percentile(latencies, 95).toFixed(1)} ms  max ${Math.max(...latencies).toFixed(1)} ms`);
    console.log(`status bar now: ${JSON.stringify((await statusBarTexts(vscode.page)).filter((t) => t.includes("$")))}`);
  } finally {
    client.destroy();
    await vscode.close();
    await fake.close();
    await rm(ledgerDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
