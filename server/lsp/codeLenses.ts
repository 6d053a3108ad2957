/**
 * Code lenses in two passes, as LSP intends: `lensesFor` is cheap (ranges + the call site as
 * `data`, no pricing), `resolveLens` prices one lens when the editor shows it. The lens's `data`
 * carries the (JSON-safe) call site, its prompt text cut to the hover's preview, so resolving needs
 * no server-side cache of documents.
 * Also the hover at a position.
 */
import { uncheckedCaps, type CapLeft } from "./lensDiagnostics";
import type { CodeLens, Hover, Position } from "vscode-languageserver";
import type { PriceBook } from "../metering/prices";
import type { GuardrailPricing } from "../config/schema";
import type { CallSite } from "./callSites/types";
import type { LensSettings } from "./lensDiagnostics";
import { callSiteEstimate, hoverMarkdown, lensTitle, PROMPT_PREVIEW_CHARS, type TodayHistory } from "./lensModel";

export const SHOW_DASHBOARD_COMMAND = "bedrockBudget.showDashboard";

export interface LensData {
  kind: "bedrockBudget.callSite";
  uri: string;
  site: CallSite;
}

export function lensesFor(uri: string, sites: readonly CallSite[], settings?: Pick<LensSettings, "codeLens">): CodeLens[] {
  if (settings && !settings.codeLens) return [];
  return sites.map((site) => ({ range: site.range, data: { kind: "bedrockBudget.callSite", uri, site: lensSite(site) } satisfies LensData }));
}

/**
 * The site as its lens carries it: the full prompt text rode in every lens (a 100 KB prompt in 40
 * calls made a 4 MB response). Resolving prices from the counted tokens and whether any text was
 * found, never the text itself, so a preview's worth keeps the estimate and title the same.
 */
function lensSite(site: CallSite): CallSite {
  if (site.promptText === undefined || site.promptText.length <= PROMPT_PREVIEW_CHARS) return site;
  return { ...site, promptText: site.promptText.slice(0, PROMPT_PREVIEW_CHARS) };
}

/** Fills in title and command; a lens whose data is not ours comes back unchanged. */
/** `guardrailPricing`: the setting; a guardrail the call attaches is priced with it, as the gateway does. */
export function resolveLens(lens: CodeLens, prices: PriceBook, today?: TodayHistory, guardrailPricing?: GuardrailPricing): CodeLens {
  if (!isLensData(lens.data)) return lens;
  const site = lens.data.site;
  const estimate = callSiteEstimate(site, prices, guardrailPricing);
  const args = site.modelId === undefined ? {} : { model: estimate.rates.baseModelId };
  return { ...lens, command: { title: lensTitle(site, estimate, today), command: SHOW_DASHBOARD_COMMAND, arguments: [args] } };
}

/** The innermost call site containing `position`, if any. */
export function siteAt(sites: readonly CallSite[], position: Position): CallSite | undefined {
  let best: CallSite | undefined;
  for (const site of sites) {
    if (!contains(site, position)) continue;
    if (!best || before(best.range.start, site.range.start)) best = site;
  }
  return best;
}

/** `caps`: what is left of each cap; those scoped to callers or tags are named in the hover as not checked. */
export function hoverAt(sites: readonly CallSite[], position: Position, prices: PriceBook, caps: readonly CapLeft[] = [], guardrailPricing?: GuardrailPricing): Hover | null {
  const site = siteAt(sites, position);
  if (!site) return null;
  const estimate = callSiteEstimate(site, prices, guardrailPricing);
  return { contents: { kind: "markdown", value: hoverMarkdown(site, estimate, uncheckedCaps(site, estimate, caps)) }, range: site.range };
}

export function isLensData(data: unknown): data is LensData {
  return typeof data === "object" && data !== null && (data as { kind?: unknown }).kind === "bedrockBudget.callSite" && typeof (data as { site?: unknown }).site === "object";
}

function contains(site: CallSite, p: Position): boolean {
  return !before(p, site.range.start) && !before(site.range.end, p);
}

function before(a: Position, b: Position): boolean {
  return a.line < b.line || (a.line === b.line && a.character < b.character);
}
