/**
 * The alert journal: `alerts.jsonl` in the ledger folder (0600), one line per step of one alert on
 * one channel. An alert is journaled "pending" (synced) before its first send and "sent" (or
 * "failed", when its attempts ran out) after. On start, a sent or failed alert is never sent again;
 * a pending one (the gateway stopped or crashed while sending it) is sent again, once more: so a
 * crash loses no alert and duplicates at most the one it was sending. Sent and failed alerts of
 * windows that ended over ALERT_FORGET_AFTER_MS ago are dropped when the file is opened, so it
 * stays small; a pending one is
 * kept, even when its window has ended, until it is sent (or its attempts run out), or until its
 * window ended more than ALERT_LATE_GRACE_MS ago.
 */
import { open, readFile, rename } from "node:fs/promises";
import path from "node:path";
import { FILE_MODE } from "../ledger/privateFiles";

export const ALERTS_FILE = "alerts.jsonl";
/**
 * How long after its window ended an unsent alert is still sent (a restart the next morning);
 * older, it is stale news: not sent (a channel turned on again weeks later, perhaps pointing
 * at another team's room, would get every alert left over), and dropped from the journal.
 */
export const ALERT_LATE_GRACE_MS = 24 * 3_600_000;
/**
 * How long after its window ended a sent or failed alert is kept (in the file, and in memory while
 * the gateway runs). Until then it can still stop an alert: after a `timeZone` change, the current
 * window can be that same window under another start (zones differ by at most 26 h), and its
 * alerts were announced already. Later, no current window can be its window.
 */
export const ALERT_FORGET_AFTER_MS = 48 * 3_600_000;

/** Whether an unsent alert's window ended too long ago for it to be sent still. */
export function tooLate(alert: AlertMessage, now: Date): boolean {
  return !(Date.parse(alert.resetsAt) + ALERT_LATE_GRACE_MS > now.getTime());
}

export type AlertChannelName = "webhook" | "sns";

/** One alert as its channels send it: what crossed, and the words. */
export interface AlertMessage {
  /** capId@windowStart#threshold (or #warn for a warn-action cap that let a call through that could pass its limit). */
  key: string;
  /** The notified keys this alert covers (the lower thresholds it implies), so they never fire later in the window. */
  covers: string[];
  capId: string;
  threshold: number | "warn";
  spentUsd: number;
  limitUsd: number;
  window: "day" | "week" | "month";
  resetsAt: string;
  text: string;
  /**
   * A warn alert's: whether the spend was past the limit, decided once on exact money, so the SNS
   * Subject says what the text says (the rounded figures above can tie when the exact ones do not).
   */
  overLimit?: boolean;
}

type Line =
  | { v: 1; channel: AlertChannelName; state: "pending"; at: string; alert: AlertMessage }
  | { v: 1; channel: AlertChannelName; state: "sent" | "failed"; at: string; key: string; attempts: number; error?: string };

interface Entry {
  alert: AlertMessage;
  state: "pending" | "sent" | "failed";
}

export class AlertJournal {
  /** channel → alert key → its latest state. */
  private readonly entries = new Map<AlertChannelName, Map<string, Entry>>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(readonly file: string) {}

  /**
   * Reads the journal (unreadable lines are skipped and counted), drops the sent and failed alerts of
   * windows that ended over ALERT_FORGET_AFTER_MS ago (never a pending one: it has not gone out
   * yet), and rewrites it
   * compacted when it dropped anything. A rewrite that fails (a full or read-only disk) is reported in
   * `problem`, not thrown: the gateway still starts, and the old file still says what was sent.
   */
  static async open(ledgerDir: string, now: Date): Promise<{ journal: AlertJournal; skipped: number; problem?: string }> {
    const journal = new AlertJournal(path.join(ledgerDir, ALERTS_FILE));
    let text = "";
    try {
      text = await readFile(journal.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    let skipped = 0;
    // Every line: the newest say what was sent (a cut would drop them, and the rewrite below with
    // them, so those alerts went out again). Each start compacts the file to live windows' alerts.
    for (const raw of text.split("\n")) {
      if (raw.trim() === "") continue;
      const line = parseLine(raw);
      if (line === undefined) skipped++;
      else journal.apply(line);
    }
    let dropped = 0;
    let expired = 0;
    for (const byKey of journal.entries.values()) {
      for (const [key, entry] of byKey) {
        if (entry.state === "pending" ? !tooLate(entry.alert, now) : Date.parse(entry.alert.resetsAt) + ALERT_FORGET_AFTER_MS > now.getTime()) continue;
        byKey.delete(key);
        dropped++;
        if (entry.state === "pending") expired++;
      }
    }
    // Said, not silent: the user learns those alerts never went out.
    const stale = expired > 0 ? `dropped ${expired} alert(s) never sent whose window ended over ${ALERT_LATE_GRACE_MS / 3_600_000} h ago (the channel was off or the gateway stopped)` : undefined;
    if (dropped === 0 && skipped === 0) return { journal, skipped };
    try {
      await journal.rewrite();
      return { journal, skipped, ...(stale ? { problem: stale } : {}) };
    } catch (err) {
      return { journal, skipped, problem: [stale, `cannot compact ${journal.file}: ${(err as Error).message}`].filter(Boolean).join("; ") };
    }
  }

  /** Keys already notified on `channel` (pending, sent or failed), with the lower thresholds each covers. */
  notified(channel: AlertChannelName): Set<string> {
    const out = new Set<string>();
    for (const entry of this.entries.get(channel)?.values() ?? []) for (const key of [entry.alert.key, ...entry.alert.covers]) out.add(key);
    return out;
  }

  /** Every alert journaled on `channel`, whatever its state. */
  alerts(channel: AlertChannelName): AlertMessage[] {
    return [...(this.entries.get(channel)?.values() ?? [])].map((e) => e.alert);
  }

  /** Alerts journaled pending and never finished: a previous run stopped while sending them. */
  unfinished(channel: AlertChannelName): AlertMessage[] {
    return [...(this.entries.get(channel)?.values() ?? [])].filter((e) => e.state === "pending").map((e) => e.alert);
  }

  /**
   * Drops from memory (the file is compacted on the next start) the sent and failed alerts whose
   * window ended before `before`: a gateway that runs for months would otherwise keep every alert
   * it ever sent, and look through them all at each check. Pending ones stay (still to be sent or
   * reported stale).
   */
  forgetEnded(before: Date): void {
    for (const byKey of this.entries.values()) {
      for (const [key, entry] of byKey) if (entry.state !== "pending" && Date.parse(entry.alert.resetsAt) < before.getTime()) byKey.delete(key);
    }
  }

  /** Journals the alert as pending, synced to disk; resolves before the first send may start. */
  pending(channel: AlertChannelName, alert: AlertMessage, at: Date): Promise<void> {
    return this.append({ v: 1, channel, state: "pending", at: at.toISOString(), alert });
  }

  finished(channel: AlertChannelName, key: string, state: "sent" | "failed", attempts: number, at: Date, error?: string): Promise<void> {
    return this.append({ v: 1, channel, state, at: at.toISOString(), key, attempts, ...(error ? { error } : {}) });
  }

  /** Waits for the writes under way. */
  flushed(): Promise<void> {
    return this.writing;
  }

  private apply(line: Line): void {
    let byKey = this.entries.get(line.channel);
    if (!byKey) this.entries.set(line.channel, (byKey = new Map()));
    if (line.state === "pending") {
      byKey.set(line.alert.key, { alert: line.alert, state: "pending" });
    } else {
      const entry = byKey.get(line.key);
      if (entry) entry.state = line.state;
    }
  }

  /** Appended and synced in order, one write at a time; the state in memory changes once the line is on disk. */
  private append(line: Line): Promise<void> {
    const next = this.writing.then(() => appendSynced(this.file, `${JSON.stringify(line)}\n`)).then(() => this.apply(line));
    this.writing = next.catch(() => undefined);
    return next;
  }

  /** Replaces the file with the entries kept (pending and final states), through a synced temporary file. */
  private async rewrite(): Promise<void> {
    const lines: string[] = [];
    for (const [channel, byKey] of this.entries) {
      for (const entry of byKey.values()) {
        lines.push(JSON.stringify({ v: 1, channel, state: "pending", at: new Date(0).toISOString(), alert: entry.alert } satisfies Line));
        if (entry.state !== "pending") lines.push(JSON.stringify({ v: 1, channel, state: entry.state, at: new Date(0).toISOString(), key: entry.alert.key, attempts: 0 } satisfies Line));
      }
    }
    const tmp = `${this.file}.tmp`;
    const handle = await open(tmp, "w", FILE_MODE);
    try {
      await handle.writeFile(lines.map((l) => `${l}\n`).join(""));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
  }
}

async function appendSynced(file: string, text: string): Promise<void> {
  const handle = await open(file, "a", FILE_MODE);
  try {
    await handle.appendFile(text);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

const CHANNELS: readonly string[] = ["webhook", "sns"];

/** A journal line, or undefined when it is not one (a torn last line after a crash, a hand edit). */
function parseLine(raw: string): Line | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const line = value as Record<string, unknown>;
  if (line.v !== 1 || !CHANNELS.includes(line.channel as string) || typeof line.at !== "string") return undefined;
  if (line.state === "pending") {
    const alert = line.alert as Partial<AlertMessage> | undefined;
    const ok =
      typeof alert === "object" && alert !== null && typeof alert.key === "string" && Array.isArray(alert.covers) && alert.covers.every((c) => typeof c === "string") &&
      typeof alert.capId === "string" && (typeof alert.threshold === "number" || alert.threshold === "warn") && typeof alert.spentUsd === "number" &&
      typeof alert.limitUsd === "number" && ["day", "week", "month"].includes(alert.window as string) && typeof alert.resetsAt === "string" && typeof alert.text === "string" &&
      (alert.overLimit === undefined || typeof alert.overLimit === "boolean");
    return ok ? (line as Line) : undefined;
  }
  if ((line.state === "sent" || line.state === "failed") && typeof line.key === "string" && typeof line.attempts === "number") return line as Line;
  return undefined;
}
