import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { findCallSites } from "../../../server/lsp/callSites/index";
import { locateWasm } from "../../../server/lsp/callSites/wasmFiles";
import { hoverAt, lensesFor, resolveLens, SHOW_DASHBOARD_COMMAND, siteAt } from "../../../server/lsp/codeLenses";
import { usdToPicos } from "../../../server/metering/money";
import { PriceBook } from "../../../server/metering/prices";
import { callSiteEstimate } from "../../../server/lsp/lensModel";

const prices = new PriceBook();
const SRC = `import boto3
runtime = boto3.client("bedrock-runtime")
runtime.converse(
    modelId="us.anthropic.claude-sonnet-4-20250514-v1:0",
    messages=[{"role": "user", "content": [{"text": "Hello there"}]}],
    inferenceConfig={"maxTokens": 1024},
)
`;

describe("code lenses and hover", () => {
  it("cheap pass: ranges and data only; resolve: title and the dashboard command", async () => {
    const sites = await findCallSites(SRC, "python");
    const lenses = lensesFor("file:///w/app.py", sites, { codeLens: true });
    assert.equal(lenses.length, 1);
    assert.equal(lenses[0]!.command, undefined);
    assert.deepEqual(lenses[0]!.range, { start: { line: 2, character: 0 }, end: { line: 6, character: 1 } });
    // data crosses the wire as JSON between the two passes
    const wire = JSON.parse(JSON.stringify(lenses[0]));
    const today = new Map([["anthropic.claude-sonnet-4-20250514-v1:0", { calls: 143, costPicos: usdToPicos("0.61") }]]);
    const resolved = resolveLens(wire, prices, today);
    // Sonnet 4 (no regional premium): ~8 in × $3/M + 1024 × $15/M = $0.015384
    assert.equal(resolved.command?.title, "≈ $0.02 per call · Claude Sonnet 4 · ~8 in / ≤1,024 out · today: 143 calls, $0.61");
    assert.equal(resolved.command?.command, SHOW_DASHBOARD_COMMAND);
    assert.equal(callSiteEstimate(sites[0]!, prices).worstCasePicos, usdToPicos("0.015384"));
    assert.deepEqual(resolved.command?.arguments, [{ model: "anthropic.claude-sonnet-4-20250514-v1:0" }]);
    assert.deepEqual(lensesFor("file:///w/app.py", sites, { codeLens: false }), []);
    const foreign = { range: lenses[0]!.range, data: { other: true } };
    assert.equal(resolveLens(foreign, prices), foreign);
  });

  it("hover at a position inside a call, null elsewhere", async () => {
    const sites = await findCallSites(SRC, "python");
    const hover = hoverAt(sites, { line: 4, character: 10 }, prices);
    assert.ok(hover && typeof hover.contents === "object" && "value" in hover.contents);
    assert.match(hover.contents.value, /Claude Sonnet 4/);
    assert.equal(hoverAt(sites, { line: 0, character: 3 }, prices), null);
    assert.equal(siteAt(sites, { line: 6, character: 2 }), undefined);
  });

  it("finds the wasm files in the bundle layout (out/wasm next to out/server.js)", () => {
    const out = mkdtempSync(path.join(os.tmpdir(), "bb-out-"));
    mkdirSync(path.join(out, "wasm"));
    try {
      writeFileSync(path.join(out, "wasm", "tree-sitter-python.wasm"), "");
      assert.equal(locateWasm("python", undefined, out), path.join(out, "wasm", "tree-sitter-python.wasm"));
      assert.match(locateWasm("tsx"), /node_modules[\\/]tree-sitter-typescript[\\/]tree-sitter-tsx\.wasm$/);
      assert.throws(() => locateWasm("runtime", undefined, out), /web-tree-sitter\.wasm not found/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
