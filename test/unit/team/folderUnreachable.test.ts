// The shared team folder when it is not there (a share not mounted, an empty mount point, one
// unmounted while the gateway runs): calls are refused under team.json's caps, saying what to do.
import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Config } from "../../../server/config/schema";
import { silentLogger } from "../../../server/log";
import { usdToPicos } from "../../../server/metering/money";
import { TeamRuntime } from "../../../server/team/runtime";

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
