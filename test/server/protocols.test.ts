/**
 * The other clients on the same port: HTTP/1.1 callers signed the botocore way (boto3, the AWS
 * CLI), Bedrock API keys (Bearer), and the live event stream the status bar and dashboard use.
 */
import assert from "node:assert/strict";
import http from "node:http";
import aws4 from "aws4";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS, TOKEN_HEADER } from "../../server/protocol";
import type { CallRecord } from "../../server/ledger/types";
import { anthropicBody, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request, as Python's urllib3 (under botocore) sends it. */
function h1(port: number, options: { path: string; headers: Record<string, string>; body: string | Buffer }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: options.path, headers: options.headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once("error", reject);
    req.end(options.body);
  });
}

/** Signs like botocore: `host` signed, body hashed, no x-amz-content-sha256 header sent. */
function botocoreSigned(port: number, path: string, body: string | Buffer, userAgent: string): Record<string, string> {
  const signed = aws4.sign(
    {
      host: `127.0.0.1:${port}`,
      path,
      method: "POST",
      service: "bedrock",
      region: "us-east-1",
      body,
      headers: { "Content-Type": "application/json", Accept: "application/json", "User-Agent": userAgent },
    },
    CREDENTIALS,
  );
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers ?? {})) headers[k] = String(v);
  return headers;
}

describe("gateway: HTTP/1.1 callers, API keys and live events", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.5 }] });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  const path = `/model/${encodeURIComponent(SONNET_45)}/invoke`;

  it("meters an HTTP/1.1 call signed the botocore way, and names the tool from its User-Agent", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    const body = anthropicBody("from python", 50);
    const ua = "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.11.7 Botocore/1.35.0";
    const res = await h1(h.gateway.port, { path, headers: botocoreSigned(h.gateway.port, path, body, ua), body });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers["x-amzn-bedrock-output-token-count"], "20", "usage headers pass through");
    assert.equal(JSON.parse(res.body).type, "message");
    assert.equal(h.fake.hits[0]!.signatureValid, true);
    const calls = (await (await fetch(`${h.gateway.url}${API_PATHS.calls}`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).json()) as { calls: CallRecord[] };
    assert.equal(calls.calls[0]!.tool, "boto3");
    assert.equal(calls.calls[0]!.costPicos, String(10n * 3_000_000n + 20n * 15_000_000n));
  });

  it("refuses an HTTP/1.1 caller over the cap with the same error shape boto3 reads", async () => {
    const body = anthropicBody("big", 64_000); // worst case ≈ $0.96
    const res = await h1(h.gateway.port, { path, headers: botocoreSigned(h.gateway.port, path, body, "Boto3/1.35.0"), body });
    assert.equal(res.status, 400);
    assert.equal(res.headers["x-amzn-errortype"], "ServiceQuotaExceededException");
    assert.equal(res.headers["x-should-retry"], "false");
    assert.ok(res.headers.date);
    assert.match(JSON.parse(res.body).message, /cap "daily"/);
    assert.equal(h.fake.hits.length, 0);
  });

  it("refuses a Bedrock API key (Bearer) while allowApiKeys is off, naming the key, forwarding nothing", async () => {
    const res = await h1(h.gateway.port, {
      path,
      headers: { authorization: `Bearer bearer-${CREDENTIALS.accessKeyId}`, "content-type": "application/json", host: `127.0.0.1:${h.gateway.port}` },
      body: anthropicBody("api key", 50),
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-amzn-errortype"], "AccessDeniedException");
    assert.match(JSON.parse(res.body).message, /allowApiKeys/);
    assert.equal(h.fake.hits.length, 0);
  });

  it("refuses an unsigned request without forwarding it", async () => {
    const res = await h1(h.gateway.port, { path, headers: { "content-type": "application/json" }, body: anthropicBody("x", 5) });
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-amzn-errortype"], "AccessDeniedException");
    assert.equal(h.fake.hits.length, 0);
  });

  it("pushes each settled call on the event stream, with the status after it", async () => {
    h.fake.behave(() => ({ kind: "ok", usage: { input: 100, output: 100 } }));
    const controller = new AbortController();
    const res = await fetch(`${h.gateway.url}${API_PATHS.events}`, { signal: controller.signal, headers: { [TOKEN_HEADER]: h.gateway.api.token() } });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.getReader();
    let text = "";
    const readUntil = async (pattern: RegExp) => {
      for (let i = 0; i < 100 && !pattern.test(text); i++) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString("utf8");
      }
      assert.match(text, pattern);
    };
    await readUntil(/^event: status\n/m); // the current status arrives at once
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("live", 100) }));
    await readUntil(/event: call\ndata: .*\n\nevent: status\ndata: .*\n\n/);
    const call = JSON.parse(/event: call\ndata: (.*)\n/.exec(text)![1]!) as CallRecord;
    assert.equal(call.outcome, "ok");
    assert.equal(call.usage.outputTokens, 100);
    const statusAfter = JSON.parse([...text.matchAll(/event: status\ndata: (.*)\n/g)].at(-1)![1]!);
    assert.ok(statusAfter.caps[0].spentUsd > 0);
    controller.abort();
  });
});

describe("gateway: Bedrock API keys with allowApiKeys on", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 0.5 }], allowApiKeys: true });
  });
  after(() => h.close());

  it("forwards a Bedrock API key (Bearer) as it is, and still meters the call", async () => {
    const path = `/model/${encodeURIComponent(SONNET_45)}/invoke`;
    h.fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 5 } }));
    const body = anthropicBody("api key", 50);
    const res = await h1(h.gateway.port, {
      path,
      headers: { authorization: `Bearer bearer-${CREDENTIALS.accessKeyId}`, "content-type": "application/json", host: `127.0.0.1:${h.gateway.port}` },
      body,
    });
    assert.equal(res.status, 200, res.body);
    assert.equal(h.fake.hits[0]!.headers.authorization, `Bearer bearer-${CREDENTIALS.accessKeyId}`);
    const calls = (await (await fetch(`${h.gateway.url}${API_PATHS.calls}?limit=1`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).json()) as { calls: CallRecord[] };
    assert.equal(calls.calls[0]!.costPicos, String(5n * 3_000_000n + 5n * 15_000_000n));
  });
});

describe("gateway: bodies and paths no SDK would send", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }] });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  const countTokens = `/model/${encodeURIComponent("anthropic.claude-sonnet-4-5-20250929-v1:0")}/count-tokens`;
  const signedCall = (path: string, body: string | Buffer) =>
    h1(h.gateway.port, { path, headers: botocoreSigned(h.gateway.port, path, body, "Boto3/1.35.0"), body });

  it("refuses a request whose signature does not cover its body (UNSIGNED-PAYLOAD, STREAMING-…): a captured request cannot be resent with a bigger body", async () => {
    const path = `/model/${encodeURIComponent(SONNET_45)}/invoke`;
    const small = anthropicBody("hi", 10);
    const big = anthropicBody("hi", 4000);
    for (const claimed of ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]) {
      const opts = { host: `127.0.0.1:${h.gateway.port}`, path, method: "POST", service: "bedrock", region: "us-east-1", body: small, headers: { "Content-Type": "application/json", "X-Amz-Content-Sha256": claimed } };
      aws4.sign(opts, CREDENTIALS);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(opts.headers)) headers[k] = String(v);
      for (const body of [small, big]) {
        const res = await h1(h.gateway.port, { path, headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)) }, body });
        assert.equal(res.status, 403, `${claimed}: ${res.body}`);
        assert.match(JSON.parse(res.body).message, /signature does not cover its body.*payload is signed/, claimed);
      }
    }
    assert.equal(h.fake.hits.length, 0, "none reached Bedrock");
    // The same call with its payload signed, as the SDKs send it, goes through.
    const res = await signedCall(path, small);
    assert.equal(res.status, 200, res.body);
    assert.equal(h.fake.hits.length, 1);
  });

  it("refuses CountTokens bodies that are not JSON, not UTF-8 or not its shape, and never forwards them", async () => {
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ["malformed JSON", "{not json", /not valid JSON/],
      ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /not valid UTF-8/],
      ["no input", "{}", /CountTokens needs "input"/],
      ["both members", JSON.stringify({ input: { converse: {}, invokeModel: { body: "e30=" } } }), /exactly one of "invokeModel" or "converse"/],
      ["an unknown member", JSON.stringify({ input: { chat: {} } }), /exactly one of .*"chat"/],
      ["a body that is not base64", JSON.stringify({ input: { invokeModel: { body: "%%%" } } }), /not base64/],
      ["an inner body that is not JSON", JSON.stringify({ input: { invokeModel: { body: Buffer.from("{nope").toString("base64") } } }), /input\.invokeModel\.body.*not valid JSON/],
      ["messages that are not a list", JSON.stringify({ input: { converse: { messages: "hi" } } }), /"input\.converse\.messages" must be a list/],
    ];
    for (const [what, body, message] of cases) {
      const res = await signedCall(countTokens, body);
      assert.equal(res.status, 400, `${what}: ${res.body}`);
      assert.equal(res.headers["x-amzn-errortype"], "ValidationException", what);
      assert.match(JSON.parse(res.body).message, message, what);
    }
    assert.equal(h.fake.hits.length, 0, "none reached Bedrock");
  });

  it("refuses an ApplyGuardrail body that is not its documented shape, and never forwards it", async () => {
    const path = "/guardrail/gr1/version/1/apply";
    for (const [body, message] of [
      [JSON.stringify({ content: [{ text: { text: "x" } }] }), /"source" must be "INPUT" or "OUTPUT"/],
      [JSON.stringify({ source: "INPUT", content: "x" }), /"content" must be a list/],
      [JSON.stringify({ source: "INPUT", content: [{ text: "x" }] }), /content\[0\]"\.text must be/],
    ] as const) {
      const res = await signedCall(path, body);
      assert.equal(res.status, 400, res.body);
      assert.match(JSON.parse(res.body).message, message);
    }
    assert.equal(h.fake.hits.length, 0);
  });

  it("answers a bad percent-escape in the path or the query with a 400 naming it, not a retryable error", async () => {
    for (const [path, escape] of [
      [`/model/anthropic.claude%ZZ/invoke`, /path has a malformed percent-escape "%ZZ"/],
      [`/model/${encodeURIComponent(SONNET_45)}/invoke?trace=%E0%A4%A`, /query has a malformed percent-escape "%A"/],
      [`/model/${encodeURIComponent(SONNET_45)}/invoke?x=%zz`, /malformed percent-escape "%zz"/],
      [`/model/${encodeURIComponent(SONNET_45)}/invoke?x=%C0%AF`, /query do not decode to UTF-8/],
    ] as const) {
      const body = anthropicBody("x", 10);
      // Signed for a clean path, sent with the bad one: the escape is what the gateway must name.
      const headers = botocoreSigned(h.gateway.port, `/model/${encodeURIComponent(SONNET_45)}/invoke`, body, "Boto3/1.35.0");
      const res = await h1(h.gateway.port, { path, headers, body });
      assert.equal(res.status, 400, `${path}: ${res.status} ${res.body}`);
      assert.equal(res.headers["x-amzn-errortype"], "ValidationException");
      assert.equal(res.headers["x-should-retry"], "false");
      assert.match(JSON.parse(res.body).message, escape, path);
    }
    assert.equal(h.fake.hits.length, 0);
  });
});

describe("gateway: escaped slashes and absolute targets where unmetered calls are allowed", function () {
  this.timeout(20_000);
  let h: Harness;
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_BEDROCK;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], allowUnmeteredOperations: true });
    process.env.AWS_ENDPOINT_URL_BEDROCK = h.fake.url; // the control plane, for the application inference profile
  });
  after(async () => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_BEDROCK;
    else process.env.AWS_ENDPOINT_URL_BEDROCK = savedEndpoint;
    await h.close();
  });
  beforeEach(() => h.fake.reset());

  it("a path whose decoded %2F spells or hides a paid operation, and an absolute-form target, are refused, never forwarded unmetered", async () => {
    const id = encodeURIComponent(SONNET_45);
    const host = `127.0.0.1:${h.gateway.port}`;
    for (const [target, message] of [
      [`/model/${id}/count-tokens%2F..%2Finvoke`, /unusual spelling of InvokeModel/],
      [`/model/${id}%2Finvoke`, /unusual spelling of InvokeModel/],
      [`/model/${id}/invoke%2f`, /unusual spelling of InvokeModel/],
      [`/model%2F${id}%2Fconverse`, /unusual spelling of Converse/],
      [`/model/${id}/invoke%2F..%2Fsomething-new`, /unusual spelling of InvokeModel/],
      [`http://${host}/model/${id}/invoke`, /request target "http:\/\/127\.0\.0\.1:\d+\/model\/.*" is not a path beginning with "\/"/],
    ] as const) {
      const body = anthropicBody("hi", 4000);
      const res = await h1(h.gateway.port, { path: target, headers: botocoreSigned(h.gateway.port, target, body, "Boto3/1.35.0"), body });
      assert.equal(res.status, 400, `${target}: ${res.body}`);
      assert.match(JSON.parse(res.body).message, message, target);
    }
    assert.equal(h.fake.hits.length, 0, "none reached Bedrock");
  });

  it("ARN model ids, whose escaped slash is part of the id, are still routed and metered", async () => {
    const profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123team";
    h.fake.inferenceProfiles.set(profile, { models: ["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"] });
    const arns = [profile, "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"];
    for (const modelId of arns) {
      await h.client.send(new InvokeModelCommand({ modelId, body: anthropicBody("hi", 10), contentType: "application/json" }));
      assert.match(h.fake.hits.at(-1)!.path, /%2F/, "sent with its escaped slash");
    }
    const res = await fetch(`${h.gateway.url}${API_PATHS.calls}?limit=10`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } });
    const recorded = ((await res.json()) as { calls: CallRecord[] }).calls;
    for (const modelId of arns) {
      const call = recorded.find((c) => c.modelId === modelId);
      assert.ok(call, `${modelId} metered`);
      assert.equal(call!.operation, "InvokeModel");
      assert.notEqual(call!.worstCasePicos, "0");
    }
    h.fake.inferenceProfiles.clear();
  });
});
