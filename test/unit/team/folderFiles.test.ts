import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../../server/log";
import { usdToPicos } from "../../../server/metering/money";
import { FolderTeamEngine } from "../../../server/team/folderStore";
import { readRegularFile, SPEND_FILE_MAX_BYTES } from "../../../server/team/regularFile";
import { toSpendFile, type SpendTotals } from "../../../server/team/spendFile";

const mkfifo = (file: string) => execFileSync("mkfifo", [file]);

describe("team folder: only regular files within a size limit are read", function () {
  // A FIFO opened without O_NONBLOCK waits for a writer forever: the test fails here instead of hanging.
  this.timeout(10_000);
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-files-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("reads a regular file; says absent, or refuses a symlink, FIFO, directory or oversized file with the reason", async () => {
    const ok = path.join(root, "ok.json");
    await writeFile(ok, "{}");
    assert.deepEqual(await readRegularFile(ok, 10), { kind: "text", text: "{}" });
    assert.deepEqual(await readRegularFile(path.join(root, "none.json"), 10), { kind: "absent" });
    await symlink(ok, path.join(root, "link.json"));
    await mkfifo(path.join(root, "fifo.json"));
    await mkdir(path.join(root, "dir.json"));
    await writeFile(path.join(root, "big.json"), "x".repeat(11));
    const why = async (name: string) => {
      const r = await readRegularFile(path.join(root, name), 10);
      return r.kind === "refused" ? r.why : `read as ${r.kind}`;
    };
    assert.match(await why("link.json"), /not a regular file \(a symbolic link\)/);
    assert.match(await why("fifo.json"), /not a regular file \(a FIFO\)/);
    assert.match(await why("dir.json"), /not a regular file \(a directory\)/);
    assert.match(await why("big.json"), /11 bytes, over the 10-byte limit/);
    const dev = await readRegularFile("/dev/zero", 10);
    assert.deepEqual(dev, { kind: "refused", why: "not a regular file (a device)" });
  });

  describe("FolderTeamEngine", () => {
    const writer = "aaaaaaaaaaaaaaaa";
    const day = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    let engine: FolderTeamEngine | undefined;
    let lines: string[];
    const open = async (dir: string) => {
      lines = [];
      engine = await FolderTeamEngine.open({
        dir, team: "t", member: "me", machine: "box", writer, syncMs: 60_000, unavailable: "block",
        history: async function* () {}, now: () => new Date(), log: createLogger((l, line) => lines.push(`${l} ${line}`), "warn"),
      });
      await engine.setCaps([{ id: "team-day", scope: "team", window: "day", limitUsd: 1 }], "UTC");
      return engine;
    };
    const peerFile = (spentUsd: string, pad = 0) => {
      const totals: SpendTotals = new Map([["team-day", new Map([[day(new Date()).toISOString(), usdToPicos(spentUsd)]])]]);
      return JSON.stringify(toSpendFile({ writer: "bbbbbbbbbbbbbbbb", member: "peer", machine: "other" }, totals, new Date())) + " ".repeat(pad);
    };
    const spent = () => engine!.status(new Date()).find((c) => c.id === "team-day")!.spentPicos;
    afterEach(async () => {
      await engine?.close();
      engine = undefined;
    });

    it("starts and syncs past a FIFO named team.json and FIFOs, links and directories named *.json among the spend files", async () => {
      const spendDir = path.join(root, "t", "spend");
      await mkdir(spendDir, { recursive: true });
      await writeFile(path.join(root, "real.json"), peerFile("0.5"));
      mkfifo(path.join(root, "t", "team.json"));
      mkfifo(path.join(spendDir, "peer@fifo-1.json"));
      await symlink(path.join(root, "real.json"), path.join(spendDir, "peer@link-1.json"));
      await mkdir(path.join(spendDir, "peer@dir-1.json"));
      await writeFile(path.join(spendDir, "peer@other-2.json"), peerFile("0.25"));
      await open(root);
      await engine!.syncNow();
      assert.equal(engine!.teamFileText(), undefined);
      assert.equal(spent(), usdToPicos("0.25"), "only the regular spend file counts");
      const log = lines.join("\n");
      assert.match(log, /not reading .*\/t\/team\.json: not a regular file \(a FIFO\)/);
      assert.match(log, /not reading .*peer@fifo-1\.json: not a regular file \(a FIFO\)/);
      assert.match(log, /not reading .*peer@link-1\.json: not a regular file \(a symbolic link\)/);
      assert.match(log, /not reading .*peer@dir-1\.json: not a regular file \(a directory\)/);
      await engine!.syncNow();
      assert.equal(lines.length, 4, "each refusal is logged once, not at every sync");
    });

    it("an oversized or invalid peer spend file keeps that peer's last good figures", async () => {
      const spendDir = path.join(root, "t", "spend");
      await mkdir(spendDir, { recursive: true });
      const peer = path.join(spendDir, "peer@other-2.json");
      await writeFile(peer, peerFile("0.75"));
      await open(root);
      assert.equal(spent(), usdToPicos("0.75"));
      await writeFile(peer, peerFile("0", SPEND_FILE_MAX_BYTES));
      await engine!.syncNow();
      assert.equal(spent(), usdToPicos("0.75"), "an oversized file does not wipe the peer's spend");
      assert.match(lines.join("\n"), /not reading .*peer@other-2\.json: \d+ bytes, over the 262144-byte limit; its last good figures still count/);
      await writeFile(peer, "{ torn");
      await engine!.syncNow();
      assert.equal(spent(), usdToPicos("0.75"), "nor does an invalid one");
      await writeFile(peer, peerFile("0.8"));
      await engine!.syncNow();
      assert.equal(spent(), usdToPicos("0.8"));
    });

    it("a peer's rewrite whose inode, size and whole-second mtime repeat (a share whose clock runs ahead) is read at the next sync", async () => {
      const spendDir = path.join(root, "t", "spend");
      await mkdir(spendDir, { recursive: true });
      const peer = path.join(spendDir, "peer@other-2.json");
      const second = Math.floor(Date.now() / 1000) + 60; // the server's clock, a minute ahead, in whole seconds
      const put = async (usd: string) => {
        await writeFile(peer, peerFile(usd)); // in place: the inode stays, as one reused by write-then-rename does
        await utimes(peer, second, second);
        const st = await stat(peer);
        return `${st.ino}:${st.mtimeMs}:${st.size}`;
      };
      const first = await put("0.25");
      await open(root);
      assert.equal(spent(), usdToPicos("0.25"));
      assert.equal(await put("0.75"), first, "the rewrite has the same inode, mtime and size");
      await engine!.syncNow();
      assert.equal(spent(), usdToPicos("0.75"), "the peer's rewrite counts, without waiting for its next write");
      const r = await engine!.reserve({ callId: "x", modelId: "amazon.nova-lite-v1:0", amount: usdToPicos("0.5"), now: new Date(), capIds: ["team-day"] });
      assert.equal(r.ok, false, "$0.75 + $0.50 passes the $1 cap");
    });

    it("an oversized team.json is refused and the last good one stays", async () => {
      await mkdir(path.join(root, "t"), { recursive: true });
      const good = JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 1 }] });
      await writeFile(path.join(root, "t", "team.json"), good);
      await open(root);
      assert.equal(engine!.teamFileText(), good);
      const changes: (string | undefined)[] = [];
      engine!.onTeamFile((text) => changes.push(text));
      await writeFile(path.join(root, "t", "team.json"), JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 0.001 }] }) + " ".repeat(1024 * 1024));
      await engine!.syncNow();
      assert.ok(engine!.teamFileText() === good, `the last good team.json stays (now ${engine!.teamFileText()?.length} chars)`);
      assert.deepEqual(changes, [], "no change reaches the runtime (not even a removal)");
      assert.match(lines.join("\n"), /not reading .*\/t\/team\.json: \d+ bytes, over the 1048576-byte limit; the last good team\.json stays in force/);
    });
  });
});
