/**
 * What the status bar meter says, as plain data (no `vscode` here, so it is tested alone): the
 * tightest cap's spend, its severity and a Markdown tooltip listing every cap.
 */
import { teamFreshness, usd, usedShare, WINDOW_WORD } from "../server/shared/statusFormat";
import type { BlockedBy, CapStatusDto, GatewayStateNotification, StatusResponse } from "../server/protocol";
import { escapeMarkdown } from "../server/shared/markdown";

export type Severity = "normal" | "warning" | "error";

export interface MeterView {
  text: string;
  severity: Severity;
  tooltip: string; // Markdown, with command links
}

/** The cap closest to its limit. */
export function tightestCap(caps: CapStatusDto[]): CapStatusDto | undefined {
  return caps.reduce<CapStatusDto | undefined>((best, cap) => (!best || usedShare(cap) > usedShare(best) ? cap : best), undefined);
}

export function severityOf(share: number): Severity {
  return share >= 1 ? "error" : share >= 0.8 ? "warning" : "normal";
}

const BLOCKED_BY_WORDS: Record<BlockedBy, string> = { settings: "settings", team: "team caps unknown", ledger: "ledger not counted" };

export function meterView(status: StatusResponse, now: Date = new Date()): MeterView {
  // Every call is refused, whatever the caps say: the bar names what to fix, the tooltip says how.
  if (status.blocked) {
    // A cause this build does not know (a newer gateway) is left out, as an older gateway's absent one is.
    const cause = status.blockedBy !== undefined && Object.hasOwn(BLOCKED_BY_WORDS, status.blockedBy) ? `: ${BLOCKED_BY_WORDS[status.blockedBy]}` : "";
    return { text: `$(error) Bedrock calls refused${cause}`, severity: "error", tooltip: tooltip(status, now) };
  }
  const cap = tightestCap(status.caps);
  // Simulated figures must never be read as real spend.
  const icon = status.simulated ? "$(beaker) SIMULATED" : "$(pulse)";
  const text = cap
    ? `${icon} ${cap.scope === "team" ? "team: " : ""}${usd(cap.spentUsd)} / ${usd(cap.limitUsd)} ${WINDOW_WORD[cap.window]}`
    : `${icon} ${usd(status.today.costUsd)} today`;
  return { text, severity: cap ? severityOf(usedShare(cap)) : "normal", tooltip: tooltip(status, now) };
}

function tooltip(status: StatusResponse, now: Date): string {
  const lines = ["**Bedrock Budget**", ""];
  if (status.blocked) lines.push(`**Every Bedrock call is refused.** ${status.blocked}`, "");
  if (status.simulated) lines.push("**Simulated** (`serve --simulate`): answers come from the built-in simulator, not AWS; these figures are not real spend.", "");
  if (status.caps.length === 0) {
    lines.push(`No caps set: calls are metered, never refused. Today: ${status.today.calls} calls, ${usd(status.today.costUsd)}.`, "");
  } else {
    lines.push("| cap | spent | reserved | limit | resets |", "|---|---:|---:|---:|---|");
    for (const cap of status.caps) {
      const fresh = teamFreshness(cap, now);
      // The id and model glob can come from team.json (others' text): escaped; the rest is ours.
      const name = `${escapeMarkdown(cap.id)} (${cap.scope}, ${cap.window}${cap.model ? `, ${escapeMarkdown(cap.model)}` : ""}${fresh ? `; ${fresh}` : ""})`;
      lines.push(`| ${name} | ${usd(cap.spentUsd)} | ${usd(cap.reservedUsd)} | ${usd(cap.limitUsd)} | ${resetsIn(new Date(cap.resetsAt), now)} |`);
    }
    lines.push("", `Today: ${status.today.calls} calls, ${usd(status.today.costUsd)}.`, "");
  }
  const q = status.journal;
  if (q && q.quarantinedLines > 0) {
    lines.push(`⚠️ ${q.quarantinedLines} invalid journal line${q.quarantinedLines === 1 ? "" : "s"} moved aside${q.unknownAmountLines > 0 ? `; **${q.unknownAmountLines} with an unknown amount: spend may be higher than shown**` : ""} (files: \`bedrock-budget status\`).`, "");
  }
  if (status.inFlight > 0) lines.push(`${status.inFlight} call${status.inFlight === 1 ? "" : "s"} in flight.`, "");
  lines.push(`Endpoint: \`${status.endpoint}\``, "");
  lines.push("[Dashboard](command:bedrockBudget.showDashboard) · [Copy endpoint](command:bedrockBudget.copyEndpoint) · [Settings](command:bedrockBudget.openSettings) · [Log](command:bedrockBudget.showLog)");
  return lines.join("\n");
}

/** "in 3 h 20 min", "in 2 days". */
export function resetsIn(at: Date, now: Date): string {
  const minutes = Math.max(0, Math.round((at.getTime() - now.getTime()) / 60_000));
  if (minutes < 60) return `in ${minutes} min`;
  if (minutes < 48 * 60) return `in ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  return `in ${Math.round(minutes / (24 * 60))} days`;
}

/**
 * Which the meter shows: the spend figures only while the gateway serves; otherwise its state
 * (starting, failed, stopped). Figures that arrive or age meanwhile are kept for when it serves
 * again, never drawn over the state: a meter back to normal-looking figures while terminal calls
 * go out unmetered or fail would tell the user the wall stands.
 */
export class MeterModel {
  private serving = false;
  private last: StatusResponse | undefined;

  /** A new gateway state: the figures to draw (it serves and figures are known), else undefined (draw the state). */
  onState(state: GatewayStateNotification.Params): StatusResponse | undefined {
    this.serving = state.state === "ready";
    return this.serving ? this.last : undefined;
  }

  /** New figures: to draw now, or undefined while the gateway does not serve. */
  onStatus(status: StatusResponse): StatusResponse | undefined {
    this.last = status;
    return this.serving ? status : undefined;
  }

  /** The minute tick ("resets in …" ages): the figures to draw again, if they are showing. */
  onTick(): StatusResponse | undefined {
    return this.serving ? this.last : undefined;
  }
}
