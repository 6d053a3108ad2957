/**
 * The gateway host's retries while its port is taken: one chain of attempts, however many times
 * the user restarts. Each restart used to start another endless chain beside the old ones, each
 * re-opening the gateway, probing the port and telling the editor of a new error.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { checkSettings } from "../../server/config/settingsCheck";
import { GatewayHost } from "../../server/lsp/gatewayHost";
import type { Logger } from "../../server/log";
import type { GatewayStateNotification } from "../../server/protocol";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import { freePort } from "../support/ports";

describe("gateway host: retries while the port is taken", function () {
  this.timeout(30_000);
  let dir: string;
  let squatter: http.Server;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-retry-"));
    // Not a gateway: another program holds the port.
    squatter = http.createServer((_req, res) => res.end("hi"));
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
  });
  afterEach(async () => {
    await new Promise((resolve) => squatter.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("restarts replace the pending retry instead of adding chains of attempts", async () => {
    const port = (squatter.address() as import("node:net").AddressInfo).port;
    const { config } = checkSettings({ port, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC" }, undefined);
    assert.ok(config);
    const quiet = { error() {}, warn() {}, info() {}, debug() {} } as unknown as Logger;
    let attempts = 0;
    const host = new GatewayHost(quiet, { state: (s) => void (s.state === "error" && attempts++), status() {}, call() {} }, [300]);
    try {
      await host.start(config);
      for (let i = 0; i < 4; i++) await host.restart(); // "Restart Gateway", four times
      attempts = 0;
      // One chain: an attempt every 300 ms at most, so at most ~7 in 2 s (each attempt takes time
      // too, which only lowers the count). Five chains made about five times as many.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assert.ok(attempts <= 8, `${attempts} failed attempts in 2 s: more than one chain of retries runs`);
      assert.ok(attempts >= 1, "it keeps retrying");
    } finally {
      await host.stop();
    }
  });
});

describe("gateway host: an orderly take-over while the serving window drains a call", function () {
  this.timeout(60_000);
  let dir: string;
  let fake: FakeBedrock;
  const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-takeover-"));
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

  it("the following window stays starting (never an error) while the serving one drains, then serves the same port", async () => {
    const port = await freePort();
    const { config } = checkSettings({ port, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "d", window: "day", limitUsd: 10 }] }, undefined);
    assert.ok(config);
    const quiet = { error() {}, warn() {}, info() {}, debug() {} } as unknown as Logger;
    const states: GatewayStateNotification.Params[] = [];
    let onState = () => {};
    const leader = new GatewayHost(quiet, { state() {}, status() {}, call() {} });
    const follower = new GatewayHost(quiet, { state: (s) => (states.push(s), onState()), status() {}, call() {} });
    const client = clientFor(`http://127.0.0.1:${port}`);
    try {
      await leader.start(config);
      await follower.start(config);
      assert.equal(follower.follows, true);
      const reached = new Promise<void>((resolve) => fake.behave(() => (setImmediate(resolve), { kind: "hang" })));
      const hung = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hang", 100) })).then(() => undefined, (e: Error) => e);
      await reached;
      fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));

      // The serving window closes; its call hangs through a drain longer than the follower's
      // first retries (it turns new calls away with 503 at once, and releases the ledger, then the
      // port, once the call is settled).
      const from = states.length;
      const stopped = leader.stop({ deadlineMs: 3_000 });
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
      // The stopped call was answered (a 5xx the SDK may retry, then against the new leader).
      await hung;
      const during = states.slice(from);
      assert.deepEqual(during.filter((s) => s.state === "error"), [], "no error during an orderly take-over");
      assert.deepEqual(during.map((s) => s.state), ["starting", "ready"]);
      assert.equal(follower.url, `http://127.0.0.1:${port}`, "the same port, so tools keep their endpoint");
      const out = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("after", 100) }));
      assert.equal(out.$metadata.httpStatusCode, 200, "the new leader serves");
    } finally {
      client.destroy();
      await leader.stop();
      await follower.stop();
    }
  });
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

describe("gateway host: the ledger held by a live local process that never answers", function () {
  this.timeout(30_000);
  it("reports, after waiting for it, that pid N holds the lock file and how to free it, without telling the user to use it", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "bb-holder-"));
    const ledger = path.join(dir, "ledger");
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
    try {
      await mkdir(ledger, { recursive: true, mode: 0o700 });
      // Not a gateway: a lock naming a live process (one left after a crash whose pid was reused, where no start time tells them apart).
      await writeFile(path.join(ledger, "gateway.lock"), `${holder.pid}\n\nid=x\n`, { mode: 0o600 });
      const { config } = checkSettings({ port: await freePort(), ledgerDir: ledger, upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC" }, undefined);
      assert.ok(config);
      const quiet = { error() {}, warn() {}, info() {}, debug() {} } as unknown as Logger;
      const states: GatewayStateNotification.Params[] = [];
      let seen = () => {};
      const host = new GatewayHost(quiet, { state: (s) => (states.push(s), seen()), status() {}, call() {} }, [60_000], 300);
      try {
        const error = new Promise<GatewayStateNotification.Params>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no error reported")), 20_000);
          seen = () => {
            const e = states.find((s) => s.state === "error");
            if (e) (clearTimeout(timer), resolve(e));
          };
        });
        await host.start(config);
        const reported = await error;
        assert.ok(reported.state === "error");
        assert.match(reported.message, new RegExp(`pid ${holder.pid}`));
        assert.ok(reported.message.includes(path.join(ledger, "gateway.lock")), reported.message);
        assert.match(reported.message, /does not answer/);
        assert.match(reported.message, /remove/);
        assert.doesNotMatch(reported.message, /use that one/);
        assert.equal(host.url, undefined, "nothing served");
      } finally {
        await host.stop();
      }
    } finally {
      holder.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
