import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { findCallSites, type CallSite } from "../../../server/lsp/callSites/index";
import { ASSUMED_UNKNOWN_PROMPT_TOKENS, callSiteEstimate, hoverMarkdown, lensTitle } from "../../../server/lsp/lensModel";
import { estimateTokensOfText, PER_MESSAGE_OVERHEAD_TOKENS } from "../../../server/metering/tokens";
import { usdToPicos } from "../../../server/metering/money";
import { PriceBook } from "../../../server/metering/prices";

const prices = new PriceBook();
const fixture = (file: string) => readFileSync(path.join(__dirname, "../../fixtures/callsites", file), "utf8");
const M = 1_000_000n;

describe("lens model: estimate, title, hover", () => {
  let ts: CallSite[];
  let py: CallSite[];
  before(async () => {
    ts = await findCallSites(fixture("sdkCommands.ts"), "typescript");
    py = await findCallSites(fixture("boto3_client.py"), "python");
  });

  it("prices a global Sonnet 4.5 Converse call at $3 / $15 per million", () => {
    const site = ts[0]!;
    const e = callSiteEstimate(site, prices);
    const input = estimateTokensOfText("You are a careful reviewer. Answer in three bullet points.\nReview this pull request description for clarity.") + PER_MESSAGE_OVERHEAD_TOKENS;
    assert.equal(e.inputTokens, input);
    assert.equal(e.maxOutputTokens, 1024);
    assert.equal(e.worstCasePicos, (BigInt(input) * usdToPicos(3) + 1024n * usdToPicos(15)) / M);
    assert.equal(input, 29); // pinned: 29 × $3/M + 1024 × $15/M = $0.015447
    assert.equal(e.worstCasePicos, usdToPicos("0.015447"));
    assert.equal(lensTitle(site, e), "≈ $0.02 per call · Claude Sonnet 4.5 · ~29 in / ≤1,024 out");
  });

  it("assumes 1K tokens for an unknown prompt part and says so; geographic profile ARN +10%", () => {
    const site = ts[1]!; // Haiku 4.5 through a us. inference-profile ARN: $1.10 / $5.50 per M
    const e = callSiteEstimate(site, prices);
    assert.equal(e.inputTokens, site.knownInputTokens + ASSUMED_UNKNOWN_PROMPT_TOKENS);
    assert.equal(e.worstCasePicos, (BigInt(e.inputTokens) * usdToPicos("1.1") + 512n * usdToPicos("5.5")) / M);
    assert.equal(e.inputTokens, 1020);
    assert.equal(e.worstCasePicos, usdToPicos("0.003938"));
    assert.equal(
      lensTitle(site, e),
      "≈ $0.0039 per call · Claude Haiku 4.5 · ~1,020 in / ≤512 out · prompt partly unknown: 1K tokens assumed for the rest",
    );
    assert.ok(e.notes.includes("prompt partly unknown: 1K tokens assumed for the rest"));
  });

  it("shows the model maximum as the worst case when no max tokens is set", () => {
    const site = py[3]!; // converse_stream(**kwargs), Sonnet 4.5 global, question unknown
    const e = callSiteEstimate(site, prices);
    assert.equal(e.maxOutputTokens, 64_000);
    assert.equal(e.outputFromRequest, false);
    assert.equal(e.worstCasePicos, (BigInt(e.inputTokens) * usdToPicos(3) + 64_000n * usdToPicos(15)) / M);
    assert.match(lensTitle(site, e), /^≈ \$0\.96 per call · Claude Sonnet 4\.5 · ~1,007 in \/ ≤64,000 out \(no max tokens\) · prompt size unknown: 1K tokens assumed$/);
  });

  it("adds today's history for the base model", () => {
    const site = py[1]!;
    const e = callSiteEstimate(site, prices);
    const today = new Map([["anthropic.claude-sonnet-4-5-20250929-v1:0", { calls: 143, costPicos: usdToPicos("0.61") }]]);
    assert.match(lensTitle(site, e, today), / · today: 143 calls, \$0\.61$/);
    assert.doesNotMatch(lensTitle(site, e, new Map()), /today/);
  });

  it("prices an unknown model id at the dearest rates and says so", () => {
    const site = ts[4]!;
    const e = callSiteEstimate(site, prices);
    assert.equal(e.rates.known, false);
    assert.match(lensTitle(site, e), /model unknown: dearest rates assumed/);
    assert.match(lensTitle(site, e), /prompt size unknown: 1K tokens assumed/);
  });

  it("prices prompt caching at the cache-write rate", () => {
    const site: CallSite = { ...ts[0]!, usesPromptCache: true };
    const e = callSiteEstimate(site, prices);
    // global Sonnet 4.5: 5m write $3.75/M, 1h write $6/M: the dearer one is reserved
    assert.equal(e.worstCasePicos, (BigInt(e.inputTokens) * usdToPicos(6) + 1024n * usdToPicos(15)) / M);
  });

  it("hover: tokens, price per million, cost lines, price source and read date, assumptions", () => {
    const site = ts[1]!;
    const md = hoverMarkdown(site, callSiteEstimate(site, prices));
    assert.match(md, /`InvokeModelCommand` \(AWS SDK for JavaScript v3\) · Claude Haiku 4\.5/);
    assert.match(md, /→ base `anthropic\.claude-haiku-4-5-20251001-v1:0`/);
    assert.match(md, /\| input \(partly assumed\) \| ~1,020 \| \$1\.10 \| \$0\.0011 \|/);
    assert.match(md, /\| output \(max tokens\) \| ≤512 \| \$5\.50 \| \$0\.0028 \|/);
    assert.match(md, /\| cache read \/ write 5m \/ write 1h \| not used \| \$0\.11 \/ \$1\.38 \/ \$2\.20 \| \|/);
    assert.match(md, /\*\*\$0\.0039\*\*/);
    assert.match(md, /Price source: .*\(read \d{4}-\d{2}-\d{2}\)/);
    assert.match(md, /- geographic profile us\\\.\\: \\\+10\\%/, "the note, its punctuation escaped (a note may quote the source)");
    assert.match(md, /Prompt text found \(literal parts only\): ` Summarize the latest news about in one paragraph\. `/);
  });
});
