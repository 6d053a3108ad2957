/**
 * Work before authentication: what an unproven caller can make the gateway hold (body bytes,
 * connections, time), and what a caller that leaves early is charged. Raw http/http2 where no
 * SDK can send the request (a body that never comes, a head that never ends); the real SDK else.
 */
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { ConverseStreamCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import type { CallRecord } from "../../server/ledger/types";
import { createLogger, silentLogger } from "../../server/log";
import { validated } from "../../server/config/load";
import { startGateway } from "../../server/gateway/gateway";
import { FakeBedrock } from "../support/fakeBedrock";
import { API_PATHS } from "../../server/protocol";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";
import { signFor } from "../reliability/support";

const PATH = `/model/${encodeURIComponent(SONNET_45)}/invoke`;
/** Well formed, names the gateway's own key, signature wrong: it passes the header check, not the full one. */
const OWN_KEY_AUTH = `AWS4-HMAC-SHA256 Credential=${CREDENTIALS.accessKeyId}/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`;
const OTHER_KEY_AUTH = OWN_KEY_AUTH.replace(CREDENTIALS.accessKeyId, "AKIAI44QH8DHBOTHERKEY");

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * An HTTP/1.1 request that declares `declared` body bytes and sends only `send` of them, then
 * waits: resolves with the answer, if one comes, and the socket for the test to close.
 */
function h1Partial(port: number, opts: { headers: Record<string, string>; declared: number; send?: number }): { answer: Promise<Answer>; socket: Promise<net.Socket> } {
  let gotSocket!: (s: net.Socket) => void;
  const socket = new Promise<net.Socket>((r) => (gotSocket = r));
  const answer = new Promise<Answer>((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: PATH, agent: false, headers: { host: `127.0.0.1:${port}`, "content-type": "application/json", "content-length": String(opts.declared), ...opts.headers } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.once("socket", gotSocket);
    req.once("error", reject);
    req.flushHeaders();
    if (opts.send) req.write(Buffer.alloc(opts.send, 0x20));
  });
  return { answer, socket };
}

function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once("close", () => resolve())));
}

/**
 * One h2 stream on `session`: its status and body once the answer ends; `end` false leaves the
 * request body open (a client stream whose writes wait for flow control closes only later).
 */
function h2Stream(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, opts: { end: boolean; body?: Buffer }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: false });
    let status = 0;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (d: string) => (body += d));
    stream.on("end", () => resolve({ status, body }));
    stream.on("close", () => resolve({ status, body }));
    stream.on("error", (err: NodeJS.ErrnoException) => (status ? undefined : reject(err)));
    if (opts.body) stream.write(opts.body);
    if (opts.end) stream.end();
  });
}

const messageOf = (body: string) => (JSON.parse(body) as { message: string }).message;

/** Resolves when `check()` holds, looking after each event-loop turn; bounded in turns. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`never: ${what}`);
}

describe("inbound: refused before the body is read", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }] });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  it("HTTP/1.1: an unsigned request declaring 24 MiB and sending none gets its 403 at once, and the connection is closed", async () => {
    const { answer, socket } = h1Partial(h.gateway.port, { headers: {}, declared: 24 * 1024 * 1024 });
    const res = await answer;
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-amzn-errortype"], "AccessDeniedException");
    assert.match(messageOf(res.body), /not signed/);
    assert.equal(res.headers.connection, "close");
    await closed(await socket);
    assert.equal(h.fake.hits.length, 0);
  });

  it("HTTP/1.1: a request naming another access key gets its 403 at once, naming the keys (masked)", async () => {
    const { answer, socket } = h1Partial(h.gateway.port, { headers: { authorization: OTHER_KEY_AUTH, "x-amz-date": "20250101T000000Z" }, declared: 24 * 1024 * 1024, send: 1000 });
    const res = await answer;
    assert.equal(res.status, 403);
    assert.match(messageOf(res.body), /access key AKIA…RKEY, but the gateway's credentials are AKIA…MPLE/);
    await closed(await socket);
    assert.equal(h.gateway.inbound.peakBufferedBytes, 0, "not a byte of either body was held");
  });

  it("HTTP/1.1: a malformed Authorization header gets its 403 at once", async () => {
    const { answer, socket } = h1Partial(h.gateway.port, { headers: { authorization: "AWS4-HMAC-SHA256 nonsense" }, declared: 1_000_000 });
    const res = await answer;
    assert.equal(res.status, 403);
    assert.match(messageOf(res.body), /not an AWS4-HMAC-SHA256 signature/);
    (await socket).destroy();
  });

  it("HTTP/1.1: a model id too long for the request head (5,904 colons, 17,712 bytes encoded) gets a 400 ValidationException, not a bare 431", async () => {
    const socket = net.connect(h.gateway.port, "127.0.0.1");
    socket.on("error", () => undefined);
    const path = `/model/${encodeURIComponent(":".repeat(5904))}/invoke`;
    socket.end(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    await closed(socket);
    const text = Buffer.concat(chunks).toString("utf8");
    assert.match(text, /^HTTP\/1\.1 400 /, text.slice(0, 80));
    assert.match(text, /\r\nx-amzn-errortype: ValidationException\r\n/i);
    assert.match(messageOf(text.slice(text.indexOf("\r\n\r\n") + 4)), /at most 2,?048 characters/);
    assert.equal(h.fake.hits.length, 0);
  });

  it("h2: an unsigned stream declaring 24 MiB and never ending gets its 403 and is reset; the session serves on", async () => {
    const session = http2.connect(h.gateway.url);
    try {
      const refused = await Promise.all(
        Array.from({ length: 8 }, () =>
          h2Stream(session, { ":method": "POST", ":path": PATH, "content-type": "application/json", "content-length": String(24 * 1024 * 1024) }, { end: false, body: Buffer.alloc(16_384, 0x20) }),
        ),
      );
      for (const r of refused) {
        assert.equal(r.status, 403);
        assert.match(messageOf(r.body), /not signed/);
      }
      const status = await h2Stream(session, { ":method": "GET", ":path": API_PATHS.status }, { end: true });
      assert.equal(status.status, 200, "the same session still answers");
      assert.equal(h.gateway.inbound.peakBufferedBytes, 0, "not a byte of the refused bodies was held");
      // And still carries request bodies: this one is read to its end, then refused by the full check.
      const read = await h2Stream(session, { ":method": "POST", ":path": PATH, "content-type": "application/json", authorization: OWN_KEY_AUTH, "x-amz-date": "20250101T000000Z" }, { end: true, body: Buffer.alloc(100_000, 0x20) });
      assert.equal(read.status, 403);
      assert.match(messageOf(read.body), /more than 15 minutes/);
      assert.equal(h.fake.hits.length, 0);
    } finally {
      session.destroy();
    }
  });
  it("h2: 1,500 malformed streams reset and 500 unsigned requests refused unread on one session, then a signed call on it succeeds", async function () {
    this.timeout(120_000);
    // Node's client never frees what it had queued for a stream reset unread: room for all of it.
    const session = http2.connect(h.gateway.url, { maxSessionMemory: 1024 });
    try {
      // `:path: *` is only for OPTIONS: the h2 layer resets each such stream (PROTOCOL_ERROR) before the gateway sees it.
      for (let i = 0; i < 1_500; i++) {
        const reset = await h2Stream(session, { ":method": "POST", ":path": "*" }, { end: true }).then(
          (r) => `answered ${r.status}`,
          (err: Error) => err.message,
        );
        assert.match(reset, /Stream closed with error code NGHTTP2_PROTOCOL_ERROR/, `malformed stream ${i + 1}`);
      }
      for (let i = 0; i < 500; i++) {
        const r = await h2Stream(session, { ":method": "POST", ":path": PATH, "content-type": "application/json" }, { end: true, body: Buffer.alloc(i % 5 === 0 ? 256 * 1024 : 100, 0x20) });
        assert.equal(r.status, 403, `refusal ${i + 1} is answered`);
      }
      const body = anthropicBody("hello", 10);
      const signed = signFor(new URL(h.gateway.url).host, { method: "POST", path: PATH, headers: {}, body: Buffer.from(body) });
      const ok = await h2Stream(session, { ":method": "POST", ":path": PATH, ...signed.headers }, { end: true, body: Buffer.from(body) });
      assert.equal(ok.status, 200, `the signed call on the same session is answered: ${ok.body}`);
      assert.equal(h.fake.hits.length, 1, "only the signed call reached Bedrock");
    } finally {
      session.destroy();
    }
  });
});

describe("inbound: a bounded budget of buffered body bytes", function () {
  let h: Harness;
  const maxRequestBytes = 100_000;
  const maxBufferedBytes = 300_000;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], maxRequestBytes }, { limits: { maxBufferedBytes } });
  });
  after(() => h.close());

  it("HTTP/1.1: slow bodies past the budget get a retryable 503 at once; what is held never passes the bound", async () => {
    const headers = { authorization: OWN_KEY_AUTH, "x-amz-date": "20250101T000000Z" };
    const requests = Array.from({ length: 6 }, () => h1Partial(h.gateway.port, { headers, declared: 90_000, send: 10_000 }));
    const outcomes: Array<Answer | undefined> = requests.map(() => undefined);
    requests.forEach((r, i) => void r.answer.then((a) => (outcomes[i] = a), () => undefined));
    await until(() => outcomes.filter(Boolean).length >= 3, "three requests answered");
    const answered = outcomes.filter((a): a is Answer => a !== undefined);
    assert.equal(answered.length, 3, "three bodies fit in the budget (3 × 90,000 ≤ 300,000), three do not");
    for (const a of answered) {
      assert.equal(a.status, 503);
      assert.equal(a.headers["x-amzn-errortype"], "ServiceUnavailableException");
      assert.match(messageOf(a.body), /the most it buffers at once; retry shortly/);
    }
    assert.equal(h.gateway.inbound.bufferedBytes, 270_000);
    assert.ok(h.gateway.inbound.peakBufferedBytes <= maxBufferedBytes, `peak ${h.gateway.inbound.peakBufferedBytes}`);
    for (const r of requests) (await r.socket).destroy();
    await until(() => h.gateway.inbound.bufferedBytes === 0, "the held bytes given back when the callers left");
  });

  it("h2: streams with no declared length are held chunk by chunk and refused past the bound", async () => {
    const session = http2.connect(h.gateway.url);
    try {
      const headers = { ":method": "POST", ":path": PATH, "content-type": "application/json", authorization: OWN_KEY_AUTH, "x-amz-date": "20250101T000000Z" };
      const streams = Array.from({ length: 10 }, () => h2Stream(session, headers, { end: false, body: Buffer.alloc(50_000, 0x20) }));
      const settled: Array<{ status: number; body: string } | undefined> = streams.map(() => undefined);
      streams.forEach((s, i) => void s.then((r) => (settled[i] = r), () => undefined));
      await until(() => settled.filter(Boolean).length >= 4, "four streams refused");
      for (const r of settled.filter((x): x is { status: number; body: string } => x !== undefined)) assert.equal(r.status, 503);
      assert.ok(h.gateway.inbound.peakBufferedBytes <= maxBufferedBytes, `peak ${h.gateway.inbound.peakBufferedBytes}`);
      assert.ok(h.gateway.inbound.bufferedBytes <= maxBufferedBytes);
    } finally {
      session.destroy();
    }
    await until(() => h.gateway.inbound.bufferedBytes === 0, "the held bytes given back when the session closed");
  });
});

describe("inbound: timeouts and the connection bound", function () {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("closes a connection that does not finish its request head in time (the protocol sniff and HTTP/1.1)", async () => {
    h = await startHarness({}, { limits: { headTimeoutMs: 300 } });
    const port = h.gateway.port;
    const open = (first: string) => {
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => undefined);
      s.resume(); // read what comes (a 408), so the end of the connection is seen
      s.once("connect", () => first && s.write(first));
      return s;
    };
    const silent = open(""); // sends nothing
    const halfPreface = open("PRI * HTTP/2"); // could still be h2
    const halfHead = open(`POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n`); // a head never ended
    await Promise.all([closed(silent), closed(halfPreface), closed(halfHead)]);
  });

  it("closes an h2 session that has had no open stream for the idle time", async () => {
    h = await startHarness({}, { limits: { sessionIdleMs: 300 } });
    const session = http2.connect(h.gateway.url);
    try {
      const sessionClosed = new Promise<void>((resolve) => session.once("close", () => resolve()));
      const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
      assert.equal((await h2Stream(session, { ":method": "GET", ":path": API_PATHS.status }, { end: true })).status, 200);
      await goaway;
      await sessionClosed;
    } finally {
      session.destroy();
    }
  });

  it("answers a body that stops arriving with 408, and gives its bytes back", async () => {
    h = await startHarness({}, { limits: { bodyIdleMs: 300 } });
    const { answer, socket } = h1Partial(h.gateway.port, { headers: { authorization: OWN_KEY_AUTH, "x-amz-date": "20250101T000000Z" }, declared: 5_000, send: 100 });
    const res = await answer;
    assert.equal(res.status, 408);
    assert.equal(res.headers["x-amzn-errortype"], "RequestTimeoutException");
    assert.match(messageOf(res.body), /stopped arriving/);
    await closed(await socket);
    assert.equal(h.gateway.inbound.bufferedBytes, 0);
  });

  it("refuses connections past the bound at the socket", async () => {
    h = await startHarness({}, { limits: { maxConnections: 3 } });
    const port = h.gateway.port;
    const connect = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, "127.0.0.1", () => resolve(s));
        s.once("error", reject);
      });
    const held = [await connect(), await connect(), await connect()];
    const extra = await connect().catch(() => undefined);
    if (extra) await closed(extra); // accepted by the kernel, closed by the gateway at once
    assert.equal(h.gateway.inbound.connections, 3, "the first three stay open");
    held.forEach((s) => s.destroy());
  });
});

describe("inbound: a streaming caller that leaves before Bedrock's status", function () {
  let h: Harness;
  const lines: string[] = [];
  before(async () => {
    const log = createLogger((_level, line) => lines.push(line), "debug");
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }] }, { log });
  });
  after(() => h.close());

  for (const [status, type] of [[403, "AccessDeniedException"], [400, "ValidationException"]] as const) {
    it(`costs $0 when Bedrock then answers ${status} ${type}`, async () => {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const abort = new AbortController();
      h.fake.behave(() => {
        abort.abort(); // the caller leaves while Bedrock is still deciding
        return { kind: "error", status, type, message: "slow refusal", after: released };
      });
      const settled = new Promise<CallRecord>((resolve) => {
        const stop = h.gateway.onCall((record) => {
          stop();
          resolve(record);
        });
      });
      const waiting = () => lines.some((l) => l.includes("the caller left before Bedrock answered"));
      const call = h.client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 4000 } }), { abortSignal: abort.signal });
      await call.then(() => assert.fail("the call was not aborted"), () => undefined);
      // Either the gateway waits for Bedrock's status, or it has already settled the call.
      let early: CallRecord | undefined;
      void settled.then((r) => (early = r));
      await until(() => waiting() || early !== undefined, "the gateway noticed the caller left");
      release();
      const record = await settled;
      assert.equal(record.outcome, "upstream-error");
      assert.equal(record.costPicos, "0", `charged ${record.costPicos} (worst case ${record.worstCasePicos})`);
      assert.equal(h.fake.hits.length > 0, true);
      h.fake.reset();
      lines.length = 0;
    });
  }
});

/** Points the SDKs' shared files at a temporary folder for one describe block (and clears the environment's credentials). */
function sharedFiles(): { dir: () => string; write(credentials: string): Promise<void>; rewrite(credentials: string): Promise<void> } {
  let dir = "";
  const saved: Record<string, string | undefined> = {};
  const ENV = ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-inbound-profiles-"));
    for (const k of ENV) saved[k] = process.env[k];
    for (const k of ENV) delete process.env[k];
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, "credentials");
    process.env.AWS_CONFIG_FILE = path.join(dir, "config");
    await writeFile(process.env.AWS_CONFIG_FILE, "");
  });
  after(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await rm(dir, { recursive: true, force: true });
  });
  let files = 0;
  // A new file each time: the SDK keeps a file it has read by its path for the process's life.
  return {
    dir: () => dir,
    write: async (credentials) => {
      const file = path.join(dir, `credentials-${++files}`);
      await writeFile(file, credentials);
      process.env.AWS_SHARED_CREDENTIALS_FILE = file;
    },
    // The same file written anew, as aws configure, aws-vault, saml2aws and granted do.
    rewrite: (credentials) => writeFile(process.env.AWS_SHARED_CREDENTIALS_FILE!, credentials),
  };
}

const profileText = (name: string, key: { accessKeyId: string; secretAccessKey: string }) =>
  `[${name}]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n\n`;

async function journalLines(h: Harness): Promise<Array<Record<string, unknown>>> {
  const dir = path.join(h.ledgerDir, "journal");
  const out: Array<Record<string, unknown>> = [];
  for (const f of await import("node:fs/promises").then((fs) => fs.readdir(dir))) {
    for (const line of (await readFile(path.join(dir, f), "utf8")).split("\n")) if (line.trim()) out.push(JSON.parse(line) as Record<string, unknown>);
  }
  return out;
}

describe("inbound: a callers profile that holds the gateway's own key", function () {
  this.timeout(30_000);
  const files = sharedFiles();

  it("a call signed with the gateway's own key is on the tier of the callers profile holding that key: its caps refuse it", async () => {
    await files.write(profileText("agent", CREDENTIALS));
    const h = await startHarness({ tiers: { basic: { caps: [{ id: "tiny", window: "day", limitUsd: 0.000001 }] } }, callers: { agent: "basic" } });
    try {
      await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 50) })), (err: Error) => {
        assert.equal(err.name, "ServiceQuotaExceededException");
        assert.match(err.message, /tiny@agent/);
        return true;
      });
      assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
      const refused = (await journalLines(h)).filter((l) => l.callerProfile === "agent");
      assert.ok(refused.length > 0, "the journal names the caller's profile");
    } finally {
      await h.close();
    }
  });

  it("two callers profiles holding one key: the call is refused, naming both", async () => {
    await files.write(profileText("alpha", CREDENTIALS) + profileText("beta", CREDENTIALS));
    const h = await startHarness({ tiers: { basic: { caps: [{ id: "roomy", window: "day", limitUsd: 100 }] } }, callers: { alpha: "basic", beta: "basic" } });
    try {
      await assert.rejects(h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 50) })), (err: Error) => {
        assert.equal(err.name, "AccessDeniedException");
        assert.match(err.message, /"alpha" and "beta" named in callers hold the same access key/);
        return true;
      });
      assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
    } finally {
      await h.close();
    }
  });

  it("a second caller with its own key is not affected by the shared check", async () => {
    const OTHER = { accessKeyId: "AKIAOTHERCALLER00001", secretAccessKey: "other-secret" };
    await files.write(profileText("other", OTHER));
    const h = await startHarness({ tiers: { basic: { caps: [{ id: "roomy", window: "day", limitUsd: 100 }] } }, callers: { other: "basic" } }, { moreCredentials: [OTHER] });
    const client = clientFor(h.gateway.url, OTHER);
    try {
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 50) }));
      await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 50) }));
      assert.equal(h.fake.hits.length, 2);
    } finally {
      client.destroy();
      await h.close();
    }
  });
});

describe("inbound: credentials rewritten while the gateway runs", function () {
  this.timeout(30_000);
  const files = sharedFiles();
  const OLD = { accessKeyId: "AKIAOLDKEYOLDKEY1234", secretAccessKey: "old-secret" };
  const NEW = { accessKeyId: "AKIANEWKEYNEWKEY5678", secretAccessKey: "new-secret" };
  const AGENT_OLD = { accessKeyId: "AKIAAGENTOLDKEY12345", secretAccessKey: "agent-old" };
  const AGENT_NEW = { accessKeyId: "AKIAAGENTNEWKEY67890", secretAccessKey: "agent-new" };
  const keyOf = (hit: { headers: Record<string, string> }) => /Credential=([^/]+)\//.exec(hit.headers.authorization ?? "")?.[1];

  it("a call signed with the new key of the gateway's profile, or of a callers profile, is verified and forwarded with it", async () => {
    await files.write(profileText("dev", OLD) + profileText("agent", AGENT_OLD));
    const fake = await FakeBedrock.start({ credentials: OLD, moreCredentials: [NEW, AGENT_OLD, AGENT_NEW] });
    const ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-ledger-"));
    // The gateway's own credentials from the shared files (no injected source), as `serve` has them.
    const gateway = await startGateway({
      config: validated({ port: 0, upstreamEndpoint: fake.url, ledgerDir, user: "tester", timeZone: "UTC", awsProfile: "dev", tiers: { basic: {} }, callers: { agent: "basic" } }, "test"),
      log: silentLogger(),
    });
    const clients = [OLD, AGENT_OLD, NEW, AGENT_NEW].map((c) => clientFor(gateway.url, c));
    const invoke = () => new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 10) });
    try {
      await clients[0]!.send(invoke());
      await clients[1]!.send(invoke());
      // The keys are rotated: the file is rewritten in place while the gateway runs.
      await files.rewrite(profileText("dev", NEW) + profileText("agent", AGENT_NEW));
      await clients[2]!.send(invoke());
      await clients[3]!.send(invoke());
      assert.deepEqual(fake.hits.map(keyOf), [OLD.accessKeyId, AGENT_OLD.accessKeyId, NEW.accessKeyId, AGENT_NEW.accessKeyId], "each call re-signed with the key it was verified with");
      // The old key is no longer the gateway's: refused, saying which keys it knows.
      await assert.rejects(clients[0]!.send(invoke()), /AccessDeniedException|signed with access key AKIA…1234/);
    } finally {
      for (const c of clients) c.destroy();
      await gateway.close();
      await fake.close();
      await rm(ledgerDir, { recursive: true, force: true });
    }
  });

  it("a key the gateway cannot verify from an SSO profile: the refusal says each process gets its own session key and what to do", async () => {
    await writeFile(process.env.AWS_CONFIG_FILE!, "[profile work-sso]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n");
    await files.write(profileText("dev", OLD));
    const SESSION = { accessKeyId: "ASIASESSIONKEY000001", secretAccessKey: "session-secret", sessionToken: "token" };
    const h = await startHarness({ tiers: { basic: {} }, callers: { "work-sso": "basic" } });
    const client = clientFor(h.gateway.url, SESSION);
    try {
      await assert.rejects(client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 10) })), (err: Error) => {
        assert.equal(err.name, "AccessDeniedException");
        assert.match(err.message, /"work-sso" is an SSO or role \(assume-role\) profile: each process that resolves such a profile gets its own session key/);
        assert.match(err.message, /static profile in ~\/\.aws\/credentials/);
        return true;
      });
      assert.equal(h.fake.hits.length, 0);
    } finally {
      client.destroy();
      await h.close();
      await writeFile(process.env.AWS_CONFIG_FILE!, "");
    }
  });
});
