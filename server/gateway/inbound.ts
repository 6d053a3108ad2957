/** What the gateway checks of every inbound request, and how much it lets one hold, before anything else happens. */
import http2 from "node:http2";
import type { AwsCredentialIdentity } from "@smithy/types";
import { profileKind } from "../credentials";
import type { AnyRequest, AnyResponse } from "./listener";
import { SharedAccessKeyError, type CallerMatch } from "./callerCredentials";
import { maskKey, parseAuthorization, regionProblem, scopeProblem, sha256Hex, verifySignature, type ParsedAuthorization } from "./sigv4";

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

/** DNS-rebinding defence: a page on evil.example resolving to 127.0.0.1 still sends its own Host. */
export function isLoopbackHost(req: AnyRequest): boolean {
  const host = req.headers.host ?? req.headers[":authority"];
  return typeof host === "string" && LOOPBACK_HOST.test(host);
}

/** The bounds on work done for callers not yet proven: fixed, overridable only by whoever starts the gateway (tests). */
export interface InboundLimits {
  /** Request-body bytes held across all requests in flight; BUFFER_BUDGET_FACTOR × maxRequestBytes when unset. */
  maxBufferedBytes?: number;
  /** Open connections; one more is refused at the socket. */
  maxConnections: number;
  /** A connection must send a complete request head within this (the protocol sniff, HTTP/1.1 headers). */
  headTimeoutMs: number;
  /** An h2 session with no open stream is closed after this. */
  sessionIdleMs: number;
  /** A request body that sends no byte for this long is refused. */
  bodyIdleMs: number;
  /** How long a call whose caller left waits for Bedrock's status line (an error costs nothing). */
  statusWaitMs: number;
}

export const BUFFER_BUDGET_FACTOR = 4;

export const DEFAULT_LIMITS: InboundLimits = {
  maxConnections: 1024,
  headTimeoutMs: 10_000,
  sessionIdleMs: 60_000,
  bodyIdleMs: 30_000,
  // Bedrock answers an auth or validation error at once; a stream that has not started within
  // this is stopped (and charged its worst case, as it would have been at once).
  statusWaitMs: 5_000,
};

/** Bytes of request bodies held in memory right now, against one shared bound. */
export class BufferBudget {
  private held = 0;
  private highest = 0;

  get bufferedBytes(): number {
    return this.held;
  }
  /** The most ever held at once: what a test reads to prove the bound held. */
  get peakBufferedBytes(): number {
    return this.highest;
  }

  take(bytes: number, limit: number): boolean {
    if (this.held + bytes > limit) return false;
    this.held += bytes;
    if (this.held > this.highest) this.highest = this.held;
    return true;
  }

  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }
}

/** What one gateway shares between its requests: the limits and the buffer budget. */
export interface InboundGuard {
  limits: InboundLimits;
  budget: BufferBudget;
}

export function inboundGuard(limits: Partial<InboundLimits> = {}): InboundGuard {
  return { limits: { ...DEFAULT_LIMITS, ...limits }, budget: new BufferBudget() };
}

export type HeaderCheck =
  /**
   * `profile`: the `callers` profile whose credentials the call is signed with, else the profile the gateway's own credentials
   * come from when known (absent: the gateway's own, unnamed); `unverified`: simulate mode.
   */
  | { ok: true; kind: "sigv4"; auth: ParsedAuthorization; credentials: AwsCredentialIdentity; profile?: string; unverified?: true }
  | { ok: true; kind: "bearer"; caller: string }
  /** `invalid`: the request itself is wrong (a 400), not who signed it (a 403). */
  | { ok: false; message: string; invalid?: true };

/**
 * What the Authorization header alone decides, before a byte of the body is read: no header, a
 * malformed one, an access key that is neither the gateway's nor a `callers` profile's, or an API
 * key when they are not allowed is refused here.
 */
export async function checkAuthorizationHeader(input: {
  headers: AnyRequest["headers"];
  /** `profile`: the profile the gateway's own credentials come from, when known; `reread`: loads them anew, bounded (credentialSource). */
  credentials: (() => Promise<AwsCredentialIdentity>) & { readonly profile?: string; readonly reread?: () => Promise<boolean> };
  allowApiKeys: boolean;
  /** The credentials of the profiles named in `callers`: a call signed with one of them is accepted too. */
  profiles?: { names: readonly string[]; find(accessKeyId: string): Promise<CallerMatch | undefined>; reread?(): Promise<boolean> };
  /**
   * Simulate mode only (`serve --simulate`): a SigV4 signature with any key is accepted unverified.
   * The gateway holds no AWS credentials to check it with, and nothing it answers costs money.
   */
  anyAccessKey?: boolean;
}): Promise<HeaderCheck> {
  const header = input.headers.authorization;
  const parsed = parseAuthorization(Array.isArray(header) ? header[0] : header);
  switch (parsed.kind) {
    case "none":
      return { ok: false, message: "the request is not signed; Bedrock Budget forwards only SigV4-signed requests (and Bedrock API keys when allowApiKeys is on)" };
    case "malformed":
      return { ok: false, message: parsed.reason };
    case "bearer":
      // Anyone on the machine can send a Bearer header; the gateway cannot check it, so it is opt-in.
      return input.allowApiKeys
        ? { ok: true, kind: "bearer", caller: apiKeyCaller(Array.isArray(header) ? header[0]! : header!) }
        : { ok: false, message: "Bedrock API keys (Authorization: Bearer) are refused because allowApiKeys is off; sign with SigV4, or set allowApiKeys to true to accept API keys" };
    case "sigv4": {
      // Whoever signed it, a region that forms no host name cannot be forwarded: refused before the body is read.
      const badRegion = regionProblem(parsed.auth.region);
      if (badRegion) return { ok: false, message: `Bedrock Budget refused the request: ${badRegion}`, invalid: true };
      if (input.anyAccessKey) {
        const problem = scopeProblem(parsed.auth, { accessKeyId: parsed.auth.accessKeyId });
        if (problem) return { ok: false, message: `Bedrock Budget refused the request: ${problem}` };
        return { ok: true, kind: "sigv4", auth: parsed.auth, credentials: await input.credentials(), unverified: true };
      }
      let credentials: AwsCredentialIdentity | undefined;
      let failure: Error | undefined;
      let problem: string | undefined;
      let match: CallerMatch | undefined;
      const profiles = parsed.auth.service === "bedrock" && input.profiles && input.profiles.names.length > 0 ? input.profiles : undefined;
      const look = async (): Promise<HeaderCheck | undefined> => {
        credentials = undefined;
        try {
          credentials = await input.credentials();
        } catch (err) {
          failure = err as Error;
        }
        problem = credentials ? scopeProblem(parsed.auth, credentials) : undefined;
        // A `callers` profile may hold the key, the gateway's own too: its tier, rate limit and caps then apply (an explicit entry wins).
        try {
          match = profiles ? await profiles.find(parsed.auth.accessKeyId) : undefined;
        } catch (err) {
          if (err instanceof SharedAccessKeyError) return { ok: false, message: `Bedrock Budget refused the request: it is signed with access key ${maskKey(parsed.auth.accessKeyId)}, but ${err.message}` };
          throw err;
        }
        return undefined;
      };
      const conflict = await look();
      if (conflict) return conflict;
      // A key nobody holds: it may be new (a rotated key, a credentials file rewritten by aws-vault, saml2aws or granted).
      // The gateway's credentials and the callers' profiles are read again, at most once every few seconds, and compared again.
      if (!match && (!credentials || credentials.accessKeyId !== parsed.auth.accessKeyId)) {
        const reread = await Promise.all([input.credentials.reread?.() ?? false, profiles?.reread?.() ?? false]);
        if (reread.some(Boolean)) {
          const again = await look();
          if (again) return again;
        }
      }
      if (credentials && !problem) {
        // Else the gateway's own profile names the caller (awsProfile, AWS_PROFILE or "default", as the SDKs' chain reads it).
        const profile = match?.profile ?? input.credentials.profile;
        return { ok: true, kind: "sigv4", auth: parsed.auth, credentials, ...(profile !== undefined ? { profile } : {}) };
      }
      // Another key: one of the callers' profiles may hold it (the service is checked first, whoever signed).
      if (match) return { ok: true, kind: "sigv4", auth: parsed.auth, credentials: match.credentials, profile: match.profile };
      if (!credentials) {
        return { ok: false, message: `the gateway could not resolve AWS credentials to check the signature (${failure!.message}); set awsProfile or sign in (aws sso login)` };
      }
      const own: AwsCredentialIdentity = credentials;
      const sessions = parsed.auth.service === "bedrock" && own.accessKeyId !== parsed.auth.accessKeyId ? await sessionNote(parsed.auth.accessKeyId, input.credentials.profile, profiles?.names ?? []) : "";
      if (profiles) {
        return {
          ok: false,
          message:
            `Bedrock Budget refused the request: it is signed with access key ${maskKey(parsed.auth.accessKeyId)}, but the gateway's credentials are ${maskKey(own.accessKeyId)} ` +
            `and no profile named in callers (${profiles.names.join(", ")}) holds it; add the caller's AWS profile as a key of callers (with its tier), or point the gateway at the caller's profile (awsProfile)${sessions}`,
        };
      }
      const hint = parsed.auth.service === "bedrock" ? "; or add the caller's AWS profile as a key of callers (with its tier)" : "";
      return { ok: false, message: `Bedrock Budget refused the request: ${problem}${hint}${sessions}` };
    }
  }
}

/**
 * Why a caller's key may never match: SSO and role (assume-role) profiles give each process its own session key, so the
 * gateway resolving the same profile holds another key. Said when the gateway's or a callers profile is one, or the
 * caller signs with temporary (ASIA…) credentials; empty otherwise.
 */
async function sessionNote(callerKey: string, ownProfile: string | undefined, callerProfiles: readonly string[]): Promise<string> {
  const names = [...new Set([...(ownProfile !== undefined ? [ownProfile] : []), ...callerProfiles])];
  const kinds = await Promise.all(names.map(async (name) => [name, await profileKind(name).catch(() => undefined)] as const));
  const sessionProfiles = kinds.filter(([, kind]) => kind === "sso" || kind === "role").map(([name]) => JSON.stringify(name));
  if (sessionProfiles.length === 0 && !callerKey.startsWith("ASIA")) return "";
  const which = sessionProfiles.length > 0 ? `${sessionProfiles.join(", ")} ${sessionProfiles.length > 1 ? "are SSO or role (assume-role) profiles" : "is an SSO or role (assume-role) profile"}` : "the caller signs with temporary (session) credentials";
  return (
    `. Note: ${which}: each process that resolves such a profile gets its own session key, so a caller using it can be verified only if the gateway uses the very same session. ` +
    `Give both one session: write its keys as a static profile in ~/.aws/credentials (as aws-vault, saml2aws or granted do; or from aws configure export-credentials --profile <name>) and name that profile in callers or awsProfile, ` +
    `or start the gateway and the caller with the same AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; the gateway reads the files again when a key it does not know arrives`
  );
}

/** A verified caller: `caller` is the access key id (or `apikey:<hash>`), `callerProfile` the `callers` profile that verified it. */
export type Authenticated =
  | { ok: true; kind: "sigv4"; region: string; credentials: AwsCredentialIdentity; bodySha256: string; caller: string; callerProfile?: string }
  | { ok: true; kind: "bearer"; region: string; caller: string }
  | { ok: false; message: string };

/** The caller id of a Bedrock API key: `apikey:` and the first 16 hex digits of its sha256 (the key itself is never kept). */
export function apiKeyCaller(authorization: string): string {
  const key = authorization.replace(/^Bearer\s+/, "").trim();
  return `apikey:${sha256Hex(Buffer.from(key, "utf8")).slice(0, 16)}`;
}

/**
 * Verifies the caller's SigV4 signature (its body hash included) against the credentials the
 * gateway resolved itself, so only someone holding those credentials can spend through it.
 */
export async function authenticate(
  header: Extract<HeaderCheck, { ok: true }>,
  input: { method: string; rawPath: string; headers: AnyRequest["headers"]; body: Buffer; defaultRegion: string; now: Date },
): Promise<Authenticated> {
  if (header.kind === "bearer") return { ok: true, kind: "bearer", region: input.defaultRegion, caller: header.caller };
  const bodySha256 = sha256Hex(input.body); // once: verification and the upstream signature share it
  if (header.unverified) return { ok: true, kind: "sigv4", region: header.auth.region, credentials: header.credentials, bodySha256, caller: header.auth.accessKeyId };
  const reason = verifySignature({
    bodySha256,
    method: input.method,
    rawPath: input.rawPath,
    headers: input.headers,
    body: input.body,
    auth: header.auth,
    credentials: header.credentials,
    now: input.now,
  });
  if (reason) return { ok: false, message: `Bedrock Budget refused the request: ${reason}` };
  return {
    ok: true, kind: "sigv4", region: header.auth.region, credentials: header.credentials, bodySha256, caller: header.auth.accessKeyId,
    ...(header.profile !== undefined ? { callerProfile: header.profile } : {}),
  };
}

/** Why a body was not read to its end; each maps to one answer. */
export class BodyRefused extends Error {
  constructor(
    readonly reason: "too-large" | "buffers-full" | "stalled" | "aborted",
    message: string,
  ) {
    super(message);
  }
}

export interface ReadBody {
  body: Buffer;
  /** Gives the body's bytes back to the shared budget; call once the request no longer needs them. */
  release(): void;
}

/**
 * Reads a body of at most `maxBytes` while holding its bytes against the shared budget (the
 * declared length up front, so a request the budget cannot hold is refused before it is read),
 * and gives up on a body that sends nothing for `idleMs`.
 */
export function readBody(req: AnyRequest, opts: { maxBytes: number; guard: InboundGuard }): Promise<ReadBody> {
  const { maxBytes, guard } = opts;
  const budget = guard.budget;
  const limit = guard.limits.maxBufferedBytes ?? BUFFER_BUDGET_FACTOR * maxBytes;
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new BodyRefused("too-large", `the request body is ${declared} bytes; the gateway accepts at most ${maxBytes} (maxRequestBytes)`));
      return;
    }
    const full = () =>
      new BodyRefused("buffers-full", `Bedrock Budget is already holding ${budget.bufferedBytes} bytes of request bodies, the most it buffers at once; retry shortly`);
    let held = Number.isFinite(declared) && declared > 0 ? declared : 0;
    if (held > 0 && !budget.take(held, limit)) {
      reject(full());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: BodyRefused) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
      if (err) {
        budget.give(held);
        held = 0;
        reject(err);
        return;
      }
      let released = false;
      resolve({
        body: Buffer.concat(chunks, size),
        release: () => {
          if (released) return;
          released = true;
          budget.give(held);
        },
      });
    };
    // One timer per body, pushed back as bytes arrive (refresh(): no new timer per chunk).
    const arm = () => {
      if (timer) return void timer.refresh();
      timer = setTimeout(
        () => done(new BodyRefused("stalled", `the request body stopped arriving: no byte for ${guard.limits.bodyIdleMs / 1000} s (${size} bytes received)`)),
        guard.limits.bodyIdleMs,
      );
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return done(new BodyRefused("too-large", `the request body is over ${maxBytes} bytes, the most the gateway accepts (maxRequestBytes)`));
      if (size > held) {
        // An undeclared (or understated) length: hold each chunk as it comes.
        if (!budget.take(size - held, limit)) return done(full());
        held = size;
      }
      chunks.push(chunk);
      arm();
    };
    const onEnd = () => done();
    const onGone = () => done(new BodyRefused("aborted", "the caller closed the request before its body ended"));
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onGone);
    req.once("close", onGone);
    arm();
  });
}

/**
 * Answers a request whose body was not read (or not to its end): the rest is not wanted. HTTP/1.1
 * closes the connection; h2 ends only this stream (RST_STREAM NO_ERROR after the answer, RFC 9113
 * §8.1), so the session serves its other streams.
 */
export function answerUnread(req: AnyRequest, res: AnyResponse, send: () => void): void {
  if (req.httpVersionMajor === 1) {
    if (!res.headersSent) res.setHeader("connection", "close");
    send();
    return;
  }
  const stream = (req as http2.Http2ServerRequest).stream;
  const reset = () => {
    if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  };
  stream.once("finish", reset); // the answer is written; the compatibility response's own 'finish' waits for the stream to close
  send();
}
