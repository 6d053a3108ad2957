// Invalid journal lines at the edges of salvage: several lines of one call, lines without an id or a time, an amount of zero.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Journal } from "../../../server/ledger/journal";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord } from "../../../server/ledger/types";

describe("ledger: salvaging invalid journal lines, edge cases", () => {
  let dir: string;
  let file: string;
  const clock = new Date("2026-11-22T12:00:00.000Z");

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-quarantine-edges-"));
    await mkdir(path.join(dir, "journal"));
    file = path.join(dir, "journal", "2026-11.jsonl");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Opens a ledger on `lines`, returns the interrupted calls it charged and its quarantine counts, then reopens to check nothing is charged twice. */
  async function openOn(lines: unknown[]): Promise<{ calls: CallRecord[]; lines: number; unknown: number; total: bigint }> {
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const l = await Ledger.open(dir, { now: () => clock, timeZone: "UTC" });
    try {
      const calls = (await l.recentCalls({ limit: 50, outcome: "interrupted" })).calls;
      return { calls, lines: l.journal.quarantine.lines, unknown: l.journal.quarantine.unknownAmountLines, total: l.todayTotals(clock).costPicos };
    } finally {
      await l.close();
    }
  }

  it("two invalid lines of one call charge it once, at the larger amount, never lowered by the second", async () => {
    const r = await openOn([
      { type: "reserve", id: "twice", at: "bad-time", user: "u", tool: "cli", operation: "Converse", modelId: "m1", worstCasePicos: "9000", capIds: [] },
      { type: "settle", id: "twice", at: "bad-time", startedAt: "bad-time", costPicos: "100", worstCasePicos: "100" },
    ]);
    assert.deepEqual(r.calls.map((c) => [c.id, c.costPicos]), [["twice", "9000"]]);
    assert.equal(r.total, 9000n);
    assert.deepEqual([r.lines, r.unknown], [2, 0]);
  });

  it("two invalid lines of one call, the larger amount second: charged the larger, once", async () => {
    const r = await openOn([
      { type: "reserve", id: "twice", at: "bad-time", user: "u", tool: "cli", operation: "Converse", modelId: "m1", worstCasePicos: "100", capIds: [] },
      { type: "settle", id: "twice", at: "bad-time", startedAt: "bad-time", costPicos: "9000", worstCasePicos: "100" },
    ]);
    assert.deepEqual(r.calls.map((c) => [c.id, c.costPicos]), [["twice", "9000"]]);
    assert.equal(r.total, 9000n);
  });

  it("invalid lines without an id are each charged, under an id of their own", async () => {
    const r = await openOn([
      { type: "settle", at: "2026-11-22T08:00:00.000Z", costPicos: "300" },
      { type: "settle", id: "", at: "2026-11-22T08:05:00.000Z", costPicos: "500" },
    ]);
    assert.equal(r.calls.length, 2);
    assert.deepEqual(r.calls.map((c) => c.costPicos).sort(), ["300", "500"]);
    for (const c of r.calls) assert.match(c.id, /^quarantined-[0-9a-f]{32}$/);
    assert.notEqual(r.calls[0]!.id, r.calls[1]!.id);
    assert.equal(r.total, 800n);
  });

  it("an invalid line with no readable time is dated when the gateway found it", async () => {
    const r = await openOn([{ type: "reserve", id: "timeless", at: 1732262400, worstCasePicos: "4200" }]);
    assert.deepEqual(r.calls.map((c) => [c.id, c.startedAt, c.at, c.costPicos]), [["timeless", clock.toISOString(), clock.toISOString(), "4200"]]);
  });

  it("an amount of zero, written as a number, is a known amount: charged as zero, not reported as unknown", async () => {
    const r = await openOn([{ type: "settle", id: "free", at: "bad-time", startedAt: "2026-11-22T07:00:00.000Z", costPicos: 0 }]);
    assert.deepEqual(r.calls.map((c) => [c.id, c.costPicos]), [["free", "0"]]);
    assert.deepEqual([r.lines, r.unknown], [1, 0]);
    assert.equal((await readFile(`${file}.bad`, "utf8")).trimEnd().split("\n").length, 1);
  });

  it("a line naming a cost above its worst case is charged the cost (the larger amount, whichever field it is in)", async () => {
    const r = await openOn([{ type: "settle", id: "grew", at: "bad-time", startedAt: "2026-11-22T07:00:00.000Z", costPicos: "7000", worstCasePicos: "5000" }]);
    assert.deepEqual(r.calls.map((c) => [c.id, c.costPicos]), [["grew", "7000"]]);
  });

  it("two identical invalid lines without an id are two calls: each is charged", async () => {
    const line = { type: "settle", at: "2026-11-22T08:00:00.000Z", costPicos: "300" };
    const r = await openOn([line, line]);
    assert.equal(r.calls.length, 2);
    assert.equal(r.total, 600n);
  });

  it("a salvaged call keeps its caller, profile, tags and answering model: caller-, tag- and model-scoped caps still count it", async () => {
    const r = await openOn([
      {
        type: "settle", id: "labelled", at: "bad-time", startedAt: "2026-11-22T07:00:00.000Z", costPicos: "7000", modelId: "big", baseModelId: "big",
        answeredBy: "small", caller: "ci-bot", callerProfile: "ci", tags: { project: "apollo", broken: 3 },
      },
      { type: "settle", id: "tags-as-text", at: "bad-time", startedAt: "2026-11-22T07:10:00.000Z", costPicos: "10", tags: "project=apollo" },
    ]);
    const byId = new Map(r.calls.map((c) => [c.id, c]));
    const c = byId.get("labelled")!;
    assert.deepEqual([c.caller, c.callerProfile, c.answeredBy, c.tags], ["ci-bot", "ci", "small", { project: "apollo" }]);
    assert.deepEqual(byId.get("tags-as-text")!.tags, {}, "tags that are not an object name none");
  });

  it("a start that dies before it could journal a salvaged charge leaves the invalid lines in place: the next start charges them", async () => {
    const append = Journal.prototype.append;
    Journal.prototype.append = function (entry) {
      return entry.type === "settle" && entry.outcome === "interrupted" ? Promise.reject(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" })) : append.call(this, entry);
    };
    try {
      await assert.rejects(openOn([{ type: "settle", id: "lost?", at: "bad-time", startedAt: "2026-11-22T07:00:00.000Z", costPicos: "4100" }]), /ENOSPC/);
    } finally {
      Journal.prototype.append = append;
    }
    const l = await Ledger.open(dir, { now: () => clock, timeZone: "UTC" });
    try {
      assert.equal(l.todayTotals(clock).costPicos, 4100n);
      assert.equal(l.journal.quarantine.lines, 1);
    } finally {
      await l.close();
    }
  });

  it("a start that dies after journaling the salvaged charges but before moving the lines aside: the next start charges nothing twice", async () => {
    const quarantineMonth = Journal.prototype.quarantineMonth;
    Journal.prototype.quarantineMonth = () => Promise.reject(new Error("killed"));
    const lines = [
      { type: "settle", id: "named", at: "bad-time", startedAt: "2026-11-22T07:00:00.000Z", costPicos: "4100" },
      { type: "settle", at: "2026-11-22T08:00:00.000Z", costPicos: "300" },
      { type: "settle", at: "2026-11-22T08:00:00.000Z", costPicos: "300" },
    ];
    try {
      await assert.rejects(openOn(lines), /killed/);
    } finally {
      Journal.prototype.quarantineMonth = quarantineMonth;
    }
    const l = await Ledger.open(dir, { now: () => clock, timeZone: "UTC" });
    try {
      assert.equal(l.todayTotals(clock).costPicos, 4700n);
      assert.equal((await l.recentCalls({ limit: 50, outcome: "interrupted" })).calls.length, 3);
      assert.equal(l.journal.quarantine.lines, 3);
    } finally {
      await l.close();
    }
  });
  it("a salvaged line without an id keeps its id when another invalid line is removed by hand before the next start: charged once", async () => {
    // The first start journals the salvaged charge and dies before moving the lines aside; the user
    // then deletes the unreadable line above it. The id must not depend on the lines before it.
    const quarantineMonth = Journal.prototype.quarantineMonth;
    Journal.prototype.quarantineMonth = () => Promise.reject(new Error("killed"));
    const unreadable = { type: "settle", id: 7, at: "2026-11-22T07:30:00.000Z" };
    const salvageable = { type: "settle", at: "2026-11-22T08:00:00.000Z", costPicos: "300" };
    try {
      await assert.rejects(openOn([unreadable, salvageable]), /killed/);
    } finally {
      Journal.prototype.quarantineMonth = quarantineMonth;
    }
    const kept = (await readFile(file, "utf8")).split("\n").filter((line) => line !== JSON.stringify(unreadable));
    await writeFile(file, kept.join("\n"));
    const l = await Ledger.open(dir, { now: () => clock, timeZone: "UTC" });
    try {
      assert.equal(l.todayTotals(clock).costPicos, 300n);
      assert.equal((await l.recentCalls({ limit: 50, outcome: "interrupted" })).calls.length, 1);
    } finally {
      await l.close();
    }
  });
});
