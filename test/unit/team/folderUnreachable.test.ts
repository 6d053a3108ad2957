// The shared team folder when it is not there (a share not mounted, an empty mount point, one
// unmounted while the gateway runs): calls are refused under team.json's caps, saying what to do.
import assert from "node:assert/strict";
import fsp, { access, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Config } from "../../../server/config/schema";
import { silentLogger } from "../../../server/log";
import { usdToPicos } from "../../../server/metering/money";
import { FolderTeamEngine } from "../../../server/team/folderStore";
import { TeamRuntime } from "../../../server/team/runtime";
import { toSpendFile } from "../../../server/team/spendFile";

const NOVA = "amazon.nova-lite-v1:0";
const exists = (p: string) => access(p).then(() => true, () => false);

describe("team folder: missing or unmounted", () => {
  let root: string;
  let share: string;
  let runtime: TeamRuntime | undefined;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-unmounted-"));
    share = path.join(root, "mnt-team-share");
  });
  afterEach(async () => {
    await runtime?.close();
    runtime = undefined;
    await rm(root, { recursive: true, force: true });
  });

  const open = async () => {
    runtime = await TeamRuntime.open({
      config: { teamLedger: share, team: "t", caps: [] } as unknown as Config,
      ledgerDir: root, user: "me", history: async function* () {}, log: silentLogger(), now: () => new Date(),
    });
    const eff = runtime.effective({ caps: [], pricing: {} } as unknown as Config, "me");
    await runtime.store.setCaps(eff.team, eff.teamTimeZone);
    return runtime;
  };
  const sync = () => (runtime!.store as unknown as { syncNow(): Promise<void> }).syncNow();

  for (const variant of ["a share folder that is missing", "an empty mount point"]) {
    it(`${variant} at start: every call is refused, saying to mount the share or create the team folder, and nothing is created on the local disk`, async () => {
      if (variant === "an empty mount point") await mkdir(share);
      const rt = await open();
      assert.equal(rt.store.teamFileRead(), false, "team.json was never read: the team's caps are unknown");
      const why = rt.unusable();
      assert.ok(why, "calls are refused (teamUnavailable: block)");
      assert.match(why, /team ledger folder .*mnt-team-share\/t does not exist: mount the team share at .*mnt-team-share .*or, to start a new team, create the folder .*mnt-team-share\/t/);
      assert.equal(await exists(path.join(share, "t")), false, "no private empty team is made on the local disk");
    });
  }

  it("the share mounted later: team.json's caps apply and calls are admitted under them", async () => {
    const rt = await open();
    assert.ok(rt.unusable());
    await mkdir(path.join(share, "t"), { recursive: true });
    await writeFile(path.join(share, "t", "team.json"), JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 1 }] }));
    await sync();
    assert.equal(rt.unusable(), undefined);
    assert.deepEqual(rt.effective({ caps: [], pricing: {} } as unknown as Config, "me").team.map((c) => c.id), ["team-day"]);
    assert.equal(await exists(path.join(share, "t", "spend")), true, "the gateway makes spend/ inside the team folder the lead created");
  });

  it("unmounted while running: team.json's caps stay in force and calls they apply to are refused as unreachable (not admitted as if team.json were removed)", async () => {
    await mkdir(path.join(share, "t"), { recursive: true });
    await writeFile(path.join(share, "t", "team.json"), JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 1 }] }));
    const rt = await open();
    assert.equal(rt.unusable(), undefined);
    await sync(); // this gateway's spend file written: nothing left to write when the share goes
    await rename(share, `${share}.away`);
    await mkdir(share); // the empty mount point left behind
    await sync();
    const eff = rt.effective({ caps: [], pricing: {} } as unknown as Config, "me");
    assert.deepEqual(eff.team.map((c) => c.id), ["team-day"], "the last team.json read stays in force");
    const capIds = rt.store.applicable({ modelId: NOVA });
    assert.deepEqual(capIds, ["team-day"]);
    const r = await rt.store.reserve({ callId: "c1", modelId: NOVA, amount: usdToPicos("0.01"), now: new Date(), capIds });
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.message, /team ledger .* is unreachable/);
  });
});

describe("team folder: a peer's spend file that cannot be read (an I/O error)", () => {
  let root: string;
  let engine: FolderTeamEngine | undefined;
  const realOpen = fsp.open;
  let failures = 0;
  let failing = "";
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-eio-"));
    await mkdir(path.join(root, "t", "spend"), { recursive: true });
    failing = path.join(root, "t", "spend", "bob@pc-bbbbbbbbbbbb.json");
    // The next `failures` opens of bob's file fail as a network share's can (EIO).
    (fsp as { open: unknown }).open = async (file: unknown, ...rest: unknown[]) => {
      if (String(file) === failing && failures > 0) {
        failures--;
        throw Object.assign(new Error(`EIO: i/o error, open '${String(file)}'`), { code: "EIO" });
      }
      return (realOpen as (...a: unknown[]) => unknown)(file, ...rest);
    };
  });
  afterEach(async () => {
    (fsp as { open: unknown }).open = realOpen;
    await engine?.close();
    engine = undefined;
    await rm(root, { recursive: true, force: true });
  });

  const now = new Date();
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const putBob = async (usd: string) => {
    const tmp = `${failing}.tmp`;
    await writeFile(tmp, JSON.stringify(toSpendFile({ writer: "bbbbbbbbbbbbbbbb", member: "bob", machine: "pc" }, new Map([["m", new Map([[month.toISOString(), usdToPicos(usd)]])]]), now)));
    await rename(tmp, failing);
  };
  const open = async () => {
    engine = await FolderTeamEngine.open({
      dir: root, team: "t", member: "me", machine: "box", writer: "aaaaaaaaaaaaaaaa", syncMs: 60_000, unavailable: "block",
      history: async function* () {}, now: () => now, log: silentLogger(),
    });
    await engine.setCaps([{ id: "m", scope: "team", window: "month", limitUsd: 1 }], "UTC");
    return engine;
  };
  const reserve = (e: FolderTeamEngine, id: string, usd: string) => e.reserve({ callId: id, modelId: NOVA, amount: usdToPicos(usd), now, capIds: ["m"] });
  const spent = (e: FolderTeamEngine) => e.status(now)[0]!.spentPicos;

  it("with no earlier good copy: calls are refused as the team ledger unreachable, naming the file; once it reads, bob's $0.90 counts and a $0.50 call on the $1 cap is refused", async () => {
    await putBob("0.90");
    failures = 1;
    const e = await open();
    const during = await reserve(e, "x1", "0.50");
    assert.equal(during.ok, false, "bob's spend is unknown: not admitted as if he had spent nothing");
    assert.match(during.ok ? "" : during.message, /is unreachable.*cannot read .*bob@pc-bbbbbbbbbbbb\.json \(EIO/);
    await e.syncNow(); // the error has cleared: the file is read again, though bob has not written since
    assert.equal(spent(e), usdToPicos("0.90"));
    const after = await reserve(e, "x2", "0.50");
    assert.equal(after.ok, false);
    assert.match(after.ok ? "" : after.message, /cap "m"/);
  });

  it("with an earlier good copy: it keeps counting, and bob's rewrite is read once the error clears, though he writes no more", async () => {
    await putBob("0.05"); // a size other than the rewrite's: the rewrite is seen as changed
    const e = await open();
    assert.equal(spent(e), usdToPicos("0.05"));
    await putBob("0.90");
    failures = 1;
    await e.syncNow();
    assert.equal(spent(e), usdToPicos("0.05"), "the last good figures still count");
    await e.syncNow();
    assert.equal(spent(e), usdToPicos("0.90"));
    assert.equal((await reserve(e, "x1", "0.50")).ok, false);
  });
});
