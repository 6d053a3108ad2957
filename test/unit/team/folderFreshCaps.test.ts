// A team cap added to the folder store (or a new time zone) while this machine's calls run: they count
// on it once, whether their settle lines are in the journal the new cap's replay reads or come after it.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CallRecord } from "../../../server/ledger/types";
import { silentLogger } from "../../../server/log";
import { usdToPicos } from "../../../server/metering/money";
import { ZERO_USAGE } from "../../../server/metering/types";
import { FolderTeamEngine } from "../../../server/team/folderStore";

const NOVA = "amazon.nova-lite-v1:0";

describe("team folder: caps counted again while calls run", () => {
  let root: string;
  let engine: FolderTeamEngine | undefined;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-fresh-"));
    await mkdir(path.join(root, "t")); // the team's folder, as the lead creates it
  });
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
    await rm(root, { recursive: true, force: true });
  });

  const now = new Date();
  const at = now.toISOString();
  const settled = (id: string, usd: string): CallRecord => ({
    type: "settle", id, at, startedAt: at, user: "me", tool: "script", operation: "InvokeModel", modelId: NOVA, baseModelId: NOVA,
    usage: { ...ZERO_USAGE }, usageEstimated: false, costPicos: String(usdToPicos(usd)), worstCasePicos: String(usdToPicos(usd)), outcome: "ok", status: 200, latencyMs: 1, tags: {},
  });
  // The journal as the replay reads it: a call that finished before the caps changed, and the running call's settle line.
  const journal = [settled("finished", "0.25"), settled("running", "0.5")];
  const open = () =>
    FolderTeamEngine.open({
      dir: root, team: "t", member: "me", machine: "box", writer: "aaaaaaaaaaaaaaaa", syncMs: 60_000, unavailable: "block",
      history: async function* () {
        yield* journal;
      },
      now: () => now, log: silentLogger(),
    });

  it("counts a running call once when its settle line is already in the journal the replay reads, and a finished call from the replay", async () => {
    engine = await open();
    await engine.setCaps([{ id: "old", scope: "team", window: "day", limitUsd: 10 }], "UTC");
    const held = await engine.reserve({ callId: "running", modelId: NOVA, amount: usdToPicos("0.75"), now, capIds: ["old"] });
    assert.equal(held.ok, true);

    await engine.setCaps([{ id: "old", scope: "team", window: "day", limitUsd: 10 }, { id: "new", scope: "team", window: "day", limitUsd: 10 }], "UTC");
    const figures = () => Object.fromEntries(engine!.status(now).map((c) => [c.id, [c.spentPicos, c.reservedPicos]]));
    // The running call is held on the new cap; the finished one is counted from the journal.
    assert.deepEqual(figures().new, [usdToPicos("0.25"), usdToPicos("0.75")]);
    await engine.settle(settled("running", "0.5"));
    assert.deepEqual(figures().new, [usdToPicos("0.75"), 0n]);
  });

  it("a new time zone counts every cap again from the journal, and a call running at the change once, when it settles", async () => {
    engine = await open();
    const caps = [{ id: "old", scope: "team" as const, window: "day" as const, limitUsd: 10 }];
    await engine.setCaps(caps, "UTC");
    assert.equal((await engine.reserve({ callId: "running", modelId: NOVA, amount: usdToPicos("0.75"), now, capIds: ["old"] })).ok, true);

    await engine.setCaps(caps, "Pacific/Kiritimati");
    const spent = () => engine!.status(now).find((c) => c.id === "old")!.spentPicos;
    assert.equal(spent(), usdToPicos("0.25"), "the replay counts the finished call, and leaves the running one to its settle");
    await engine.settle(settled("running", "0.5"));
    assert.equal(spent(), usdToPicos("0.75"));
  });

  it("a replay that fails leaves no team call admitted on the half-counted caps, saying why and what to do", async () => {
    const spent = settled("spent", "0.9");
    let readable = true;
    engine = await FolderTeamEngine.open({
      dir: root, team: "t", member: "me", machine: "box", writer: "aaaaaaaaaaaaaaaa", syncMs: 60_000, unavailable: "personalOnly",
      history: async function* () {
        if (!readable) throw new Error("EIO: i/o error, read");
        yield spent;
      },
      now: () => now, log: silentLogger(),
    });
    const caps = [{ id: "team-day", scope: "team" as const, window: "day" as const, limitUsd: 1 }];
    await engine.setCaps(caps, "UTC");
    readable = false; // the ledger's disk fails before team.json names another zone
    await assert.rejects(engine.setCaps(caps, "Asia/Tokyo"), /EIO/);
    const r = await engine.reserve({ callId: "next", modelId: NOVA, amount: usdToPicos("0.5"), now, capIds: ["team-day"] });
    // $0.90 of $1 spent: a $0.50 call must not pass on a figure the failed replay left at $0 (not even under personalOnly).
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.message, /counting team caps "team-day" from this machine's journal failed \(EIO: i\/o error, read\).*refused until the gateway restarts/);
  });
});

describe("team folder: admissions wait for the replay of fresh caps", () => {
  let root: string;
  const engines: FolderTeamEngine[] = [];
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-replaying-"));
    await mkdir(path.join(root, "t"));
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    await rm(root, { recursive: true, force: true });
  });

  const now = new Date();
  const at = now.toISOString();
  const settled = (id: string, usd: string): CallRecord => ({
    type: "settle", id, at, startedAt: at, user: "me", tool: "script", operation: "InvokeModel", modelId: NOVA, baseModelId: NOVA,
    usage: { ...ZERO_USAGE }, usageEstimated: false, costPicos: String(usdToPicos(usd)), worstCasePicos: String(usdToPicos(usd)), outcome: "ok", status: 200, latencyMs: 1, tags: {},
  });
  /** A replay that stops where the test says: before the journal (`before`), after it (`after`). */
  const gated = () => {
    let openBefore!: () => void;
    let openAfter!: () => void;
    let read!: () => void;
    let started!: () => void;
    const g = {
      on: false,
      /** Resolves once the replay has begun. */
      started: new Promise<void>((r) => (started = r)),
      begin: () => started(),
      before: new Promise<void>((r) => (openBefore = r)),
      after: new Promise<void>((r) => (openAfter = r)),
      /** Resolves once the replay has read the whole journal. */
      read: new Promise<void>((r) => (read = r)),
      openBefore: () => openBefore(),
      openAfter: () => openAfter(),
      done: () => read(),
    };
    return g;
  };
  const open = async (journal: CallRecord[], gate: ReturnType<typeof gated>) => {
    const e = await FolderTeamEngine.open({
      dir: root, team: "t", member: "me", machine: "box", writer: "aaaaaaaaaaaaaaaa", syncMs: 60_000, writeDelayMs: 0, unavailable: "block",
      history: async function* () {
        if (gate.on) {
          gate.begin();
          await gate.before;
        }
        yield* [...journal];
        if (gate.on) {
          gate.done();
          await gate.after;
        }
      },
      now: () => now, log: silentLogger(),
    });
    engines.push(e);
    return e;
  };
  const caps = [{ id: "m", scope: "team" as const, window: "month" as const, limitUsd: 1 }];
  const spent = (e: FolderTeamEngine) => e.status(now).find((c) => c.id === "m")!.spentPicos;

  it("$0.90 spent on a $1 cap, team.json's time zone changes: a $0.50 call asked during the replay is refused, and the spend file never drops the $0.90", async () => {
    const gate = gated();
    const e = await open([settled("a", "0.90")], gate);
    await e.setCaps(caps, "UTC");
    await e.syncNow();
    const ownFile = path.join(root, "t", "spend", (await readdir(path.join(root, "t", "spend")))[0]!);
    const published = async () => (JSON.parse(await readFile(ownFile, "utf8")).caps.m ?? {}) as Record<string, string>;
    assert.deepEqual(Object.values(await published()), [String(usdToPicos("0.90"))]);

    gate.on = true;
    const changed = e.setCaps(caps, "Europe/Paris");
    const asked = e.reserve({ callId: "x1", modelId: NOVA, amount: usdToPicos("0.5"), now, capIds: ["m"] });
    const synced = e.syncNow();
    // Let a write that does not wait for the replay happen (bounded: the file is read 20 times).
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(Object.values(await published()), [String(usdToPicos("0.90"))], "peers never see this machine's spend vanish");
    }
    gate.openBefore();
    gate.openAfter();
    await changed;
    const r = await asked;
    await synced;
    assert.equal(r.ok, false, "the $0.50 call would take the team to $1.40 of $1");
    assert.equal(spent(e), usdToPicos("0.90"));
    assert.deepEqual(Object.values(await published()), [String(usdToPicos("0.90"))]);
  });

  for (const order of ["before the replay reads its line", "after the replay read its line"]) {
    it(`a call no team cap held settles during the replay, ${order}: the fresh cap counts it once`, async () => {
      const journal = [settled("a", "0.10")];
      const gate = gated();
      const e = await open(journal, gate);
      await e.setCaps([], "UTC");
      gate.on = true;
      const call = settled("x1", "0.30");
      journal.push(call); // its settle line is in the journal before the gateway tells the team store
      const changed = e.setCaps(caps, "UTC"); // a team cap that applies to the running call arrives
      await gate.started;
      if (order.startsWith("before")) {
        await e.settle(call);
        gate.openBefore();
      } else {
        gate.openBefore();
        await gate.read;
        await e.settle(call);
      }
      gate.openAfter();
      await changed;
      assert.equal(spent(e), usdToPicos("0.40"), "$0.10 before and the $0.30 call, once");
      await e.syncNow();
      const file = (await readdir(path.join(root, "t", "spend")))[0]!;
      assert.deepEqual(Object.values(JSON.parse(await readFile(path.join(root, "t", "spend", file), "utf8")).caps.m), [String(usdToPicos("0.40"))], "the spend file says the same");
    });
  }
});
