/** The status as text for a terminal (CLI `status`). Pure. */
import { teamFreshness } from "./freshness";
import type { StatusResponse } from "./protocol";

const WINDOW_WORD = { day: "today", week: "this week", month: "this month" } as const;

export function formatStatus(status: StatusResponse, now: Date = new Date()): string {
  const lines = [`Bedrock Budget at ${status.endpoint} (user ${status.user}, ${status.timeZone})`];
  lines.push(`today: ${status.today.calls} calls, ${usd(status.today.costUsd)}; ${status.inFlight} in flight`);
  if (status.caps.length === 0) lines.push("no caps set: calls are metered but never refused");
  for (const cap of status.caps) {
    const fresh = teamFreshness(cap, now);
    const pct = cap.limitUsd > 0 ? Math.round(((cap.spentUsd + cap.reservedUsd) / cap.limitUsd) * 100) : 0;
    lines.push(
      `${cap.id} (${cap.scope}${cap.model ? `, ${cap.model}` : ""}): ${usd(cap.spentUsd)} / ${usd(cap.limitUsd)} ${WINDOW_WORD[cap.window]}` +
        `${cap.reservedUsd > 0 ? `, ${usd(cap.reservedUsd)} reserved` : ""} (${pct}%), resets ${cap.resetsAt}${fresh ? `; ${fresh}` : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function usd(n: number): string {
  return `$${n.toFixed(2)}`;
}
