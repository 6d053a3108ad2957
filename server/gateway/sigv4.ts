/**
 * SigV4 through a proxy: verify what the caller signed, then sign anew for the real endpoint.
 * Both use the `aws4` package (synchronous, about half the CPU of @smithy/signature-v4's
 * asynchronous signer, which cost ~30 µs per signature here: a sixth of a call's CPU). The
 * canonical form is checked against the SDK's own: the tests sign with the JS SDK (smithy) and
 * the fake Bedrock verifies the gateway's signatures with smithy. Verification rebuilds the
 * request from the caller's SignedHeaders with values exactly as received and the raw path exactly
 * as received.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { RequestSigner, type Request as Aws4Request } from "aws4";
import type { AwsCredentialIdentity } from "@smithy/types";

export const SIGNING_SERVICE = "bedrock";
const CONTENT_SHA256 = "x-amz-content-sha256";
const SECURITY_TOKEN = "x-amz-security-token";
/** aws4 options its type definitions leave out: names to sign although aws4 would skip them, and names to leave unsigned. */
interface SigningRequest extends Aws4Request {
  extraHeadersToInclude?: Record<string, boolean>;
  extraHeadersToIgnore?: Record<string, boolean>;
}

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

/**
 * Why a request whose X-Amz-Content-SHA256 says its payload is not signed (UNSIGNED-PAYLOAD, or a
 * STREAMING-… chunked signature) is refused: the signature would not cover the body, so a captured
 * request could be resent with another body. The Bedrock Runtime SDKs sign the payload.
 */
export function unsignedPayloadProblem(headers: Record<string, string | string[] | undefined>): string | undefined {
  const values = headers[CONTENT_SHA256];
  for (const value of Array.isArray(values) ? values : values === undefined ? [] : [values]) {
    const claimed = value.trim().toUpperCase();
    if (claimed === "UNSIGNED-PAYLOAD" || claimed.startsWith("STREAMING-")) {
      return `the request's signature does not cover its body (X-Amz-Content-SHA256: ${value.trim().slice(0, 60)}); Bedrock Budget accepts only requests whose payload is signed, as the AWS SDKs and CLI sign Bedrock Runtime calls: sign the body's SHA-256`;
    }
  }
  return undefined;
}

/** Returns undefined when the signature verifies, else a reason safe to show the caller. */
export function verifySignature(input: VerifyInput): string | undefined {
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
  // Session credentials: the token is part of them, so the caller must have signed the gateway's own.
  if (credentials.sessionToken !== undefined) {
    const token = single(headers[SECURITY_TOKEN]);
    if (!auth.signedHeaders.includes(SECURITY_TOKEN) || token === undefined) {
      return "the signed headers do not match the gateway's credentials (is a session token missing?)";
    }
    if (!sameText(token, credentials.sessionToken)) return "the request's session token is not the one of the gateway's credentials; point the gateway at the same profile (awsProfile) as the caller";
  }
  const bodySha256 = input.bodySha256 ?? sha256Hex(input.body);
  const claimedHash = single(headers[CONTENT_SHA256]);
  // A signature that does not cover the body would let a captured request be resent with another body.
  const unsigned = unsignedPayloadProblem(headers);
  if (unsigned) return unsigned;
  if (claimedHash && claimedHash !== bodySha256) {
    return "the body does not match its X-Amz-Content-SHA256 hash";
  }

  const signedHeaderValues: Record<string, string> = {};
  const include: Record<string, boolean> = {};
  for (const name of auth.signedHeaders) {
    const value =
      name === "host" || name === ":authority"
        ? single(headers[name]) ?? single(headers.host) ?? single(headers[":authority"])
        : joinValues(headers[name]);
    if (value === undefined) return `the signed header "${name}" is missing from the request`;
    signedHeaderValues[name] = value;
    include[name] = true; // aws4 leaves a few names (user-agent, range, …) out unless told to sign them
  }
  // The payload hash comes from this header; one the caller did not sign is the body's, kept out
  // of the canonical headers. So is the Host aws4 adds when an HTTP/2 caller signed :authority.
  const unsignedHash = !(CONTENT_SHA256 in signedHeaderValues);
  const ignore: Record<string, boolean> = {};
  if (unsignedHash) ignore[CONTENT_SHA256] = true;
  if (!("host" in signedHeaderValues)) ignore.host = true;
  const request: SigningRequest = {
    method: input.method,
    path: input.rawPath, // raw: aws4 encodes each segment once more, as SigV4 does for every service but S3
    headers: unsignedHash ? { ...signedHeaderValues, [CONTENT_SHA256]: bodySha256 } : signedHeaderValues,
    service: SIGNING_SERVICE,
    region: auth.region,
    doNotModifyHeaders: true, // only what the caller signed counts
    extraHeadersToInclude: include,
    extraHeadersToIgnore: ignore,
  };
  const signer = new RequestSigner(request, { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey });
  signer.datetime = amzDate!;
  if (signer.signedHeaders() !== auth.signedHeaders.join(";")) {
    return "the signed headers are not in the order SigV4 requires (lower-case, sorted, each once)";
  }
  return sameText(signer.signature(), auth.signature) ? undefined : "the request signature does not match its content";
}

/**
 * AWS region names: us-east-1, eu-central-2, ap-southeast-5, us-gov-west-1, us-isob-east-1,
 * eusc-de-east-1. The region forms the upstream's host name, so anything else (`us-east-1:x`)
 * could not be forwarded.
 */
const REGION_PATTERN = /^[a-z]+(-[a-z]+)+-\d+$/;

/** Why the credential scope's region cannot be a Bedrock region, undefined when it can. */
export function regionProblem(region: string): string | undefined {
  if (REGION_PATTERN.test(region)) return undefined;
  return `the request is signed for region "${region.slice(0, 64)}", which is not an AWS region name (such as us-east-1); sign it for the region of the Bedrock endpoint`;
}

/**
 * What the Authorization header alone shows to be wrong (service, access key, region), undefined when it
 * names the gateway's own key for Bedrock: checked before the body is read, and again in verifySignature.
 */
export function scopeProblem(auth: ParsedAuthorization, credentials: Pick<AwsCredentialIdentity, "accessKeyId">): string | undefined {
  if (auth.service !== SIGNING_SERVICE) return `the request is signed for service "${auth.service}", not "${SIGNING_SERVICE}"`;
  const region = regionProblem(auth.region);
  if (region) return region;
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
export function signUpstream(input: {
  method: string;
  rawPath: string;
  headers: Record<string, string>;
  body: Uint8Array;
  target: UpstreamTarget;
  region: string;
  credentials: AwsCredentialIdentity;
  now?: Date;
  /** sha256Hex(body) when known (verifySignature computed it), so the body is hashed once per call. */
  bodySha256?: string;
}): Record<string, string> {
  const defaultPort = input.target.protocol === "https:" ? 443 : 80;
  const host = input.target.port === defaultPort ? input.target.hostname : `${input.target.hostname}:${input.target.port}`;
  const amzDate = amzDateOf(input.now ?? new Date());
  const headers: Record<string, string> = {
    ...input.headers,
    host,
    "content-length": String(input.body.byteLength),
    "x-amz-date": amzDate,
    [CONTENT_SHA256]: input.bodySha256 ?? sha256Hex(input.body),
  };
  if (input.credentials.sessionToken !== undefined) headers[SECURITY_TOKEN] = input.credentials.sessionToken;
  const request: SigningRequest = { method: input.method, path: input.rawPath, headers, service: SIGNING_SERVICE, region: input.region, doNotModifyHeaders: true };
  const signer = new RequestSigner(request, { accessKeyId: input.credentials.accessKeyId, secretAccessKey: input.credentials.secretAccessKey });
  signer.datetime = amzDate;
  headers.authorization = signer.authHeader();
  return headers;
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

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function joinValues(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** YYYYMMDDTHHMMSSZ, as X-Amz-Date wants it. */
function amzDateOf(date: Date): string {
  return date.toISOString().replace(/[:-]|\.\d{3}/g, "");
}

/** Constant-time comparison of two strings (signatures, tokens) of any length. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
