/**
 * Self-test of the fake Bedrock upstream: requests are signed with `aws4` (what the gateway
 * uses) and verified by the fake with @smithy/signature-v4 (the JS SDK's signer), so these tests
 * also prove the two SigV4 implementations agree on Bedrock's percent-encoded model paths.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import aws4 from "aws4";
import * as http from "node:http";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { FakeBedrock, smithySigV4, type FakeCredentials } from "../support/fakeBedrock";

const CREDS: FakeCredentials = { accessKeyId: "AKIDFAKEBEDROCK", secretAccessKey: "fake-secret-key" };
const AWS_HOST = "bedrock-runtime.us-east-1.amazonaws.com";
const HAIKU = "anthropic.claude-3-haiku-20240307-v1:0";
const PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0";

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Set when the connection died (before or during the response). */
  error?: Error;
}

interface SendOpts {
  path: string;
  body?: string;
  creds?: FakeCredentials;
  region?: string;
  /** Replace the body after signing. */
  tamperBody?: string;
  /** Sign without sending x-amz-content-sha256 (as botocore does): the verifier must hash the body. */
  noContentSha?: boolean;
  extraHeaders?: Record<string, string>;
  unsigned?: Record<string, string>;
  signingDate?: Date;
}

/** Signs as the gateway does, with `aws4`; `noContentSha`: without x-amz-content-sha256, as botocore does. */
async function sign(opts: SendOpts): Promise<Record<string, string>> {
  const body = opts.body ?? "{}";
  const creds = opts.creds ?? CREDS;
  const headers: Record<string, string> = {
    host: AWS_HOST,
    "content-type": "application/json",
    accept: "application/json",
    "content-length": String(Buffer.byteLength(body)),
    ...opts.extraHeaders,
  };
  if (!opts.noContentSha) headers["x-amz-content-sha256"] = createHash("sha256").update(body).digest("hex");
  if (opts.signingDate) headers["x-amz-date"] = opts.signingDate.toISOString().replace(/[:-]|\.\d{3}/g, "");
  const signed = aws4.sign(
    { host: AWS_HOST, method: "POST", path: opts.path, service: "bedrock", region: opts.region ?? "us-east-1", headers, body },
    { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(creds.sessionToken !== undefined ? { sessionToken: creds.sessionToken } : {}) },
  );
  return Object.fromEntries(Object.entries(signed.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

function send(fake: FakeBedrock, path: string, headers: Record<string, string>, body: string): Promise<Reply> {
  const url = new URL(fake.url);
  return new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, method: "POST", path, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      // A socket destroyed mid-body surfaces as "aborted"/"error" on the response.
      res.on("error", (error) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), error }));
    });
    req.on("error", (error) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error }));
    req.end(body);
  });
}

async function signedCall(fake: FakeBedrock, opts: SendOpts): Promise<Reply> {
  const headers = await sign(opts);
  let body = opts.body ?? "{}";
  if (opts.tamperBody !== undefined) {
    body = opts.tamperBody;
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return send(fake, opts.path, { ...headers, ...opts.unsigned }, body);
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

interface Decoded {
  headers: Record<string, string>;
  json: Record<string, unknown>;
}

/** Split by the u32 length prefix; decode() wants exactly one frame. */
function decodeFrames(buf: Buffer): Decoded[] {
  const out: Decoded[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt32BE(off);
    if (off + len > buf.length) break; // partial trailing frame (dropped connection)
    const msg = codec.decode(buf.subarray(off, off + len));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(msg.headers)) headers[k] = String(v.value);
    out.push({ headers, json: JSON.parse(toUtf8(msg.body)) as Record<string, unknown> });
    off += len;
  }
  return out;
}

/** The model JSON inside an InvokeModelWithResponseStream `chunk` frame. */
function chunkJson(frame: Decoded): Record<string, unknown> {
  assert.equal(frame.headers[":event-type"], "chunk");
  assert.equal(typeof frame.json.p, "string");
  return JSON.parse(Buffer.from(frame.json.bytes as string, "base64").toString("utf8")) as Record<string, unknown>;
}

function modelPath(modelId: string, op: string): string {
  return `/model/${encodeURIComponent(modelId)}/${op}`;
}

function errorOf(reply: Reply): { type: string | undefined; message: string } {
  return { type: reply.headers["x-amzn-errortype"] as string | undefined, message: (JSON.parse(reply.body.toString()) as { message: string }).message };
}

describe("FakeBedrock", () => {
  let fake: FakeBedrock;

  before(async () => {
    fake = await FakeBedrock.start({ credentials: CREDS });
  });
  afterEach(() => fake.reset());
  after(async () => {
    await fake.close();
  });

  describe("SigV4", () => {
    it("accepts a signed InvokeModel whose model id has ':' (%3A) and reports usage headers", async () => {
      const path = modelPath(HAIKU, "invoke");
      assert.ok(path.includes("%3A"));
      const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 25, messages: [{ role: "user", content: "hi" }] });
      const r = await signedCall(fake, { path, body });
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(r.headers["x-amzn-bedrock-input-token-count"], String(Math.ceil(Buffer.byteLength(body) / 4)));
      assert.equal(r.headers["x-amzn-bedrock-output-token-count"], "25");
      assert.ok(r.headers["x-amzn-bedrock-invocation-latency"]);
      assert.equal(r.headers["x-amzn-bedrock-cache-read-input-token-count"], undefined);
      assert.match(String(r.headers["x-amzn-requestid"]), /^[0-9a-f-]{36}$/);
      assert.ok(r.headers.date);
      assert.equal(r.headers["content-type"], "application/json");
      const json = JSON.parse(r.body.toString()) as { type: string; content: { text: string }[]; usage: Record<string, number> };
      assert.equal(json.type, "message");
      assert.deepEqual(json.usage, { input_tokens: Math.ceil(Buffer.byteLength(body) / 4), output_tokens: 25, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });

      const hit = fake.hits[0];
      assert.ok(hit);
      assert.equal(hit.signatureValid, true);
      assert.equal(hit.operation, "InvokeModel");
      assert.equal(hit.modelId, HAIKU);
      assert.equal(hit.path, path);
      assert.equal(hit.body.toString(), body);
      assert.equal(hit.headers.host, AWS_HOST);
    });

    it("accepts an inference-profile ARN (':' and '/' encoded) and takes usage from the behavior", async () => {
      const path = modelPath(PROFILE_ARN, "invoke");
      assert.ok(path.includes("%2F"));
      fake.behave(() => ({ kind: "ok", usage: { input: 11, output: 7, cacheRead: 5, cacheWrite: 3 }, serviceTier: "priority" }));
      const r = await signedCall(fake, { path, body: '{"max_tokens":100}' });
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(r.headers["x-amzn-bedrock-input-token-count"], "11");
      assert.equal(r.headers["x-amzn-bedrock-output-token-count"], "7");
      assert.equal(r.headers["x-amzn-bedrock-cache-read-input-token-count"], "5");
      assert.equal(r.headers["x-amzn-bedrock-cache-write-input-token-count"], "3");
      assert.equal(r.headers["x-amzn-bedrock-service-tier"], "priority");
      assert.equal(fake.hits[0]?.modelId, PROFILE_ARN);
      assert.equal(fake.hits[0]?.signatureValid, true);
    });

    it("verifies with the SDK's canonical form: the raw path encoded once more (%3A → %253A, %2F → %252F)", async () => {
      const { canonicalRequest } = await smithySigV4(
        {
          method: "POST",
          rawPath: modelPath(PROFILE_ARN, "invoke"),
          headers: { host: AWS_HOST, "x-amz-date": "20250101T000000Z" },
          body: Buffer.from("{}"),
          region: "us-east-1",
          amzDate: "20250101T000000Z",
        },
        CREDS,
      );
      const canonicalUri = canonicalRequest.split("\n")[1];
      assert.equal(canonicalUri, `/model/${encodeURIComponent(encodeURIComponent(PROFILE_ARN))}/invoke`);
      assert.ok(canonicalUri?.includes("%253A") && canonicalUri.includes("%252F"));
    });

    it("accepts a body hash computed from the body when x-amz-content-sha256 is not sent (botocore style)", async () => {
      const r = await signedCall(fake, { path: modelPath(HAIKU, "invoke"), body: '{"max_tokens":3}', noContentSha: true });
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(fake.hits[0]?.headers["x-amz-content-sha256"], undefined);
    });

    const refusals: [string, SendOpts][] = [
      ["a tampered body", { path: modelPath(HAIKU, "invoke"), body: '{"max_tokens":3}', tamperBody: '{"max_tokens":4}' }],
      ["a tampered body without x-amz-content-sha256", { path: modelPath(HAIKU, "invoke"), body: '{"max_tokens":3}', tamperBody: '{"max_tokens":4}', noContentSha: true }],
      ["a wrong secret", { path: modelPath(HAIKU, "invoke"), creds: { ...CREDS, secretAccessKey: "nope" } }],
      ["a wrong access key", { path: modelPath(HAIKU, "invoke"), creds: { ...CREDS, accessKeyId: "AKIDOTHER" } }],
      ["a wrong region", { path: modelPath(HAIKU, "invoke"), region: "eu-west-1" }],
      ["a session token the credentials don't have", { path: modelPath(HAIKU, "invoke"), creds: { ...CREDS, sessionToken: "tok" } }],
      ["an x-amz-date 20 minutes old", { path: modelPath(HAIKU, "invoke"), signingDate: new Date(Date.now() - 20 * 60 * 1000) }],
      ["a signed header changed in transit", { path: modelPath(HAIKU, "invoke"), extraHeaders: { "x-amzn-bedrock-trace": "ENABLED" }, unsigned: { "x-amzn-bedrock-trace": "DISABLED" } }],
    ];
    for (const [what, opts] of refusals) {
      it(`refuses ${what} with 403 InvalidSignatureException`, async () => {
        const r = await signedCall(fake, opts);
        assert.equal(r.status, 403);
        const err = errorOf(r);
        assert.equal(err.type, "InvalidSignatureException");
        assert.match(err.message, /^The request signature we calculated does not match/);
        assert.equal(fake.hits[0]?.signatureValid, false);
      });
    }

    it("refuses a request signed for a decoded path (canonical URI must use the raw path)", async () => {
      // Sign as if the path were unencoded, then send the encoded one: a classic proxy bug.
      const headers = await sign({ path: `/model/${HAIKU}/invoke` });
      const r = await send(fake, modelPath(HAIKU, "invoke"), headers, "{}");
      assert.equal(r.status, 403);
      assert.equal(fake.hits[0]?.signatureValid, false);
    });

    it("requires the session token when the credentials have one", async () => {
      const creds = { ...CREDS, sessionToken: "session-token-123" };
      const withToken = await FakeBedrock.start({ credentials: creds });
      try {
        const ok = await signedCall(withToken, { path: modelPath(HAIKU, "invoke"), creds });
        assert.equal(ok.status, 200, ok.body.toString());
        assert.equal(withToken.hits[0]?.headers["x-amz-security-token"], "session-token-123");
        const missing = await signedCall(withToken, { path: modelPath(HAIKU, "invoke") });
        assert.equal(missing.status, 403);
        assert.equal(withToken.hits[1]?.signatureValid, false);
      } finally {
        await withToken.close();
      }
    });

    it("accepts Bearer bearer-<accessKeyId> and refuses other bearer tokens", async () => {
      const good = await send(fake, modelPath(HAIKU, "converse"), { authorization: `Bearer bearer-${CREDS.accessKeyId}`, "content-type": "application/json" }, "{}");
      assert.equal(good.status, 200, good.body.toString());
      const bad = await send(fake, modelPath(HAIKU, "converse"), { authorization: "Bearer nope", "content-type": "application/json" }, "{}");
      assert.equal(bad.status, 403);
      assert.deepEqual(
        fake.hits.map((h) => h.signatureValid),
        [true, false],
      );
    });

    it("refuses a request without Authorization", async () => {
      const r = await send(fake, modelPath(HAIKU, "invoke"), { "content-type": "application/json" }, "{}");
      assert.equal(r.status, 403);
      assert.equal(fake.hits[0]?.signatureValid, false);
    });
  });

  describe("operations", () => {
    it("answers Nova and Llama InvokeModel in their own body formats", async () => {
      const nova = await signedCall(fake, { path: modelPath("us.amazon.nova-lite-v1:0", "invoke"), body: '{"inferenceConfig":{"maxTokens":9}}' });
      assert.equal(nova.status, 200);
      const n = JSON.parse(nova.body.toString()) as { output: { message: { content: { text: string }[] } }; usage: Record<string, number> };
      assert.equal(typeof n.output.message.content[0]?.text, "string");
      assert.equal(n.usage.outputTokens, 9);
      assert.equal(n.usage.cacheReadInputTokenCount, 0);

      const llama = await signedCall(fake, { path: modelPath("meta.llama3-3-70b-instruct-v1:0", "invoke"), body: '{"max_gen_len":500}' });
      const l = JSON.parse(llama.body.toString()) as Record<string, unknown>;
      assert.equal(l.generation_token_count, 40); // capped at 40
      assert.equal(typeof l.prompt_token_count, "number");
    });

    it("omits usage headers when usageInHeaders is false", async () => {
      fake.behave(() => ({ kind: "ok", usageInHeaders: false }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "invoke") });
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-amzn-bedrock-input-token-count"], undefined);
      const json = JSON.parse(r.body.toString()) as { usage: { output_tokens: number } };
      assert.equal(json.usage.output_tokens, 40);
    });

    it("answers Converse, CountTokens and ApplyGuardrail", async () => {
      fake.behave((hit) => (hit.operation === "Converse" ? { kind: "ok", usage: { input: 10, output: 4, cacheRead: 2 }, serviceTier: "flex" } : undefined));
      const c = await signedCall(fake, { path: modelPath(HAIKU, "converse"), body: '{"messages":[]}' });
      const cj = JSON.parse(c.body.toString()) as Record<string, unknown>;
      assert.deepEqual(cj.usage, { inputTokens: 10, outputTokens: 4, totalTokens: 16, cacheReadInputTokens: 2 });
      assert.equal(cj.stopReason, "end_turn");
      assert.deepEqual(cj.serviceTier, { type: "flex" });

      const t = await signedCall(fake, { path: modelPath(HAIKU, "count-tokens"), body: "x".repeat(40) });
      assert.deepEqual(JSON.parse(t.body.toString()), { inputTokens: 10 });

      const g = await signedCall(fake, { path: "/guardrail/gr-123/version/1/apply", body: '{"source":"INPUT","content":[]}' });
      assert.equal(g.status, 200);
      const gj = JSON.parse(g.body.toString()) as { action: string; usage: { topicPolicyUnits: number } };
      assert.equal(gj.action, "NONE");
      assert.equal(gj.usage.topicPolicyUnits, 1);
      assert.deepEqual(
        fake.hits.map((h) => h.operation),
        ["Converse", "CountTokens", "ApplyGuardrail"],
      );
    });

    it("answers an unknown route with 404 UnknownOperationException", async () => {
      const r = await signedCall(fake, { path: "/model/x/invoke-with-bidirectional-stream" });
      assert.equal(r.status, 404);
      assert.equal(r.headers["x-amzn-errortype"], "UnknownOperationException");
    });

    it("streams Anthropic events with invocationMetrics in the last chunk", async () => {
      fake.behave(() => ({ kind: "ok", chunks: 4, usage: { input: 12, output: 30 } }));
      const r = await signedCall(fake, { path: modelPath(PROFILE_ARN, "invoke-with-response-stream"), body: '{"max_tokens":100}' });
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-type"], "application/vnd.amazon.eventstream");
      assert.equal(r.headers["x-amzn-bedrock-content-type"], "application/json");
      const frames = decodeFrames(r.body);
      for (const f of frames) assert.equal(f.headers[":message-type"], "event");
      const events = frames.map(chunkJson);
      assert.deepEqual(
        events.map((e) => e.type),
        ["message_start", "content_block_start", ...Array(4).fill("content_block_delta"), "content_block_stop", "message_delta", "message_stop"],
      );
      const start = events[0]?.message as { usage: { input_tokens: number } };
      assert.equal(start.usage.input_tokens, 12);
      assert.deepEqual(events[7]?.usage, { output_tokens: 30 });
      const metrics = events[8]?.["amazon-bedrock-invocationMetrics"] as Record<string, number>;
      assert.equal(metrics.inputTokenCount, 12);
      assert.equal(metrics.outputTokenCount, 30);
      assert.equal(typeof metrics.invocationLatency, "number");
      assert.equal(typeof metrics.firstByteLatency, "number");
    });

    it("writes frames chunkDelayMs apart instead of buffering the stream", async () => {
      fake.behave(() => ({ kind: "ok", chunks: 3, chunkDelayMs: 40 }));
      const headers = await sign({ path: modelPath(HAIKU, "invoke-with-response-stream") });
      const url = new URL(fake.url);
      const arrivals = await new Promise<number[]>((resolve, reject) => {
        const times: number[] = [];
        const req = http.request({ host: url.hostname, port: url.port, method: "POST", path: modelPath(HAIKU, "invoke-with-response-stream"), headers, agent: false }, (res) => {
          res.on("data", () => times.push(Date.now()));
          res.on("end", () => resolve(times));
        });
        req.on("error", reject);
        req.end("{}");
      });
      assert.ok(arrivals.length >= 4, `expected separate arrivals, got ${arrivals.length}`);
      assert.ok((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0) >= 150);
    });

    it("streams ConverseStream events ending with metadata usage", async () => {
      fake.behave(() => ({ kind: "ok", chunks: 2, usage: { input: 5, output: 8, cacheWrite: 1 } }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "converse-stream") });
      assert.equal(r.status, 200);
      const frames = decodeFrames(r.body);
      assert.deepEqual(
        frames.map((f) => f.headers[":event-type"]),
        ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"],
      );
      const last = frames.at(-1)?.json as { usage: Record<string, number>; metrics: { latencyMs: number } };
      assert.deepEqual(last.usage, { inputTokens: 5, outputTokens: 8, totalTokens: 14, cacheWriteInputTokens: 1 });
      assert.equal(typeof last.metrics.latencyMs, "number");
    });

    it("streams Nova chunks with usage in the final metadata", async () => {
      fake.behave(() => ({ kind: "ok", usage: { input: 3, output: 6 } }));
      const r = await signedCall(fake, { path: modelPath("amazon.nova-pro-v1:0", "invoke-with-response-stream") });
      const events = decodeFrames(r.body).map(chunkJson);
      const last = events.at(-1) as { metadata: { usage: { outputTokens: number } }; "amazon-bedrock-invocationMetrics": { outputTokenCount: number } };
      assert.equal(last.metadata.usage.outputTokens, 6);
      assert.equal(last["amazon-bedrock-invocationMetrics"].outputTokenCount, 6);
    });
  });

  describe("failure behaviors", () => {
    it("returns the error shape: status, x-amzn-ErrorType, {message}", async () => {
      fake.behave(() => ({ kind: "error", status: 429, type: "ThrottlingException", message: "Too many requests, please wait before trying again." }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "invoke") });
      assert.equal(r.status, 429);
      assert.deepEqual(errorOf(r), { type: "ThrottlingException", message: "Too many requests, please wait before trying again." });
      assert.ok(r.headers["x-amzn-requestid"]);
      assert.ok(r.headers.date);
      assert.equal(r.headers["content-type"], "application/json");
      assert.equal(fake.hits[0]?.signatureValid, true);
    });

    it("sends an exception frame mid-stream", async () => {
      fake.behave(() => ({ kind: "stream-exception", afterChunks: 2, exceptionType: "modelStreamErrorException", message: "boom" }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "invoke-with-response-stream") });
      assert.equal(r.status, 200);
      assert.equal(r.error, undefined);
      const frames = decodeFrames(r.body);
      assert.equal(frames.length, 3);
      assert.equal(frames[2]?.headers[":message-type"], "exception");
      assert.equal(frames[2]?.headers[":exception-type"], "modelStreamErrorException");
      assert.deepEqual(frames[2]?.json, { message: "boom" });
    });

    it("drops the connection mid-stream after N frames", async () => {
      fake.behave(() => ({ kind: "drop", afterChunks: 2 }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "invoke-with-response-stream") });
      assert.equal(r.status, 200);
      assert.ok(r.error, "expected the response to fail");
      assert.equal(decodeFrames(r.body).length, 2);
    });

    it("drops the connection before any response byte", async () => {
      fake.behave(() => ({ kind: "drop" }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "invoke") });
      assert.equal(r.status, 0);
      assert.ok(r.error);
      assert.equal(fake.hits.length, 1);
    });

    it("hangs until close()", async () => {
      const own = await FakeBedrock.start({ credentials: CREDS });
      own.behave(() => ({ kind: "hang" }));
      const pending = signedCall(own, { path: modelPath(HAIKU, "invoke") });
      const raced = await Promise.race([pending.then(() => "answered"), new Promise((r) => setTimeout(() => r("still waiting"), 150))]);
      assert.equal(raced, "still waiting");
      assert.equal(own.hits.length, 1);
      await own.close();
      const r = await pending;
      assert.ok(r.error);
    });
  });

  describe("fault behaviors", () => {
    /** Reads a response that never ends until `enough` says so, then closes the connection. */
    async function readUntil(path: string, enough: (bytes: Buffer) => boolean): Promise<{ status: number; bytes: Buffer }> {
      const headers = await sign({ path });
      const url = new URL(fake.url);
      return new Promise((resolve, reject) => {
        const req = http.request({ host: url.hostname, port: url.port, method: "POST", path, headers, agent: false }, (res) => {
          const parts: Buffer[] = [];
          res.on("data", (c: Buffer) => {
            parts.push(c);
            const bytes = Buffer.concat(parts);
            if (!enough(bytes)) return;
            req.destroy();
            resolve({ status: res.statusCode ?? 0, bytes });
          });
          res.on("end", () => reject(new Error("the response ended")));
        });
        req.on("error", () => undefined);
        req.end("{}");
      });
    }

    /** Whole frames by their length prefix, not decoded. */
    function rawFrames(buf: Buffer): Buffer[] {
      const out: Buffer[] = [];
      for (let off = 0; off + 4 <= buf.length; ) {
        const len = buf.readUInt32BE(off);
        if (len < 4 || off + len > buf.length) break;
        out.push(buf.subarray(off, off + len));
        off += len;
      }
      return out;
    }

    const faults = {
      "prelude-crc": /prelude checksum/,
      "message-crc": /message checksum/,
      length: /Invalid typed array length|out of range|Offset is outside/i,
      garbage: /prelude checksum/,
    } as const;
    for (const [corruption, failure] of Object.entries(faults) as Array<[keyof typeof faults, RegExp]>) {
      it(`corrupt-frame (${corruption}): good frames, then one the codec refuses, and the response stays open`, async () => {
        fake.behave(() => ({ kind: "corrupt-frame", afterChunks: 2, corruption }));
        const { status, bytes } = await readUntil(modelPath(HAIKU, "invoke-with-response-stream"), (b) => rawFrames(b).length === 3);
        assert.equal(status, 200);
        const frames = rawFrames(bytes);
        assert.equal(decodeFrames(Buffer.concat(frames.slice(0, 2))).length, 2, "the first two frames are good");
        assert.throws(() => codec.decode(new Uint8Array(frames[2]!)), failure);
        assert.equal(fake.hits[0]?.signatureValid, true);
        await fake.faultResponsesClosed(); // closed by this reader, not by the fake
      });
    }

    it("corrupt-frame (bad-prefix, oneWrite): every good frame and then a length prefix no frame can have, and the response stays open", async () => {
      fake.behave(() => ({ kind: "corrupt-frame", afterChunks: Infinity, corruption: "bad-prefix", oneWrite: true }));
      const bad = Buffer.from([0, 0, 0, 3, 0xba, 0xd0]);
      const { status, bytes } = await readUntil(modelPath(HAIKU, "invoke-with-response-stream"), (b) => b.subarray(-bad.length).equals(bad));
      assert.equal(status, 200);
      const frames = rawFrames(bytes);
      const good = frames.reduce((n, f) => n + f.length, 0);
      const decodedFrames = decodeFrames(Buffer.concat(frames));
      assert.ok(decodedFrames.length >= 3, "the whole stream");
      const last = Buffer.from(String(decodedFrames.at(-1)!.json.bytes), "base64").toString("utf8");
      assert.match(last, /amazon-bedrock-invocationMetrics/, "the final usage is among them");
      assert.ok(bytes.subarray(good).equals(bad), "nothing but the bad bytes after the frames");
      await fake.faultResponsesClosed();
    });

    it("cut-mid-frame: good frames, half of the next, then a dead socket", async () => {
      fake.behave(() => ({ kind: "cut-mid-frame", afterChunks: 2 }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "converse-stream") });
      assert.equal(r.status, 200);
      assert.ok(r.error, "expected the response to fail");
      const frames = decodeFrames(r.body);
      assert.equal(frames.length, 2);
      const whole = rawFrames(r.body).reduce((n, f) => n + f.length, 0);
      assert.ok(r.body.length > whole, "part of a third frame arrived");
    });

    it("bad-body: exactly the status, content type and bytes asked for", async () => {
      fake.behave(() => ({ kind: "bad-body", body: "<html>nope</html>", status: 999, contentType: "text/html" }));
      const r = await signedCall(fake, { path: modelPath(HAIKU, "converse") });
      assert.equal(r.status, 999);
      assert.equal(r.headers["content-type"], "text/html");
      assert.equal(r.body.toString(), "<html>nope</html>");
      fake.behave(() => ({ kind: "bad-body", body: "{\"trunc" }));
      const d = await signedCall(fake, { path: modelPath(HAIKU, "invoke") });
      assert.deepEqual([d.status, d.headers["content-type"], d.body.toString()], [200, "application/json", "{\"trunc"]);
    });
  });
});
