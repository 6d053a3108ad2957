import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import type { AnyRequest } from "../../../server/gateway/listener";
import { createHash } from "node:crypto";
import { apiKeyCaller, BodyRefused, BufferBudget, checkAuthorizationHeader, inboundGuard, readBody } from "../../../server/gateway/inbound";
import { ProfileCredentials } from "../../../server/gateway/callerCredentials";
import { boundedReread, chainProfileName, REREAD_AFTER_MS } from "../../../server/credentials";

const CREDS = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "secret" };
const sigv4 = (key: string, service = "bedrock") =>
  `AWS4-HMAC-SHA256 Credential=${key}/20250101/us-east-1/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"a".repeat(64)}`;

describe("inbound: checkAuthorizationHeader (before any body byte)", () => {
  const check = (authorization: string | undefined, allowApiKeys = false) =>
    checkAuthorizationHeader({ headers: authorization === undefined ? {} : { authorization }, credentials: async () => CREDS, allowApiKeys });

  it("passes a SigV4 header that names the gateway's own key for Bedrock", async () => {
    const r = await check(sigv4(CREDS.accessKeyId));
    assert.equal(r.ok && r.kind, "sigv4");
  });

  it("refuses no header, a malformed one, another key and another service, each saying which", async () => {
    assert.deepEqual([await check(undefined)].map((r) => r.ok), [false]);
    assert.match((await check(undefined) as { message: string }).message, /not signed/);
    assert.match((await check("AWS4-HMAC-SHA256 Credential=x") as { message: string }).message, /not an AWS4-HMAC-SHA256 signature/);
    assert.match((await check(sigv4("AKIAI44QH8DHBOTHERKEY")) as { message: string }).message, /access key AKIA…RKEY, but the gateway's credentials are AKIA…MPLE/);
    assert.match((await check(sigv4(CREDS.accessKeyId, "s3")) as { message: string }).message, /service "s3"/);
  });

  it("refuses a Bearer key unless allowApiKeys is on, naming the setting", async () => {
    const off = await check("Bearer anything");
    assert.equal(off.ok, false);
    assert.match((off as { message: string }).message, /allowApiKeys/);
    const on = await check("Bearer anything", true);
    assert.equal(on.ok && on.kind, "bearer");
  });

  it("names a credential failure instead of throwing", async () => {
    const r = await checkAuthorizationHeader({ headers: { authorization: sigv4(CREDS.accessKeyId) }, credentials: async () => Promise.reject(new Error("SSO token expired")), allowApiKeys: false });
    assert.match((r as { message: string }).message, /SSO token expired.*aws sso login/);
  });
});

describe("inbound: callers' profiles and API-key callers", () => {
  const STAGING = { accessKeyId: "AKIASTAGINGEXAMPLE01", secretAccessKey: "s" };
  const profiles = new ProfileCredentials(["broken", "staging"], (name) => async () => {
    if (name === "staging") return STAGING;
    throw new Error(`profile ${name} not found`);
  });

  it("accepts a key held by a profile named in callers (before any body byte), with the profile's credentials", async () => {
    const r = await checkAuthorizationHeader({ headers: { authorization: sigv4(STAGING.accessKeyId) }, credentials: async () => CREDS, allowApiKeys: false, profiles });
    assert.equal(r.ok && r.kind === "sigv4" && r.profile, "staging");
    assert.equal(r.ok && r.kind === "sigv4" && r.credentials.accessKeyId, STAGING.accessKeyId);
  });

  it("refuses a key no profile holds, naming the profiles and what to do; a profile that cannot load matches nothing", async () => {
    const r = await checkAuthorizationHeader({ headers: { authorization: sigv4("AKIAI44QH8DHBOTHERKEY") }, credentials: async () => CREDS, allowApiKeys: false, profiles });
    assert.equal(r.ok, false);
    assert.match((r as { message: string }).message, /access key AKIA…RKEY, but the gateway's credentials are AKIA…MPLE and no profile named in callers \(broken, staging\) holds it; add the caller's AWS profile as a key of callers/);
  });

  it("a profile's key is accepted even while the gateway's own credentials cannot be resolved", async () => {
    const r = await checkAuthorizationHeader({ headers: { authorization: sigv4(STAGING.accessKeyId) }, credentials: async () => Promise.reject(new Error("SSO token expired")), allowApiKeys: false, profiles });
    assert.equal(r.ok && r.kind === "sigv4" && r.profile, "staging");
  });

  it("the gateway's own key is named by the callers profile holding it, else by the profile its credentials come from", async () => {
    const own = Object.assign(async () => CREDS, { profile: "default" });
    const holding = new ProfileCredentials(["agent-001"], () => async () => CREDS);
    const held = await checkAuthorizationHeader({ headers: { authorization: sigv4(CREDS.accessKeyId) }, credentials: own, allowApiKeys: false, profiles: holding });
    assert.equal(held.ok && held.kind === "sigv4" && held.profile, "agent-001");
    const unnamed = await checkAuthorizationHeader({ headers: { authorization: sigv4(CREDS.accessKeyId) }, credentials: own, allowApiKeys: false, profiles });
    assert.equal(unnamed.ok && unnamed.kind === "sigv4" && unnamed.profile, "default");
  });

  it("two callers profiles holding one key refuse the call, naming both", async () => {
    const twice = new ProfileCredentials(["a", "b"], () => async () => STAGING);
    const r = await checkAuthorizationHeader({ headers: { authorization: sigv4(STAGING.accessKeyId) }, credentials: async () => CREDS, allowApiKeys: false, profiles: twice });
    assert.match((r as { message: string }).message, /"a" and "b" named in callers hold the same access key/);
  });

  it("the own profile's name follows the SDKs' chain: awsProfile, AWS_PROFILE, the environment's keys (no profile), else default", () => {
    assert.equal(chainProfileName("work", { AWS_PROFILE: "agent-001" }), "work");
    assert.equal(chainProfileName(undefined, { AWS_PROFILE: "agent-001", AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "S" }), "agent-001");
    assert.equal(chainProfileName(undefined, { AWS_ACCESS_KEY_ID: "A", AWS_SECRET_ACCESS_KEY: "S" }), undefined);
    assert.equal(chainProfileName(undefined, {}), "default");
  });

  it("a Bedrock API key's caller is apikey: and 16 hex digits of its sha256, never the key", async () => {
    const r = await checkAuthorizationHeader({ headers: { authorization: "Bearer my-secret-key" }, credentials: async () => CREDS, allowApiKeys: true });
    assert.equal(r.ok && r.kind === "bearer" && r.caller, `apikey:${createHash("sha256").update("my-secret-key").digest("hex").slice(0, 16)}`);
    assert.equal(apiKeyCaller("Bearer my-secret-key"), r.ok && r.kind === "bearer" ? r.caller : "");
  });

  it("profile names are the callers keys and caps' callers that are not access key ids or API-key ids", () => {
    assert.deepEqual(ProfileCredentials.namesIn({ callers: { AKIAIOSFODNN7EXAMPLE: "a", "apikey:0123456789abcdef": "a", staging: "b", "agent-007": "b" } }), ["agent-007", "staging"]);
    assert.deepEqual(ProfileCredentials.namesIn({ caps: [{ scope: "personal", window: "day", limitUsd: 1, callers: ["prod", "AKIAIOSFODNN7EXAMPLE"] }] }), ["prod"]);
  });
});

describe("inbound: BufferBudget", () => {
  it("holds bytes up to the limit, records the peak, and gives back", () => {
    const b = new BufferBudget();
    assert.equal(b.take(60, 100), true);
    assert.equal(b.take(50, 100), false, "60 + 50 would pass 100");
    assert.equal(b.take(40, 100), true);
    assert.equal(b.bufferedBytes, 100);
    b.give(60);
    assert.equal(b.bufferedBytes, 40);
    assert.equal(b.peakBufferedBytes, 100);
  });
});

/** A request stream with headers, as readBody sees one. */
function request(headers: Record<string, string>): PassThrough & AnyRequest {
  const stream = new PassThrough() as PassThrough & { headers: Record<string, string> };
  stream.headers = headers;
  return stream as unknown as PassThrough & AnyRequest;
}

describe("inbound: readBody", () => {
  it("holds the declared length up front and refuses, unread, a body the budget cannot hold", async () => {
    const guard = inboundGuard({ maxBufferedBytes: 1000 });
    const first = request({ "content-length": "600" });
    const reading = readBody(first, { maxBytes: 800, guard });
    assert.equal(guard.budget.bufferedBytes, 600);
    await assert.rejects(readBody(request({ "content-length": "500" }), { maxBytes: 800, guard }), (e: unknown) => e instanceof BodyRefused && e.reason === "buffers-full");
    first.end(Buffer.alloc(600));
    const read = await reading;
    assert.equal(read.body.length, 600);
    read.release();
    read.release(); // once only
    assert.equal(guard.budget.bufferedBytes, 0);
  });

  it("holds an undeclared body chunk by chunk, and gives it all back when refused", async () => {
    const guard = inboundGuard({ maxBufferedBytes: 100 });
    const req = request({});
    const reading = readBody(req, { maxBytes: 1000, guard });
    req.write(Buffer.alloc(60));
    req.write(Buffer.alloc(60));
    await assert.rejects(reading, (e: unknown) => e instanceof BodyRefused && e.reason === "buffers-full");
    assert.equal(guard.budget.bufferedBytes, 0);
    assert.ok(guard.budget.peakBufferedBytes <= 100);
  });

  it("refuses a body over maxBytes, declared or not", async () => {
    const guard = inboundGuard();
    await assert.rejects(readBody(request({ "content-length": "2000" }), { maxBytes: 1000, guard }), /2000 bytes.*maxRequestBytes/);
    const req = request({});
    const reading = readBody(req, { maxBytes: 1000, guard });
    req.write(Buffer.alloc(1001));
    await assert.rejects(reading, (e: unknown) => e instanceof BodyRefused && e.reason === "too-large");
    assert.equal(guard.budget.bufferedBytes, 0);
  });

  it("gives up on a body that stops arriving, and on a caller that leaves", async () => {
    const guard = inboundGuard({ bodyIdleMs: 20 });
    const stalled = request({ "content-length": "10" });
    const reading = readBody(stalled, { maxBytes: 100, guard });
    stalled.write(Buffer.alloc(3));
    await assert.rejects(reading, (e: unknown) => e instanceof BodyRefused && e.reason === "stalled" && /3 bytes received/.test(e.message));
    const gone = request({ "content-length": "10" });
    const leaving = readBody(gone, { maxBytes: 100, guard: inboundGuard() });
    gone.destroy();
    await assert.rejects(leaving, (e: unknown) => e instanceof BodyRefused && e.reason === "aborted");
    assert.equal(guard.budget.bufferedBytes, 0);
  });
});

describe("inbound: re-reading credentials for a key nobody holds, bounded", () => {
  it("a flood of unknown keys re-reads the files once per REREAD_AFTER_MS; callers arriving during a re-read share it", async () => {
    let t = 1_000_000;
    let reads = 0;
    const reread = boundedReread(async () => {
      reads++;
    }, () => t);
    const first = await Promise.all(Array.from({ length: 50 }, () => reread()));
    assert.equal(reads, 1, "50 unknown keys at once: one read");
    assert.equal(first.filter(Boolean).length >= 1, true);
    for (let i = 0; i < 100; i++) assert.equal(await reread(), false);
    assert.equal(reads, 1, "100 more within the bound: none");
    t += REREAD_AFTER_MS;
    assert.equal(await reread(), true);
    assert.equal(reads, 2, "past the bound: one more");
  });

  it("a key found only after the re-read is accepted; a failed re-read keeps what was loaded", async () => {
    let key = "AKIAOLDKEYOLDKEY1234";
    let rereads = 0;
    const own = Object.assign(async () => ({ accessKeyId: key, secretAccessKey: "s" }), {
      reread: async () => {
        rereads++;
        key = "AKIANEWKEYNEWKEY5678";
        return true;
      },
    });
    const r = await checkAuthorizationHeader({ headers: { authorization: sigv4("AKIANEWKEYNEWKEY5678") }, credentials: own, allowApiKeys: false });
    assert.equal(r.ok && r.kind === "sigv4" && r.credentials.accessKeyId, "AKIANEWKEYNEWKEY5678");
    assert.equal(rereads, 1);
    const known = await checkAuthorizationHeader({ headers: { authorization: sigv4("AKIANEWKEYNEWKEY5678") }, credentials: own, allowApiKeys: false });
    assert.equal(known.ok, true);
    assert.equal(rereads, 1, "a key the gateway holds reads nothing");
    let failing = 0;
    const stays = boundedReread(async () => {
      failing++;
      throw new Error("the file is being rewritten");
    }, () => 0);
    assert.equal(await stays(), true);
    assert.equal(failing, 1);
  });
});
