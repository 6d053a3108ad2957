import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import aws4, { RequestSigner, type Request as Aws4Request } from "aws4";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity } from "@smithy/types";
import {
  forwardableHeaders,
  maskKey,
  parseAuthorization,
  signUpstream,
  verifySignature,
  type ParsedAuthorization,
} from "../../../server/gateway/sigv4";
import { NodeSha256, smithySigV4 } from "../../support/fakeBedrock";

// ---------------------------------------------------------------------------------------------
// Fixtures

const CREDS: AwsCredentialIdentity = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const OTHER_CREDS: AwsCredentialIdentity = {
  accessKeyId: "AKIAI44QH8DHBOTHERKEY",
  secretAccessKey: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbOTHERSECRET",
};
const TEMP_CREDS: AwsCredentialIdentity = {
  accessKeyId: "ASIAQNZGKWETEMPKEY01",
  secretAccessKey: "tempSecretAccessKeyForTestsOnly/abcdefgh",
  sessionToken: "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==",
};

const NOW = new Date("2025-03-14T15:09:26Z");
const AMZ_NOW = "20250314T150926Z";
const HOST = "127.0.0.1:8777";
const MODEL_PATH = "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke";
const BODY = Buffer.from(JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [{ role: "user", content: "hi" }] }));
const JS_UA = "aws-sdk-js/3.1164.0 ua/2.1 os/linux#6.1.0 lang/js md/nodejs#20.20.2 api/bedrock-runtime#3.1164.0 m/E,N";
const BOTO_UA =
  "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.0";

/** What the gateway sees of a request: node's lower-cased header map, the raw target, the body. */
interface Received {
  method: string;
  rawPath: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const sha256Hex = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

function lowerCased(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k.toLowerCase()] = String(v);
  return out;
}

/**
 * Signs like the AWS SDK for JavaScript v3: @smithy/signature-v4 over every header present, with
 * x-amz-content-sha256. `h2` puts `:authority` where HTTP/1.1 has `host`, as the SDK's
 * hostHeaderMiddleware does for its HTTP/2 handler, and adds the pseudo-headers node's h2 server
 * shows the gateway.
 */
async function signLikeJsSdk(opts: {
  path?: string;
  body?: Buffer;
  creds?: AwsCredentialIdentity;
  service?: string;
  region?: string;
  date?: Date;
  h2?: boolean;
  extraHeaders?: Record<string, string>;
  host?: string | null;
}): Promise<Received> {
  const body = opts.body ?? BODY;
  const path = opts.path ?? MODEL_PATH;
  const hostHeader: Record<string, string> =
    opts.host === null ? {} : opts.h2 ? { ":authority": opts.host ?? HOST } : { host: opts.host ?? HOST };
  const request = new HttpRequest({
    method: "POST",
    protocol: "http:",
    hostname: "127.0.0.1",
    port: 8777,
    path,
    headers: {
      ...hostHeader,
      "content-type": "application/json",
      accept: "application/json",
      "content-length": String(body.byteLength),
      "amz-sdk-invocation-id": "4a4d3c38-6a8b-4b5e-9d57-1e1f6c7ad1f2",
      "amz-sdk-request": "attempt=1; max=3",
      "x-amz-user-agent": "aws-sdk-js/3.1164.0",
      "user-agent": JS_UA,
      ...opts.extraHeaders,
    },
    body,
  });
  const signer = new SignatureV4({
    credentials: opts.creds ?? CREDS,
    region: opts.region ?? "us-east-1",
    service: opts.service ?? "bedrock",
    sha256: NodeSha256,
  });
  const signed = await signer.sign(request, { signingDate: opts.date ?? NOW });
  const headers: Record<string, string> = lowerCased(signed.headers);
  if (opts.h2) Object.assign(headers, { ":method": "POST", ":path": path, ":scheme": "http" });
  return { method: "POST", rawPath: path, headers, body };
}

/** Signs like botocore, with the independent `aws4` package: `host` signed, no x-amz-content-sha256 sent. */
function signLikeBotocore(opts: { path?: string; body?: Buffer; creds?: AwsCredentialIdentity; amzDate?: string } = {}): Received {
  const body = opts.body ?? BODY;
  const path = opts.path ?? MODEL_PATH;
  const signed = aws4.sign(
    {
      host: HOST,
      path,
      method: "POST",
      body,
      service: "bedrock",
      region: "us-east-1",
      headers: { "Content-Type": "application/json", "User-Agent": BOTO_UA, "X-Amz-Date": opts.amzDate ?? AMZ_NOW },
    },
    { accessKeyId: (opts.creds ?? CREDS).accessKeyId, secretAccessKey: (opts.creds ?? CREDS).secretAccessKey },
  );
  return { method: "POST", rawPath: path, headers: lowerCased(signed.headers as Record<string, unknown>), body };
}

function authOf(received: Received): ParsedAuthorization {
  const parsed = parseAuthorization(received.headers.authorization as string);
  assert.equal(parsed.kind, "sigv4", `expected a SigV4 Authorization header, got ${String(received.headers.authorization)}`);
  return (parsed as Extract<typeof parsed, { kind: "sigv4" }>).auth;
}

function verify(received: Received, overrides: { credentials?: AwsCredentialIdentity; now?: Date } = {}) {
  return verifySignature({
    method: received.method,
    rawPath: received.rawPath,
    headers: received.headers,
    body: received.body,
    auth: authOf(received),
    credentials: overrides.credentials ?? CREDS,
    now: overrides.now ?? NOW,
  });
}

/**
 * Independent SigV4 check with `aws4`: rebuilds the canonical request from SignedHeaders with the
 * values sent, over the raw path (aws4 re-encodes it for non-S3 services, as SigV4 requires).
 */
function aws4Check(method: string, rawPath: string, headers: Record<string, string>, body: Uint8Array, creds: AwsCredentialIdentity, region: string) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
    headers.authorization ?? "",
  );
  assert.ok(m, `not a SigV4 Authorization header: ${headers.authorization}`);
  const [, keyId, , scopeRegion, service, signedNames, signature] = m;
  const subset: Record<string, string> = {};
  const include: Record<string, boolean> = {};
  for (const name of signedNames!.split(";")) {
    assert.ok(headers[name] !== undefined, `signed header ${name} is not in the request`);
    subset[name] = headers[name]!;
    include[name] = true;
  }
  const signer = new RequestSigner(
    {
      method,
      path: rawPath,
      headers: subset,
      body: Buffer.from(body),
      service: "bedrock",
      region,
      doNotModifyHeaders: true,
      extraHeadersToInclude: include,
    } as Aws4Request,
    { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
  );
  signer.datetime = headers["x-amz-date"]!;
  return {
    keyId,
    scopeRegion,
    service,
    signedNames,
    ok: signer.signature() === signature && signer.signedHeaders() === signedNames,
  };
}

// ---------------------------------------------------------------------------------------------

describe("sigv4: parseAuthorization", () => {
  it("reads the access key, scope, signed headers and signature of a SigV4 header", () => {
    const header =
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250314/eu-west-3/bedrock/aws4_request, SignedHeaders=:authority;content-type;x-amz-date, Signature=" +
      "a".repeat(64);
    assert.deepEqual(parseAuthorization(header), {
      kind: "sigv4",
      auth: {
        accessKeyId: "AKIAIOSFODNN7EXAMPLE",
        date: "20250314",
        region: "eu-west-3",
        service: "bedrock",
        signedHeaders: [":authority", "content-type", "x-amz-date"],
        signature: "a".repeat(64),
      },
    });
  });

  it("accepts the header without a space after the commas (as some signers write it)", () => {
    const parsed = parseAuthorization(
      `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250314/us-east-1/bedrock/aws4_request,SignedHeaders=host;x-amz-date,Signature=${"0".repeat(64)}`,
    );
    assert.equal(parsed.kind, "sigv4");
  });

  it("tells no auth, bearer API keys and malformed headers apart", () => {
    assert.deepEqual(parseAuthorization(undefined), { kind: "none" });
    assert.deepEqual(parseAuthorization(""), { kind: "none" });
    assert.deepEqual(parseAuthorization("Bearer bedrock-api-key-ABCDEF"), { kind: "bearer" });
    for (const bad of [
      "Basic dXNlcjpwYXNz",
      "Bearer ",
      "AWS4-HMAC-SHA256 Credential=AKID/20250314/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=abc",
      `AWS4-HMAC-SHA256 Credential=AKID/2025-03-14/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=${"a".repeat(64)}`,
      `AWS4-HMAC-SHA256 Credential=AKID/20250314/us-east-1/bedrock/aws4_request, SignedHeaders=host`,
    ]) {
      const parsed = parseAuthorization(bad);
      assert.equal(parsed.kind, "malformed", bad);
      assert.match((parsed as { reason: string }).reason, /AWS4-HMAC-SHA256/);
    }
  });
});

describe("sigv4: maskKey", () => {
  it("shows only the first and last four characters of a key id", () => {
    assert.equal(maskKey("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
    assert.equal(maskKey("short"), "****");
    assert.equal(maskKey("12345678"), "****");
  });
});

describe("sigv4: verifySignature accepts what real clients sign", () => {
  it("accepts a JS SDK v3 style request over HTTP/1.1 (host and x-amz-content-sha256 signed)", async () => {
    const req = await signLikeJsSdk({});
    const auth = authOf(req);
    assert.ok(auth.signedHeaders.includes("host"));
    assert.ok(auth.signedHeaders.includes("x-amz-content-sha256"));
    assert.equal(await verify(req), undefined);
  });

  it("accepts a JS SDK v3 style HTTP/2 request that signs :authority instead of host", async () => {
    const req = await signLikeJsSdk({ h2: true });
    const auth = authOf(req);
    assert.equal(auth.signedHeaders[0], ":authority");
    assert.ok(auth.signedHeaders.includes("amz-sdk-invocation-id"));
    // The real SDK's list: :authority;amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;x-amz-content-sha256;x-amz-date;x-amz-user-agent
    assert.equal(auth.signedHeaders.at(-1), "x-amz-user-agent");
    assert.ok(!auth.signedHeaders.includes("host"));
    assert.ok(!auth.signedHeaders.includes(":path"), "pseudo-headers other than :authority are not signed");
    assert.equal(await verify(req), undefined);
  });

  it("accepts a botocore-like request signed by aws4 (host signed, no x-amz-content-sha256 header)", async () => {
    const req = signLikeBotocore();
    assert.equal(req.headers["x-amz-content-sha256"], undefined);
    assert.ok(authOf(req).signedHeaders.includes("host"));
    assert.equal(await verify(req), undefined);
  });

  it("accepts session credentials when the gateway holds the same ones", async () => {
    const req = await signLikeJsSdk({ creds: TEMP_CREDS });
    assert.ok(authOf(req).signedHeaders.includes("x-amz-security-token"));
    assert.equal(await verify(req, { credentials: TEMP_CREDS }), undefined);
  });

  it("accepts a request signed 14 minutes ahead of or behind the gateway's clock", async () => {
    for (const offset of [-14, 14]) {
      const req = await signLikeJsSdk({ date: new Date(NOW.getTime() + offset * 60_000) });
      assert.equal(await verify(req), undefined, `offset ${offset} min`);
    }
  });
});

describe("sigv4: verifySignature with the real @aws-sdk/client-bedrock-runtime signer", () => {
  /** Captures the request exactly as the SDK, with its default handler, sends it over HTTP/2 cleartext. */
  async function captureSdkRequest(command: InvokeModelCommand | ConverseCommand): Promise<Received> {
    let captured: Received | undefined;
    const server = http2.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
        captured = { method: req.method, rawPath: req.url, headers, body: Buffer.concat(chunks) };
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"output":{"message":{"role":"assistant","content":[]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1},"type":"message"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const client = new BedrockRuntimeClient({ region: "us-east-1", endpoint: `http://127.0.0.1:${port}`, credentials: CREDS, maxAttempts: 1 });
    try {
      await client.send(command as never);
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    assert.ok(captured, "the SDK sent nothing");
    return captured;
  }

  const invoke = () =>
    new InvokeModelCommand({ modelId: "anthropic.claude-sonnet-4-5-20250929-v1:0", contentType: "application/json", body: BODY });
  const converse = () =>
    new ConverseCommand({
      modelId: "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
      messages: [{ role: "user", content: [{ text: "hi" }] }],
    });

  it("verifies the SDK's HTTP/2 request (it signs :authority in place of host)", async () => {
    const h2 = await captureSdkRequest(invoke());
    assert.equal(h2.rawPath, "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke");
    assert.equal(authOf(h2).signedHeaders[0], ":authority");
    assert.equal(await verify(h2, { now: new Date() }), undefined);
  });

  it("verifies the SDK's Converse request to an application inference profile ARN (%3A and %2F in the path)", async () => {
    const req = await captureSdkRequest(converse());
    assert.equal(req.rawPath, "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse");
    assert.equal(await verify(req, { now: new Date() }), undefined);
    req.body = Buffer.from(req.body.toString().replace("hi", "hello"));
    assert.match((await verify(req, { now: new Date() })) ?? "", /body does not match/);
  });
});

describe("sigv4: verifySignature refuses, naming the problem", () => {
  it("a request signed with the right key id but a wrong secret", async () => {
    const req = await signLikeJsSdk({ creds: { accessKeyId: CREDS.accessKeyId, secretAccessKey: "not-the-secret" } });
    assert.match((await verify(req)) ?? "", /signature does not match/);
    const boto = signLikeBotocore({ creds: { accessKeyId: CREDS.accessKeyId, secretAccessKey: "not-the-secret" } });
    assert.match((await verify(boto)) ?? "", /signature does not match/);
  });

  it("a request signed with another access key, masking both keys and revealing no secret", async () => {
    const req = await signLikeJsSdk({ creds: OTHER_CREDS });
    const reason = await verify(req);
    assert.ok(reason, "must be refused");
    assert.match(reason, /access key/);
    assert.ok(reason.includes(maskKey(OTHER_CREDS.accessKeyId)), reason);
    assert.ok(reason.includes(maskKey(CREDS.accessKeyId)), reason);
    for (const secret of [CREDS.accessKeyId, OTHER_CREDS.accessKeyId, CREDS.secretAccessKey, OTHER_CREDS.secretAccessKey]) {
      assert.ok(!reason.includes(secret), `the reason leaks ${secret}: ${reason}`);
    }
  });

  it("a body tampered with after signing (JS SDK: caught by x-amz-content-sha256)", async () => {
    const req = await signLikeJsSdk({});
    req.body = Buffer.from(req.body.toString().replace("hi", "ho"));
    assert.match((await verify(req)) ?? "", /body does not match its X-Amz-Content-SHA256/);
  });

  it("a body tampered with after signing (botocore: no hash header, caught by the signature)", async () => {
    const req = signLikeBotocore();
    req.body = Buffer.from(req.body.toString().replace("hi", "ho"));
    assert.match((await verify(req)) ?? "", /signature does not match/);
  });

  it("a body that does not match a signed x-amz-content-sha256, even when the signature itself is consistent", async () => {
    const claimed = sha256Hex('{"max_tokens":1}');
    const req = await signLikeJsSdk({ extraHeaders: { "x-amz-content-sha256": claimed } });
    assert.equal(req.headers["x-amz-content-sha256"], claimed);
    assert.match((await verify(req)) ?? "", /body does not match its X-Amz-Content-SHA256/);
  });

  it("a request missing a header its signature covers", async () => {
    const req = await signLikeJsSdk({});
    delete req.headers["amz-sdk-invocation-id"];
    assert.match((await verify(req)) ?? "", /signed header "amz-sdk-invocation-id" is missing/);
  });

  it("a signature that covers neither host nor :authority", async () => {
    const req = await signLikeJsSdk({ host: null });
    assert.match((await verify(req)) ?? "", /does not cover the Host header/);
  });

  it("a SignedHeaders list out of SigV4's order (not sorted, or a name twice), even with a signature computed over it", async () => {
    const req = await signLikeJsSdk({});
    const auth = authOf(req);
    for (const names of [[...auth.signedHeaders].reverse(), [...auth.signedHeaders, "host"]]) {
      const reason = await verifySignature({ ...req, auth: { ...auth, signedHeaders: names }, credentials: CREDS, now: NOW });
      assert.match(reason ?? "", /not in the order SigV4 requires/, names.join(";"));
    }
  });

  it("a request signed more than 15 minutes before or after the gateway's clock", async () => {
    for (const offset of [-16, 16]) {
      const req = await signLikeJsSdk({ date: new Date(NOW.getTime() + offset * 60_000) });
      assert.match((await verify(req)) ?? "", /more than 15 minutes/, `offset ${offset} min`);
    }
  });

  it("a request without a valid X-Amz-Date", async () => {
    const req = await signLikeJsSdk({});
    req.headers["x-amz-date"] = "2025-03-14T15:09:26Z";
    assert.match((await verify(req)) ?? "", /X-Amz-Date/);
  });

  it("a request signed for another service than bedrock", async () => {
    const req = await signLikeJsSdk({ service: "bedrock-runtime" });
    const reason = await verify(req);
    assert.match(reason ?? "", /service "bedrock-runtime", not "bedrock"/);
  });

  it("a request signed over the decoded path but sent percent-encoded (the raw path is what counts)", async () => {
    const decodedSigned = await signLikeJsSdk({ path: "/model/a.b:0/invoke" });
    decodedSigned.rawPath = "/model/a.b%3A0/invoke";
    assert.match((await verify(decodedSigned)) ?? "", /signature does not match/);

    const encodedSigned = await signLikeJsSdk({ path: "/model/a.b%3A0/invoke" });
    assert.equal(await verify(encodedSigned), undefined);

    const boto = signLikeBotocore({ path: "/model/a.b%3A0/invoke" });
    assert.equal(await verify(boto), undefined);
  });

  it("an ARN model id with %3A and %2F verifies only as sent", async () => {
    const arnPath = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123xyz/converse";
    assert.equal(await verify(await signLikeJsSdk({ path: arnPath })), undefined);
    assert.equal(await verify(signLikeBotocore({ path: arnPath })), undefined);
    const moved = await signLikeJsSdk({ path: arnPath });
    moved.rawPath = decodeURIComponent(arnPath.slice(0, arnPath.lastIndexOf("/"))) + "/converse";
    assert.ok(await verify(moved), "a path other than the signed one must not verify");
  });

  it("session credentials the gateway does not hold (no token signed, or another token)", async () => {
    const noToken = await signLikeJsSdk({ creds: { accessKeyId: TEMP_CREDS.accessKeyId, secretAccessKey: TEMP_CREDS.secretAccessKey } });
    assert.match((await verify(noToken, { credentials: TEMP_CREDS })) ?? "", /session token/);

    const otherToken = await signLikeJsSdk({ creds: { ...TEMP_CREDS, sessionToken: "AnotherSessionTokenValue==" } });
    assert.ok(await verify(otherToken, { credentials: TEMP_CREDS }), "a different session token must be refused");
  });

  it("temporary credentials when the gateway holds long-term ones (other key id)", async () => {
    const req = await signLikeJsSdk({ creds: TEMP_CREDS });
    const reason = await verify(req);
    assert.match(reason ?? "", /access key ASIA…EY01/);
    assert.ok(!reason!.includes(TEMP_CREDS.sessionToken!));
  });
});

describe("sigv4: forwardableHeaders", () => {
  it("drops the caller's signature, hop-by-hop and gateway headers and keeps the rest, lower-cased", () => {
    const out = forwardableHeaders({
      ":method": "POST",
      ":path": MODEL_PATH,
      ":authority": HOST,
      host: HOST,
      Authorization: "AWS4-HMAC-SHA256 Credential=…",
      "x-amz-date": AMZ_NOW,
      "x-amz-security-token": "caller-token",
      "x-amz-content-sha256": "abc",
      connection: "keep-alive",
      "keep-alive": "timeout=5",
      "transfer-encoding": "chunked",
      "content-length": "123",
      expect: "100-continue",
      "x-bedrock-budget-tags": "team=search",
      "Content-Type": "application/json",
      accept: "application/json",
      "user-agent": BOTO_UA,
      "x-amzn-bedrock-guardrailidentifier": "gr-1",
      "x-amzn-bedrock-performanceconfig-latency": "optimized",
      "x-custom": ["a", "b"],
      "x-undefined": undefined,
    });
    assert.deepEqual(out, {
      "content-type": "application/json",
      accept: "application/json",
      "user-agent": BOTO_UA,
      "x-amzn-bedrock-guardrailidentifier": "gr-1",
      "x-amzn-bedrock-performanceconfig-latency": "optimized",
      "x-custom": "a,b",
    });
  });
});

describe("sigv4: signUpstream", () => {
  const GATEWAY_CREDS: AwsCredentialIdentity = {
    accessKeyId: "AKIAGATEWAYEXAMPLE01",
    secretAccessKey: "gatewaySecretKeyThatNeverLeavesTheMachine",
    sessionToken: "GatewaySessionToken==",
  };

  async function upstreamOf(caller: Received, target = { protocol: "https:" as const, hostname: "bedrock-runtime.us-west-2.amazonaws.com", port: 443 }) {
    return signUpstream({
      method: caller.method,
      rawPath: caller.rawPath,
      headers: forwardableHeaders(caller.headers),
      body: caller.body,
      target,
      region: "us-west-2",
      credentials: GATEWAY_CREDS,
      now: new Date("2025-03-14T15:10:00Z"),
    });
  }

  it("signs the same with the body hash the verification computed as without it (the body is hashed once per call)", async () => {
    const caller = await signLikeJsSdk({ h2: true, creds: TEMP_CREDS });
    const plain = await upstreamOf(caller);
    const shared = await signUpstream({
      method: caller.method,
      rawPath: caller.rawPath,
      headers: forwardableHeaders(caller.headers),
      body: caller.body,
      target: { protocol: "https:", hostname: "bedrock-runtime.us-west-2.amazonaws.com", port: 443 },
      region: "us-west-2",
      credentials: GATEWAY_CREDS,
      now: new Date("2025-03-14T15:10:00Z"),
      bodySha256: sha256Hex(caller.body),
    });
    assert.deepEqual(shared, plain);
  });

  it("signs for the upstream host with the gateway's credentials, verified by aws4 over the raw encoded path", async () => {
    const caller = await signLikeJsSdk({ h2: true, creds: TEMP_CREDS });
    const out = await upstreamOf(caller);
    assert.equal(out.host, "bedrock-runtime.us-west-2.amazonaws.com");
    assert.equal(out[":authority"], undefined);
    assert.equal(out["x-amz-date"], "20250314T151000Z");
    assert.equal(out["x-amz-security-token"], GATEWAY_CREDS.sessionToken);
    assert.equal(out["x-amz-content-sha256"], sha256Hex(caller.body));
    assert.equal(out["content-length"], String(caller.body.byteLength));
    assert.equal(out["content-type"], "application/json");
    assert.equal(out["amz-sdk-invocation-id"], caller.headers["amz-sdk-invocation-id"]);
    assert.notEqual(out.authorization, caller.headers.authorization);
    assert.ok(!JSON.stringify(out).includes(TEMP_CREDS.sessionToken!), "the caller's session token must not travel upstream");

    const check = aws4Check("POST", MODEL_PATH, out, caller.body, GATEWAY_CREDS, "us-west-2");
    assert.equal(check.keyId, GATEWAY_CREDS.accessKeyId);
    assert.equal(check.scopeRegion, "us-west-2");
    assert.equal(check.service, "bedrock");
    assert.ok(check.signedNames!.split(";").includes("host"));
    assert.ok(check.ok, "aws4 must accept the upstream signature");

    // Signed over the raw path: the same headers do not verify for the decoded path.
    const decoded = aws4Check("POST", "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke", out, caller.body, GATEWAY_CREDS, "us-west-2");
    assert.equal(decoded.ok, false);
  });

  it("re-signs a botocore caller's request, replacing its host and signature", async () => {
    const caller = signLikeBotocore({ path: "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.amazon.nova-pro-v1%3A0/converse" });
    const out = await upstreamOf(caller);
    assert.equal(out.host, "bedrock-runtime.us-west-2.amazonaws.com");
    assert.match(out.authorization!, /^AWS4-HMAC-SHA256 Credential=AKIAGATEWAYEXAMPLE01\/20250314\/us-west-2\/bedrock\/aws4_request/);
    assert.ok(!out.authorization!.includes(CREDS.accessKeyId));
    assert.ok(aws4Check("POST", caller.rawPath, out, caller.body, GATEWAY_CREDS, "us-west-2").ok);
  });

  it("puts a non-default port in the signed host", async () => {
    const caller = await signLikeJsSdk({});
    const out = await upstreamOf(caller, { protocol: "http:", hostname: "127.0.0.1", port: 9321 } as never);
    assert.equal(out.host, "127.0.0.1:9321");
    assert.ok(aws4Check("POST", MODEL_PATH, out, caller.body, GATEWAY_CREDS, "us-west-2").ok);
  });

  it("produces signatures the JS SDK's own signer (smithy) computes alike, for model ids, ARNs and session credentials", async () => {
    const paths = [MODEL_PATH, "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse-stream", "/guardrail/gr-1/version/DRAFT/apply"];
    for (const path of paths) {
      for (const h2 of [false, true]) {
        const caller = await signLikeJsSdk({ path, h2 });
        const out = await upstreamOf(caller);
        const m = /SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(out.authorization!);
        assert.ok(m, out.authorization);
        const signed = Object.fromEntries(m[1]!.split(";").map((name) => [name, out[name]!]));
        const sdk = await smithySigV4({ method: "POST", rawPath: path, headers: signed, body: caller.body, region: "us-west-2", amzDate: out["x-amz-date"]! }, GATEWAY_CREDS);
        assert.equal(m[2], sdk.signature, `${path} (${h2 ? "h2" : "h1"} caller)`);
      }
    }
  });

  it("produces a request the gateway's own verifier accepts with the gateway's credentials", async () => {
    const caller = await signLikeJsSdk({});
    const out = await upstreamOf(caller);
    const parsed = parseAuthorization(out.authorization);
    assert.equal(parsed.kind, "sigv4");
    const reason = await verifySignature({
      method: "POST",
      rawPath: MODEL_PATH,
      headers: out,
      body: caller.body,
      auth: (parsed as Extract<typeof parsed, { kind: "sigv4" }>).auth,
      credentials: GATEWAY_CREDS,
      now: new Date("2025-03-14T15:10:00Z"),
    });
    assert.equal(reason, undefined);
  });
});
