/**
 * The gateway host's retries while its port is taken: one chain of attempts, however many times
 * the user restarts. Each restart used to start another endless chain beside the old ones, each
 * re-opening the gateway, probing the port and telling the editor of a new error.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { checkSettings } from "../../server/config/settingsCheck";
import { GatewayHost } from "../../server/lsp/gatewayHost";
import type { Logger } from "../../server/log";

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
