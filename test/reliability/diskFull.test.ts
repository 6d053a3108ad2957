/**
 * A full disk and a read-only ledger (a small tmpfs mount, filled, then remounted read-only): calls
 * are refused with an error naming the problem, nothing reaches Bedrock and nothing is charged
 * wrongly, and calls succeed again once space returns or the ledger is writable again.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { InvokeModelCommand, type BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, CREDENTIALS } from "../support/harness";
import { cleanup, decimalToPicos, GatewayProcess, HAIKU_3, requireCapability, sdkClient, settledCalls, tempDir } from "./support";
import { fillDisk } from "../support/fillDisk";

/** Runs a command; its error text, or undefined when it succeeded. */
function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    return undefined;
  } catch (err) {
    return `${cmd} ${args.join(" ")}: ${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim()}`;
  }
}

describe("reliability: disk full and a read-only ledger", function () {
  this.timeout(60_000);
  const SIZE = 4 * 1024 * 1024;
  let dir: string;
  let mnt: string;
  let mounted = false;
  let fake: FakeBedrock;
  let gateway: GatewayProcess | undefined;
  let client: BedrockRuntimeClient;

  before(async function () {
    dir = await tempDir("disk");
    mnt = path.join(dir, "mnt");
    execFileSync("mkdir", ["-p", mnt]);
    const why = process.getuid?.() !== 0 ? "mounting a small tmpfs for the ledger needs root" : tryRun("mount", ["-t", "tmpfs", "-o", `size=${SIZE}`, "tmpfs", mnt]);
    mounted = why === undefined;
    requireCapability(this, mounted, why ?? "");
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    gateway = await GatewayProcess.start({
      dir, ledgerDir: path.join(mnt, "ledger"), upstream: fake.url, config: { caps: [{ id: "month", window: "month", limitUsd: 1000 }] },
    });
    client = sdkClient(gateway.url);
  });
  after(async () => {
    client?.destroy();
    await gateway?.stop();
    await fake?.close();
    if (mounted) {
      tryRun("mount", ["-o", "remount,rw", mnt]);
      const failed = tryRun("umount", [mnt]);
      if (failed) assert.equal(tryRun("umount", ["-l", mnt]), undefined, failed);
    }
    await cleanup(dir);
  });

  const call = () =>
    client.send(new InvokeModelCommand({ modelId: HAIKU_3, body: anthropicBody("hello", 100) })).then(
      () => undefined,
      (err: Error) => err,
    );

  /** The status's spend is exactly what the journal holds, and nothing stays reserved. */
  async function chargedRight(): Promise<void> {
    const status = await gateway!.idle();
    const journal = (await settledCalls(gateway!.ledgerDir)).reduce((sum, c) => sum + BigInt(c.costPicos), 0n);
    assert.equal(decimalToPicos(status.caps[0]!.spentExact), journal, "spend shown = spend journaled");
  }

  it("a full disk: a call is refused naming the problem, nothing is forwarded; once space returns, calls succeed", async () => {
    assert.equal(await call(), undefined, "a call succeeds before the disk fills");
    const filler = path.join(mnt, "filler");
    fillDisk(filler, SIZE);
    // The journal's last page may still have room for a few lines: call until the ledger cannot grow.
    let refused: Error | undefined;
    let answered = 0;
    for (let i = 0; i < 20 && !refused; i++) {
      const hits = fake.hits.length;
      refused = await call();
      if (refused) assert.equal(fake.hits.length, hits, `the refused call did not reach Bedrock (${refused.name}: ${refused.message})`);
      else answered++;
    }
    assert.ok(refused, `20 calls went through on a full disk (${answered} answered)`);
    assert.match(refused.message, /no space|ENOSPC|disk (is )?full/i, `the error names the problem: ${refused.name}: ${refused.message}`);
    // Retryable: the condition clears once space returns (SDKs retry a 503, and never forward it meanwhile).
    assert.equal(refused.name, "ServiceUnavailableException");
    assert.equal((refused as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 503, refused.message);
    assert.ok(gateway!.alive(), `the gateway stays up:\n${gateway!.stderr().slice(-2000)}`);
    // A retry loop meets the same refusal every time: the log says so once a minute, not once per call.
    for (let i = 0; i < 3; i++) assert.ok(await call(), "still refused while the disk is full");
    const said = gateway!.stderr().split("\n").filter((l) => l.includes("refused a call"));
    assert.equal(said.length, 1, gateway!.stderr().slice(-2000));

    rmSync(filler);
    const hits = fake.hits.length;
    const after = await call();
    assert.equal(after, undefined, `a call succeeds once space returns: ${after?.name}: ${after?.message}`);
    assert.equal(fake.hits.length, hits + 1);
    await chargedRight();
  });

  // Linux refuses `remount,ro` (EBUSY) while the gateway holds the journal open for writing, so a
  // ledger turns read-only between runs: the gateway must refuse to serve on it, saying why.
  it("a read-only ledger: the gateway refuses to serve on it naming the problem, nothing is forwarded; once writable, calls succeed", async () => {
    rmSync(path.join(mnt, "filler"), { force: true }); // space back, whatever the test before left
    await gateway!.stop();
    client.destroy();
    const hits = fake.hits.length;
    assert.equal(tryRun("mount", ["-o", "remount,ro", mnt]), undefined);
    let remounted = false;
    try {
      const started = await gateway!.start().then(() => undefined, (err: Error) => err);
      assert.ok(started, "the gateway must not serve on a ledger it cannot write");
      assert.match(started.message, /read-only|EROFS/i, `the error names the problem: ${started.message}`);
      assert.equal(fake.hits.length, hits, "nothing reached Bedrock");

      assert.equal(tryRun("mount", ["-o", "remount,rw", mnt]), undefined);
      remounted = true;
      await gateway!.start();
      client = sdkClient(gateway!.url);
      const after = await call();
      assert.equal(after, undefined, `a call succeeds once the ledger is writable: ${after?.name}: ${after?.message}`);
      assert.equal(fake.hits.length, hits + 1);
      await chargedRight();
    } finally {
      if (!remounted) tryRun("mount", ["-o", "remount,rw", mnt]);
    }
  });
});
