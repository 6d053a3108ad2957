/** The what-if's policy names and how a group of its result is named, shared by the CLI text and the dashboard card. */
import type { WhatIfGroupDto } from "../protocol";

export const USAGE_PLANS = "rate limits and request quotas";
export const CAPS = "caps and their actions";

/** `refused by cap daily`, `quota-exceeded by tier "pro" rateLimit.requestsPerDay`. */
export function groupLabel(g: Pick<WhatIfGroupDto, "policy" | "outcome" | "by">): string {
  return `${g.outcome} by ${g.policy === CAPS ? `cap ${g.by}` : g.by}`;
}
