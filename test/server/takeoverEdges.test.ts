/**
 * Edges of binding the port and locking the ledger: a gateway that bound its port but lost the
 * ledger to another leaves no connection open behind it; a port another program holds is told
 * apart from one a gateway of ours is handing over.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import { checkSettings } from "../../server/config/settingsCheck";
import { startGateway } from "../../server/gateway/gateway";
import { LedgerLocked, lockFileOf } from "../../server/ledger/lock";
import type { Logger } from "../../server/log";
import { anthropicBody, SONNET_45 } from "../support/harness";
import { freePort } from "../support/ports";

const quiet = { error() {}, warn() {}, info() {}, debug() {}, setLevel() {} } as unknown as Logger;

describe("take-over edges: binding the port and locking the ledger", function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-takeover-edges-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function settings(port: number) {
    const { config } = checkSettings({ port, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC", caps: [{ id: "d", window: "day", limitUsd: 10 }] }, undefined);
    assert.ok(config);
    return config;
  }

  it("a gateway that bound its port but then found the ledger locked closes the HTTP/2 sessions it accepted meanwhile: none is left answering for it", async () => {
    const port = await freePort();
    const ledger = path.join(dir, "ledger");
    await mkdir(ledger, { recursive: true, mode: 0o700 });
    // The lock file as a FIFO: the start's lock attempt finds it taken and waits in its read (the
    // port already bound) until the test writes who holds it.
    const lockFile = lockFileOf(ledger);
    execFileSync("mkfifo", ["-m", "600", lockFile]);
    const started = startGateway({ config: settings(port), log: quiet }).then(
      async (g) => (await g.close({ deadlineMs: 0 }), new Error("the gateway started without the ledger's lock")),
      (e: Error) => e,
    );
    let session: http2.ClientHttp2Session | undefined;
    let written = false;
    try {
      session = await connectH2(port);
      const first = await request(session);
      assert.equal(first.status, 503, "answered 'starting' while the ledger is not locked");
      assert.match(first.body, /starting/);
      // A live holder (this very process: a second gateway in it must not share the journal).
      await writeFile(lockFile, `${process.pid}\n\n`);
      written = true;
      const err = await started;
      assert.ok(err instanceof LedgerLocked, `refused as a ledger in use, not: ${String(err)}`);
      // The gateway that never held the ledger has nothing left open: the session it accepted is closed.
      const after = await request(session).catch((e: Error) => e);
      assert.ok(after instanceof Error, `a request on that session after the gateway gave up was answered by it: ${JSON.stringify(after)}`);
    } finally {
      session?.destroy();
      if (!written) await writeFile(lockFile, `${process.pid}\n\n`); // unblocks the read of a start the test gave up on
      await started;
      await rm(lockFile, { force: true });
    }
  });
});

/** An HTTP/2 session (prior knowledge) to 127.0.0.1:`port`, tried until the port is bound (10 s at most). */
async function connectH2(port: number): Promise<http2.ClientHttp2Session> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      session.once("connect", () => resolve(true));
      session.once("error", () => resolve(false));
    });
    if (ok) return session;
    session.destroy();
    if (Date.now() > deadline) throw new Error(`nothing listened on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** One InvokeModel-shaped request on `session`: its status and body, or an error if none came. */
function request(session: http2.ClientHttp2Session): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    try {
      const stream = session.request({ ":method": "POST", ":path": `/model/${SONNET_45}/invoke`, "content-type": "application/json" });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => (status ? resolve({ status, body: Buffer.concat(chunks).toString() }) : reject(new Error("the stream ended without an answer"))));
      stream.on("error", reject);
      stream.end(anthropicBody("hi", 10));
    } catch (err) {
      reject(err as Error);
    }
  });
}
