/** The what-if over a ledger's journal (thin I/O adapter): reads the month and the history its caps' windows need, then replays them (policy/whatif.ts). */
import type { Config } from "../config/schema";
import type { Journal } from "../ledger/journal";
import { callsBetween, monthRange } from "../ledger/report";
import type { WhatIfResponse } from "../protocol";
import { capsStep, historyStart, whatIf, whatIfDto, type PolicyStep } from "./whatif";

/** The policy steps of a configuration. Rate limits and cap actions join this list as their pure modules land. */
export function whatIfSteps(config: Pick<Config, "caps">, timeZone: string): PolicyStep[] {
  return [capsStep(config.caps, timeZone)];
}

/** A month (YYYY-MM, in `timeZone`) of the journal replayed against `config`'s policies. */
export async function whatIfMonth(journal: Journal, config: Pick<Config, "caps">, month: string, timeZone: string): Promise<WhatIfResponse> {
  const { from, to } = monthRange(month, timeZone);
  const history = await callsBetween(journal, historyStart(config.caps, timeZone, from), from);
  const calls = await callsBetween(journal, from, to);
  return whatIfDto(whatIf(history, calls, whatIfSteps(config, timeZone)), month, timeZone);
}
