import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Journal } from "../../../server/ledger/journal";
import { Ledger } from "../../../server/ledger/ledger";
import { ZERO_USAGE } from "../../../server/metering/types";
import type { CallRecord, JournalEntry, Outcome, ReserveEntry } from "../../../server/ledger/types";

const TZ = "Europe/Paris";

function reserveEntry(id: string, at: string, worst = "5000"): ReserveEntry {
  return { type: "reserve", id, at, user: "u", tool: "cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1", worstCasePicos: worst, capIds: ["d"] };
}

function call(id: string, at: string, o: Partial<CallRecord> = {}): CallRecord {
  return {
    type: "settle", id, at, startedAt: at, user: "u", tool: "cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1",
    usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1000", worstCasePicos: "5000", outcome: "ok", status: 200, latencyMs: 12, tags: {}, ...o,
  };
}

async function entries(dir: string): Promise<JournalEntry[]> {
  const j = await Journal.open(dir);
  const out: JournalEntry[] = [];
  for await (const e of j.read()) out.push(e);
  await j.close();
  return out;
}

describe("ledger/ledger", () => {
  let dir: string;
  let clock: Date;
  const now = () => clock;
  const open = (o: { recentLimit?: number } = {}) => Ledger.open(dir, { now, timeZone: TZ, ...o });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-ledger-"));
    clock = new Date("2026-11-22T10:00:00.000Z");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("settles a reserve without a settle as interrupted at its worst case, exactly once", async () => {
    const l1 = await open();
    await l1.reserve(reserveEntry("done", "2026-11-22T09:00:00.000Z"));
    await l1.settle(call("done", "2026-11-22T09:00:01.000Z"));
    await l1.reserve(reserveEntry("lost", "2026-11-22T09:30:00.000Z", "777000"));
    assert.deepEqual(l1.openReservations().map((r) => r.id), ["lost"]);
    await l1.journal.close(); // simulate the crash: no settle for "lost", state not flushed by close

    clock = new Date("2026-11-22T11:00:00.000Z");
    const l2 = await open();
    const [interrupted] = (await l2.recentCalls({ limit: 10, outcome: "interrupted" })).calls;
    assert.ok(interrupted);
    assert.equal(interrupted.id, "lost");
    assert.equal(interrupted.costPicos, "777000");
    assert.equal(interrupted.usageEstimated, true);
    assert.equal(interrupted.baseModelId, "m1");
    assert.equal(interrupted.startedAt, "2026-11-22T09:30:00.000Z");
    assert.equal(interrupted.at, "2026-11-22T11:00:00.000Z");
    assert.deepEqual(l2.openReservations(), []);
    assert.deepEqual(l2.todayTotals(clock), { calls: 2, costPicos: 778000n, byModel: { m1: { calls: 2, costPicos: 778000n } } });
    await l2.close();

    const l3 = await open();
    await l3.close();
    const settles = (await entries(dir)).filter((e) => e.type === "settle" && e.id === "lost");
    assert.equal(settles.length, 1);
  });

  it("a raised reservation is journaled and charged on a crash; a lower, unknown, settling or failed raise changes nothing", async () => {
    const l1 = await open();
    await l1.reserve(reserveEntry("grown", "2026-11-22T09:30:00.000Z", "1000"));
    await l1.raiseReservation("grown", 5000n);
    await l1.raiseReservation("grown", 4000n); // lower than journaled: no line
    await l1.raiseReservation("never-reserved", 9000n);
    assert.deepEqual(l1.openReservations().map((r) => [r.id, r.worstCasePicos]), [["grown", "5000"]]);
    // A raise whose line cannot be written leaves what the journal holds in force.
    const append = l1.journal.append.bind(l1.journal);
    l1.journal.append = () => Promise.reject(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }));
    await assert.rejects(l1.raiseReservation("grown", 8000n), /ENOSPC/);
    l1.journal.append = append;
    assert.deepEqual(l1.openReservations().map((r) => r.worstCasePicos), ["5000"]);
    // Once the settle is under way, a raise would land after it and reopen the call: none is written.
    await l1.reserve(reserveEntry("done", "2026-11-22T09:40:00.000Z", "1000"));
    const settling = l1.settle(call("done", "2026-11-22T09:40:01.000Z"));
    await l1.raiseReservation("done", 7000n);
    await settling;
    await l1.raiseReservation("done", 7000n); // and after it
    await l1.journal.close(); // the crash
    const lines = (await entries(dir)).map((e) => `${e.type} ${e.id} ${e.type === "reserve" ? e.worstCasePicos : e.costPicos}`);
    assert.deepEqual(lines, ["reserve grown 1000", "reserve grown 5000", "reserve done 1000", "settle done 1000"]);

    clock = new Date("2026-11-22T11:00:00.000Z");
    const l2 = await open();
    const charged = (await l2.recentCalls({ limit: 10, outcome: "interrupted" })).calls;
    assert.deepEqual(charged.map((c) => [c.id, c.costPicos, c.startedAt]), [["grown", "5000", "2026-11-22T09:30:00.000Z"]]);
    await l2.close();
  });

  it("finds an orphaned reserve from months ago when state.json says where to look", async () => {
    clock = new Date("2026-08-10T10:00:00.000Z");
    const l1 = await open();
    await l1.reserve(reserveEntry("old", "2026-08-10T10:00:00.000Z"));
    await l1.close(); // clean close with a call still open: state.json records its month
    clock = new Date("2026-11-22T10:00:00.000Z");
    const l2 = await open();
    assert.deepEqual((await l2.recentCalls({ limit: 5, outcome: "interrupted" })).calls.map((c) => c.id), ["old"]);
    await l2.close();
  });

  it("rolls over to a new journal file per month and reports a month in the ledger's time zone", async () => {
    const l = await open();
    await l.settle(call("oct", "2026-10-31T23:30:00.000Z")); // 2026-11-01 00:30 in Paris
    await l.settle(call("nov", "2026-11-15T12:00:00.000Z"));
    await l.settle(call("dec", "2026-12-01T00:10:00.000Z"));
    assert.deepEqual((await readdir(path.join(dir, "journal"))).sort(), ["2026-10.jsonl", "2026-11.jsonl", "2026-12.jsonl"]);
    assert.deepEqual((await l.report("2026-11")).map((c) => c.id), ["oct", "nov"]);
    assert.deepEqual((await l.report("2026-12")).map((c) => c.id), ["dec"]); // 01:10 Paris
    assert.deepEqual((await l.report("2026-10")).map((c) => c.id), []);
    const hist: string[] = [];
    for await (const c of l.history(new Date("2026-11-01T00:00:00Z"))) hist.push(c.id);
    assert.deepEqual(hist, ["nov", "dec"]);
    await l.close();
  });

  it("moves today's totals and its day keys to a new time zone while open, counting once the calls settled meanwhile; a restart in that zone agrees", async () => {
    clock = new Date("2026-11-22T12:00:00.000Z"); // 23 November, 02:00 in Kiritimati (UTC+14)
    const l = await Ledger.open(dir, { now, timeZone: "UTC" });
    await l.settle(call("sat", "2026-11-21T20:00:00.000Z")); // the 21st in UTC, the 22nd in Kiritimati
    await l.settle(call("early", "2026-11-22T09:00:00.000Z", { costPicos: "1" })); // the 22nd in both
    await l.settle(call("late", "2026-11-22T11:00:00.000Z")); // the 22nd in UTC, the 23rd in Kiritimati
    assert.deepEqual(l.todayTotals(clock), { calls: 2, costPicos: 1001n, byModel: { m1: { calls: 2, costPicos: 1001n } } });
    // The zone change's reading of the journal waits, before its first line and after its last, for the test to settle calls.
    const read = l.journal.read.bind(l.journal);
    const signal = () => {
      let fire!: () => void;
      return { done: new Promise<void>((resolve) => (fire = resolve)), fire: () => fire() };
    };
    const [started, go, ended, finish, written, apply] = [signal(), signal(), signal(), signal(), signal(), signal()];
    l.journal.read = async function* (options) {
      started.fire();
      await go.done;
      yield* read(options);
      ended.fire();
      await finish.done;
    };
    // A settle whose line is in the journal before the reading, but applied only after the new days are in.
    const append = l.journal.append.bind(l.journal);
    l.journal.append = async (entry) => {
      const pos = await append(entry);
      if (entry.id === "gap") {
        written.fire();
        await apply.done;
      }
      return pos;
    };
    const gap = l.settle(call("gap", "2026-11-22T12:00:00.000Z", { costPicos: "4000" }));
    await written.done;
    const changed = l.setTimeZone("Pacific/Kiritimati");
    await started.done;
    await l.settle(call("before", "2026-11-22T12:00:00.000Z", { costPicos: "500" })); // counted live, then read too
    assert.deepEqual(l.todayTotals(clock).costPicos, 1501n, "until the new zone's days are complete, the old zone's stand");
    go.fire();
    await ended.done;
    await l.settle(call("after", "2026-11-22T12:00:00.000Z", { costPicos: "20" })); // past the reading
    finish.fire();
    assert.equal(await changed, true);
    assert.equal(l.timeZone, "Pacific/Kiritimati");
    assert.deepEqual(l.todayTotals(clock), { calls: 3, costPicos: 1520n, byModel: { m1: { calls: 3, costPicos: 1520n } } });
    apply.fire();
    await gap;
    assert.deepEqual(l.todayTotals(clock), { calls: 4, costPicos: 5520n, byModel: { m1: { calls: 4, costPicos: 5520n } } }, "counted once, when applied");
    await l.settle(call("next", "2026-11-22T13:00:00.000Z"));
    const kiritimati = { "2026-11-22": { m1: { calls: 2, refused: 0, costPicos: "1001", inputTokens: 20, outputTokens: 10 } }, "2026-11-23": { m1: { calls: 5, refused: 0, costPicos: "6520", inputTokens: 50, outputTokens: 25 } } };
    assert.deepEqual(l.rollups(), kiritimati);
    assert.equal(await l.setTimeZone("Pacific/Kiritimati"), false, "the same zone: nothing to do");
    assert.deepEqual(l.rollups(), kiritimati);
    await l.close();
    const again = await Ledger.open(dir, { now, timeZone: "Pacific/Kiritimati" });
    assert.deepEqual(again.rollups(), kiritimati);
    assert.equal(JSON.parse(await readFile(path.join(dir, "state.json"), "utf8")).timeZone, "Pacific/Kiritimati");
    await again.close();
  });

  it("pages recent calls newest first, from memory and then the journal, with filters", async () => {
    const l1 = await open({ recentLimit: 5 });
    const outcomes: Outcome[] = ["ok", "refused", "cut"];
    for (let i = 0; i < 30; i++) {
      const at = new Date(Date.UTC(2026, 9, 1 + i, 12)).toISOString(); // Oct 1 .. Oct 30
      await l1.settle(call(`c${i}`, at, { outcome: outcomes[i % 3]!, modelId: i % 2 ? "us.m1" : "m2", baseModelId: i % 2 ? "m1" : "m2" }));
    }
    const pageAll = async (l: Ledger, q: { model?: string; outcome?: Outcome }) => {
      const ids: string[] = [];
      let before: string | undefined;
      for (let n = 0; n < 50; n++) {
        const page = await l.recentCalls({ limit: 4, ...q, ...(before ? { before } : {}) });
        assert.ok(page.calls.length <= 4);
        ids.push(...page.calls.map((c) => c.id));
        if (!page.next) return ids;
        before = page.next;
      }
      throw new Error("paging did not end");
    };
    const expectIds = (pred: (i: number) => boolean) =>
      Array.from({ length: 30 }, (_, i) => 29 - i).filter(pred).map((i) => `c${i}`);
    assert.deepEqual(await pageAll(l1, {}), expectIds(() => true));
    assert.deepEqual(await pageAll(l1, { outcome: "refused" }), expectIds((i) => i % 3 === 1));
    assert.deepEqual(await pageAll(l1, { model: "m1", outcome: "ok" }), expectIds((i) => i % 2 === 1 && i % 3 === 0));
    assert.deepEqual((await l1.recentCalls({ limit: 3 })).calls.map((c) => c.id), ["c29", "c28", "c27"]);
    await l1.close();
    // After reopening, memory holds only the tail; older pages come from the journal.
    const l2 = await open({ recentLimit: 5 });
    assert.deepEqual(await pageAll(l2, {}), expectIds(() => true));
    assert.deepEqual(await pageAll(l2, { model: "us.m1" }), expectIds((i) => i % 2 === 1));
    assert.deepEqual((await l2.recentCalls({ limit: 4, before: "no-such-id" })).calls, []);
    await l2.close();
  });

  it("lists under guardrail/<id> its ApplyGuardrail calls and the model calls it was attached to (the dashboard charts both there), from memory and the journal", async () => {
    const part = (id: string) => ({ id, costPicos: "10", worstCasePicos: "20", units: 1, unitsEstimated: false });
    const l1 = await open({ recentLimit: 2 });
    await l1.settle(call("apply", "2026-10-01T12:00:00.000Z", { operation: "ApplyGuardrail", modelId: "guardrail/gr-1", baseModelId: "guardrail/gr-1" }));
    await l1.settle(call("attached", "2026-10-02T12:00:00.000Z", { modelId: "m1", baseModelId: "m1", costPicos: "100", worstCasePicos: "200", guardrail: part("gr-1") }));
    await l1.settle(call("other-guardrail", "2026-10-03T12:00:00.000Z", { modelId: "m1", baseModelId: "m1", costPicos: "100", worstCasePicos: "200", guardrail: part("gr-2") }));
    await l1.settle(call("plain", "2026-10-04T12:00:00.000Z", { modelId: "m1", baseModelId: "m1" }));
    const ids = async (l: Ledger, model: string) => (await l.recentCalls({ limit: 10, model })).calls.map((c) => c.id);
    assert.deepEqual(await ids(l1, "guardrail/gr-1"), ["attached", "apply"]);
    assert.deepEqual(await ids(l1, "m1"), ["plain", "other-guardrail", "attached"], "the model's calls all stay under it");
    await l1.close();
    const l2 = await open({ recentLimit: 1 });
    assert.deepEqual(await ids(l2, "guardrail/gr-1"), ["attached", "apply"], "read from the journal alike");
    await l2.close();
  });

  it("keeps daily rollups, survives a lost snapshot (crash) and rebuilds a corrupt state.json", async () => {
    const l1 = await open();
    await l1.settle(call("a", "2026-11-21T22:30:00.000Z", { costPicos: "100" })); // 23:30 Paris, the 21st
    await l1.settle(call("b", "2026-11-21T23:30:00.000Z", { costPicos: "250" })); // 00:30 Paris, the 22nd
    await l1.settle(call("c", "2026-11-22T09:00:00.000Z", { costPicos: "0", outcome: "refused", baseModelId: "m2", usage: { ...ZERO_USAGE } }));
    // Stopped at the gateway too (never forwarded): counted with the refused, not as calls made.
    await l1.settle(call("t", "2026-11-22T09:01:00.000Z", { costPicos: "0", outcome: "throttled", status: 429, baseModelId: "m2", usage: { ...ZERO_USAGE } }));
    await l1.settle(call("q", "2026-11-22T09:02:00.000Z", { costPicos: "0", outcome: "quota-exceeded", status: 400, baseModelId: "m2", usage: { ...ZERO_USAGE } }));
    const expected = {
      "2026-11-21": { m1: { calls: 1, refused: 0, costPicos: "100", inputTokens: 10, outputTokens: 5 } },
      "2026-11-22": {
        m1: { calls: 1, refused: 0, costPicos: "250", inputTokens: 10, outputTokens: 5 },
        m2: { calls: 0, refused: 3, costPicos: "0", inputTokens: 0, outputTokens: 0 },
      },
    };
    assert.deepEqual(l1.rollups(), expected);
    await l1.close();
    const saved = JSON.parse(await readFile(path.join(dir, "state.json"), "utf8")) as { days: unknown; version: number };
    assert.deepEqual(saved.days, expected);

    // A crash after more settles: the snapshot is behind; reopening catches up from the journal.
    const l2 = await open();
    await l2.settle(call("d", "2026-11-22T10:00:00.000Z", { costPicos: "4" }));
    await l2.journal.close();
    const l3 = await open();
    assert.equal(l3.rollups()["2026-11-22"]!.m1!.costPicos, "254");
    assert.deepEqual(l3.rollups()["2026-11-21"], expected["2026-11-21"]);
    await l3.close();

    await writeFile(path.join(dir, "state.json"), '{"version":1,"days":{"2026-11-2');
    const l4 = await open();
    assert.equal(l4.rollups()["2026-11-22"]!.m1!.costPicos, "254");
    assert.equal(l4.rollups()["2026-11-22"]!.m1!.calls, 2);
    const today = l4.todayTotals(clock);
    assert.deepEqual([today.calls, today.costPicos, today.byModel.m1], [2, 254n, { calls: 2, costPicos: 254n }]);
    await l4.close();
    assert.ok((await readdir(dir)).includes("state.json.bad"));

    // Money written as a negative figure is not a rollup any settle makes (a hand edit): rebuilt too, never shown.
    const good = JSON.parse(await readFile(path.join(dir, "state.json"), "utf8")) as { days: Record<string, Record<string, { costPicos: string }>> };
    good.days["2026-11-22"]!.m1!.costPicos = "-1000";
    await writeFile(path.join(dir, "state.json"), JSON.stringify(good));
    const l5 = await open();
    assert.equal(l5.rollups()["2026-11-22"]!.m1!.costPicos, "254");
    await l5.close();
  });
});
