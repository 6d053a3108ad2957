// A team store whose replay of fresh caps failed: the spend of calls settled meanwhile still reaches the team's files.
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

describe("team folder: a failed replay of fresh caps", () => {
  let root: string;
  let engine: FolderTeamEngine | undefined;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-failed-replay-"));
    await mkdir(path.join(root, "t"));
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

  it("publishes a team call that settles while the replay runs and then fails: peers count its spend", async () => {
    const journal = [settled("before", "0.10")];
    let failing = false;
    let started!: () => void;
    const replayStarted = new Promise<void>((r) => (started = r));
    let fail!: () => void;
    const failNow = new Promise<void>((r) => (fail = r));
    engine = await FolderTeamEngine.open({
      dir: root, team: "t", member: "me", machine: "box", writer: "aaaaaaaaaaaaaaaa", syncMs: 60_000, writeDelayMs: 0, unavailable: "block",
      history: async function* () {
        if (failing) {
          started();
          await failNow;
          throw new Error("EIO: i/o error, read");
        }
        yield* [...journal];
      },
      now: () => now, log: silentLogger(),
    });
    const caps = [{ id: "m", scope: "team" as const, window: "month" as const, limitUsd: 5 }];
    await engine.setCaps(caps, "UTC");
    const r = await engine.reserve({ callId: "running", modelId: NOVA, amount: usdToPicos("1"), now, capIds: ["m"] });
    assert.equal(r.ok, true);

    failing = true;
    const changed = engine.setCaps(caps, "Europe/Paris"); // every cap is counted again in the new zone
    await replayStarted;
    const call = settled("running", "0.30");
    journal.push(call); // journaled here, then the gateway tells the team store
    await engine.settle(call);
    fail();
    await assert.rejects(changed, /EIO/);
    await engine.syncNow();

    const dir = path.join(root, "t", "spend");
    const file = JSON.parse(await readFile(path.join(dir, (await readdir(dir))[0]!), "utf8")) as { caps: Record<string, Record<string, string>> };
    const published = Object.values(file.caps.m ?? {}).reduce((sum, v) => sum + BigInt(v), 0n);
    assert.ok(published >= usdToPicos("0.40"), `the team's file holds this machine's $0.10 and the $0.30 settled during the failed replay; it says ${published} picos`);
  });
});
