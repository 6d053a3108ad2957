/**
 * Pure presentation of one call site's cost: the estimate (through the gateway's one estimator,
 * `estimateFromParts`), the code-lens title and the hover's Markdown breakdown. No I/O, no editor.
 */
import { estimateFromParts, type Estimate } from "../metering/estimate";
import { formatUsd, type Picos } from "../metering/money";
import type { PriceBook } from "../metering/prices";
import { priceSource } from "../metering/priceFile";
import type { CallSite } from "./callSites/types";
import { escapeMarkdown } from "../shared/markdown";
import type { GuardrailPricing } from "../config/schema";
import { attachedGuardrail, withAttachedGuardrail } from "../metering/attachedGuardrail";
import { guardrailWorstCase, textUnits } from "../metering/guardrails";

/** Input assumed for the part of a prompt that is not knowable statically (a variable, a substitution). */
export const ASSUMED_UNKNOWN_PROMPT_TOKENS = 1000;
/** What a site with no resolvable model id is priced as: no row matches, so the dearest known rates apply. */
export const UNKNOWN_MODEL_ID = "(model id not known statically)";

/**
 * Characters assumed for the unknown part of a prompt when a guardrail evaluates it: the
 * ASSUMED_UNKNOWN_PROMPT_TOKENS at about 4 characters a token, i.e. 4 text units.
 */
export const ASSUMED_UNKNOWN_PROMPT_CHARS = ASSUMED_UNKNOWN_PROMPT_TOKENS * 4;
/** How the lens names an attached guardrail whose id the code does not spell out. */
export const UNKNOWN_GUARDRAIL_ID = "(guardrail id not known statically)";

/** How much of a call's prompt text the hover quotes. */
export const PROMPT_PREVIEW_CHARS = 200;

/** Today's settled calls per base model id, as the ledger reports them. */
export type TodayHistory = ReadonlyMap<string, { calls: number; costPicos: Picos }>;

/**
 * Estimates already made, per price book (a book never changes: new prices or settings make a new
 * one) and per what a site's estimate reads: a file's lenses are priced again after every edit,
 * and most of its calls did not change. Estimates handed out are shared: read-only.
 */
const estimates = new WeakMap<PriceBook, Map<string, Estimate>>();
const MAX_ESTIMATES_PER_BOOK = 20_000;

/**
 * `guardrailPricing`: the setting; when set, a guardrail the call attaches is priced with it, as the
 * gateway reserves it (its worst case over the input's and the output limit's text units).
 */
export function callSiteEstimate(site: CallSite, prices: PriceBook, guardrailPricing?: GuardrailPricing): Estimate {
  const guard = guardrailPricing && site.guardrail ? [site.guardrail.id ?? null, site.guardrail.inputUnits, guardrailPricing] : null;
  const key = JSON.stringify([site.modelId ?? null, site.knownInputTokens, site.promptComplete, site.promptText !== undefined, site.maxTokens ?? null, site.usesPromptCache, site.tier?.serviceTier ?? null, site.tier?.latency ?? null, site.assumptions, guard]);
  let made = estimates.get(prices);
  if (!made) estimates.set(prices, (made = new Map()));
  const known = made.get(key);
  if (known) return known;
  const estimate = estimateSite(site, prices, guardrailPricing);
  if (made.size >= MAX_ESTIMATES_PER_BOOK) made.clear(); // bounded: a long session types many distinct calls
  made.set(key, estimate);
  return estimate;
}

function estimateSite(site: CallSite, prices: PriceBook, guardrailPricing: GuardrailPricing | undefined): Estimate {
  const notes = [...site.assumptions];
  let inputTokens = site.knownInputTokens;
  if (!site.promptComplete) {
    inputTokens += ASSUMED_UNKNOWN_PROMPT_TOKENS;
    notes.push(unknownPromptNote(site));
  }
  const model = estimateFromParts(
    {
      modelId: site.modelId ?? UNKNOWN_MODEL_ID,
      inputTokens,
      ...(site.maxTokens !== undefined && { maxOutputTokens: site.maxTokens }),
      usesPromptCache: site.usesPromptCache,
      ...(site.tier && { tier: site.tier }),
      notes,
    },
    prices,
  );
  if (!site.guardrail || !guardrailPricing) return model;
  // The unknown part of the prompt is evaluated too: its assumed size in text units.
  const inputUnits = site.guardrail.inputUnits + (site.promptComplete ? 0 : textUnits(ASSUMED_UNKNOWN_PROMPT_CHARS));
  return withAttachedGuardrail(model, attachedGuardrail(site.guardrail.id ?? UNKNOWN_GUARDRAIL_ID, inputUnits, model.maxOutputTokens, guardrailPricing));
}

/** `≈ $0.0042 per call · Claude Sonnet 4 · ~850 in / ≤1,024 out · today: 143 calls, $0.61` */
export function lensTitle(site: CallSite, estimate: Estimate, today?: TodayHistory): string {
  const parts = [`≈ ${formatUsd(estimate.worstCasePicos)} per call`, modelLabel(site, estimate)];
  let tokens = `~${fmt(estimate.inputTokens)} in / ≤${fmt(estimate.maxOutputTokens)} out`;
  if (site.maxTokens === undefined) tokens += site.maxTokensUnknown ? " (max tokens unknown: model maximum assumed)" : " (no max tokens)";
  parts.push(tokens);
  if (!site.promptComplete) parts.push(unknownPromptNote(site));
  if (estimate.guardrail) parts.push(`guardrail included: ${formatUsd(estimate.guardrail.worstCasePicos)}`);
  const history = site.modelId === undefined ? undefined : today?.get(estimate.rates.baseModelId);
  if (history) parts.push(`today: ${fmt(history.calls)} call${history.calls === 1 ? "" : "s"}, ${formatUsd(history.costPicos)}`);
  return parts.join(" · ");
}

/** The breakdown shown on hover: tokens, rates per million, cost per kind, where the prices come from. */
/** `unchecked`: caps scoped to callers or tags that may apply here; the lens cannot know, so it says so. */
export function hoverMarkdown(site: CallSite, estimate: Estimate, unchecked: readonly string[] = []): string {
  const r = estimate.rates;
  const outputPicos = BigInt(estimate.maxOutputTokens) * r.output;
  const guard = estimate.guardrail;
  // The input line is whatever the estimator charged beyond output and the guardrail (it picks the cache-write rate when caching).
  const inputPicos = estimate.worstCasePicos - outputPicos - (guard?.worstCasePicos ?? 0n);
  const inputRate = estimate.inputTokens > 0 ? inputPicos / BigInt(estimate.inputTokens) : r.input;
  const lines = [
    `**Bedrock Budget** · \`${site.operation}\` (${API_LABEL[site.api]}) · ${modelLabel(site, estimate, escapeMarkdown)}`,
    "",
    site.modelId === undefined ? "Model id: not known statically" : `Model id: ${codeId(site.modelId)}${r.baseModelId !== site.modelId ? ` → base ${codeId(r.baseModelId)}` : ""}`,
    "",
    "| | tokens | price per 1M | worst case |",
    "|---|---:|---:|---:|",
    `| input${estimate.usesPromptCache ? " (at cache-write rate)" : ""}${site.promptComplete ? "" : " (partly assumed)"} | ~${fmt(estimate.inputTokens)} | ${perMillion(inputRate)} | ${formatUsd(inputPicos)} |`,
    `| output (${estimate.outputFromRequest ? "max tokens" : "model maximum"}) | ≤${fmt(estimate.maxOutputTokens)} | ${perMillion(r.output)} | ${formatUsd(outputPicos)} |`,
    `| cache read / write 5m / write 1h | ${estimate.usesPromptCache ? "requested" : "not used"} | ${perMillion(r.cacheRead)} / ${perMillion(r.cacheWrite5m)} / ${perMillion(r.cacheWrite1h)} | |`,
    // A pipe in the id (the source's text) would split the table's cells: escaped, as GFM tables read it.
    ...(guard ? [`| guardrail ${codeId(guard.id).replace(/\|/g, "\\|")}, every priced policy | ~${fmt(guard.inputUnits)} in / ≤${fmt(guard.maxOutputUnits)} out text units | ${perThousandUnits(guard.pricing)} per 1K units | ${formatUsd(guard.worstCasePicos)} |`] : []),
    `| **per call**${guard ? " (guardrail included)" : ""} | | | **${formatUsd(estimate.worstCasePicos)}** |`,
    "",
    `Price source: ${priceSource(r.source)}`,
  ];
  if (site.guardrail && !guard) {
    lines.push("", `Guardrail ${site.guardrail.id ? codeId(site.guardrail.id) : "attached"}: not priced (\`guardrailPricing\` is not set), so the gateway records its part at $0.`);
  }
  // A note may quote the source (a document's `format`): escaped like the ids.
  if (estimate.notes.length > 0) lines.push("", "Assumed:", ...unique(estimate.notes).map((n) => `- ${escapeMarkdown(n)}`));
  if (unchecked.length > 0) {
    const shown = unchecked.slice(0, 5).map(codeId).join(", ");
    const more = unchecked.length > 5 ? ` and ${unchecked.length - 5} more` : "";
    lines.push("", `Not checked against ${shown}${more}: ${unchecked.length === 1 ? "this cap depends" : "these caps depend"} on who makes the call or its tags, which the editor cannot know; the gateway checks ${unchecked.length === 1 ? "it" : "them"} on each call.`);
  }
  if (site.promptText !== undefined && site.promptText.trim() !== "") {
    const preview = site.promptText.length > PROMPT_PREVIEW_CHARS ? `${site.promptText.slice(0, PROMPT_PREVIEW_CHARS)}…` : site.promptText;
    lines.push("", `Prompt text found${site.promptComplete ? "" : " (literal parts only)"}: ${inlineCode(preview)}`);
  }
  return lines.join("\n");
}

const API_LABEL: Record<CallSite["api"], string> = {
  "aws-sdk-js-v3": "AWS SDK for JavaScript v3",
  boto3: "boto3",
  "anthropic-bedrock-sdk": "Anthropic Bedrock SDK",
};

/** `asText`: how the source's model id is written: as is in a lens title, escaped in the hover's Markdown. */
function modelLabel(site: CallSite, estimate: Estimate, asText: (id: string) => string = (id) => id): string {
  if (site.modelId === undefined) return "model unknown: dearest rates assumed";
  if (!estimate.rates.known) return `${asText(site.modelId)} (no price row: dearest rates assumed)`;
  return estimate.rates.displayName;
}

function unknownPromptNote(site: CallSite): string {
  const k = fmt(ASSUMED_UNKNOWN_PROMPT_TOKENS / 1000) + "K";
  return site.promptText !== undefined ? `prompt partly unknown: ${k} tokens assumed for the rest` : `prompt size unknown: ${k} tokens assumed`;
}

/** "built-in: AWS page…, read 2026-11-22" → "AWS page… (read 2026-11-22)". */


/** What 1,000 text units cost on every priced policy (what the guardrail's worst case assumes). */
function perThousandUnits(pricing: GuardrailPricing): string {
  return formatUsd(guardrailWorstCase(1000, pricing));
}

function perMillion(picosPerToken: Picos): string {
  return formatUsd(picosPerToken * 1_000_000n);
}

/** `toLocaleString("en-US")`'s output, without building the formatter per call (a lens title formats three numbers). */
const EN_US = new Intl.NumberFormat("en-US");

function fmt(n: number): string {
  return EN_US.format(n);
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}

/**
 * Markdown inline code that survives backticks and newlines in the text: the fence is one backtick
 * longer than the text's longest run of them, else a run in the text closes the span early and the
 * rest (the source's text) renders as Markdown: links, images.
 */
function inlineCode(text: string): string {
  const flat = text.replace(/\s+/g, " ");
  let longest = 0;
  for (const run of flat.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  const fence = "`".repeat(longest + 1);
  return `${fence} ${flat} ${fence}`;
}

/** An id as inline code: plainly when it holds no backtick or blank, else fenced as inlineCode does. */
function codeId(id: string): string {
  return /[`\s]/.test(id) ? inlineCode(id) : `\`${id}\``;
}

