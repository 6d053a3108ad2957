/**
 * One loopback port that serves HTTP/1.1 (boto3, the AWS CLI, most tools) and HTTP/2 with prior
 * knowledge over cleartext (the AWS SDK for JavaScript v3 with its default handler). The first
 * bytes of each connection decide: the HTTP/2 client preface goes to the h2 server, anything
 * else to the HTTP/1.1 server.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import { bedrockError, requestTimeout, validation, type ErrorAnswer } from "./errors";
import { DEFAULT_LIMITS } from "./inbound";

import type { AnyRequest, AnyResponse } from "../http";

export type { AnyRequest, AnyResponse };
export type Handler = (req: AnyRequest, res: AnyResponse) => void;

/**
 * Marks the 503 a gateway of ours answers while it does not serve ("starting", "stopping"): one
 * that finds the port taken while the ledger's lock is free waits for such a holder to free it
 * (a take-over), and reports any other holder at once.
 */
export const PHASE_HEADER = "x-bedrock-budget-gateway";

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface Listener {
  port: number;
  /** Connections open now (sniffing, HTTP/1.1 or h2). */
  readonly connections: number;
  /**
   * Stops taking calls and closes idle connections at once; requests in flight may finish for
   * `graceMs`, after which the connections still open are destroyed. The port stays bound until
   * then, new connections turned away (503): freed while calls drain, another local process
   * could bind it and receive the signed calls of terminals routed to it.
   */
  close(graceMs?: number): Promise<void>;
  /**
   * As close(), but the port stays bound after the drain, new connections still turned away, until
   * unbind(): a gateway frees its port only once it has released the ledger, so the gateway taking
   * over is already waiting to bind it.
   */
  drain(graceMs?: number): Promise<void>;
  /** Frees the port (after drain(); at once otherwise, connections left as they are). */
  unbind(): void;
}

/** What a connection may cost before it proves anything; see InboundLimits for the defaults. */
export interface ListenOptions {
  maxConnections: number;
  headTimeoutMs: number;
  sessionIdleMs: number;
}

/** Streams one h2 session may have open at once (Node's default is unbounded). */
const MAX_CONCURRENT_STREAMS = 128;
/**
 * Frames for streams already closed that one h2 session may send before Node ends it (GOAWAY
 * INTERNAL_ERROR). A stream refused before its body is read is reset (RFC 9113 §8.1), and the
 * DATA and RST_STREAM frames the client had in flight then count as invalid, for the session's
 * whole life: at Node's default of 1,000 a client is cut off after a few thousand refusals, with
 * its good calls in flight. They cost the gateway next to nothing (no body is read), so the bound
 * is high; a flood is still cut off after this many, and connections are capped and idle out.
 */
const MAX_SESSION_INVALID_FRAMES = 100_000;

export async function listen(handler: Handler, port: number, host = "127.0.0.1", limits: Partial<ListenOptions> = {}): Promise<Listener> {
  const options: ListenOptions = { ...DEFAULT_LIMITS, ...limits };
  const h1 = http.createServer(
    {
      keepAliveTimeout: 5_000,
      // A complete request head within headTimeoutMs, checked often enough to hold to it.
      headersTimeout: options.headTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(options.headTimeoutMs / 4))),
    },
    handler,
  );
  // h1 never listens itself (the front server hands it sockets); Node sets up its connection
  // tracking (idle-connection closing, header and request timeouts) on 'listening'.
  h1.emit("listening");
  h1.on("clientError", answerClientError);
  let closing = false;
  // A keep-alive connection whose response ends while closing is idle now: close it too.
  h1.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) =>
    res.once("finish", () => closing && setImmediate(() => h1.closeIdleConnections())),
  );
  const h2 = http2.createServer(
    {
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
      maxSessionInvalidFrames: MAX_SESSION_INVALID_FRAMES,
    },
    handler,
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    closeWhenIdle(session, options.sessionIdleMs);
    session.once("close", () => sessions.delete(session));
  });
  const sockets = new Set<net.Socket>();
  /** Connections that came while closing: answered 503 and closed, not waited for. */
  const turnedAway = new Set<net.Socket>();

  // No Nagle: a stream's frames go out as they are relayed. (http.createServer turns it off for
  // the sockets it accepts itself; these are accepted here and handed over.)
  const front = net.createServer({ noDelay: true }, (socket) => {
    if (closing) {
      turnedAway.add(socket);
      socket.once("close", () => turnedAway.delete(socket));
      sniff(socket, options.headTimeoutMs, (isH2) => turnAway(socket, isH2));
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    sniff(socket, options.headTimeoutMs, (isH2) => (isH2 ? h2 : h1).emit("connection", socket));
  });
  front.maxConnections = options.maxConnections; // one more is closed at once
  await new Promise<void>((resolve, reject) => {
    front.once("error", (err) => {
      h1.close(); // stops the connection checks 'listening' started: a failed bind leaves nothing running
      reject(err);
    });
    front.listen(port, host, () => {
      front.removeAllListeners("error");
      resolve();
    });
  });
  const address = front.address() as net.AddressInfo;

  return {
    port: address.port,
    get connections() {
      return sockets.size;
    },
    close: async (graceMs = 30_000) => {
      await drain(graceMs);
      unbind();
    },
    drain: (graceMs = 30_000) => drain(graceMs),
    unbind: () => unbind(),
  };

  async function drain(graceMs: number): Promise<void> {
    closing = true; // the port stays bound (new connections turned away) until unbind()
    h1.close(); // closes idle keep-alive connections now, busy ones after their response
    for (const session of sessions) session.close(); // graceful: open streams finish first
    const allClosed = new Promise<void>((resolve) => {
      const check = () => sockets.size === 0 && resolve();
      for (const socket of sockets) socket.once("close", check);
      check();
    });
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([allClosed, grace]);
    clearTimeout(timer);
    for (const socket of sockets) socket.destroy();
  }

  function unbind(): void {
    closing = true;
    h1.close(); // stops its connection checks (already closed after a drain)
    if (front.listening) front.close();
    for (const socket of turnedAway) socket.destroy();
  }
}

/**
 * A request Node's HTTP/1.1 parser rejects before the gateway sees it, answered in Bedrock's shape
 * (Node's own answer is a bare 431/400 no SDK can read). A head over Node's limit (16 KiB: request
 * line and headers) is most often an over-long model id in the path, which Bedrock refuses with a
 * ValidationException too; the limit itself stays, as it bounds what an unproven caller can make
 * the gateway hold.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  let answer: ErrorAnswer;
  if (err.code === "HPE_HEADER_OVERFLOW") {
    answer = validation(`the request line and headers are over ${http.maxHeaderSize} bytes, the most the gateway reads; a Bedrock model id is at most 2,048 characters`);
  } else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    answer = requestTimeout("the request head did not arrive in time");
  } else {
    answer = validation(`the request is not valid HTTP/1.1 (${err.code ?? err.message})`);
  }
  writeRaw(socket, answer);
}

/**
 * A connection that came while the listener closes: HTTP/1.1 hears a 503 the SDKs retry; an h2
 * one is closed, which they retry too (answering it would take an h2 session for one refusal).
 */
function turnAway(socket: net.Socket, isH2: boolean): void {
  if (isH2) {
    socket.destroy();
    return;
  }
  socket.resume(); // its request is read and dropped: unread bytes at close would reset the answer
  writeRaw(socket, bedrockError(503, "ServiceUnavailableException", "Bedrock Budget's gateway on this port is stopping; retry in a moment (the gateway that takes over serves on this same port).", { [PHASE_HEADER]: "stopping" }));
}

/** Writes `answer` as a whole HTTP/1.1 response on a raw socket, and ends it. */
function writeRaw(socket: Duplex, answer: ErrorAnswer): void {
  const head = [`HTTP/1.1 ${answer.status} ${http.STATUS_CODES[answer.status] ?? ""}`, ...Object.entries(answer.headers).map(([k, v]) => `${k}: ${v}`), "connection: close", "", ""];
  socket.end(Buffer.concat([Buffer.from(head.join("\r\n"), "latin1"), answer.body]));
}

/** Closes (GOAWAY) an h2 session that has had no open stream for `idleMs`. */
function closeWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => session.close(), idleMs);
  };
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(timer);
    stream.once("close", () => {
      if (--open === 0 && !session.closed) arm();
    });
  });
  session.once("close", () => clearTimeout(timer));
  arm();
}

/**
 * Reads just enough of the first bytes to tell the protocols apart, then hands the socket on; a
 * connection that has not told within `timeoutMs` is closed.
 */
function sniff(socket: net.Socket, timeoutMs: number, decide: (isH2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    const matches = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (matches && seen.length < H2_PREFACE.length) return; // need more bytes
    clearTimeout(timer);
    socket.off("close", onClose);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    socket.unshift(seen);
    decide(matches);
    // The HTTP/1.1 parser listens for 'data' but does not resume a paused socket itself.
    if (!matches) socket.resume();
  };
  const onError = () => socket.destroy();
  const onClose = () => clearTimeout(timer);
  socket.on("data", onData);
  socket.on("error", onError);
  socket.once("close", onClose);
}
