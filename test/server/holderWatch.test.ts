/**
 * The window waiting for a live holder of the ledger watches the ledger folder. Where the watch
 * names no file (fs.watch gives null on some platforms), every write in the folder (the journal's,
 * many a second) woke it to try to take over, each try probing the port; only a change of the lock
 * file itself may, and its release must still be seen.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { rmSync, type FSWatcher } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { checkSettings } from "../../server/config/settingsCheck";
import { lockFileOf, lockLedger } from "../../server/ledger/lock";
import { GatewayHost, type WatchDir } from "../../server/lsp/gatewayHost";
import type { Logger } from "../../server/log";
import type { GatewayStateNotification } from "../../server/protocol";

const quiet = { error() {}, warn() {}, info() {}, debug() {}, setLevel() {} } as unknown as Logger;

describe("gateway host: waiting for the ledger's holder where the folder watch names no file", function () {
  this.timeout(30_000);
  let dir: string;
  let squatter: http.Server;
  /** Health challenges the port received: one per look at who serves (each try to take over). */
  let looks = 0;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-holder-watch-"));
    // Not a gateway: it counts the host's looks at the port.
    squatter = http.createServer((req, res) => {
      if (req.url?.includes("challenge=")) looks++;
      res.writeHead(404).end("not a gateway");
    });
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    looks = 0;
  });
  afterEach(async () => {
    await new Promise((resolve) => squatter.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("writes beside the lock file do not wake it to try to take over; the lock's release still does", async () => {
    const port = (squatter.address() as import("node:net").AddressInfo).port;
    const ledger = path.join(dir, "ledger");
    const { config } = checkSettings({ port, ledgerDir: ledger, upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC" }, undefined);
    assert.ok(config);
    // The holder: a live process of this machine (this one) that does not answer as a gateway.
    const lock = await lockLedger(ledger);
    // The folder watch as such a platform gives it: an event for each change, with no file name.
    const watchers: { notify: (file: string | null) => void; closed: boolean }[] = [];
    const watchDir: WatchDir = (_dir, _options, listener) => {
      const entry = { notify: (file: string | null) => listener("change", file), closed: false };
      watchers.push(entry);
      return Object.assign(new EventEmitter(), { close: () => void (entry.closed = true) }) as unknown as FSWatcher;
    };
    const notifyOpen = (file: string | null) => watchers.filter((w) => !w.closed).forEach((w) => w.notify(file));
    const states: GatewayStateNotification.Params[] = [];
    let onState = () => {};
    // Retries and the timed look far off: only the watch wakes it here.
    const host = new GatewayHost(quiet, { state: (s) => (states.push(s), onState()), status() {}, call() {} }, [60_000], 60_000, 60_000, watchDir);
    try {
      await host.start(config);
      assert.equal(looks, 1, "one look at the port when it found the ledger held");
      assert.equal(host.follows, false);
      assert.ok(watchers.some((w) => !w.closed), "it watches the ledger folder while it waits");
      // The holder writes its journal: many changes in the folder, none to the lock file. After each,
      // the host finishes what it started (a settings call that changes nothing runs after it).
      for (let i = 0; i < 5; i++) {
        notifyOpen(null);
        await host.reconfigure(config);
      }
      assert.equal(looks, 1, `${looks} looks at the port while only the journal changed: each write woke it to try to take over`);
      // The holder releases the ledger: one more change, again with no file name.
      const failed = new Promise<void>((resolve) => (onState = () => states.some((s) => s.state === "error") && resolve()));
      await lock.release();
      notifyOpen(null);
      await failed; // it tried to take over (the port is another program's here)
      assert.equal(looks, 2, "one more look, on the release");
    } finally {
      await host.stop();
      await lock.release();
    }
  });

  it("a release between finding the ledger held and watching its folder is not missed", async () => {
    const port = (squatter.address() as import("node:net").AddressInfo).port;
    const ledger = path.join(dir, "ledger");
    const { config } = checkSettings({ port, ledgerDir: ledger, upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC" }, undefined);
    assert.ok(config);
    await lockLedger(ledger);
    // The holder releases the ledger just before the watch begins: no change comes after it.
    const watchDir: WatchDir = () => {
      rmSync(lockFileOf(ledger));
      return Object.assign(new EventEmitter(), { close() {} }) as unknown as FSWatcher;
    };
    const states: GatewayStateNotification.Params[] = [];
    let onState = () => {};
    const failed = new Promise<void>((resolve) => (onState = () => states.some((s) => s.state === "error") && resolve()));
    const host = new GatewayHost(quiet, { state: (s) => (states.push(s), onState()), status() {}, call() {} }, [60_000], 60_000, 60_000, watchDir);
    try {
      await host.start(config);
      await failed; // it tried to take over at once (the port is another program's here), not at its next timed look
      assert.equal(looks, 2);
    } finally {
      await host.stop();
    }
  });
});
