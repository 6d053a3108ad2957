/** The what-if over a ledger's journal (thin I/O adapter): reads the month and the history its caps' windows need, then replays them (policy/whatif.ts). */
import type { Config } from "../config/schema";
import type { Journal } from "../ledger/journal";
import { callsBetween, monthRange } from "../ledger/report";
import type { PriceBook } from "../metering/prices";
import type { WhatIfResponse } from "../protocol";
import { capsInForce } from "./plans";
import { capsStep, historyStart, usagePlanStep, whatIf, whatIfDto, type PolicyStep } from "./whatif";

export type WhatIfConfig = Pick<Config, "caps" | "rateLimit" | "tiers" | "callers">;

/** The policy steps of a configuration, in the gateway's order: the usage plan at the door, then the caps (tier caps too) and their actions. */
export function whatIfSteps(config: WhatIfConfig, timeZone: string, prices: PriceBook): PolicyStep[] {
  return [usagePlanStep(config, timeZone), capsStep(capsInForce(config), timeZone, prices)];
}

/** A month (YYYY-MM, in `timeZone`) of the journal replayed against `config`'s policies, priced with `prices`. */
export async function whatIfMonth(journal: Journal, config: WhatIfConfig, month: string, timeZone: string, prices: PriceBook): Promise<WhatIfResponse> {
  const { from, to } = monthRange(month, timeZone);
  // Quotas count per day and month, both starting at the month's start: only the caps' windows reach back.
  const history = await callsBetween(journal, historyStart(capsInForce(config), timeZone, from), from);
  const calls = await callsBetween(journal, from, to);
  return whatIfDto(whatIf(history, calls, whatIfSteps(config, timeZone, prices)), month, timeZone);
}
