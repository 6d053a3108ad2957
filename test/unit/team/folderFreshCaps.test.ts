// A team cap added to the folder store (or a new time zone) while this machine's calls run: they count
// on it once, whether their settle lines are in the journal the new cap's replay reads or come after it.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
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
});
