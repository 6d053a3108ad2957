/**
 * Alert channels beyond the editor: when a cap crosses one of `alertThresholds` (the rule the
 * editor uses too, server/shared/alertCrossings.ts), each configured channel (webhook, SNS) is sent
 * the alert once per (cap, window, threshold), journaled before and after (alertJournal.ts), retried
 * with exponential backoff a bounded number of times, one alert at a time per channel. Timers are
 * unref'd and stop on close; a send under way gets a short grace, and an alert still unsent then stays
 * pending and goes out on the next start, even when its window has ended by then (its text says so).
 */
import type { Logger } from "../log";
import { usdToPicos } from "../metering/money";
import { carriedKey, crossingMessage, keysCovered, newCrossings, type CapFigures, type Crossing } from "../shared/alertCrossings";
import type { AlertChannel } from "./alertChannels";
import { ALERT_FORGET_AFTER_MS, ALERT_LATE_GRACE_MS, tooLate, type AlertChannelName, type AlertJournal, type AlertMessage } from "./alertJournal";

/** What the gateway's call path may tell the alert channels (the `warn` cap action calls it). */
export interface CapAlerts {
  /**
   * A cap whose action is `warn` let through a call whose worst case could take it past its limit
   * (spent may still be under it): its channels are told, once per cap and window. Never throws,
   * never waits (sending happens in the background).
   */
  capWarned(capId: string): void;
}

/** Attempts per alert and channel, and the wait before the 2nd (doubling after each failure: 1, 2, 4, 8 s). */
export const ALERT_RETRY = { attempts: 5, baseMs: 1_000 } as const;
/**
 * How often the caps are looked at besides after each local call: a team cap also moves with the
 * spend of other machines, which arrives with the team store's sync and no local call.
 */
export const ALERT_CHECK_MS = 15_000;
/** How long close() lets a send under way finish before aborting it (backoff waits end at once). */
export const ALERT_CLOSE_GRACE_MS = 1_000;

export interface AlertSettings {
  /** Channel → where it sends (URL or topic ARN); a channel left out is off. */
  targets: Partial<Record<AlertChannelName, string>>;
  thresholds: number[];
  /** Named in each alert (several people may share one channel). */
  user: string;
}

/** The alert for a crossing: its words and the lower thresholds it covers. */
export function alertOf(crossing: Crossing, thresholds: number[], user: string): AlertMessage {
  return {
    key: crossing.key,
    covers: keysCovered(crossing, thresholds),
    capId: crossing.capId,
    threshold: crossing.threshold,
    spentUsd: crossing.spentUsd,
    limitUsd: crossing.limitUsd,
    window: crossing.window,
    resetsAt: crossing.resetsAt,
    text: `${crossingMessage(crossing)} (user ${user})`,
  };
}

/**
 * The alert for a `warn` cap that let through a call that could take it past its limit. The call
 * is let through on its worst case, before it costs anything, so the cap's spend may still be under
 * the limit: the words say "is over its limit" only when it is.
 */
export function warnAlertOf(cap: CapFigures, user: string): AlertMessage {
  const word = { day: "today", week: "this week", month: "this month" }[cap.window];
  const figures = `$${cap.spentUsd.toFixed(2)} of $${cap.limitUsd.toFixed(2)} spent ${word}`;
  const overLimit = usdToPicos(cap.spentExact) > usdToPicos(cap.limitExact);
  const what = overLimit
    ? `is over its limit (${figures}); calls still go through and are marked in the ledger.`
    : `let through a call that could take it past its limit (${figures}); calls past the limit still go through and are marked in the ledger.`;
  return {
    key: `${cap.id}@${cap.windowStart}#warn`,
    covers: [],
    capId: cap.id,
    threshold: "warn",
    spentUsd: cap.spentUsd,
    limitUsd: cap.limitUsd,
    window: cap.window,
    resetsAt: cap.resetsAt,
    text: `Bedrock Budget: cap "${cap.id}" (action warn) ${what} (user ${user})`,
    overLimit,
  };
}

export class AlertDispatcher implements CapAlerts {
  private channels: AlertChannel[] = [];
  private thresholds: number[] = [];
  private user = "";
  /** Alerts taken this run (queued or sent), by key, beside those the journal holds. */
  private readonly claimed = new Map<AlertChannelName, Map<string, AlertMessage>>();
  /** One chain per channel: its alerts go out one at a time, in order. */
  private readonly queues = new Map<AlertChannelName, Promise<void>>();
  /** Keys in each channel's queue now (waiting or being sent): what configure() need not queue again. */
  private readonly queued = new Map<AlertChannelName, Set<string>>();
  /**
   * Keys sent or given up on this run, by channel: a journal write of that which failed (a full
   * disk) leaves them pending there, and configure() would send them again at each settings change.
   */
  private readonly finished = new Map<AlertChannelName, Set<string>>();
  private readonly resumed = new Set<AlertChannelName>();
  /** Channels with a send under way: one whose target changes is closed only once it ends (see configure). */
  private readonly sending = new Set<AlertChannel>();
  private readonly wakers = new Set<() => void>();
  private readonly aborter = new AbortController();
  private checkScheduled = false;
  private closed = false;
  private ticker: NodeJS.Timeout | undefined;

  constructor(
    private readonly journal: AlertJournal,
    /** The caps' figures now. */
    private readonly caps: () => CapFigures[],
    /** Opens the channel that sends to `target` (closed when its target changes or on close). */
    private readonly open: (name: AlertChannelName, target: string) => AlertChannel,
    private readonly log: Logger,
    private readonly now: () => Date,
    private readonly retry: { attempts: number; baseMs: number } = ALERT_RETRY,
    private readonly checkEveryMs: number = ALERT_CHECK_MS,
    private readonly closeGraceMs: number = ALERT_CLOSE_GRACE_MS,
  ) {}

  /**
   * New targets or thresholds. Alerts journaled pending and not in a queue go out on their channel:
   * those a previous run left, and those whose channel was turned off while they waited (turned on
   * again, it sends them).
   */
  configure(settings: AlertSettings): void {
    if (this.closed) return;
    this.thresholds = settings.thresholds;
    this.user = settings.user;
    const next: AlertChannel[] = [];
    for (const name of ["webhook", "sns"] as const) {
      const target = settings.targets[name];
      const current = this.channels.find((c) => c.name === name);
      // Not under a send: closing cuts its connection, and an alert the receiver already has would
      // count as failed and be sent again to the new target. It is closed when that send ends.
      if (current && current.target !== target && !this.sending.has(current)) current.close();
      if (target === undefined) continue;
      next.push(current?.target === target ? current : this.open(name, target));
    }
    this.channels = next;
    if (this.channels.length === 0) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    } else if (!this.ticker) {
      this.ticker = setInterval(() => this.scheduleCheck(), this.checkEveryMs);
      this.ticker.unref();
    }
    for (const channel of this.channels) {
      const firstRun = !this.resumed.has(channel.name);
      this.resumed.add(channel.name);
      const queued = this.queued.get(channel.name);
      for (const alert of this.journal.unfinished(channel.name)) {
        if (queued?.has(alert.key) || this.finished.get(channel.name)?.has(alert.key)) continue;
        this.log.warn(`alerts: ${channel.name}: sending again "${alert.key}", which ${firstRun ? "a previous run left unconfirmed" : "was left unsent while the channel was off"}`);
        this.enqueue(channel.name, alert, true);
      }
    }
    this.scheduleCheck();
  }

  /** Looks for new crossings soon (after the settled call that asks, coalescing a burst of them). */
  scheduleCheck(): void {
    if (this.checkScheduled || this.closed || this.channels.length === 0) return;
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      this.check();
    }).unref();
  }

  capWarned(capId: string): void {
    if (this.closed) return;
    // Never throws (CapAlerts): it runs inside the settled-call event, where a throw would stop the
    // rest of that batch reaching the dashboard and status listeners. Caught as check() does.
    try {
      const cap = this.caps().find((c) => c.id === capId);
      if (!cap) return this.log.warn(`alerts: a warn action named cap "${capId}", which is not in force`);
      const alert = warnAlertOf(cap, this.user);
      for (const channel of this.channels) if (!this.taken(channel.name, [cap]).has(alert.key)) this.enqueue(channel.name, alert, false);
    } catch (err) {
      this.log.error(`alerts: cannot alert on warn cap "${capId}": ${(err as Error).message}`);
    }
  }

  /**
   * Stops sending: waits are cut short, a send under way gets `closeGraceMs` to finish and is then
   * aborted (it stays pending: the next start sends it), the journal is flushed.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ticker);
    for (const wake of this.wakers) wake();
    const grace = setTimeout(() => this.aborter.abort(), this.closeGraceMs);
    await Promise.all(this.queues.values());
    clearTimeout(grace);
    this.aborter.abort();
    await this.journal.flushed();
    for (const channel of this.channels) channel.close();
  }

  private check(): void {
    if (this.closed) return;
    let caps: CapFigures[];
    try {
      caps = this.caps();
    } catch (err) {
      return this.log.error(`alerts: cannot read the caps: ${(err as Error).message}`);
    }
    this.forgetEnded(new Date(this.now().getTime() - ALERT_FORGET_AFTER_MS));
    for (const channel of this.channels) {
      for (const crossing of newCrossings({ caps }, this.thresholds, this.taken(channel.name, caps))) this.enqueue(channel.name, alertOf(crossing, this.thresholds, this.user), false);
    }
  }

  /** Drops what this run remembers of alerts whose window ended before `before` (see ALERT_FORGET_AFTER_MS). */
  private forgetEnded(before: Date): void {
    this.journal.forgetEnded(before);
    for (const [name, claimed] of this.claimed) {
      const queued = this.queued.get(name);
      // Finished here but still pending in the journal (its last line could not be written): kept
      // finished, or the next configure() would send it again.
      const pending = new Set(this.journal.unfinished(name).map((a) => a.key));
      for (const [key, alert] of claimed) {
        if (queued?.has(key) || !(Date.parse(alert.resetsAt) < before.getTime())) continue;
        claimed.delete(key);
        if (!pending.has(key)) this.finished.get(name)?.delete(key);
      }
    }
  }

  /** Keys already alerted on `name`, those of the same windows under another start (carriedOver) included. */
  private taken(name: AlertChannelName, caps: readonly CapFigures[]): Set<string> {
    const out = this.journal.notified(name);
    const claimed = [...(this.claimed.get(name)?.values() ?? [])];
    for (const alert of claimed) for (const key of [alert.key, ...alert.covers]) out.add(key);
    for (const key of carriedOver([...this.journal.alerts(name), ...claimed], caps)) out.add(key);
    return out;
  }

  private enqueue(name: AlertChannelName, alert: AlertMessage, alreadyPending: boolean): void {
    let claimed = this.claimed.get(name);
    if (!claimed) this.claimed.set(name, (claimed = new Map()));
    claimed.set(alert.key, alert);
    let queued = this.queued.get(name);
    if (!queued) this.queued.set(name, (queued = new Set()));
    queued.add(alert.key);
    const previous = this.queues.get(name) ?? Promise.resolve();
    this.queues.set(
      name,
      previous.then(async () => {
        try {
          if (this.closed) return;
          if (!alreadyPending) {
            try {
              await this.journal.pending(name, alert, this.now());
            } catch (err) {
              // Unjournaled, it is not sent (a restart could not know it was): the next check tries again.
              claimed!.delete(alert.key);
              return this.log.error(`alerts: ${name}: cannot journal "${alert.key}" (${(err as Error).message}); not sent yet`);
            }
          }
          if (tooLate(alert, this.now())) {
            // Left pending while its channel was off, for longer than the grace: stale news.
            const reason = `not sent: its window ended at ${alert.resetsAt}, over ${ALERT_LATE_GRACE_MS / 3_600_000} h ago`;
            this.log.warn(`alerts: ${name}: "${alert.key}" ${reason}`);
            return await this.finish(name, alert, "failed", 0, reason);
          }
          await this.deliver(name, alert);
        } finally {
          queued!.delete(alert.key);
        }
      }),
    );
  }

  private async deliver(name: AlertChannelName, alert: AlertMessage): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const channel = this.channels.find((c) => c.name === name);
      if (this.closed || !channel) return; // stays pending: sent when the channel is configured again, or on the next start
      try {
        this.sending.add(channel);
        await channel.send(lateNoted(alert, this.now()), this.aborter.signal);
        this.sent(channel);
        this.log.info(`alerts: ${name}: sent "${alert.key}"`);
        return await this.finish(name, alert, "sent", attempt);
      } catch (err) {
        this.sent(channel);
        if (this.closed) return;
        const reason = failureReason(err);
        if (attempt >= this.retry.attempts) {
          this.log.error(`alerts: ${name}: giving up on "${alert.key}" after ${attempt} attempts: ${reason}`);
          return await this.finish(name, alert, "failed", attempt, reason);
        }
        const waitMs = this.retry.baseMs * 2 ** (attempt - 1);
        this.log.warn(`alerts: ${name}: attempt ${attempt} for "${alert.key}" failed (${reason}); retrying in ${waitMs} ms`);
        await this.wait(waitMs);
      }
    }
  }

  /** A send on `channel` ended: replaced (or turned off) while it sent, configure left it open for it. */
  private sent(channel: AlertChannel): void {
    if (!this.sending.delete(channel)) return;
    if (!this.channels.includes(channel)) channel.close();
  }

  private async finish(name: AlertChannelName, alert: AlertMessage, state: "sent" | "failed", attempts: number, error?: string): Promise<void> {
    let finished = this.finished.get(name);
    if (!finished) this.finished.set(name, (finished = new Set()));
    finished.add(alert.key);
    try {
      await this.journal.finished(name, alert.key, state, attempts, this.now(), error);
    } catch (err) {
      this.log.error(`alerts: ${name}: cannot journal that "${alert.key}" was ${state} (${(err as Error).message}); the next start sends it again`);
    }
  }

  /** A backoff wait that never keeps the process alive and ends at once on close. */
  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.wakers.add(wake);
    });
  }
}

/**
 * The current windows' keys of alerts sent for a cap in a window of the same kind that is its current
 * one under another start: a `timeZone` change moves the current window's start, and so its keys,
 * without a new window beginning; the alerts already sent for it are no news. The rule is the
 * editor's (carriedKey), so both ends agree on what a zone change carries over.
 */
export function carriedOver(alerts: Iterable<AlertMessage>, caps: readonly CapFigures[]): string[] {
  const out: string[] = [];
  for (const alert of alerts) {
    for (const cap of caps) {
      // Only a window of the same kind: a day cap's key never stands for a week's.
      if (cap.id !== alert.capId || cap.window !== alert.window) continue;
      for (const key of [alert.key, ...alert.covers]) {
        const carried = carriedKey(key, cap);
        if (carried) out.push(carried);
      }
    }
  }
  return out;
}

/**
 * The alert as sent: one a previous run left unsent and whose window has ended since says so (its
 * words, "today", "this week", were true when it was written, not when it arrives).
 */
export function lateNoted(alert: AlertMessage, now: Date): AlertMessage {
  if (Date.parse(alert.resetsAt) > now.getTime()) return alert;
  // Not "the gateway stopped": a channel turned off while the alert waited leaves it late too.
  return { ...alert, text: `${alert.text} (window ended ${alert.resetsAt}; sent late, at ${now.toISOString()})` };
}

/**
 * Why a send failed, with its cause: fetch says only "fetch failed" and keeps the reason (a refused
 * connection, an unknown host, a certificate) in `cause`, which names the host, never the URL's path.
 */
export function failureReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error ? (err as Error & { cause?: unknown }).cause : undefined;
  return cause instanceof Error && cause.message ? `${message}: ${cause.message}` : message;
}
