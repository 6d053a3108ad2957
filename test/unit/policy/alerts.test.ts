/** The alert dispatcher: bounded retries with backoff, once per (cap, window, threshold), warn alerts, stopping on close. */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../../server/log";
import { snsSubject, type AlertChannel } from "../../../server/policy/alertChannels";
import { AlertJournal, ALERTS_FILE, type AlertChannelName, type AlertMessage } from "../../../server/policy/alertJournal";
import { AlertDispatcher, failureReason, warnAlertOf } from "../../../server/policy/alerts";
import type { CapFigures } from "../../../server/shared/alertCrossings";

const NOW = new Date("2026-11-29T10:00:00Z");
const cap = (spentUsd: number): CapFigures => ({ id: "daily", window: "day", spentUsd, limitUsd: 10, spentExact: String(spentUsd), limitExact: "10", windowStart: "2026-11-29T00:00:00.000Z", resetsAt: "2026-11-30T00:00:00.000Z" });

/** A channel that fails its first `failures` sends, and says when a send happened. */
class RecordingChannel implements AlertChannel {
  readonly name: AlertChannelName = "webhook";
  readonly target = "http://127.0.0.1:1/hook";
  readonly attempts: string[] = [];
  closed = false;
  private waiters: (() => void)[] = [];
  constructor(private failures: number) {}
  async send(alert: AlertMessage): Promise<void> {
    this.attempts.push(alert.key);
    for (const wake of this.waiters.splice(0)) wake();
    // As fetch fails: the reason is in the cause.
    if (this.failures-- > 0) throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") });
  }
  close(): void {
    this.closed = true;
  }
  async attempted(n: number): Promise<void> {
    while (this.attempts.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

describe("alert dispatcher", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), "bb-alerts-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const dispatcher = async (channel: RecordingChannel, caps: () => CapFigures[], retry = { attempts: 3, baseMs: 1 }, checkEveryMs?: number) => {
    const { journal } = await AlertJournal.open(dir, NOW);
    const d = new AlertDispatcher(journal, caps, () => channel, silentLogger(), () => NOW, retry, checkEveryMs);
    d.configure({ targets: { webhook: channel.target }, thresholds: [50, 80], user: "alice" });
    return { d, journal };
  };

  it("gives up after the bounded attempts and journals the failure: not retried again after a restart", async () => {
    const channel = new RecordingChannel(10);
    let spent = 6;
    const { d } = await dispatcher(channel, () => [cap(spent)]);
    await channel.attempted(3);
    await d.close();
    assert.deepEqual(channel.attempts, ["daily@2026-11-29T00:00:00.000Z#50", "daily@2026-11-29T00:00:00.000Z#50", "daily@2026-11-29T00:00:00.000Z#50"]);
    assert.ok(channel.closed);
    const failed = (await readFile(path.join(dir, ALERTS_FILE), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { state: string; error?: string });
    assert.equal(failed.at(-1)?.state, "failed");
    assert.equal(failed.at(-1)?.error, "fetch failed: connect ECONNREFUSED 127.0.0.1:1", "the journal says why, not just that fetch failed");

    const again = new RecordingChannel(0);
    spent = 9; // past 80%: a new threshold is sent, the failed 50% is not
    const { d: restarted } = await dispatcher(again, () => [cap(spent)]);
    await again.attempted(1);
    await restarted.close();
    assert.deepEqual(again.attempts, ["daily@2026-11-29T00:00:00.000Z#80"]);
  });

  it("names why a webhook could not be reached, not just \"fetch failed\"", async () => {
    const closed = createServer().listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve)); // nothing listens there now
    const err = await fetch(`http://127.0.0.1:${port}/hook`, { method: "POST" }).then(() => assert.fail("a closed port answered"), (e: unknown) => e);
    assert.equal(failureReason(err), `fetch failed: connect ECONNREFUSED 127.0.0.1:${port}`);
    assert.equal(failureReason(new Error("the webhook answered HTTP 500")), "the webhook answered HTTP 500");
  });

  it("close cuts a backoff wait short; the alert stays pending and the next start sends it once", async () => {
    const channel = new RecordingChannel(1);
    const { d } = await dispatcher(channel, () => [cap(6)], { attempts: 3, baseMs: 3_600_000 });
    await channel.attempted(1);
    await d.close(); // resolves although the next attempt is an hour away
    const again = new RecordingChannel(0);
    const { d: restarted, journal } = await dispatcher(again, () => [cap(6)]);
    await again.attempted(1);
    await restarted.close();
    assert.deepEqual(again.attempts, ["daily@2026-11-29T00:00:00.000Z#50"]);
    assert.deepEqual(journal.unfinished("webhook"), []);
  });

  it("an alert a shutdown cut off is sent on the next start even after its window ended, saying the window ended", async () => {
    // 23:59:55: the cap is used up and the webhook hangs; the editor closes before it answers.
    let now = new Date("2026-11-29T23:59:55Z");
    const hanging: AlertChannel = { name: "webhook", target: "http://127.0.0.1:1/hook", send: (_a, signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")))), close() {} };
    const first = await AlertJournal.open(dir, now);
    const d = new AlertDispatcher(first.journal, () => [cap(10)], () => hanging, silentLogger(), () => now, { attempts: 3, baseMs: 1 }, undefined, 0);
    d.configure({ targets: { webhook: hanging.target }, thresholds: [100], user: "alice" });
    while (first.journal.unfinished("webhook").length === 0) await new Promise((resolve) => setImmediate(resolve));
    await d.close();

    now = new Date("2026-11-30T08:00:00Z"); // the next morning: that day's window has ended
    const channel = new RecordingChannel(0);
    const sent: AlertMessage[] = [];
    const send = channel.send.bind(channel);
    channel.send = async (alert) => (sent.push(alert), send(alert));
    const { journal } = await AlertJournal.open(dir, now);
    const today: CapFigures = { ...cap(0), windowStart: "2026-11-30T00:00:00.000Z", resetsAt: "2026-12-01T00:00:00.000Z" };
    const again = new AlertDispatcher(journal, () => [today], () => channel, silentLogger(), () => now, { attempts: 3, baseMs: 1 });
    again.configure({ targets: { webhook: channel.target }, thresholds: [100], user: "alice" });
    await channel.attempted(1);
    await again.close();
    assert.deepEqual(channel.attempts, ["daily@2026-11-29T00:00:00.000Z#100"]);
    assert.match(sent[0]!.text, /is used up: \$10\.00 of \$10\.00 today.*\(window ended 2026-11-30T00:00:00\.000Z; sent late/);
    assert.deepEqual(journal.unfinished("webhook"), [], "journaled sent: not sent a third time");
  });

  it("close lets a send under way finish: an alert the webhook is answering is not sent again on the next start", async () => {
    let answer!: () => void;
    const sends: string[] = [];
    const slow: AlertChannel = { name: "webhook", target: "http://127.0.0.1:1/hook", send: (a, signal) =>
        new Promise<void>((resolve, reject) => {
          sends.push(a.key);
          answer = resolve;
          signal.addEventListener("abort", () => reject(new Error("aborted")));
        }),
      close() {},
    };
    const first = await AlertJournal.open(dir, NOW);
    const d = new AlertDispatcher(first.journal, () => [cap(6)], () => slow, silentLogger(), () => NOW, { attempts: 3, baseMs: 1 });
    d.configure({ targets: { webhook: slow.target }, thresholds: [50], user: "alice" });
    while (sends.length === 0) await new Promise((resolve) => setImmediate(resolve));
    const closing = d.close();
    answer(); // the webhook answers just after the shutdown began
    await closing;
    const { journal } = await AlertJournal.open(dir, NOW);
    assert.deepEqual(journal.unfinished("webhook"), [], "journaled sent, not left pending to go out twice");
  });

  it("an alert left unsent while its webhook was turned off goes out when the webhook is turned on again, without a restart", async () => {
    const attempts: string[] = [];
    const waiters: (() => void)[] = [];
    let d!: AlertDispatcher;
    const settings = (on: boolean) => ({ targets: on ? { webhook: "http://127.0.0.1:1/hook" } : {}, thresholds: [50], user: "alice" });
    const channel = (target: string): AlertChannel => ({
      name: "webhook",
      target,
      async send(alert) {
        attempts.push(alert.key);
        for (const wake of waiters.splice(0)) wake();
        if (attempts.length === 1) {
          d.configure(settings(false)); // the user turns the webhook off while the first send fails
          throw new Error("the webhook answered HTTP 500");
        }
      },
      close() {},
    });
    const { journal } = await AlertJournal.open(dir, NOW);
    d = new AlertDispatcher(journal, () => [cap(6), { ...cap(6), id: "weekly" }], (_name, target) => channel(target), silentLogger(), () => NOW, { attempts: 3, baseMs: 1 });
    d.configure(settings(true));
    // Both alerts were journaled pending and found the channel gone: the second is journaled only
    // once the first left the queue, and finds no channel in the same turn.
    for (let i = 0; i < 1000 && journal.unfinished("webhook").length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(journal.unfinished("webhook").length, 2);
    assert.equal(attempts.length, 1);

    d.configure(settings(true)); // turned on again
    while (attempts.length < 3) await new Promise<void>((resolve) => waiters.push(resolve));
    await d.close();
    assert.deepEqual(attempts.slice(1).sort(), ["daily@2026-11-29T00:00:00.000Z#50", "weekly@2026-11-29T00:00:00.000Z#50"]);
    assert.deepEqual(journal.unfinished("webhook"), [], "both journaled sent");
  });

  it("a webhook URL changed while an alert is being posted does not post it twice: the post under way finishes, the new URL does not get it again", async () => {
    const received: string[] = [];
    const closed: string[] = [];
    let answer!: () => void;
    // As the real channels: close() destroys the connection, failing a post under way even when
    // the receiver already has the alert.
    const channel = (target: string): AlertChannel => {
      let cut: ((err: Error) => void) | undefined;
      return {
        name: "webhook",
        target,
        send: (alert) =>
          new Promise<void>((resolve, reject) => {
            received.push(`${target} ${alert.key}`);
            cut = reject;
            answer = resolve;
          }),
        close() {
          closed.push(target);
          cut?.(new Error("the webhook could not be reached: ECONNRESET: socket hang up"));
        },
      };
    };
    const { journal } = await AlertJournal.open(dir, NOW);
    const d = new AlertDispatcher(journal, () => [cap(6)], (_name, target) => channel(target), silentLogger(), () => NOW, { attempts: 3, baseMs: 1 });
    const settings = (url: string) => ({ targets: { webhook: url }, thresholds: [50], user: "alice" });
    d.configure(settings("https://chat.example.com/hooks/old"));
    while (received.length === 0) await new Promise((resolve) => setImmediate(resolve));
    d.configure(settings("https://chat.example.com/hooks/new")); // the user pastes a regenerated URL
    await new Promise((resolve) => setTimeout(resolve, 10));
    answer(); // the old URL answers 200: the alert is delivered
    for (let i = 0; i < 1000 && journal.unfinished("webhook").length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    await new Promise((resolve) => setTimeout(resolve, 10));
    await d.close();
    assert.deepEqual(received, ["https://chat.example.com/hooks/old daily@2026-11-29T00:00:00.000Z#50"], "delivered once");
    assert.deepEqual(journal.unfinished("webhook"), [], "journaled sent");
    assert.deepEqual(closed, ["https://chat.example.com/hooks/old", "https://chat.example.com/hooks/new"], "the old channel is closed once its post ended, the new one on close");
  });

  it("a gateway that runs for weeks keeps only the recent windows' alerts in memory, and still sends each alert once", async function () {
    this.timeout(30_000); // a synced journal write per alert
    const day = 24 * 3_600_000;
    let now = NOW;
    const windowOf = (at: Date): CapFigures => {
      const start = new Date(Math.floor(at.getTime() / day) * day);
      return { ...cap(6), windowStart: start.toISOString(), resetsAt: new Date(start.getTime() + day).toISOString() };
    };
    const channel = new RecordingChannel(0);
    const { journal } = await AlertJournal.open(dir, now);
    const d = new AlertDispatcher(journal, () => [windowOf(now)], () => channel, silentLogger(), () => now, { attempts: 3, baseMs: 1 });
    d.configure({ targets: { webhook: channel.target }, thresholds: [50], user: "alice" });
    const days = 8;
    for (let i = 0; i < days; i++) {
      await channel.attempted(i + 1); // the day's 50% alert
      d.scheduleCheck(); // a later call the same day: nothing new
      await new Promise((resolve) => setTimeout(resolve, 2));
      now = new Date(now.getTime() + day);
      d.scheduleCheck();
    }
    await d.close();
    assert.equal(channel.attempts.length, days, "one alert a day, none twice");
    assert.equal(new Set(channel.attempts).size, days);
    const remembered = (d as unknown as { claimed: Map<string, Map<string, unknown>>; finished: Map<string, Set<string>> });
    assert.ok(journal.alerts("webhook").length <= 3, `the journal in memory holds ${journal.alerts("webhook").length} alerts, not a week's`);
    assert.ok(remembered.claimed.get("webhook")!.size <= 3, `${remembered.claimed.get("webhook")!.size} alerts remembered as taken`);
    assert.ok(remembered.finished.get("webhook")!.size <= 3, `${remembered.finished.get("webhook")!.size} alerts remembered as finished`);
  });

  it("alerts on spend no local call brought (a team cap moved by other machines): the caps are looked at on a timer too", async () => {
    const channel = new RecordingChannel(0);
    let spent = 1;
    const { d } = await dispatcher(channel, () => [cap(spent)], undefined, 20);
    await new Promise((resolve) => setImmediate(resolve)); // the check configure() schedules has seen $1: nothing to send
    spent = 6; // synced from the team store: nothing here calls scheduleCheck
    await channel.attempted(1);
    await d.close();
    assert.deepEqual(channel.attempts, ["daily@2026-11-29T00:00:00.000Z#50"]);
  });

  it("a warn cap's alert says the cap could pass its limit while its spend is under it, and over its limit only once it is", async () => {
    const sent: AlertMessage[] = [];
    const channel = new RecordingChannel(0);
    const send = channel.send.bind(channel);
    channel.send = async (alert) => (sent.push(alert), send(alert));
    let spent = 9.6; // a call with a $1 worst case went through at $9.60 of $10: it could pass the limit
    const { d } = await dispatcher(channel, () => [{ ...cap(spent), action: "warn" }], undefined);
    await channel.attempted(1); // the 80% crossing
    d.capWarned("daily");
    await channel.attempted(2);
    await d.close();
    const warn = sent.find((a) => a.threshold === "warn")!;
    assert.doesNotMatch(warn.text, /over its limit/, "$9.60 of $10.00 is not over");
    assert.match(warn.text, /let through a call that could take it past its limit \(\$9\.60 of \$10\.00 spent today\)/);
    assert.equal(snsSubject(warn), "Bedrock Budget: cap daily let a call through that could pass its limit (warn)");

    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-alerts-"));
    sent.length = 0;
    channel.attempts.length = 0;
    spent = 10.4;
    const { d: over } = await dispatcher(channel, () => [{ ...cap(spent), action: "warn" }], undefined);
    await channel.attempted(1);
    over.capWarned("daily");
    await channel.attempted(2);
    await over.close();
    const overWarn = sent.find((a) => a.threshold === "warn")!;
    assert.match(overWarn.text, /is over its limit \(\$10\.40 of \$10\.00 spent today\)/);
    assert.equal(snsSubject(overWarn), "Bedrock Budget: cap daily over its limit (warn)");
  });

  it("a warn cap's SNS Subject says \"over its limit\" exactly when its text does, also where the dollar figures round to a tie", async () => {
    // $100,000 and one picodollar: as a float the spend is $100,000, the limit's own figure.
    const big: CapFigures = { ...cap(100_000), action: "warn", limitUsd: 100_000, limitExact: "100000", spentUsd: 100_000.000000000001, spentExact: "100000.000000000001" };
    assert.equal(big.spentUsd, big.limitUsd, "the rounded figures tie");
    const over = warnAlertOf(big, "alice");
    assert.match(over.text, /is over its limit/);
    assert.equal(snsSubject(over), "Bedrock Budget: cap daily over its limit (warn)");
    const at = warnAlertOf({ ...big, spentUsd: 100_000, spentExact: "100000" }, "alice");
    assert.doesNotMatch(at.text, /over its limit/);
    assert.equal(snsSubject(at), "Bedrock Budget: cap daily let a call through that could pass its limit (warn)");
    // Left pending by a stopped gateway, it is sent on the next start with the same Subject.
    await (await AlertJournal.open(dir, NOW)).journal.pending("sns", over, NOW);
    const [resumed] = (await AlertJournal.open(dir, NOW)).journal.unfinished("sns");
    assert.equal(snsSubject(resumed!), "Bedrock Budget: cap daily over its limit (warn)");
  });

  it("tells the channels once per cap and window when a warn cap lets a call through past its limit", async () => {
    const channel = new RecordingChannel(0);
    const { d } = await dispatcher(channel, () => [cap(12)]);
    await channel.attempted(1); // the 80% crossing
    d.capWarned("daily");
    d.capWarned("daily");
    d.capWarned("unknown-cap");
    await channel.attempted(2);
    await d.close();
    assert.deepEqual(channel.attempts, ["daily@2026-11-29T00:00:00.000Z#80", "daily@2026-11-29T00:00:00.000Z#warn"]);
  });
  it("a timeZone change while the gateway runs does not announce again the alerts already sent for the current window", async () => {
    const channel = new RecordingChannel(0);
    // The month in UTC, then in Europe/Paris: the same month, its start an hour earlier.
    let month: CapFigures = { ...cap(9), id: "team-month", window: "month", spentExact: "9", windowStart: "2026-11-01T00:00:00.000Z", resetsAt: "2026-12-01T00:00:00.000Z" };
    const { d } = await dispatcher(channel, () => [month]);
    await channel.attempted(1);
    d.capWarned("team-month");
    await channel.attempted(2);
    month = { ...month, windowStart: "2026-10-31T23:00:00.000Z", resetsAt: "2026-11-30T23:00:00.000Z" };
    d.scheduleCheck();
    d.capWarned("team-month");
    await new Promise((resolve) => setTimeout(resolve, 20));
    // A threshold not yet passed in that window still alerts, under the window's new start.
    month = { ...month, spentUsd: 10, spentExact: "10" };
    d.configure({ targets: { webhook: channel.target }, thresholds: [50, 80, 100], user: "alice" });
    await channel.attempted(3);
    await d.close();
    assert.deepEqual(channel.attempts, ["team-month@2026-11-01T00:00:00.000Z#80", "team-month@2026-11-01T00:00:00.000Z#warn", "team-month@2026-10-31T23:00:00.000Z#100"]);

    // The next month (a new window, not an overlapping one) alerts afresh.
    const next = new RecordingChannel(0);
    month = { ...month, windowStart: "2026-11-30T23:00:00.000Z", resetsAt: "2026-12-31T23:00:00.000Z", spentUsd: 9, spentExact: "9" };
    const { d: later } = await dispatcher(next, () => [month]);
    await next.attempted(1);
    await later.close();
    assert.deepEqual(next.attempts, ["team-month@2026-11-30T23:00:00.000Z#80"]);
  });

  it("a restart just after a timeZone change does not announce again what was announced for the current day under the old zone", async () => {
    // 29 November in UTC: the 50% alert went out.
    const first = new RecordingChannel(0);
    const { d } = await dispatcher(first, () => [cap(6)]);
    await first.attempted(1);
    await d.close();
    // The user moves to UTC-5 and restarts at 02:00 UTC on the 30th: the UTC day has ended, but the
    // current day (29 November in UTC-5, 05:00 to 05:00 UTC) is the one already announced.
    const now = new Date("2026-11-30T02:00:00Z");
    const later = new RecordingChannel(0);
    const { journal } = await AlertJournal.open(dir, now);
    const shifted: CapFigures = { ...cap(6), windowStart: "2026-11-29T05:00:00.000Z", resetsAt: "2026-11-30T05:00:00.000Z" };
    const again = new AlertDispatcher(journal, () => [shifted], () => later, silentLogger(), () => now, { attempts: 3, baseMs: 1 });
    again.configure({ targets: { webhook: later.target }, thresholds: [50, 80], user: "alice" });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await again.close();
    assert.deepEqual(later.attempts, [], "not announced twice");
  });

  it("an alert left unsent while its webhook was off for days is not sent when the webhook is turned on again", async () => {
    let now = NOW;
    const { journal } = await AlertJournal.open(dir, now);
    const channel = new RecordingChannel(0);
    const d = new AlertDispatcher(journal, () => [], () => channel, silentLogger(), () => now, { attempts: 3, baseMs: 1 });
    // Left by a channel removed from the settings: the daily cap's 50% of 29 November.
    await journal.pending("webhook", { key: "daily@2026-11-29T00:00:00.000Z#50", covers: [], capId: "daily", threshold: 50, spentUsd: 6, limitUsd: 10, window: "day", resetsAt: "2026-11-30T00:00:00.000Z", text: "passed 50%" }, now);
    now = new Date("2026-12-03T10:00:00Z"); // days later, a webhook is set again (another room, perhaps)
    d.configure({ targets: { webhook: channel.target }, thresholds: [50], user: "alice" });
    for (let i = 0; i < 1000 && journal.unfinished("webhook").length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    await d.close();
    assert.deepEqual(channel.attempts, [], "stale news is not sent");
    assert.deepEqual(journal.unfinished("webhook"), [], "journaled as not sent, not left pending");
  });

  it("an alert sent whose \"sent\" line could not be journaled (a full disk) is not sent again at each settings change", async () => {
    const channel = new RecordingChannel(0);
    const { journal } = await AlertJournal.open(dir, NOW);
    journal.finished = () => Promise.reject(new Error("ENOSPC: no space left on device"));
    const d = new AlertDispatcher(journal, () => [cap(6)], () => channel, silentLogger(), () => NOW, { attempts: 3, baseMs: 1 });
    const settings = { targets: { webhook: channel.target }, thresholds: [50, 80], user: "alice" };
    d.configure(settings);
    await channel.attempted(1);
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      d.configure({ ...settings }); // the user edits another setting: the gateway reconfigures
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    await d.close();
    assert.deepEqual(channel.attempts, ["daily@2026-11-29T00:00:00.000Z#50"]);
  });
});
