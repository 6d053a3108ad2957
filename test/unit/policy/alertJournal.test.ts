/** The alert journal: what a restart knows of alerts sent, failed, or left unconfirmed by a crash. */
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AlertJournal, ALERTS_FILE, type AlertMessage } from "../../../server/policy/alertJournal";

const NOW = new Date("2026-11-29T10:00:00Z");
const alert = (key: string, resetsAt = "2026-11-30T00:00:00.000Z"): AlertMessage => ({
  key,
  covers: [key],
  capId: key.split("@")[0]!,
  threshold: 50,
  spentUsd: 5,
  limitUsd: 10,
  window: "day",
  resetsAt,
  text: `alert ${key}`,
});

describe("alert journal", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), "bb-alertjournal-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("after a restart: a sent or failed alert is known (never sent again), a pending one is unfinished (sent once more)", async () => {
    const { journal } = await AlertJournal.open(dir, NOW);
    await journal.pending("webhook", alert("a@d#50"), NOW);
    await journal.finished("webhook", "a@d#50", "sent", 2, NOW);
    await journal.pending("webhook", alert("b@d#50"), NOW);
    await journal.finished("webhook", "b@d#50", "failed", 5, NOW, "HTTP 500");
    await journal.pending("webhook", alert("c@d#50"), NOW); // the process died while sending this one
    await journal.pending("sns", alert("a@d#50"), NOW);
    await appendFile(path.join(dir, ALERTS_FILE), '{"v":1,"channel":"webhook","state":"pen'); // a torn last line

    const { journal: reopened, skipped } = await AlertJournal.open(dir, NOW);
    assert.equal(skipped, 1);
    assert.deepEqual([...reopened.notified("webhook")].sort(), ["a@d#50", "b@d#50", "c@d#50"]);
    assert.deepEqual(reopened.unfinished("webhook").map((a) => a.key), ["c@d#50"]);
    assert.deepEqual(reopened.unfinished("sns"), [alert("a@d#50")], "each channel has its own state, with the alert's words kept");
    assert.equal((await stat(path.join(dir, ALERTS_FILE))).mode & 0o777, 0o600);
  });

  it("reads every line, however many: the newest say what was sent, and compacting keeps them", async () => {
    const file = path.join(dir, ALERTS_FILE);
    const { journal } = await AlertJournal.open(dir, NOW);
    await journal.pending("webhook", alert("old@d#50", "2026-11-27T00:00:00.000Z"), NOW);
    await journal.finished("webhook", "old@d#50", "sent", 1, NOW);
    await journal.flushed();
    await appendFile(file, "not a line\n".repeat(60_000)); // 100 agents' tier caps over a month, say
    await journal.pending("webhook", alert("live@d#50"), NOW);
    await journal.finished("webhook", "live@d#50", "sent", 1, NOW);
    await journal.flushed();
    const { journal: reopened, skipped } = await AlertJournal.open(dir, NOW);
    assert.equal(skipped, 60_000);
    assert.deepEqual([...reopened.notified("webhook")], ["live@d#50"], "never sent again");
    const { journal: again } = await AlertJournal.open(dir, NOW); // after the compaction
    assert.deepEqual([...again.notified("webhook")], ["live@d#50"]);
    assert.doesNotMatch(await readFile(file, "utf8"), /not a line|old@d/);
  });

  it("drops sent and failed alerts of windows that ended over two days ago when it opens, but keeps a pending one until it is sent", async () => {
    const { journal } = await AlertJournal.open(dir, NOW);
    await journal.pending("webhook", alert("old@d#50", "2026-11-27T00:00:00.000Z"), NOW);
    await journal.finished("webhook", "old@d#50", "sent", 1, NOW);
    await journal.pending("webhook", alert("gaveup@d#50", "2026-11-27T00:00:00.000Z"), NOW);
    await journal.finished("webhook", "gaveup@d#50", "failed", 5, NOW, "HTTP 500");
    await journal.pending("webhook", alert("cut@d#50", "2026-11-29T00:00:00.000Z"), NOW); // a shutdown cut its send off
    await journal.pending("webhook", alert("new@d#50"), NOW);
    const { journal: reopened } = await AlertJournal.open(dir, NOW);
    assert.deepEqual([...reopened.notified("webhook")].sort(), ["cut@d#50", "new@d#50"]);
    assert.deepEqual(reopened.unfinished("webhook").map((a) => a.key).sort(), ["cut@d#50", "new@d#50"], "never sent: kept to send");
    const text = await readFile(path.join(dir, ALERTS_FILE), "utf8");
    assert.doesNotMatch(text, /old@d|gaveup@d/);
    await reopened.finished("webhook", "cut@d#50", "sent", 1, NOW);
    // Ended 10 h ago: kept (after a timeZone change it can still be the current window's).
    assert.deepEqual([...(await AlertJournal.open(dir, NOW)).journal.notified("webhook")].sort(), ["cut@d#50", "new@d#50"]);
    await AlertJournal.open(dir, new Date("2026-12-01T01:00:00Z"));
    assert.doesNotMatch(await readFile(path.join(dir, ALERTS_FILE), "utf8"), /cut@d/, "dropped once sent, two days after its window");
  });
  it("drops a pending alert whose window ended over a day ago, and says so: stale news, not kept for ever", async () => {
    const { journal } = await AlertJournal.open(dir, NOW);
    // The webhook was removed from the settings while these waited: nothing sends them.
    await journal.pending("webhook", alert("stale@d#50", "2026-11-28T09:00:00.000Z"), NOW);
    await journal.pending("webhook", alert("late@d#50", "2026-11-28T11:00:00.000Z"), NOW);
    const { journal: reopened, problem } = await AlertJournal.open(dir, NOW);
    assert.deepEqual(reopened.unfinished("webhook").map((a) => a.key), ["late@d#50"], "ended 23 h ago: still sent");
    assert.match(problem ?? "", /dropped 1 alert\(s\) never sent whose window ended over 24 h ago/);
    assert.doesNotMatch(await readFile(path.join(dir, ALERTS_FILE), "utf8"), /stale@d/);
  });
});
