/** How fresh a shared team figure is, in words (status bar, CLI status, dashboard). Pure. */
import type { CapStatusDto } from "./protocol";

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
