/**
 * The gateway's port at a take-over: never free while a gateway holds the ledger. Freed there,
 * another local process could bind 127.0.0.1:<port> and receive the SigV4-signed calls of the
 * terminals routed to it (replayable to AWS for minutes) and answer them as it likes.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { checkSettings } from "../../server/config/settingsCheck";
import { startGateway } from "../../server/gateway/gateway";
import { PHASE_HEADER } from "../../server/gateway/listener";
import { LedgerLocked, lockFileOf, lockLedger, type LedgerLock } from "../../server/ledger/lock";
import { GatewayHost, type HostEvents } from "../../server/lsp/gatewayHost";
import type { Logger } from "../../server/log";
import type { GatewayStateNotification } from "../../server/protocol";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import { freePort } from "../support/ports";

const quiet = { error() {}, warn() {}, info() {}, debug() {}, setLevel() {} } as unknown as Logger;

describe("take-over: the gateway's port is never free while a gateway holds the ledger", function () {
  this.timeout(60_000);
  let dir: string;
  let fake: FakeBedrock;
  const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-takeover-port-"));
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
  });
  afterEach(async () => {
    restoreEnv("AWS_ACCESS_KEY_ID", savedEnv.id);
    restoreEnv("AWS_SECRET_ACCESS_KEY", savedEnv.secret);
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  function settings(port: number) {
    const { config } = checkSettings({ port, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "d", window: "day", limitUsd: 10 }] }, undefined);
    assert.ok(config);
    return config;
  }

  it("a starting gateway binds its port as soon as it holds the ledger and refuses calls (503) until it is ready, forwarding none", async () => {
    const port = await freePort();
    const config = settings(port);
    const ledger = path.join(dir, "ledger");
    await mkdir(ledger, { recursive: true, mode: 0o700 });
    // The price file as a FIFO: the start waits in its read (after locking the ledger) until the test writes it.
    const priceFile = path.join(ledger, "aws-prices.json");
    execFileSync("mkfifo", ["-m", "600", priceFile]);
    const started = startGateway({ config, log: quiet });
    let opened = false;
    try {
      await until("the ledger is locked", () => existsSync(lockFileOf(ledger)));
      await until("the port is bound while the gateway still opens", async () => (await bindPort(port)) === "in use");
      const refused = await post(port, `/model/${SONNET_45}/invoke`, anthropicBody("hi", 10));
      assert.equal(refused.status, 503, "refused with an answer the SDKs retry");
      assert.match(refused.body, /ServiceUnavailableException|starting/);
      assert.match(refused.body, /starting/);
      assert.equal(fake.hits.length, 0, "nothing forwarded before the gateway is ready");
      await writeFile(priceFile, JSON.stringify({ version: 1, source: "AWS Price List", fetchedAt: new Date().toISOString(), region: "us-east-1", rows: {}, missing: [] }));
      const gateway = await started;
      opened = true;
      try {
        assert.equal(gateway.port, port);
        const client = clientFor(gateway.url);
        try {
          const out = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("after", 100) }));
          assert.equal(out.$metadata.httpStatusCode, 200, "served once ready");
        } finally {
          client.destroy();
        }
      } finally {
        await gateway.close({ deadlineMs: 0 });
      }
    } finally {
      if (!opened) {
        // Unblock a start the test gave up on, so it ends (and releases the ledger).
        await writeFile(priceFile, "{}").catch(() => undefined);
        await started.then((g) => g.close({ deadlineMs: 0 }), () => undefined);
      }
    }
  });

  /**
   * A real take-over between two windows' hosts: the leader drains a hung call and stops, the
   * follower (made by `makeFollower`) takes the ledger and the port over, while another local
   * process tries to bind the port all along (`onBound` runs the moment it gets it). Both gateways
   * run in this process, so the lock file read at that moment tells who held the ledger then.
   * Resolves with the follower's address once it serves as leader.
   */
  async function takeOverWhileRacing(port: number, makeFollower: (events: HostEvents) => GatewayHost, onBound: () => void): Promise<string> {
    const config = settings(port);
    const states: GatewayStateNotification.Params[] = [];
    let onState = () => {};
    const leader = new GatewayHost(quiet, { state() {}, status() {}, call() {} });
    const follower = makeFollower({ state: (s) => (states.push(s), onState()), status() {}, call() {} });
    const client = clientFor(`http://127.0.0.1:${port}`);
    let racing = true;
    try {
      await leader.start(config);
      await follower.start(config);
      assert.equal(follower.follows, true);
      const reached = new Promise<void>((resolve) => fake.behave(() => (setImmediate(resolve), { kind: "hang" })));
      const hung = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hang", 100) })).then(() => undefined, (e: Error) => e);
      await reached;
      fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
      const racer = (async () => {
        while (racing) {
          if ((await bindPort(port, onBound)) === "error") break;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const from = states.length;
      const stopped = leader.stop({ deadlineMs: 1_000 });
      const led = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the follower did not take over")), 30_000);
        onState = () => {
          if (states.slice(from).some((s) => s.state === "ready" && s.role === "leader")) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      await stopped;
      await led;
      racing = false;
      await racer;
      await hung;
      assert.deepEqual(states.slice(from).filter((s) => s.state === "error"), [], "no error during the take-over");
      const out = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("after", 100) }));
      assert.equal(out.$metadata.httpStatusCode, 200, "the new leader serves");
      return follower.url ?? "";
    } finally {
      racing = false;
      client.destroy();
      await leader.stop();
      await follower.stop();
    }
  }

  it("during a take-over of a draining gateway, no other process can bind the port while the ledger is locked", async () => {
    const port = await freePort();
    const lockFile = lockFileOf(path.join(dir, "ledger"));
    const bindsWhileLocked: string[] = [];
    let binds = 0;
    const url = await takeOverWhileRacing(port, (events) => new GatewayHost(quiet, events), () => {
      binds++;
      if (existsSync(lockFile)) bindsWhileLocked.push(`bound at ${new Date().toISOString()} while ${lockFile} existed`);
    });
    assert.deepEqual(bindsWhileLocked, [], `the port was free while a gateway held the ledger (${binds} bind(s) in all)`);
    assert.equal(url, `http://127.0.0.1:${port}`, "the same port, so tools keep their endpoint");
  });

  it("the window taking over binds the port the moment the draining one frees it, not at its next look at the ledger", async () => {
    const port = await freePort();
    const lockFile = lockFileOf(path.join(dir, "ledger"));
    const freeAt: number[] = [];
    // It looks at a silent holder of the ledger only every 20 s: what wakes it is the lock's release.
    const url = await takeOverWhileRacing(port, (events) => new GatewayHost(quiet, events, [200, 500, 1_000], 15_000, 20_000), () => {
      if (!existsSync(lockFile)) freeAt.push(Date.now());
    });
    // The port is free from the old gateway's release of the ledger until the new one binds it:
    // moments, not the 20 s until its next look (another process trying then got it throughout).
    const span = freeAt.length === 0 ? 0 : freeAt[freeAt.length - 1]! - freeAt[0]!;
    assert.ok(span < 5_000, `the port was free for ${span} ms during the take-over (${freeAt.length} bind(s) by another process)`);
    assert.equal(url, `http://127.0.0.1:${port}`);
  });

  it("a window that finds the port taken by a gateway still starting (port bound, ledger not yet locked) follows it instead of reporting the port used by another program", async () => {
    const port = await freePort();
    const config = settings(port);
    const ledger = path.join(dir, "ledger");
    // The other gateway as it starts: its port bound first (answering 503, marked as a gateway of
    // ours starting), the ledger locked a moment later.
    const other = http.createServer((_req, res) => res.writeHead(503, { [PHASE_HEADER]: "starting", connection: "close" }).end());
    await new Promise<void>((resolve) => other.listen(port, "127.0.0.1", resolve));
    let lock: LedgerLock | undefined;
    const locking = new Promise<void>((resolve) => setTimeout(() => void lockLedger(ledger).then((l) => ((lock = l), resolve())), 100));
    try {
      const err = await startGateway({ config, log: quiet }).then(
        (g) => (void g.close({ deadlineMs: 0 }), undefined),
        (e: Error) => e,
      );
      assert.ok(err instanceof LedgerLocked, `refused as a ledger in use (the host follows it), not: ${String(err)}`);
    } finally {
      await locking;
      await lock?.release();
      await new Promise((resolve) => other.close(resolve));
    }
  });
});

/** Polls `check` every 5 ms, for up to 10 s. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Tries to bind 127.0.0.1:`port` as another program would; `onBound` runs the moment it is bound
 * (synchronously, before any other code of this process), then the port is let go.
 */
function bindPort(port: number, onBound: () => void = () => {}): Promise<"bound" | "in use" | "error"> {
  return new Promise((resolve) => {
    const other = net.createServer();
    other.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "EADDRINUSE" ? "in use" : "error"));
    other.listen(port, "127.0.0.1", () => {
      onBound();
      other.close(() => resolve("bound"));
    });
  });
}

function post(port: number, urlPath: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: urlPath, agent: false, headers: { "content-type": "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
