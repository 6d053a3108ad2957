/** The what-if's policy names and how a group of its result is named, shared by the CLI text and the dashboard card. */
import type { WhatIfGroupDto } from "../protocol";

export const USAGE_PLANS = "rate limits and request quotas";
export const CAPS = "caps and their actions";

/** `refused by cap daily`, `quota-exceeded by tier "pro" rateLimit.requestsPerDay`. */
export function groupLabel(g: Pick<WhatIfGroupDto, "policy" | "outcome" | "by">): string {
  return `${g.outcome} by ${g.policy === CAPS ? `cap ${g.by}` : g.by}`;
}

/**
 * An exact decimal string of USD for people, the sign before the dollar: "$0.05", "-$0.0132" (a
 * downgrade to a dearer model saves less than nothing), never "$-0.0132". `minDecimals` pads.
 */
export function usdText(exact: string, minDecimals = 0): string {
  const negative = exact.startsWith("-");
  const [whole, frac = ""] = exact.replace(/^-/, "").split(".");
  const digits = frac.padEnd(minDecimals, "0");
  return `${negative ? "-" : ""}$${whole}${digits ? `.${digits}` : ""}`;
}
