/**
 * The journal and ledger on a real full disk (a small tmpfs, filled): a failed append leaves no
 * torn or partial line, names the problem, and the next append after space returns succeeds
 * without reopening; a settlement the disk refused is written exactly once when it recovers.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Journal, JournalWriteError } from "../../../server/ledger/journal";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, JournalEntry, ReserveEntry } from "../../../server/ledger/types";
import { fillDisk } from "../../support/fillDisk";

const AT = "2026-11-22T10:00:00.000Z";
const SIZE = 1024 * 1024;
/** The ledger's clock, in AT's month: a settle lands in the journal file of its own month, the one read here. */
const CLOCK = { now: () => new Date("2026-11-22T10:05:00.000Z") };

function reserve(id: string, pad = 0): ReserveEntry {
  return { type: "reserve", id, at: AT, user: "u".repeat(1 + pad), tool: "t", operation: "Converse", modelId: "m", worstCasePicos: "5000", capIds: ["d"] };
}

function settle(id: string): CallRecord {
  return {
    type: "settle", id, at: AT, startedAt: AT, user: "u", tool: "t", operation: "Converse", modelId: "m", baseModelId: "m",
    usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1000", worstCasePicos: "5000", outcome: "ok", status: 200, latencyMs: 1, tags: {},
  };
}

/** The journal file's text, every line of it parsed (throws on a torn or partial line). */
async function journalLines(dir: string): Promise<{ text: string; entries: JournalEntry[] }> {
  const text = await readFile(path.join(dir, "journal", "2026-11.jsonl"), "utf8");
  assert.ok(text === "" || text.endsWith("\n"), `the journal ends with a whole line: ${JSON.stringify(text.slice(-80))}`);
  return { text, entries: text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as JournalEntry) };
}

/** Reserves until the journal's last page is full too (tmpfs pages): then no settlement line fits. */
async function fillJournalPage(ledger: Ledger): Promise<void> {
  for (const pad of [1500, 0]) {
    for (let i = 0; i < 20; i++) {
      if (await ledger.reserve(reserve(`pad-${pad}-${i}`, pad)).then(() => false, () => true)) break;
    }
  }
}

describe("ledger on a full disk", function () {
  let base: string;
  let mnt: string;
  let mounted = false;

  before(async function () {
    base = await mkdtemp(path.join(os.tmpdir(), "bb-diskfull-"));
    mnt = path.join(base, "mnt");
    await mkdir(mnt);
    if (process.getuid?.() !== 0) {
      // Mounting a tmpfs needs root; CI runs as root, so there a skip would hide a missing test.
      if (process.env.CI === "true") throw new Error("the full-disk ledger tests mount a tmpfs, which needs root");
      console.log("      (skipped: mounting a tmpfs for the full-disk tests needs root)");
      return this.skip();
    }
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${SIZE}`, "tmpfs", mnt]);
    mounted = true;
  });
  after(async () => {
    if (mounted) {
      try {
        execFileSync("umount", [mnt]);
      } catch {
        execFileSync("umount", ["-l", mnt]); // a failed test left a file open
      }
    }
    await rm(base, { recursive: true, force: true });
  });
  afterEach(() => {
    if (mounted) for (const name of ["filler", "ledger"]) rmSync(path.join(mnt, name), { recursive: true, force: true });
  });

  it("a failed append names the disk problem, leaves only whole lines, and the next append after space returns succeeds", async () => {
    const dir = path.join(mnt, "ledger");
    const j = await Journal.open(dir);
    await j.append(reserve("before"));
    fillDisk(path.join(mnt, "filler"), SIZE);
    // Lines of ~1.5 KB: the file's last page takes a couple, then a write crosses into a page the
    // disk does not have, which lands part of a line before ENOSPC.
    const ok: string[] = [];
    let failure: unknown;
    for (let i = 0; i < 20 && failure === undefined; i++) {
      await j.append(reserve(`full-${i}`, 1500)).then(() => ok.push(`full-${i}`), (err: unknown) => (failure = err));
    }
    assert.ok(failure instanceof Error, `an append fails on a full disk (${ok.length} went through)`);
    assert.match(failure.message, /^the ledger's disk is full \(ENOSPC writing .*2026-11\.jsonl\); free space/);
    // A second failure while the disk is still full: the same named error, not a "previous write failed".
    await assert.rejects(j.append(reserve("still-full", 1500)), /disk is full \(ENOSPC/);
    assert.deepEqual((await journalLines(dir)).entries.map((e) => e.id), ["before", ...ok], "nothing of a failed append is in the file");

    rmSync(path.join(mnt, "filler"));
    await j.append(reserve("after"));
    await j.close();
    assert.deepEqual((await journalLines(dir)).entries.map((e) => e.id), ["before", ...ok, "after"]);
  });

  it("a settlement the disk refused keeps its reservation open, then is journaled exactly once when space returns", async () => {
    const dir = path.join(mnt, "ledger");
    const ledger = await Ledger.open(dir, CLOCK);
    await ledger.reserve(reserve("c1"));
    fillDisk(path.join(mnt, "filler"), SIZE);
    await fillJournalPage(ledger);
    let written = 0;
    await assert.rejects(ledger.settleReserved(settle("c1"), () => written++), /disk is full \(ENOSPC/);
    assert.equal(written, 0);
    assert.ok(ledger.openReservations().some((r) => r.id === "c1"), "the reservation stays open while its settlement is unwritten");
    // A call that cannot be reserved is refused while the disk is full; the settlement is retried and still waits.
    await assert.rejects(ledger.reserve(reserve("c2")), /disk is full \(ENOSPC/);
    assert.equal(written, 0);
    assert.equal(ledger.unwrittenSettlements(), 1);

    rmSync(path.join(mnt, "filler"));
    // Two appends at once both retry the waiting settlement: it is written once.
    await Promise.all([ledger.reserve(reserve("c3")), ledger.reserve(reserve("c4"))]);
    await ledger.settle(settle("c3"));
    assert.equal(written, 1, "the settlement was journaled and reported once");
    assert.equal(ledger.unwrittenSettlements(), 0);
    assert.ok(!ledger.openReservations().some((r) => r.id === "c1"), "its reservation is released");
    await ledger.close();

    const { entries } = await journalLines(dir);
    assert.equal(entries.filter((e) => e.type === "settle" && e.id === "c1").length, 1, "one settlement for c1");
    assert.ok(!entries.some((e) => e.id === "c2"), "the refused reservation is not in the journal");
    // Reopened: nothing of c1 is charged again as interrupted.
    const again = await Ledger.open(dir);
    assert.ok(!again.openReservations().some((r) => r.id === "c1"));
    await again.close();
    assert.equal((await journalLines(dir)).entries.filter((e) => e.id === "c1").length, 2, "c1: its reserve and one settle");
  });

  it("a settlement still unwritten at close is charged its worst case on the next start, once", async () => {
    const dir = path.join(mnt, "ledger");
    const ledger = await Ledger.open(dir, CLOCK);
    await ledger.reserve(reserve("c1"));
    fillDisk(path.join(mnt, "filler"), SIZE);
    await fillJournalPage(ledger);
    await assert.rejects(ledger.settleReserved(settle("c1"), () => assert.fail("not written on a full disk")), /ENOSPC/);
    await ledger.close();

    rmSync(path.join(mnt, "filler"));
    const again = await Ledger.open(dir, CLOCK);
    await again.close();
    const settles = (await journalLines(dir)).entries.filter((e): e is CallRecord => e.type === "settle" && e.id === "c1");
    assert.equal(settles.length, 1);
    assert.equal(settles[0]!.outcome, "interrupted");
    assert.equal(settles[0]!.costPicos, "5000", "charged its worst case");
  });
});

describe("ledger/journal: write failures are named", () => {
  it("says what is wrong with the disk and how to fix it", () => {
    const err = (code: string) => Object.assign(new Error(`${code}: failed`), { code });
    assert.match(new JournalWriteError("/l/journal/2026-11.jsonl", err("EROFS")).message,
      /^the ledger's disk is read-only \(EROFS writing \/l\/journal\/2026-11\.jsonl\); make it writable/);
    assert.match(new JournalWriteError("/l/j.jsonl", err("EIO")).message, /could not be written \(EIO writing \/l\/j\.jsonl: EIO: failed\)/);
  });
});
