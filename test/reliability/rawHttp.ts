/**
 * Requests the way an attacker or a broken tool sends them, below any client library's checks:
 * HTTP/1.1 as raw bytes on a socket (any path, repeated headers, invalid bytes), and HTTP/2 on one
 * session. Each returns the status and headers the gateway answered, or 0 when it did not answer.
 */
import http2 from "node:http2";
import net from "node:net";

export interface Reply {
  /** 0: no answer (connection refused or reset before a status line, or timed out). */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** False when the request could not even be sent (the HTTP/2 client refuses some header values). */
  sent: boolean;
  error?: string;
}

export interface Outgoing {
  method: string;
  /** Request target exactly as it goes on the wire. */
  path: string;
  /** Header lines in order; a name may repeat. Host and content-length are added unless present. */
  headers: [string, string][];
  body: Buffer;
}

const TIMEOUT_MS = 10_000;

/** One request on its own connection (`connection: close`), bytes exactly as given. */
export function sendH1(port: number, req: Outgoing): Promise<Reply> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseH1(Buffer.concat(chunks)), sent: true, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish("timed out"), TIMEOUT_MS);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("end", () => finish());
    socket.on("close", () => finish());
    // A server that answers and closes before reading a body makes our write fail: keep its answer.
    socket.on("error", (err) => finish(err.message));
    const names = new Set(req.headers.map(([n]) => n.toLowerCase()));
    const lines = [`${req.method} ${req.path} HTTP/1.1`];
    if (!names.has("host")) lines.push(`host: 127.0.0.1:${port}`);
    for (const [n, v] of req.headers) lines.push(`${n}: ${v}`);
    if (!names.has("content-length")) lines.push(`content-length: ${req.body.length}`);
    lines.push("connection: close", "", "");
    socket.write(Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), req.body]));
  });
}

function parseH1(buf: Buffer): Omit<Reply, "sent"> {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers: {}, body: "" };
  const [statusLine = "", ...headerLines] = buf.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers, body: buf.subarray(end + 4).toString("utf8") };
}

/** Room for every refused body a test sends on one session (at most ~2,000 × 1 MiB). */
const CLIENT_SESSION_MEMORY_MB = 4096;

/** An HTTP/2 session to the gateway, reopened when a request or the gateway closed it. */
export class H2Client {
  private session: http2.ClientHttp2Session | undefined;

  constructor(private readonly port: () => number) {}

  private connect(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      // Node's client counts the body still queued on a stream the gateway refused and reset unread
      // against its own session memory and never gives it back; at the default 10 MB it then resets
      // every new stream itself (NGHTTP2_ENHANCE_YOUR_CALM), which the fuzz's 1 MiB unsigned bodies reach.
      const session = http2.connect(`http://127.0.0.1:${this.port()}`, { maxSessionMemory: CLIENT_SESSION_MEMORY_MB });
      session.on("error", () => undefined); // surfaces on the request instead
      session.unref();
      this.session = session;
    }
    return this.session;
  }

  send(req: Outgoing): Promise<Reply> {
    const headers: http2.OutgoingHttpHeaders = { ":method": req.method, ":path": req.path, ":authority": `127.0.0.1:${this.port()}` };
    for (const [n, v] of req.headers) {
      const name = n.toLowerCase();
      if (name === "host") continue; // :authority carries it
      headers[name] = v;
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.connect().request(headers, { endStream: false });
    } catch (err) {
      return Promise.resolve({ status: 0, headers: {}, body: "", sent: false, error: (err as Error).message });
    }
    return new Promise((resolve) => {
      let status = 0;
      const respHeaders: Record<string, string> = {};
      const parts: Buffer[] = [];
      let settled = false;
      const finish = (error?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // Reset only a stream given up on: resetting each answered stream too (its 'end' comes before
        // its close) is the rapid-reset pattern (CVE-2023-44487), which nghttp2 answers with GOAWAY
        // INTERNAL_ERROR past 1,000 resets (then 33 a second): the session's good calls would fail.
        if (error === "timed out" && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        resolve({ status, headers: respHeaders, body: Buffer.concat(parts).toString("utf8"), sent: true, ...(error ? { error } : {}) });
      };
      const timer = setTimeout(() => finish("timed out"), TIMEOUT_MS);
      stream.on("response", (h) => {
        status = Number(h[":status"] ?? 0);
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && v !== undefined) respHeaders[k] = String(v);
      });
      stream.on("data", (d: Buffer) => parts.push(d));
      stream.on("end", () => finish());
      stream.on("close", () => finish());
      stream.on("error", (err) => finish(err.message));
      stream.end(req.body);
    });
  }

  close(): void {
    this.session?.destroy();
    this.session = undefined;
  }
}
