// state.json (the checkpoint) is replaced durably: a power cut leaves the old file or the new one, never an empty or zeroed one (which costs a full replay of the journal at the next start).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, realpath, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/** strace can trace a child here (installed, and ptrace allowed). */
function canTrace(): boolean {
  const r = spawnSync("strace", ["-f", "-qq", "-e", "trace=none", "-o", "/dev/null", process.execPath, "-e", "0"]);
  return r.status === 0;
}

describe("state.json: durable replacement", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(path.join(os.tmpdir(), "bb-state-durable-"))); // strace -y names files by their real path
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a write fsyncs the new text before renaming it over state.json, and fsyncs the folder after the rename", async function () {
    this.timeout(60_000); // a tsx child under strace starts slowly
    if (process.platform !== "linux" || !canTrace()) this.skip();
    const trace = path.join(dir, "trace.txt");
    const ledger = path.join(dir, "ledger");
    const r = spawnSync(
      "strace",
      ["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-o", trace, process.execPath, "--import", "tsx", path.join(__dirname, "checkpointDurability-child.ts"), ledger],
      { cwd: path.join(__dirname, "../../.."), encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const lines = (await readFile(trace, "utf8")).split("\n");
    const temp = path.join(ledger, ".state.json.tmp");
    const state = path.join(ledger, "state.json");
    const synced = (file: string) => lines.findIndex((l) => /\bf(data)?sync\(/.test(l) && l.includes(`<${file}>`) && / = 0$/.test(l));
    const renamed = lines.findIndex((l) => /rename/.test(l) && l.includes(`"${temp}"`) && l.includes(`"${state}"`) && / = 0$/.test(l));
    assert.ok(renamed >= 0, `no rename of the temp file over state.json in:\n${lines.join("\n")}`);
    const tempSynced = synced(temp);
    assert.ok(tempSynced >= 0 && tempSynced < renamed, `the new text is not fsynced before the rename:\n${lines.join("\n")}`);
    const dirSynced = lines.findIndex((l, i) => i > renamed && /\bfsync\(/.test(l) && l.includes(`<${ledger}>`) && / = 0$/.test(l));
    assert.ok(dirSynced > renamed, `the folder is not fsynced after the rename:\n${lines.join("\n")}`);
    assert.equal(JSON.parse(await readFile(state, "utf8")).version, 1);
  });
});
