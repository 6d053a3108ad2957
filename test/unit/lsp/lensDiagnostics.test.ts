import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { findCallSites, type CallSite } from "../../../server/lsp/callSites/index";
import { diagnosticsFor, MISSING_MAX_TOKENS, OVER_CAP, uncheckedCaps, type CapLeft, type LensSettings } from "../../../server/lsp/lensDiagnostics";
import { callSiteEstimate, hoverMarkdown } from "../../../server/lsp/lensModel";
import type { Diagnostic } from "vscode-languageserver";
import { usdToPicos } from "../../../server/metering/money";
import { PriceBook } from "../../../server/metering/prices";

const prices = new PriceBook();
/** Our messages are plain strings (LSP 3.18 also allows Markdown). */
const text = (d: Diagnostic) => (typeof d.message === "string" ? d.message : d.message.value);
const ALL: LensSettings = { codeLens: true, warnMissingMaxTokens: true, warnOverCap: true };
const cap = (id: string, limit: string, spent: string, reserved: string, model?: string): CapLeft => ({
  id,
  limitPicos: usdToPicos(limit),
  spentPicos: usdToPicos(spent),
  reservedPicos: usdToPicos(reserved),
  window: "day",
  ...(model !== undefined && { model }),
});

describe("lens diagnostics", () => {
  let sites: CallSite[];
  before(async () => {
    sites = await findCallSites(readFileSync(path.join(__dirname, "../../fixtures/callsites/boto3_client.py"), "utf8"), "python");
  });
  const estimates = () => sites.map((s) => callSiteEstimate(s, prices));

  it("warns on a call with no max tokens, with its worst case", () => {
    const d = diagnosticsFor(sites, estimates(), [], ALL);
    assert.equal(d.length, 1);
    assert.equal(d[0]!.code, MISSING_MAX_TOKENS);
    assert.equal(d[0]!.severity, 2);
    assert.deepEqual(d[0]!.range, sites[3]!.range);
    assert.match(text(d[0]!), /model maximum \(64,000 tokens\), a worst case of \$0\.96 per call/);
  });

  it("warns when the worst case alone exceeds what is left of an applicable cap", () => {
    // Worst cases: classify (Haiku 4.5, us.) $0.0015, explain (Sonnet 4.5) $0.0154, story (Llama 3 70B) under
    // $0.01, unbounded stream (Sonnet 4.5) $0.96.
    const caps = [cap("daily", "10", "9.5", "0.49"), cap("sonnet", "100", "0", "0", "*sonnet*"), cap("haiku", "1", "1", "0", "*haiku*")];
    const d = diagnosticsFor(sites, estimates(), caps, { ...ALL, warnMissingMaxTokens: false });
    const over = d.map((x) => [sites.findIndex((s) => s.range === x.range), text(x).match(/cap "(\w+)"/)?.[1]]);
    // $0.01 left of "daily": the two Sonnet calls exceed it; "haiku" has nothing left and applies to the Haiku call only.
    assert.deepEqual(over, [[0, "haiku"], [1, "daily"], [3, "daily"]]);
    assert.ok(d.every((x) => x.code === OVER_CAP));
    assert.match(text(d[1]!), /^Worst case \$0\.02 per call exceeds the \$0\.01 left of cap "daily" \(\$10\.00 per day\)/);
    assert.match(text(d[0]!), /exceeds what is left \(nothing\) of cap "haiku"/);
  });

  it("stays quiet when the cap has room, and when switched off", () => {
    assert.deepEqual(diagnosticsFor(sites, estimates(), [cap("big", "1000", "0", "0")], { ...ALL, warnMissingMaxTokens: false }), []);
    assert.deepEqual(diagnosticsFor(sites, estimates(), [cap("none", "1", "1", "0")], { ...ALL, warnMissingMaxTokens: false, warnOverCap: false }), []);
  });

  it("does not call an unreadable limit missing, nor apply a model cap to an unknown model", async () => {
    const [site] = await findCallSites('import boto3\ndef f(m, b):\n    c.invoke_model(modelId=m, body=b)\n', "python");
    const e = [callSiteEstimate(site!, prices)];
    const d = diagnosticsFor([site!], e, [cap("sonnet", "1", "1", "0", "*sonnet*")], ALL);
    assert.deepEqual(d, []);
  });

  it("does not check a cap scoped to callers or tags (the editor knows neither); the hover names it", () => {
    const scoped: CapLeft[] = [
      { ...cap("agent-day@agent-001", "1", "1", "0"), callers: ["agent-001"] },
      { ...cap("chatbot", "1", "1", "0", "*sonnet*"), tags: { project: "chatbot" } },
    ];
    assert.deepEqual(diagnosticsFor(sites, estimates(), scoped, { ...ALL, warnMissingMaxTokens: false }), [], "no over-cap warning from a cap that may not apply");
    const sonnet = sites.findIndex((s) => s.modelId?.includes("sonnet"));
    const e = callSiteEstimate(sites[sonnet]!, prices);
    assert.deepEqual(uncheckedCaps(sites[sonnet]!, e, scoped), ["agent-day@agent-001", "chatbot"]);
    assert.match(hoverMarkdown(sites[sonnet]!, e, uncheckedCaps(sites[sonnet]!, e, scoped)), /Not checked against `agent-day@agent-001`, `chatbot`: these caps depend on who makes the call or its tags/);
    const haiku = sites.findIndex((s) => s.modelId?.includes("haiku"));
    assert.deepEqual(uncheckedCaps(sites[haiku]!, callSiteEstimate(sites[haiku]!, prices), scoped), ["agent-day@agent-001"], "a model-scoped one only where its model matches");
  });
});
