// A team.json nested a million levels deep, written by anyone who can write the team folder: the
// team ledger opens, and calls are refused naming team.json as invalid (it used to throw a stack
// overflow out of TeamRuntime.open, so the gateway did not start).
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Config } from "../../../server/config/schema";
import { silentLogger } from "../../../server/log";
import { TeamRuntime } from "../../../server/team/runtime";

describe("team folder: a team.json nested too deep for a recursive walk", () => {
  let root: string;
  let runtime: TeamRuntime | undefined;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-deep-"));
    await mkdir(path.join(root, "share", "t"), { recursive: true });
  });
  afterEach(async () => {
    await runtime?.close();
    runtime = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it("at start: the team ledger opens and every call is refused, naming team.json as invalid", async () => {
    const n = 400_000;
    await writeFile(path.join(root, "share", "t", "team.json"), `{"caps": ${"[".repeat(n)}${"]".repeat(n)}}`);
    runtime = await TeamRuntime.open({
      config: { teamLedger: path.join(root, "share"), team: "t", caps: [] } as unknown as Config,
      ledgerDir: root, user: "me", history: async function* () {}, log: silentLogger(), now: () => new Date(),
    });
    assert.match(runtime.unusable() ?? "", /team\.json in the team ledger .* cannot be used \(it is invalid: caps\[0\]: .*\), and no earlier valid version is in force/);
  });
});
