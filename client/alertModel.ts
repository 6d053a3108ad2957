/**
 * Which cap thresholds a new status has crossed, each reported once per cap window. Plain data
 * (no `vscode`), so it is tested alone; the notified set persists in the extension's global state.
 */
import type { CallRecord, StatusResponse } from "../server/protocol";

export interface Crossing {
  key: string; // capId@windowStart#threshold
  capId: string;
  threshold: number; // percent
  spentUsd: number;
  limitUsd: number;
  window: "day" | "week" | "month";
  resetsAt: string;
}

/** Crossings not yet notified; spent (not reserved) money decides, so a refused call never alerts. */
export function newCrossings(status: StatusResponse, thresholds: number[], notified: ReadonlySet<string>): Crossing[] {
  const out: Crossing[] = [];
  for (const cap of status.caps) {
    const share = cap.limitUsd > 0 ? cap.spentUsd / cap.limitUsd : 0;
    // Only the highest threshold crossed is reported, so one call does not raise three toasts.
    const crossed = thresholds.filter((t) => share * 100 >= t).sort((a, b) => b - a);
    const top = crossed[0];
    if (top === undefined) continue;
    const key = `${cap.id}@${cap.windowStart}#${top}`;
    if (notified.has(key)) continue;
    out.push({ key, capId: cap.id, threshold: top, spentUsd: cap.spentUsd, limitUsd: cap.limitUsd, window: cap.window, resetsAt: cap.resetsAt });
  }
  return out;
}

/** Keys of every threshold at or below each crossing, so lower ones never fire later in the window. */
export function keysCovered(crossing: Crossing, thresholds: number[]): string[] {
  const base = crossing.key.slice(0, crossing.key.lastIndexOf("#"));
  return thresholds.filter((t) => t <= crossing.threshold).map((t) => `${base}#${t}`);
}

export function crossingMessage(c: Crossing): string {
  const word = { day: "today", week: "this week", month: "this month" }[c.window];
  return c.threshold >= 100
    ? `Bedrock Budget: cap "${c.capId}" is used up: $${c.spentUsd.toFixed(2)} of $${c.limitUsd.toFixed(2)} ${word}. Calls that could cost more are refused until it resets.`
    : `Bedrock Budget: cap "${c.capId}" has passed ${c.threshold}%: $${c.spentUsd.toFixed(2)} of $${c.limitUsd.toFixed(2)} ${word}.`;
}

/** Notified keys from windows that have ended are dropped, so the stored set stays small. */
export function pruneNotified(notified: Iterable<string>, status: StatusResponse): string[] {
  const live = new Set(status.caps.map((c) => `${c.id}@${c.windowStart}`));
  return [...notified].filter((key) => live.has(key.slice(0, key.lastIndexOf("#"))));
}

/** What the editor says about one settled call, if anything. `quietKey`: at most one toast per key a minute (a runaway loop). */
export interface CallNotice {
  level: "error" | "warning" | "info";
  message: string;
  quietKey?: string;
  /** Offer to open the cap setting (a refusal). */
  capSetting?: boolean;
}

/** Refused and cut calls, and the caps' actions on a call that went through (warn, downgrade, clamp). */
export function callNotice(record: CallRecord): CallNotice | undefined {
  if (record.outcome === "refused") {
    const cap = record.refusedBy ?? "a cap";
    return { level: "error", message: record.message ?? `Bedrock Budget refused a call: cap "${cap}".`, quietKey: `refused:${cap}`, capSetting: true };
  }
  if (record.outcome === "cut") return { level: "warning", message: record.message ?? "Bedrock Budget stopped a stream at its cap." };
  const actions = record.actions ?? [];
  const warned = actions.filter((a) => a.action === "warn").map((a) => a.capId);
  if (warned.length > 0) {
    const caps = warned.map((id) => `"${id}"`).join(", ");
    return {
      level: "warning",
      message: `Bedrock Budget: ${warned.length === 1 ? "cap" : "caps"} ${caps} ${warned.length === 1 ? "is" : "are"} past the limit; a call to ${record.answeredBy ?? record.modelId} was let through (action warn) and counted.`,
      quietKey: `warn:${warned.join(",")}`,
    };
  }
  const shaped = actions.filter((a) => a.action === "downgrade" || a.action === "clamp");
  if (shaped.length > 0) {
    const said = shaped.map((a) => (a.action === "downgrade" ? `cap "${a.capId}" sent it to ${record.answeredBy ?? "a cheaper model"}` : `cap "${a.capId}" lowered its output limit (${a.detail})`));
    return { level: "info", message: `Bedrock Budget: a call to ${record.modelId} was changed to fit: ${said.join("; ")}.`, quietKey: `shaped:${shaped.map((a) => a.capId).join(",")}` };
  }
  return undefined;
}
