import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import { listen, type AnyRequest, type AnyResponse, type Listener } from "../../../server/gateway/listener";

const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** Answers with what it saw: protocol version, method, target and body. */
function echo(req: AnyRequest, res: AnyResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = JSON.stringify({ version: req.httpVersion, method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(body);
  });
}

interface Echo {
  version: string;
  method: string;
  url: string;
  body: string;
}

function h1Request(port: number, opts: { path: string; body?: string; agent?: http.Agent }): Promise<{ status: number; echo: Echo }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: opts.path, agent: opts.agent ?? false, headers: { "content-type": "application/json" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, echo: JSON.parse(Buffer.concat(chunks).toString()) as Echo }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body ?? "");
  });
}

function h2Request(session: http2.ClientHttp2Session, path: string, body: string): Promise<{ status: number; echo: Echo }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status, echo: JSON.parse(Buffer.concat(chunks).toString()) as Echo }));
    stream.on("error", reject);
    stream.end(body);
  });
}

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/**
 * A socket for the h2 client that delivers its first write (the client preface and SETTINGS) in
 * small pieces, yielding to the event loop between them so the server reads them separately.
 */
function slowPrefaceSocket(port: number, cuts: number[]): Duplex {
  const raw = net.connect(port, "127.0.0.1");
  raw.setNoDelay(true);
  let first = true;
  const duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (!first) {
        raw.write(chunk, cb);
        return;
      }
      first = false;
      void (async () => {
        let from = 0;
        for (const cut of [...cuts, chunk.length]) {
          if (cut <= from) continue;
          await new Promise<void>((r) => raw.write(chunk.subarray(from, Math.min(cut, chunk.length)), () => r()));
          await nextTurn();
          await nextTurn();
          from = cut;
        }
        cb();
      })();
    },
    read() {
      raw.resume();
    },
    final(cb) {
      raw.end(cb);
    },
    destroy(err, cb) {
      raw.destroy();
      cb(err);
    },
  });
  raw.on("data", (d: Buffer) => {
    if (!duplex.push(d)) raw.pause();
  });
  raw.on("end", () => duplex.push(null));
  raw.on("error", (err) => duplex.destroy(err));
  return duplex;
}

describe("listener: one port for HTTP/1.1 and h2c", () => {
  let listener: Listener | undefined;
  const clients: Array<{ close(): void }> = [];

  beforeEach(async () => {
    listener = await listen(echo, 0);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await listener?.close();
    listener = undefined;
  });

  it("listens on loopback and reports the port it got", () => {
    assert.ok(listener!.port > 0);
  });

  it("serves an HTTP/1.1 client (node:http)", async () => {
    const r = await h1Request(listener!.port, { path: "/model/a.b%3A0/invoke", body: '{"x":1}' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.echo, { version: "1.1", method: "POST", url: "/model/a.b%3A0/invoke", body: '{"x":1}' });
  });

  it("serves an h2c prior-knowledge client (node:http2) on the same port, raw path intact", async () => {
    const session = http2.connect(`http://127.0.0.1:${listener!.port}`);
    clients.push(session);
    const r = await h2Request(session, "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse", '{"y":2}');
    assert.equal(r.status, 200);
    assert.deepEqual(r.echo, {
      version: "2.0",
      method: "POST",
      url: "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse",
      body: '{"y":2}',
    });
    // Several streams on one session.
    const [a, b] = await Promise.all([h2Request(session, "/a", "1"), h2Request(session, "/b", "2")]);
    assert.deepEqual([a.echo.url, a.echo.body, b.echo.url, b.echo.body], ["/a", "1", "/b", "2"]);
  });

  it("serves an h2 client whose preface arrives in tiny pieces", async () => {
    const port = listener!.port;
    const session = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => slowPrefaceSocket(port, [1, 3, 9, 17, 23]) });
    clients.push(session);
    const r = await h2Request(session, "/model/x/invoke", "split");
    assert.equal(r.status, 200);
    assert.equal(r.echo.version, "2.0");
    assert.equal(r.echo.body, "split");
  });

  it("serves a raw HTTP/1.1 request written byte by byte (starting with 'P' like the h2 preface)", async () => {
    const socket = net.connect(listener!.port, "127.0.0.1");
    socket.setNoDelay(true);
    clients.push({ close: () => socket.destroy() });
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const response = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("end", () => resolve(Buffer.concat(chunks).toString()));
    });
    const request = "POST /model/m/converse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbytes";
    for (const byte of Buffer.from(request)) {
      await new Promise<void>((r) => socket.write(Buffer.from([byte]), () => r()));
      await nextTurn();
    }
    const text = await response;
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    const json = /\{.*\}/.exec(text)?.[0]; // the body may be chunked: take the JSON out of it
    assert.ok(json, text);
    const body = JSON.parse(json) as Echo;
    assert.deepEqual(body, { version: "1.1", method: "POST", url: "/model/m/converse", body: "bytes" });
  });

  it("serves a raw HTTP/1.1 request that matches the first bytes of the h2 preface ('PRI ')", async () => {
    // "PRI * HTTP/1.1" shares 9 bytes with the preface, then diverges: it is HTTP/1.1, not h2.
    const socket = net.connect(listener!.port, "127.0.0.1");
    clients.push({ close: () => socket.destroy() });
    const response = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("end", () => resolve(Buffer.concat(chunks).toString()));
      socket.on("error", () => resolve(Buffer.concat(chunks).toString()));
    });
    socket.write("PRI * HT");
    await nextTurn();
    socket.write("TP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    const text = await response;
    assert.match(text, /^HTTP\/1\.1 /, "answered as HTTP/1.1");
    assert.ok(!text.includes(H2_PREFACE));
  });
});

describe("listener: close()", () => {
  it("closes an idle HTTP/1.1 keep-alive connection at once (boto3 and the CLI always leave one open)", async () => {
    const listener = await listen(echo, 0);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const r = await h1Request(listener.port, { path: "/one", agent });
      assert.equal(r.status, 200);
      const sockets = Object.values(agent.freeSockets).flat();
      assert.equal(sockets.length, 1, "the agent keeps one idle connection");
      const socketClosed = new Promise<void>((res) => sockets[0]!.once("close", () => res()));
      // A grace far beyond the test's timeout: only closing the idle connection lets this resolve.
      await listener.close(10 * 60_000);
      await socketClosed;
    } finally {
      agent.destroy();
    }
  });

  it("resolves while an idle h2 session is open, and ends that session", async () => {
    const listener = await listen(echo, 0);
    const session = http2.connect(`http://127.0.0.1:${listener.port}`);
    try {
      assert.equal((await h2Request(session, "/one", "x")).status, 200);
      const sessionClosed = new Promise<void>((res) => session.once("close", () => res()));
      const started = Date.now();
      await listener.close();
      await sessionClosed;
      // Sessions get a graceful GOAWAY, so this does not wait for the 2 s fallback.
      assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
    } finally {
      session.destroy();
    }
  });

  it("lets a request in flight finish before the connection closes, turns new connections away with 503, and keeps the port bound until then", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const inHandler = new Promise<void>((r) => (arrived = r));
    const listener = await listen((req, res) => {
      arrived();
      req.resume();
      void released.then(() => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("finished");
      });
    }, 0);
    const port = listener.port;
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/slow", agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on("error", reject);
      req.end("x");
    });
    await inHandler;
    const closing = listener.close();
    // New calls are turned away once close() has begun, with an answer the SDKs retry.
    const turnedAway = await h1Request(port, { path: "/model/m/invoke", body: "{}" }).catch((err: Error) => err);
    assert.ok(!(turnedAway instanceof Error), `a new connection is answered, not refused: ${String(turnedAway)}`);
    assert.equal(turnedAway.status, 503);
    // While calls drain the port stays bound: no other local process can take it and receive routed terminals' signed calls.
    await assert.rejects(bindPort(port), /EADDRINUSE/);
    release();
    assert.deepEqual(await response, { status: 200, body: "finished" });
    const started = Date.now();
    await closing;
    assert.ok(Date.now() - started < 1_000, "a closing connection (Connection: close) does not wait for the fallback");
    await bindPort(port); // free once the drain is over: the gateway that takes over binds it
  });
});

/** Binds 127.0.0.1:`port` with another server, then lets it go; rejects when the port is taken. */
function bindPort(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const other = net.createServer();
    other.once("error", reject);
    other.listen(port, "127.0.0.1", () => other.close(() => resolve()));
  });
}
