// Start-up without a usable checkpoint: from a state.json of an earlier version (no checkpoint), or
// one the journal no longer matches, the rollups, interrupted calls and recent calls are those of a
// full replay, and only the months the snapshot may be behind on are read.
import assert from "node:assert/strict";
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, ReserveEntry } from "../../../server/ledger/types";

const NOW = new Date("2026-03-01T10:00:00.000Z"); // one day into a month: the snapshot's margin reaches into February
const TZ = "UTC";
const QUIET = { now: () => NOW, timeZone: TZ, stateDebounceMs: 3_600_000 }; // state.json only written at open and close

function pair(id: string, startedAt: string, costPicos: string): { r: ReserveEntry; c: CallRecord } {
  const r: ReserveEntry = { type: "reserve", id, at: startedAt, user: "ana", tool: "t", operation: "InvokeModel", modelId: "m1", baseModelId: "m1", worstCasePicos: "5000", capIds: [] };
  const c: CallRecord = {
    type: "settle", id, at: startedAt, startedAt, user: "ana", tool: "t", operation: "InvokeModel", modelId: "m1", baseModelId: "m1",
    usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos, worstCasePicos: "5000", outcome: "ok", status: 200, latencyMs: 1, tags: {},
  };
  return { r, c };
}

const at = (iso: string, i: number) => new Date(Date.parse(iso) + i * 60_000).toISOString();

describe("ledger: start-up from a snapshot without a usable checkpoint", () => {
  let dir: string;
  const journalFile = (month: string) => path.join(dir, "journal", `${month}.jsonl`);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-snapshot-"));
    await mkdir(path.join(dir, "journal"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeRaw(calls: { r: ReserveEntry; c: CallRecord }[]): Promise<void> {
    for (const { r, c } of calls) await appendFile(journalFile(r.at.slice(0, 7)), `${JSON.stringify(r)}\n${JSON.stringify(c)}\n`);
  }
  async function record(l: Ledger, calls: { r: ReserveEntry; c: CallRecord }[]): Promise<void> {
    for (const { r, c } of calls) {
      await l.reserve(r);
      await l.settle(c);
    }
  }
  /** The same journal opened with no state.json at all. */
  async function fullReplay(): Promise<{ rollups: unknown; interrupted: string[] }> {
    const copy = await mkdtemp(path.join(os.tmpdir(), "bb-snapshot-ref-"));
    try {
      await cp(path.join(dir, "journal"), path.join(copy, "journal"), { recursive: true });
      const l = await Ledger.open(copy, QUIET);
      const out = { rollups: structuredClone(l.rollups()), interrupted: (await l.recentCalls({ limit: 1000, outcome: "interrupted" })).calls.map((c) => `${c.id}:${c.costPicos}`) };
      await l.close();
      return out;
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  }
  async function withoutCheckpoint(): Promise<void> {
    const file = path.join(dir, "state.json");
    const state = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    assert.ok(state["checkpoint"], "the run wrote a checkpoint to take away");
    delete state["checkpoint"];
    await writeFile(file, JSON.stringify(state));
  }
  const lineCount = async (month: string) => (await readFile(journalFile(month), "utf8")).trimEnd().split("\n").length;

  it("a state.json without a checkpoint (an earlier version's): reads from two days before it was saved, and counts every call once", async () => {
    await writeRaw([pair("jan", "2026-01-15T09:00:00.000Z", "100")]);
    await writeRaw([0, 1, 2].map((i) => pair(`feb10-${i}`, at("2026-02-10T09:00:00.000Z", i), String(1000 + i))));
    await writeRaw([0, 1].map((i) => pair(`feb28-${i}`, at("2026-02-28T20:00:00.000Z", i), String(2000 + i))));
    let l = await Ledger.open(dir, QUIET);
    await record(l, [0, 1, 2].map((i) => pair(`mar1-${i}`, at("2026-03-01T08:00:00.000Z", i), String(3000 + i))));
    await l.close();
    l = await Ledger.open(dir, QUIET);
    await record(l, [0, 1].map((i) => pair(`late-${i}`, at("2026-03-01T09:00:00.000Z", i), String(4000 + i))));
    await l.journal.close(); // killed: state.json is the one written when this run opened, behind by these two calls
    await withoutCheckpoint();

    l = await Ledger.open(dir, QUIET);
    try {
      assert.equal(l.journal.stats.linesRead, (await lineCount("2026-02")) + (await lineCount("2026-03")), "February and March read, January not");
      assert.deepEqual(l.rollups(), (await fullReplay()).rollups, "each day's totals are those of a full replay: none lost, none twice");
      const ids = (await l.recentCalls({ limit: 1000 })).calls.map((c) => c.id);
      assert.equal(ids.length, 11, "every call is listed");
      assert.ok(ids.includes("jan"), "a call in a month the start-up did not read is still listed");
    } finally {
      await l.close();
    }
  });

  it("a call still open when the snapshot was saved, started in a month before its margin: found and charged as interrupted", async () => {
    let l = await Ledger.open(dir, QUIET);
    await l.reserve(pair("long-stream", "2026-01-31T23:50:00.000Z", "0").r); // a stream begun a month ago, still open at the stop
    await record(l, [pair("mar1", "2026-03-01T08:00:00.000Z", "3000")]);
    await l.close();
    await withoutCheckpoint();
    l = await Ledger.open(dir, QUIET);
    try {
      const interrupted = (await l.recentCalls({ limit: 10, outcome: "interrupted" })).calls.map((c) => [c.id, c.costPicos]);
      assert.deepEqual(interrupted, [["long-stream", "5000"]], "charged its worst case once, not lost for starting before the months read");
    } finally {
      await l.close();
    }
  });

  it("a checkpoint the journal no longer matches: a lost line in an older month is rebuilt from the journal, not taken from the snapshot", async () => {
    await writeRaw([0, 1, 2].map((i) => pair(`feb10-${i}`, at("2026-02-10T09:00:00.000Z", i), String(1000 + i))));
    let l = await Ledger.open(dir, QUIET);
    await record(l, [pair("mar1", "2026-03-01T08:00:00.000Z", "3000")]);
    await l.close();
    // A backup restored over February: its last line (feb10-2's settle) is gone, so that call is charged as interrupted.
    const text = await readFile(journalFile("2026-02"), "utf8");
    await truncate(journalFile("2026-02"), text.length - text.split("\n").at(-2)!.length - 1);

    l = await Ledger.open(dir, QUIET);
    try {
      const reference = await fullReplay();
      assert.deepEqual(reference.interrupted, ["feb10-2:5000"]);
      assert.deepEqual(l.rollups(), reference.rollups, "February 10 counts feb10-2 once, as interrupted, not also as the ok call the snapshot remembered");
    } finally {
      await l.close();
    }
  });

  it("an invalid line past the checkpoint is moved aside and charged the amount it names", async () => {
    let l = await Ledger.open(dir, QUIET);
    await record(l, [pair("ok", "2026-03-01T08:00:00.000Z", "3000")]);
    await l.close();
    const bad = { type: "settle", id: "torn", at: "not a time", startedAt: "2026-03-01T09:00:00.000Z", costPicos: "777777" };
    await appendFile(journalFile("2026-03"), JSON.stringify(bad) + "\n");

    l = await Ledger.open(dir, QUIET);
    try {
      const interrupted = (await l.recentCalls({ limit: 10, outcome: "interrupted" })).calls.map((c) => [c.id, c.costPicos]);
      assert.deepEqual(interrupted, [["torn", "777777"]]);
      assert.equal(l.journal.quarantine.lines, 1);
      assert.match(await readFile(`${journalFile("2026-03")}.bad`, "utf8"), /"torn"/);
    } finally {
      await l.close();
    }
  });

  it("a line damaged before the checkpoint stays where it is while those past it are moved aside: the calls past the checkpoint are all read", async () => {
    let l = await Ledger.open(dir, QUIET);
    await record(l, [pair("early", "2026-03-01T07:00:00.000Z", "3000"), pair("kept", "2026-03-01T07:30:00.000Z", "2000")]);
    await l.close();
    // A byte flipped before the checkpoint's offset (the checkpoint still matches), then a settle and an invalid line past it.
    const text = await readFile(journalFile("2026-03"), "utf8");
    await writeFile(journalFile("2026-03"), `#${text.slice(1)}`);
    const late = pair("late", "2026-03-01T09:00:00.000Z", "4000").c;
    const bad = { type: "settle", id: "torn", at: "not a time", startedAt: "2026-03-01T09:30:00.000Z", costPicos: "777777" };
    await appendFile(journalFile("2026-03"), `${JSON.stringify(late)}\n${JSON.stringify(bad)}\n`);

    l = await Ledger.open(dir, QUIET);
    try {
      const past: string[] = [];
      for await (const c of l.settledSinceCheckpoint(new Date(0))) past.push(`${c.id}:${c.costPicos}`);
      assert.deepEqual(past, ["late:4000", "torn:777777"]);
      assert.equal(l.journal.quarantine.lines, 1, "only the line past the checkpoint is moved aside");
      assert.match(await readFile(journalFile("2026-03"), "utf8"), /^#"type":"reserve","id":"early"/);
    } finally {
      await l.close();
    }
    // The next start, from the checkpoint this one wrote, reads the same journal.
    l = await Ledger.open(dir, QUIET);
    try {
      assert.equal(l.todayTotals(NOW).costPicos, 3000n + 2000n + 4000n + 777777n);
    } finally {
      await l.close();
    }
  });
});
