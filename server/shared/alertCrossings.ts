/**
 * Which cap thresholds a status has crossed, each reported once per cap window: the one rule the
 * editor's notifications (client/alerts.ts) and the gateway's alert channels (server/policy/alerts.ts)
 * share. Plain data, no I/O; each end keeps its own notified set (editor state, alert journal).
 */
import { usdToPicos } from "../metering/money";
import type { CapStatusDto } from "../protocol";

/** What the rule reads of a cap (a /status cap, or the gateway's own view of one). */
export type CapFigures = Pick<CapStatusDto, "id" | "window" | "spentUsd" | "limitUsd" | "spentExact" | "limitExact" | "windowStart" | "resetsAt" | "action">;

export interface Crossing {
  key: string; // capId@windowStart#threshold
  capId: string;
  threshold: number; // percent
  spentUsd: number;
  limitUsd: number;
  window: "day" | "week" | "month";
  resetsAt: string;
  /** The cap's action when not block: what happens at 100% differs. */
  action?: CapStatusDto["action"];
}

/** Crossings not yet notified; spent (not reserved) money decides, so a refused call never alerts. */
export function newCrossings(status: { caps: readonly CapFigures[] }, thresholds: number[], notified: ReadonlySet<string>): Crossing[] {
  const out: Crossing[] = [];
  for (const cap of status.caps) {
    // Exact: in floats $2.40 of a $3 cap is 79.99999999999999%, and the 80% alert would never come.
    const spent = usdToPicos(cap.spentExact);
    const limit = usdToPicos(cap.limitExact);
    // Only the highest threshold crossed is reported, so one call does not raise three toasts.
    const crossed = thresholds.filter((t) => limit > 0n && spent * 100n >= BigInt(t) * limit).sort((a, b) => b - a);
    const top = crossed[0];
    if (top === undefined) continue;
    const key = `${cap.id}@${cap.windowStart}#${top}`;
    if (notified.has(key) || [...notified].some((k) => k.endsWith(`#${top}`) && carriedKey(k, cap) === key)) continue;
    out.push({ key, capId: cap.id, threshold: top, spentUsd: cap.spentUsd, limitUsd: cap.limitUsd, window: cap.window, resetsAt: cap.resetsAt, ...(cap.action ? { action: cap.action } : {}) });
  }
  return out;
}

/** Keys of every threshold at or below each crossing, so lower ones never fire later in the window. */
export function keysCovered(crossing: Crossing, thresholds: number[]): string[] {
  const base = crossing.key.slice(0, crossing.key.lastIndexOf("#"));
  return thresholds.filter((t) => t <= crossing.threshold).map((t) => `${base}#${t}`);
}

/** What happens to calls once a cap is used up, by its action. */
const AT_LIMIT: Record<NonNullable<Crossing["action"]> | "block", string> = {
  block: "Calls that could cost more are refused until it resets.",
  downgrade: "Calls that could cost more are refused until it resets (it already sends its models' calls to the cheaper model).",
  clamp: "Calls get their output limit lowered to fit what is left, and are refused when not even a minimal answer fits, until it resets.",
  warn: "Calls still go through (action warn) and are counted past the limit; each is marked in the ledger.",
};

export function crossingMessage(c: Crossing): string {
  const word = { day: "today", week: "this week", month: "this month" }[c.window];
  return c.threshold >= 100
    ? `Bedrock Budget: cap "${c.capId}" is used up: $${c.spentUsd.toFixed(2)} of $${c.limitUsd.toFixed(2)} ${word}. ${AT_LIMIT[c.action ?? "block"]}`
    : `Bedrock Budget: cap "${c.capId}" has passed ${c.threshold}%: $${c.spentUsd.toFixed(2)} of $${c.limitUsd.toFixed(2)} ${word}.`;
}

/**
 * Notified keys from windows that have ended are dropped, so the stored set stays small; those of a
 * current window under another start (a `timeZone` change) are kept, as that window's keys. The
 * window just before the current one is kept too: a `timeZone` change made after it ended (under
 * the old zone) can make it the current window again, and its alerts must not come twice.
 */
export function pruneNotified(notified: Iterable<string>, status: { caps: readonly CapFigures[] }): string[] {
  const live = new Set(status.caps.map((c) => `${c.id}@${c.windowStart}`));
  const out = new Set<string>();
  for (const key of notified) {
    if (live.has(key.slice(0, key.lastIndexOf("#")))) out.add(key);
    else for (const cap of status.caps) {
      const carried = carriedKey(key, cap);
      if (carried) out.add(carried);
      else if (isPreviousWindowKey(key, cap)) out.add(key);
    }
  }
  return [...out];
}

/** `key` names the cap's window before the current one: started less than one and a half windows before it (months run 28 to 31 days, days 23 to 25 hours). */
function isPreviousWindowKey(key: string, cap: CapFigures): boolean {
  const start = windowStartOfKey(key, cap);
  if (start === undefined) return false;
  const from = Date.parse(cap.windowStart);
  const before = from - Date.parse(start);
  // NaN (an unreadable date) compares false: forgotten.
  return before > 0 && before * 2 < (Date.parse(cap.resetsAt) - from) * 3;
}

/** The window start a key (`capId@windowStart#threshold`) of this cap names; undefined for another cap's key. */
function windowStartOfKey(key: string, cap: CapFigures): string | undefined {
  const prefix = `${cap.id}@`;
  const hash = key.lastIndexOf("#");
  return key.startsWith(prefix) && hash >= prefix.length ? key.slice(prefix.length, hash) : undefined;
}

/**
 * `key` moved to the cap's current window when it names the same cap in that window under another
 * start: a `timeZone` change moves a window's start (and the keys) by hours without a new window
 * beginning, so what was notified stays notified. Within half a window of the current start: the
 * next window, whatever the zone, starts a whole window away. The gateway's alert channels
 * (server/policy/alerts.ts, carriedOver) use this rule too.
 */
export function carriedKey(key: string, cap: CapFigures): string | undefined {
  const start = windowStartOfKey(key, cap);
  if (start === undefined || start === cap.windowStart) return undefined;
  const from = Date.parse(cap.windowStart);
  // NaN (a tier cap's longer id, an unreadable date) compares false: not carried.
  if (!(Math.abs(Date.parse(start) - from) * 2 < Date.parse(cap.resetsAt) - from)) return undefined;
  return `${cap.id}@${cap.windowStart}${key.slice(key.lastIndexOf("#"))}`;
}
