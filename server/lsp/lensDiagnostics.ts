/**
 * Warnings over call sites, each switchable in settings: a call with no output limit (its worst
 * case is the model maximum), and a call whose worst case alone exceeds what is left of a cap.
 * A cap scoped to callers or tags is not checked here: the editor knows neither who will make the
 * call nor its tags, and counting such caps "to be safe" would warn against every caller's wall at
 * once (a hundred per-agent caps, the fullest decides). The hover names the caps left unchecked.
 */
import type { Diagnostic, DiagnosticSeverity } from "vscode-languageserver";
import { capMatcher, scopedBeyondModel, type CapMatcher } from "../budget/capMatch";
import type { Config } from "../config/schema";
import type { Estimate } from "../metering/estimate";
import { formatUsd, type Picos } from "../metering/money";
import type { CallSite } from "./callSites/types";

export type LensSettings = Pick<Config, "codeLens" | "warnMissingMaxTokens" | "warnOverCap">;

/** A cap's state now; BudgetEngine.status() entries (CapStatus) fit as they are. */
export interface CapLeft {
  id: string;
  limitPicos: Picos;
  spentPicos: Picos;
  reservedPicos: Picos;
  /** Glob over model ids, as in the config; undefined: every model. */
  model?: string;
  /** Set when the cap is scoped to callers or tags, which a lens cannot know. */
  callers?: string[];
  tags?: Record<string, string>;
  window?: string;
}

export const DIAGNOSTIC_SOURCE = "bedrock-budget";
export const MISSING_MAX_TOKENS = "missing-max-tokens";
export const OVER_CAP = "over-cap";
const WARNING: DiagnosticSeverity = 2; // DiagnosticSeverity.Warning, without loading the LSP runtime here

/** `estimates[i]` belongs to `sites[i]`. */
export function diagnosticsFor(sites: readonly CallSite[], estimates: readonly Estimate[], caps: readonly CapLeft[], settings: LensSettings): Diagnostic[] {
  const out: Diagnostic[] = [];
  const matchers = caps.filter((cap) => !scopedBeyondModel(cap)).map((cap) => ({ cap, matches: cap.model === undefined ? undefined : capMatcher(cap.model) }));
  sites.forEach((site, i) => {
    const estimate = estimates[i];
    if (!estimate) return;
    // Only when the request visibly has no limit: a limit we cannot read is not a missing one.
    if (settings.warnMissingMaxTokens && site.maxTokens === undefined && !site.maxTokensUnknown) {
      out.push({
        range: site.range,
        severity: WARNING,
        source: DIAGNOSTIC_SOURCE,
        code: MISSING_MAX_TOKENS,
        message:
          `No max tokens: output is bounded only by the model maximum (${estimate.maxOutputTokens.toLocaleString("en-US")} tokens), ` +
          `a worst case of ${formatUsd(estimate.worstCasePicos)} per call. Set a max tokens value to bound it.`,
      });
    }
    if (!settings.warnOverCap) return;
    for (const { cap, matches } of matchers) {
      if (!appliesTo(matches, site, estimate)) continue;
      const left = cap.limitPicos - cap.spentPicos - cap.reservedPicos;
      if (estimate.worstCasePicos <= left) continue;
      const leftText = left > 0n ? `the ${formatUsd(left)} left` : "what is left (nothing)";
      out.push({
        range: site.range,
        severity: WARNING,
        source: DIAGNOSTIC_SOURCE,
        code: OVER_CAP,
        message:
          `Worst case ${formatUsd(estimate.worstCasePicos)} per call exceeds ${leftText} of cap "${cap.id}"` +
          ` (${formatUsd(cap.limitPicos)}${cap.window ? ` per ${cap.window}` : ""}): the gateway would refuse this call.`,
      });
    }
  });
  return out;
}

/**
 * The caps that may apply to a site (its model matches, or is unknown) but that the lens does not
 * check because they depend on the caller or on tags: named in the hover.
 */
export function uncheckedCaps(site: CallSite, estimate: Estimate, caps: readonly CapLeft[]): string[] {
  return caps
    .filter((cap) => scopedBeyondModel(cap))
    .filter((cap) => cap.model === undefined || site.modelId === undefined || capMatcher(cap.model)(site.modelId, estimate.rates.baseModelId))
    .map((cap) => cap.id);
}

/** A cap on a model applies only when the site's model is known to match; an unscoped cap always applies. */
function appliesTo(matches: CapMatcher | undefined, site: CallSite, estimate: Estimate): boolean {
  if (!matches) return true;
  if (site.modelId === undefined) return false;
  return matches(site.modelId, estimate.rates.baseModelId);
}
