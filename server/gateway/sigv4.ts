/**
 * SigV4 through a proxy: verify what the caller signed, then sign anew for the real endpoint.
 * Both use the SDK's own signer (@smithy/signature-v4) so the canonical form is the one the
 * SDKs produce; verification rebuilds the request from the caller's SignedHeaders with values
 * exactly as received and the raw path exactly as received.
 */
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from "node:crypto";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity, Checksum, SourceData } from "@smithy/types";

export const SIGNING_SERVICE = "bedrock";
const CONTENT_SHA256 = "x-amz-content-sha256";
/** Kept out of a verified canonical request unless the caller signed it (signableHeaders wins). */
const UNSIGNED_CONTENT_SHA256 = new Set([CONTENT_SHA256]);
/** AWS accepts requests signed up to 15 minutes off the server's clock. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

export interface ParsedAuthorization {
  accessKeyId: string;
  date: string; // YYYYMMDD
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

export type InboundAuth =
  | { kind: "sigv4"; auth: ParsedAuthorization }
  | { kind: "bearer" }
  | { kind: "none" }
  | { kind: "malformed"; reason: string };

const AUTH_PATTERN =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;:._-]+),\s*Signature=([0-9a-f]{64})$/;

export function parseAuthorization(header: string | undefined): InboundAuth {
  if (!header) return { kind: "none" };
  if (/^Bearer\s+\S+/.test(header)) return { kind: "bearer" };
  const m = AUTH_PATTERN.exec(header.trim());
  if (!m) return { kind: "malformed", reason: "the Authorization header is not an AWS4-HMAC-SHA256 signature" };
  return {
    kind: "sigv4",
    auth: {
      accessKeyId: m[1]!,
      date: m[2]!,
      region: m[3]!,
      service: m[4]!,
      signedHeaders: m[5]!.split(";"),
      signature: m[6]!,
    },
  };
}

export interface VerifyInput {
  method: string;
  rawPath: string; // path and query exactly as received
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  auth: ParsedAuthorization;
  credentials: AwsCredentialIdentity;
  now: Date;
  /** sha256Hex(body), when the caller already has it (it is passed on to signUpstream): hashed once per call. */
  bodySha256?: string;
}

/** Returns undefined when the signature verifies, else a reason safe to show the caller. */
export async function verifySignature(input: VerifyInput): Promise<string | undefined> {
  const { auth, headers, credentials } = input;
  const scope = scopeProblem(auth, credentials);
  if (scope) return scope;
  const amzDate = single(headers["x-amz-date"]);
  const signedAt = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!signedAt) return "the request has no valid X-Amz-Date header";
  if (!amzDate!.startsWith(auth.date)) return "the X-Amz-Date does not match the date of the credential scope";
  if (Math.abs(input.now.getTime() - signedAt.getTime()) > MAX_CLOCK_SKEW_MS) {
    return `the request was signed at ${signedAt.toISOString()}, more than 15 minutes from the gateway's clock`;
  }
  // Over HTTP/2 the JS SDK signs `:authority` in place of `host`.
  if (!auth.signedHeaders.includes("host") && !auth.signedHeaders.includes(":authority")) {
    return "the signature does not cover the Host header";
  }
  const bodySha256 = input.bodySha256 ?? sha256Hex(input.body);
  const claimedHash = single(headers[CONTENT_SHA256]);
  if (claimedHash && claimedHash !== "UNSIGNED-PAYLOAD" && claimedHash !== bodySha256) {
    return "the body does not match its X-Amz-Content-SHA256 hash";
  }

  const signedHeaderValues: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value =
      name === "host" || name === ":authority"
        ? single(headers[name]) ?? single(headers.host) ?? single(headers[":authority"])
        : joinValues(headers[name]);
    if (value === undefined) return `the signed header "${name}" is missing from the request`;
    signedHeaderValues[name] = value;
  }
  const { path, query } = splitPathAndQuery(input.rawPath);
  const request = new HttpRequest({
    method: input.method,
    protocol: "http:",
    hostname: (signedHeaderValues.host ?? signedHeaderValues[":authority"])!,
    path,
    query,
    // The signer takes the payload hash from this header rather than hashing the body again; an
    // unsigned one stays out of the canonical headers (unsignableHeaders below), a signed one is the caller's.
    headers: CONTENT_SHA256 in signedHeaderValues ? signedHeaderValues : { ...signedHeaderValues, [CONTENT_SHA256]: bodySha256 },
    body: input.body,
  });
  const signed = await signerFor(credentials, auth.region, false).sign(request, {
    signingDate: signedAt,
    signingRegion: auth.region,
    signableHeaders: new Set(auth.signedHeaders),
    unsignableHeaders: UNSIGNED_CONTENT_SHA256,
  });
  const expected = parseAuthorization(single(signed.headers.authorization));
  if (expected.kind !== "sigv4") return "the signature could not be recomputed";
  if (expected.auth.signedHeaders.join(";") !== auth.signedHeaders.join(";")) {
    return "the signed headers do not match the gateway's credentials (is a session token missing?)";
  }
  const a = Buffer.from(expected.auth.signature, "hex");
  const b = Buffer.from(auth.signature, "hex");
  return a.length === b.length && timingSafeEqual(a, b) ? undefined : "the request signature does not match its content";
}

/**
 * What the Authorization header alone shows to be wrong (service, access key), undefined when it
 * names the gateway's own key for Bedrock: checked before the body is read, and again in verifySignature.
 */
export function scopeProblem(auth: ParsedAuthorization, credentials: Pick<AwsCredentialIdentity, "accessKeyId">): string | undefined {
  if (auth.service !== SIGNING_SERVICE) return `the request is signed for service "${auth.service}", not "${SIGNING_SERVICE}"`;
  if (auth.accessKeyId !== credentials.accessKeyId) {
    return `the request is signed with access key ${maskKey(auth.accessKeyId)}, but the gateway's credentials are ${maskKey(credentials.accessKeyId)}; point the gateway at the same profile (awsProfile) as the caller`;
  }
  return undefined;
}

/** Headers that belong to the caller's hop or signature and must not travel upstream. */
const NOT_FORWARDED = new Set([
  "authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "host", "connection",
  "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect", "http2-settings",
  "content-length",
]);

export function forwardableHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith(":") || NOT_FORWARDED.has(lower) || lower.startsWith("x-bedrock-budget-")) continue;
    const joined = joinValues(value);
    if (joined !== undefined) out[lower] = joined;
  }
  return out;
}

export interface UpstreamTarget {
  protocol: "http:" | "https:";
  hostname: string;
  port: number;
}

/** Signs a request for the upstream with the gateway's credentials (which never leave it). */
export async function signUpstream(input: {
  method: string;
  rawPath: string;
  headers: Record<string, string>;
  body: Uint8Array;
  target: UpstreamTarget;
  region: string;
  credentials: AwsCredentialIdentity;
  now?: Date;
  /** sha256Hex(body) when known (verifySignature computed it): sent as X-Amz-Content-SHA256, so the signer does not hash the body again. */
  bodySha256?: string;
}): Promise<Record<string, string>> {
  const { path, query } = splitPathAndQuery(input.rawPath);
  const defaultPort = input.target.protocol === "https:" ? 443 : 80;
  const host = input.target.port === defaultPort ? input.target.hostname : `${input.target.hostname}:${input.target.port}`;
  const request = new HttpRequest({
    method: input.method,
    protocol: input.target.protocol,
    hostname: input.target.hostname,
    port: input.target.port,
    path,
    query,
    headers: {
      ...input.headers,
      host,
      "content-length": String(input.body.byteLength),
      ...(input.bodySha256 === undefined ? {} : { "x-amz-content-sha256": input.bodySha256 }),
    },
    body: input.body,
  });
  const signed = await signerFor(input.credentials, input.region, true).sign(request, { signingDate: input.now ?? new Date(), signingRegion: input.region });
  return signed.headers;
}

/**
 * Signers by credentials (the object: a refreshed identity is a new one) and region. A signer is
 * stateless between calls; building one per signature cost a few µs of every call. Bounded.
 */
const signers = new WeakMap<AwsCredentialIdentity, Map<string, SignatureV4>>();

function signerFor(credentials: AwsCredentialIdentity, region: string, applyChecksum: boolean): SignatureV4 {
  let byRegion = signers.get(credentials);
  if (!byRegion) signers.set(credentials, (byRegion = new Map()));
  const key = `${region}\0${applyChecksum}`;
  let signer = byRegion.get(key);
  if (!signer) {
    signer = new SignatureV4({ credentials, region, service: SIGNING_SERVICE, sha256: Sha256, applyChecksum });
    if (byRegion.size >= 64) byRegion.clear();
    byRegion.set(key, signer);
  }
  return signer;
}

/** `AKIA…WXYZ`: enough to tell keys apart in a message, never the whole key. */
export function maskKey(accessKeyId: string): string {
  return accessKeyId.length <= 8 ? "****" : `${accessKeyId.slice(0, 4)}…${accessKeyId.slice(-4)}`;
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function splitPathAndQuery(rawPath: string): { path: string; query: Record<string, string | string[]> } {
  const q = rawPath.indexOf("?");
  if (q < 0) return { path: rawPath, query: {} };
  const query: Record<string, string | string[]> = {};
  for (const pair of rawPath.slice(q + 1).split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, "%20"));
    const existing = query[key];
    query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return { path: rawPath.slice(0, q), query };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function joinValues(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * HMACs keyed by a string secret, by secret and message. Smithy's signing-key cache computes one
 * on every signature to name its entry (HMAC of the secret key over the access key id: the same
 * answer every call, ~5 % of the gateway's CPU when computed each time); the only other HMAC with a
 * string secret is the first step of deriving a key, once per day and scope. Bounded.
 */
const stringKeyedHmacs = new Map<string, Buffer>();
const MEMO_ENTRIES = 64;
const MEMO_MESSAGE_BYTES = 256;

/** The Checksum the smithy signer expects, over node:crypto (plain hash, or HMAC with a secret); the hash is created on first use. */
class Sha256 implements Checksum {
  private hash: Hash | Hmac | undefined;
  /** A string secret's message, held until digest() (then answered from stringKeyedHmacs when short). */
  private held: Buffer[] | undefined;
  constructor(private readonly secret?: SourceData) {
    if (typeof secret === "string") this.held = [];
  }
  update(data: Uint8Array): void {
    if (this.held) this.held.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    else this.live().update(data);
  }
  async digest(): Promise<Uint8Array> {
    if (!this.held) return new Uint8Array(this.live().digest());
    const message = Buffer.concat(this.held);
    if (message.byteLength > MEMO_MESSAGE_BYTES) return new Uint8Array(this.live().update(message).digest());
    const key = `${this.secret as string}\0${message.toString("base64")}`;
    let mac = stringKeyedHmacs.get(key);
    if (!mac) {
      mac = this.live().update(message).digest();
      if (stringKeyedHmacs.size >= MEMO_ENTRIES) stringKeyedHmacs.clear();
      stringKeyedHmacs.set(key, mac);
    }
    return new Uint8Array(mac); // a copy: the caller may keep or change it
  }
  reset(): void {
    this.hash = undefined;
    if (this.held) this.held = [];
  }
  private live(): Hash | Hmac {
    return (this.hash ??= this.secret === undefined ? createHash("sha256") : createHmac("sha256", toBuffer(this.secret)));
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}
