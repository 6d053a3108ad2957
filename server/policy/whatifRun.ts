/** The what-if over a ledger's journal (thin I/O adapter): reads the month and the history its caps' windows need, then replays them (policy/whatif.ts). */
import { capId, type CapConfig, type Config } from "../config/schema";
import type { Journal } from "../ledger/journal";
import { callsBetween, monthRange } from "../ledger/report";
import type { PriceBook } from "../metering/prices";
import type { WhatIfResponse } from "../protocol";
import { capsInForce } from "./plans";
import { capsStep, historyStart, usagePlanStep, whatIf, whatIfDto, type PolicyStep } from "./whatif";

export type WhatIfConfig = Pick<Config, "caps" | "rateLimit" | "tiers" | "callers">;

/**
 * The caps in force, each once: the gateway's settings (the dashboard's what-if) already hold the
 * tier caps expanded beside the tiers and callers they came from, and expanding them again would
 * replay every tier cap twice (each warning and clamp counted twice). Cap ids are unique in a config.
 */
export function whatIfCaps(config: WhatIfConfig): CapConfig[] {
  const byId = new Map<string, CapConfig>();
  for (const cap of capsInForce(config)) if (!byId.has(capId(cap))) byId.set(capId(cap), cap);
  return [...byId.values()];
}

/** The policy steps of a configuration, in the gateway's order: the usage plan at the door, then the caps (tier caps too) and their actions. */
export function whatIfSteps(config: WhatIfConfig, timeZone: string, prices: PriceBook): PolicyStep[] {
  return [usagePlanStep(config, timeZone), capsStep(whatIfCaps(config), timeZone, prices)];
}

/** A month (YYYY-MM, in `timeZone`) of the journal replayed against `config`'s policies, priced with `prices`. */
export async function whatIfMonth(journal: Journal, config: WhatIfConfig, month: string, timeZone: string, prices: PriceBook): Promise<WhatIfResponse> {
  const { from, to } = monthRange(month, timeZone);
  // Quotas count per day and month, both starting at the month's start: only the caps' windows reach back.
  const history = await callsBetween(journal, historyStart(whatIfCaps(config), timeZone, from), from);
  const calls = await callsBetween(journal, from, to);
  return whatIfDto(whatIf(history, calls, whatIfSteps(config, timeZone, prices)), month, timeZone);
}
