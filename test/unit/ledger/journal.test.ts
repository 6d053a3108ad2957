import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFile, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Journal, journalMonth } from "../../../server/ledger/journal";
import type { JournalEntry, ReserveEntry } from "../../../server/ledger/types";

function reserve(id: string, at = "2026-11-22T10:00:00.000Z"): ReserveEntry {
  return { type: "reserve", id, at, user: "u", tool: "t", operation: "Converse", modelId: "m", worstCasePicos: "42", capIds: ["daily"] };
}

async function all(journal: Journal, options?: { since?: Date }): Promise<JournalEntry[]> {
  const out: JournalEntry[] = [];
  for await (const e of journal.read(options)) out.push(e);
  return out;
}

describe("ledger/journal", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-journal-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("group-commits concurrent appends: every line present, few writes and fsyncs", async () => {
    const j = await Journal.open(dir);
    await Promise.all(Array.from({ length: 500 }, (_, i) => j.append(reserve(`a${i}`))));
    assert.equal(j.stats.appends, 500);
    assert.equal(j.stats.syncs, 1); // all 500 were queued in the same tick
    // Waves: appends that arrive while a sync is in flight share the next one.
    const waves: Promise<unknown>[] = [];
    for (let w = 0; w < 5; w++) {
      waves.push(...Array.from({ length: 100 }, (_, i) => j.append(reserve(`b${w}-${i}`))));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waves);
    assert.ok(j.stats.syncs - 1 <= 5, `syncs ${j.stats.syncs}`);
    await j.close();
    const text = await readFile(path.join(dir, "journal", "2026-11.jsonl"), "utf8");
    const ids = text.trimEnd().split("\n").map((l) => (JSON.parse(l) as JournalEntry).id);
    assert.equal(ids.length, 1000);
    assert.equal(new Set(ids).size, 1000);
    assert.deepEqual(ids.slice(0, 3), ["a0", "a1", "a2"]); // queue order is file order
  });

  it("durability process: appends resolve once written, one background fdatasync covers them, close syncs the rest", async () => {
    const j = await Journal.open(dir, { durability: "process" });
    await Promise.all(Array.from({ length: 50 }, (_, i) => j.append(reserve(`p${i}`))));
    assert.equal(j.stats.appends, 50);
    assert.equal(j.stats.syncs, 0); // one write, resolved at once; the sync waits for its timer
    assert.equal((await readFile(path.join(dir, "journal", "2026-11.jsonl"), "utf8")).trimEnd().split("\n").length, 50);
    await j.append(reserve("last"));
    await j.close();
    assert.ok(j.stats.syncs >= 1 && j.stats.syncs <= 2, `syncs ${j.stats.syncs}`); // by the timer and/or by close, never per line
  });

  it("files entries by the UTC month of `at` and reads months in order, with `since`", async () => {
    const j = await Journal.open(dir);
    await j.append(reserve("dec", "2026-12-01T00:00:00.000Z"));
    await j.append(reserve("nov", "2026-11-30T23:59:59.999Z"));
    await j.append(reserve("jan", "2027-01-01T00:30:00+01:00")); // 2026-12-31T23:30Z
    assert.deepEqual(await j.months(), ["2026-11", "2026-12"]);
    assert.deepEqual((await all(j)).map((e) => e.id), ["nov", "dec", "jan"]);
    assert.deepEqual((await all(j, { since: new Date("2026-12-01T00:00:00Z") })).map((e) => e.id), ["dec", "jan"]);
    await assert.rejects(j.append(reserve("bad", "not a date")));
    await j.close();
  });

  it("reads in batches that span months, filtered by `since`; a reader that stops early leaves no file open", async () => {
    const j = await Journal.open(dir);
    for (let i = 0; i < 3000; i++) await j.append(reserve(`n${i}`, new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString()));
    for (let i = 0; i < 3000; i++) await j.append(reserve(`d${i}`, new Date(Date.UTC(2026, 11, 1) + i * 60_000).toISOString()));
    const since = new Date(Date.UTC(2026, 10, 1) + 2500 * 60_000);
    const batches: JournalEntry[][] = [];
    for await (const batch of j.readBatches({ since })) batches.push(batch);
    assert.ok(batches.length > 1 && batches.every((b) => b.length > 0), "several batches (of at most 64 lines), none empty");
    assert.deepEqual(batches.flat().map((e) => e.id), [...Array.from({ length: 500 }, (_, i) => `n${2500 + i}`), ...Array.from({ length: 3000 }, (_, i) => `d${i}`)]);
    // One file handle per month read; it closes when the reader breaks off, not when the handle is collected.
    const openJournalFiles = async () => {
      const fds = await readdir("/proc/self/fd");
      const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")));
      return targets.filter((t) => t.includes(path.join(dir, "journal"))).length;
    };
    const before = await openJournalFiles();
    for await (const e of j.read()) {
      assert.equal(e.id, "n0");
      assert.equal(await openJournalFiles(), before + 1, "the month being read is open");
      break;
    }
    assert.equal(await openJournalFiles(), before, "and closed once the reader stopped");
    await j.close();
  });

  it("settlesOnly: the settle entries read() gives, reserve lines passed over unparsed; a line that only starts like a reserve is still read", async () => {
    await (await Journal.open(dir)).close();
    const at = "2026-11-22T10:00:00.000Z";
    const settle = (id: string) => ({
      type: "settle", id, at, startedAt: at, user: "u", tool: "t", operation: "Converse", modelId: "m", baseModelId: "m",
      usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
      usageEstimated: false, costPicos: "7", worstCasePicos: "42", outcome: "ok", status: 200, latencyMs: 1, tags: {},
    });
    const { type: _type, ...settleFields } = settle("twice");
    const { type: _t, ...escapedFields } = settle("escaped");
    const lines = [
      JSON.stringify(reserve("r1")),
      JSON.stringify(settle("s1")),
      JSON.stringify({ ...reserve("r2"), tags: { type: "batch" } }), // a tag named "type": parsed, still a reserve
      // Starts as a reserve, but its last "type" key wins in JSON.parse: a settle.
      `{"type":"reserve",${JSON.stringify(settleFields).slice(1, -1)},"type":"settle"}`,
      // The same with the key spelt with an escape ("typ\u0065"): JSON.parse reads "type" all the same.
      `{"type":"reserve",${JSON.stringify(escapedFields).slice(1, -1)},"typ\\u0065":"settle"}`,
      `{"type":"reserve","id":"torn"`, // broken: skipped by any reader
      JSON.stringify(settle("s2")),
    ];
    await writeFile(path.join(dir, "journal", "2026-11.jsonl"), lines.join("\n") + "\n");
    const j = await Journal.open(dir);
    const settles = (await all(j)).filter((e) => e.type === "settle").map((e) => e.id);
    assert.deepEqual(settles, ["s1", "twice", "escaped", "s2"]);
    const only: string[] = [];
    for await (const batch of j.readBatches({ settlesOnly: true })) for (const e of batch) only.push(`${e.type}:${e.id}`);
    assert.deepEqual(only, ["settle:s1", "settle:twice", "settle:escaped", "settle:s2"], "the same settles, in order");
    await j.close();
  });

  it("skips and counts unparsable lines instead of throwing", async () => {
    await (await Journal.open(dir)).close();
    const file = path.join(dir, "journal", "2026-11.jsonl");
    await writeFile(file, [JSON.stringify(reserve("ok1")), "{not json", '{"type":"other"}', JSON.stringify(reserve("ok2")), ""].join("\n"));
    const j = await Journal.open(dir);
    assert.deepEqual((await all(j)).map((e) => e.id), ["ok1", "ok2"]);
    assert.equal(j.stats.skippedLines, 2);
    await j.close();
  });

  it("reads lines longer than a read and lines split across reads whole, and moves bad ones aside byte for byte", async () => {
    const j0 = await Journal.open(dir);
    // Lines of every length up to past 1 MB (several times the reader's buffer), so line ends fall anywhere in a read.
    const ids = Array.from({ length: 40 }, (_, i) => `call-${i}-${"x".repeat(i * i * 700)}`);
    for (const id of ids) await j0.append(reserve(id));
    await j0.close();
    const file = path.join(dir, "journal", "2026-11.jsonl");
    const bad = `{"type":"reserve","id":"bad","note":"${"é".repeat(300_000)}"}`; // invalid (no at), multi-byte, longer than a read
    await appendFile(file, `${bad}\n${JSON.stringify(reserve("tail"))}\n`);
    const j = await Journal.open(dir);
    assert.deepEqual((await all(j)).map((e) => e.id), [...ids, "tail"]);
    assert.equal(j.stats.skippedLines, 1);
    assert.equal(await j.quarantineMonth("2026-11", () => "bad"), 1);
    assert.equal(await readFile(`${file}.bad`, "utf8"), `${bad}\n`);
    assert.deepEqual((await readFile(file, "utf8")).trimEnd().split("\n").map((l) => (JSON.parse(l) as JournalEntry).id), [...ids, "tail"]);
    await j.close();
  });

  it("moves a torn last line to a .torn side file on open so the next append starts on a fresh line", async () => {
    const j0 = await Journal.open(dir);
    await j0.append(reserve("before"));
    await j0.close();
    const file = path.join(dir, "journal", "2026-11.jsonl");
    const torn = JSON.stringify(reserve("torn")).slice(0, 37);
    await appendFile(file, torn);
    const ro = await Journal.open(dir, { readOnly: true }); // a reader must not touch a line a writer may be finishing
    assert.deepEqual((await all(ro)).map((e) => e.id), ["before"]);
    assert.equal(ro.stats.repairedFiles, 0);
    await assert.rejects(ro.append(reserve("nope")));
    await ro.close();
    assert.ok((await readFile(file, "utf8")).endsWith(torn));
    const j = await Journal.open(dir);
    assert.equal(j.stats.repairedFiles, 1);
    assert.equal(await readFile(`${file}.torn`, "utf8"), torn + "\n");
    await j.append(reserve("after"));
    assert.deepEqual((await all(j)).map((e) => e.id), ["before", "after"]);
    assert.equal(j.stats.skippedLines, 0);
    await j.close();
  });

  for (const durability of ["process", "machine"] as const) {
    it(`survives SIGKILL mid-run (durability ${durability}): every resolved append is on disk, a torn tail is repaired, appends work after`, async function () {
      this.timeout(90_000); // bounds only: a loaded machine starts the tsx child slowly
      const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "journal-crash-child.ts"), dir, durability], {
        cwd: path.join(__dirname, "../../.."),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child printed too little: ${out.length} bytes; stderr: ${err}`)), 60_000);
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.split("\n").length > 400) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on("exit", () => reject(new Error(`child exited early; stderr: ${err}`)));
      });
      child.kill("SIGKILL");
      assert.equal(await exited, "SIGKILL");
      // Only ids with their newline made it out whole.
      const resolved = out.split("\n").slice(0, -1);
      assert.ok(resolved.length >= 400);

      const journalDir = path.join(dir, "journal");
      const name = (await readdir(journalDir)).filter((n) => n.endsWith(".jsonl")).sort().pop(); // the newest month
      assert.ok(name);
      const file = path.join(journalDir, name);
      const raw = await readFile(file);
      if (raw[raw.length - 1] === 0x0a) await appendFile(file, '{"type":"reserve","id":"half-writ'); // make sure a torn tail exists

      const j = await Journal.open(dir);
      assert.equal(j.stats.repairedFiles, 1);
      const ids = new Set((await all(j)).map((e) => e.id));
      assert.equal(j.stats.skippedLines, 0);
      const missing = resolved.filter((id) => !ids.has(id));
      assert.deepEqual(missing, []);
      await j.append(reserve("after-crash", new Date().toISOString()));
      const again = (await all(j)).map((e) => e.id);
      assert.equal(again[again.length - 1], "after-crash");
      await j.close();
      const reopened = await Journal.open(dir);
      assert.equal(reopened.stats.repairedFiles, 0);
      await reopened.close();
    });
  }

  it("files each entry under its UTC month, also when one month follows another (the month of the last entry is reused)", () => {
    // Each line is [entry time, expected file]: across month ends, back again, years 0-99 and 1900s alike.
    const cases: [string, string][] = [
      ["2026-11-30T23:59:59.999Z", "2026-11"],
      ["2026-12-01T00:00:00.000Z", "2026-12"],
      ["2026-11-30T23:59:59.999Z", "2026-11"],
      ["2026-12-31T23:59:59.999Z", "2026-12"],
      ["2027-01-01T00:00:00.000Z", "2027-01"],
      ["0050-03-15T00:00:00.000Z", "0050-03"],
      ["1950-03-15T00:00:00.000Z", "1950-03"],
      ["0050-03-01T00:00:00.000Z", "0050-03"],
      ["0050-02-28T23:59:59.999Z", "0050-02"],
    ];
    for (const [at, month] of cases) {
      assert.equal(journalMonth(at), month, at);
      assert.equal(journalMonth(new Date(at)), month, `${at} as a Date`);
    }
    assert.throws(() => journalMonth("not a time"), /bad entry time "not a time"/);
  });
});
