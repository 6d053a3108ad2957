/**
 * Edges of binding the port and locking the ledger: a gateway that bound its port but lost the
 * ledger to another leaves no connection open behind it; a port another program holds is told
 * apart from one a gateway of ours is handing over.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import { checkSettings } from "../../server/config/settingsCheck";
import { lockAndBind, startGateway } from "../../server/gateway/gateway";
import { listen, PHASE_HEADER } from "../../server/gateway/listener";
import { isLockHeld, LedgerLocked, lockFileOf } from "../../server/ledger/lock";
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
      assert.equal(first.phase, "starting", "marked as a gateway of ours starting: one that finds the port taken waits for it");
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

  // The handover time is a minute here: a port another program holds must be reported without
  // waiting for it to be freed (it was reported only once the wait ran out).
  const HANDOVER_MS = 60_000;
  const noHandler = () => assert.fail("no request reaches a listener that lockAndBind gives up on");

  it("a port another program holds while the ledger is free is reported as taken at once, without waiting for a gateway to hand it over", async () => {
    const ledger = path.join(dir, "ledger");
    const port = await freePort();
    const other = await holdPort(port, (_req, res) => res.end("hello from another program"));
    try {
      const err = await lockAndBind(ledger, noHandler, port, {}, HANDOVER_MS).then(
        async (res) => (await res.lock.release(), res.listener.unbind(), new Error("bound a port another program holds")),
        (e: NodeJS.ErrnoException) => e,
      );
      assert.equal((err as NodeJS.ErrnoException).code, "EADDRINUSE", `reported as a port in use, not: ${String(err)}`);
      assert.equal(await isLockHeld(ledger), false, "the ledger is not locked by a gateway that has no port");
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  /**
   * The stopping gateway as the waiting one sees it: every new connection answered 503 with
   * `headers`, the port freed a moment later (here: once that answer has been read). Asserts the
   * port is taken over, with the ledger's lock.
   */
  async function takeOverFromStopping(headers: http.OutgoingHttpHeaders): Promise<void> {
    const ledger = path.join(dir, "ledger");
    const port = await freePort();
    let freed!: Promise<void>;
    const other = await holdPort(port, (req, res) => {
      req.socket.once("close", () => (freed = new Promise((resolve) => other.close(() => resolve()))));
      res.writeHead(503, { ...headers, connection: "close" }).end('{"message":"stopping"}');
    });
    const res = await lockAndBind(ledger, noHandler, port, {}, HANDOVER_MS);
    try {
      assert.equal(res.listener.port, port, "the same port, taken over");
      assert.equal(await isLockHeld(ledger), true);
    } finally {
      await res.lock.release();
      res.listener.unbind();
      await freed;
    }
  }

  it("a port held by a gateway of ours that is stopping (ledger already released) is waited for and bound once it is freed", async () => {
    await takeOverFromStopping({ [PHASE_HEADER]: "stopping" });
  });

  it("a port held by an older gateway that is stopping (its 503 has no marker) is waited for and bound once it is freed, as before the marker", async () => {
    await takeOverFromStopping({ "x-amzn-errortype": "ServiceUnavailableException" });
  });

  it("a listener that drains (a gateway stopping) answers new connections 503, marked as a gateway of ours stopping", async () => {
    const listener = await listen(noHandler, 0);
    try {
      void listener.drain(1_000);
      const answer = await new Promise<http.IncomingMessage>((resolve, reject) => http.get({ host: "127.0.0.1", port: listener.port, path: "/", agent: false }, resolve).on("error", reject));
      answer.resume();
      assert.equal(answer.statusCode, 503);
      assert.equal(answer.headers[PHASE_HEADER], "stopping");
    } finally {
      listener.unbind();
    }
  });
});

/** Another program's HTTP server on 127.0.0.1:`port`. */
async function holdPort(port: number, handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

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
function request(session: http2.ClientHttp2Session): Promise<{ status: number; body: string; phase: string | undefined }> {
  return new Promise((resolve, reject) => {
    try {
      const stream = session.request({ ":method": "POST", ":path": `/model/${SONNET_45}/invoke`, "content-type": "application/json" });
      let status = 0;
      let phase: string | undefined;
      const chunks: Buffer[] = [];
      stream.on("response", (headers) => {
        status = Number(headers[":status"]);
        phase = headers[PHASE_HEADER] as string | undefined;
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => (status ? resolve({ status, body: Buffer.concat(chunks).toString(), phase }) : reject(new Error("the stream ended without an answer"))));
      stream.on("error", reject);
      stream.end(anthropicBody("hi", 10));
    } catch (err) {
      reject(err as Error);
    }
  });
}
