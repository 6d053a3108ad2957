/**
 * How the status reads wherever it is shown (CLI status, status bar, dashboard): window words,
 * dollar figures, the share of a cap in use, and how fresh a shared team figure is. Pure; the
 * client and webview import it beside the contract.
 */
import type { CapStatusDto } from "../protocol";

/** "today", "this week", "this month". */
export const WINDOW_WORD = { day: "today", week: "this week", month: "this month" } as const;

/** A dollar figure to the cent, as the status shows it. */
export function usd(n: number): string {
  return `$${n.toFixed(2)}`;
}

/** Share of a cap in use: spent plus what calls in flight have reserved (1 = at the limit). */
export function usedShare(cap: Pick<CapStatusDto, "limitUsd" | "spentUsd" | "reservedUsd">): number {
  return cap.limitUsd > 0 ? (cap.spentUsd + cap.reservedUsd) / cap.limitUsd : 0;
}

/** That share as a whole percent. */
export function usedPercent(cap: Pick<CapStatusDto, "limitUsd" | "spentUsd" | "reservedUsd">): number {
  return Math.round(usedShare(cap) * 100);
}

export function ago(asOf: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(asOf)) / 1000));
  if (!Number.isFinite(seconds)) return "at an unknown time";
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

/** "team (redis), as of 12 s ago"; undefined for caps not shared through a team ledger. */
export function teamFreshness(cap: Pick<CapStatusDto, "team">, now: Date): string | undefined {
  if (!cap.team) return undefined;
  return `team (${cap.team.source}), as of ${ago(cap.team.asOf, now)}${cap.team.stale ? ", stale: the team ledger is not answering" : ""}`;
}
