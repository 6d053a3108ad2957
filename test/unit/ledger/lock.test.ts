/** The ledger lock: one winner when several take over a stale lock, and stale means gone, rebooted or another process, never another machine. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import fsp, { mkdtemp, readFile, readdir, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LedgerLocked, ledgerOwner, lockLedger } from "../../../server/ledger/lock";

/** A pid that was just in use and is no longer: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

const linux = process.platform === "linux";
/** Boot ids and start times come from /proc: elsewhere the test is skipped, saying why; in CI (Linux) it must run. */
function requireLinux(ctx: Mocha.Context): void {
  if (linux) return;
  if (process.env.CI === "true") assert.fail(`this test reads /proc (Linux only) and CI must not skip it; this is ${process.platform}`);
  console.log(`      skipped: reads /proc, and this is ${process.platform}`);
  ctx.skip();
}

describe("ledger/lock", () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-lock-"));
    file = path.join(dir, "gateway.lock");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when several take over one stale lock at once, exactly one wins and its fresh lock survives", async () => {
    // A slow disk for the later takers: each removal of the lock file by name lands a little later
    // than the previous one, so a taker that judged the lock stale acts after another took it.
    const realRm = fsp.rm;
    let removals = 0;
    (fsp as { rm: typeof fsp.rm }).rm = async (target, options) => {
      if (target === file) await new Promise((r) => setTimeout(r, 40 * removals++));
      return realRm(target, options);
    };
    try {
      await takeOverRounds();
    } finally {
      (fsp as { rm: typeof fsp.rm }).rm = realRm;
    }
  });

  /** The claim a taker of the stale lock `text` makes first (lock.ts: named after that exact lock). */
  const firstClaim = (text: string) => `${file}.takeover-${createHash("sha256").update(text).digest("hex").slice(0, 16)}-0`;

  it("a take-over claim being written (still empty) is not passed over: the stale lock is left to that taker", async () => {
    // Passing over a claim read before its claimer had written it let two takers both win (seen
    // about once in 25 runs of the test above). Claims are linked into place complete now; an
    // empty one (an exclusive create on a file system without hard links) is a taker at work.
    const stale = `${await deadPid()}\n`;
    await writeFile(file, stale);
    await writeFile(firstClaim(stale), "");
    await assert.rejects(lockLedger(dir), LedgerLocked);
    assert.equal(await readFile(file, "utf8"), stale, "the lock was not taken over under the other taker");
  });

  it("an empty claim left for longer than a take-over takes (its taker died writing it) is passed over", async () => {
    const stale = `${await deadPid()}\n`;
    await writeFile(file, stale);
    await writeFile(firstClaim(stale), "");
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(firstClaim(stale), longAgo, longAgo);
    const lock = await lockLedger(dir);
    assert.match(await readFile(file, "utf8"), new RegExp(`^${process.pid}\\n`));
    await lock.release();
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith("gateway.lock")), [], "no lock, claim or temp file left");
  });

  async function takeOverRounds(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      await writeFile(file, `${await deadPid()}\n`);
      const takers = await Promise.allSettled([lockLedger(dir), lockLedger(dir), lockLedger(dir)]);
      const won = takers.flatMap((t) => (t.status === "fulfilled" ? [t.value] : []));
      const lost = takers.flatMap((t) => (t.status === "rejected" ? [t.reason as Error] : []));
      assert.equal(won.length, 1, `round ${round}: ${won.length} takers think they hold the lock`);
      for (const err of lost) assert.ok(err instanceof LedgerLocked, `round ${round}: ${err.message}`);
      // The winner's lock is the one in place: it advertises into it, and another taker is refused.
      await won[0]!.advertise("http://127.0.0.1:4321");
      const owner = await ledgerOwner(dir);
      assert.equal(owner?.pid, process.pid);
      assert.equal(owner?.url, "http://127.0.0.1:4321");
      await assert.rejects(lockLedger(dir), LedgerLocked);
      await won[0]!.release();
      assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith("gateway.lock")), [], `round ${round}: no lock, claim or temp file left`);
    }
  }

  it("a lock naming a live process it cannot tell from the gateway that wrote it (no start time, as on macOS and Windows): refused, naming the lock file and saying to remove it if that pid is not a gateway", async () => {
    const unrelated = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
    try {
      // Left by a gateway that crashed where /proc tells no start time; its pid now runs something else.
      await writeFile(file, `${unrelated.pid}\nhttp://127.0.0.1:8777\nid=left\nhost=${os.hostname().replace(/\s+/g, "")}\n`, { mode: 0o600 });
      const err = await lockLedger(dir).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof LedgerLocked, String(err));
      assert.ok(err.message.includes(`the ledger in ${dir} is in use by another Bedrock Budget gateway (pid ${unrelated.pid})`), err.message);
      assert.ok(err.message.includes(file), `names the lock file: ${err.message}`);
      assert.match(err.message, new RegExp(`if pid ${unrelated.pid} is not a Bedrock Budget gateway.*remove ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "i"));
    } finally {
      unrelated.kill();
    }
  });

  it("takes over a lock written in another boot even though its pid is alive now", async function () {
    requireLinux(this);
    // The parent process is alive; the lock says it was another boot's process with that pid.
    await writeFile(file, `${process.ppid}\n\nboot=00000000-0000-4000-8000-000000000000\nstart=1\n`);
    const lock = await lockLedger(dir);
    assert.match(await readFile(file, "utf8"), new RegExp(`^${process.pid}\\n`));
    await lock.release();
  });

  it("a lock from another machine (a ledger on a network share) is never taken over, even with its pid gone here", async () => {
    // Before, its boot id differed from this one's, so it read as left by a reboot and was taken
    // over: two machines each admitted calls up to every cap of one ledger.
    const dead = await deadPid();
    for (const lockText of [
      `${dead}\nhttp://127.0.0.1:8787\nboot=00000000-0000-4000-8000-000000000000\nstart=1\nmachine=0123456789abcdef0123456789abcdef\nhost=build-07\n`,
      `${dead}\nhttp://127.0.0.1:8787\nhost=build-07\n`, // no machine id there: told by its host name
    ]) {
      await writeFile(file, lockText);
      await assert.rejects(lockLedger(dir), (err: Error) => {
        assert.ok(err instanceof LedgerLocked);
        assert.equal(err.host, "build-07");
        assert.match(err.message, /on another machine \("build-07", pid \d+\), and this machine cannot tell whether it still runs/);
        assert.ok(err.message.includes(`remove ${file}`), err.message);
        return true;
      });
      assert.equal(await readFile(file, "utf8"), lockText, "the other machine's lock is left as it was");
      assert.equal(await ledgerOwner(dir), undefined, "its URL is that machine's loopback: nothing here to follow");
    }
  });

  it("names this machine in its lock, and takes over this machine's stale lock", async () => {
    const lock = await lockLedger(dir);
    const mine = await readFile(file, "utf8");
    assert.ok(mine.includes(`\nhost=${os.hostname()}\n`), mine);
    await lock.release();
    // The same lock, left by a process of this machine that is gone, is stale.
    await writeFile(file, mine.replace(/^\d+/, String(await deadPid())));
    const again = await lockLedger(dir);
    assert.match(await readFile(file, "utf8"), new RegExp(`^${process.pid}\\n`));
    await again.release();
  });

  it("takes over a lock whose pid now belongs to another process (same boot, another start time)", async function () {
    requireLinux(this);
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    await writeFile(file, `${process.ppid}\n\nboot=${boot}\nstart=1\n`);
    const lock = await lockLedger(dir);
    assert.match(await readFile(file, "utf8"), new RegExp(`^${process.pid}\\n`));
    await lock.release();
    // The lock of the live process itself (its real start time) is respected.
    const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    await writeFile(file, `${process.ppid}\n\nboot=${boot}\nstart=${start}\n`);
    await assert.rejects(lockLedger(dir), (err: Error) => err instanceof LedgerLocked && err.pid === process.ppid);
  });
});
