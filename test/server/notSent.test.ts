/**
 * Calls that never left the machine cost nothing and hold nothing: a failure after the call was
 * admitted but before a byte reached Bedrock (a response header the gateway cannot send, a region
 * that forms no host name, a request Node refuses to build, a TLS handshake that fails, as behind
 * a TLS-inspecting proxy) settles at $0 and releases the reservation. Through the real SDK with its
 * default handler; where a case is about HTTP/1.1 itself, a request signed by hand over Node's HTTP/1.1.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import aws4 from "aws4";
import forge from "node-forge";
import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { validated } from "../../server/config/load";
import { startGateway, type RunningGateway } from "../../server/gateway/gateway";
import { silentLogger } from "../../server/log";
import type { CallRecord } from "../../server/ledger/types";
import { API_PATHS, TOKEN_HEADER, type CallsResponse, type StatusResponse } from "../../server/protocol";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

const HAIKU = "anthropic.claude-3-haiku-20240307-v1:0";
/** Input free, output $15/1M: 300 max tokens make a worst case of 4,500 µ$; 10 output tokens cost 150 µ$. */
const PRICING = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 }, [HAIKU]: { inputPer1M: 0, outputPer1M: 15 } };
const SONNET_WORST = "4500000000";

const getJson = async <T>(url: string, headers: Record<string, string> = {}): Promise<T> => {
  const res = await fetch(url, { headers });
  assert.equal(res.status, 200, `${url} answered ${res.status}`);
  return (await res.json()) as T;
};
const calls = async (gw: RunningGateway): Promise<CallRecord[]> =>
  (await getJson<CallsResponse>(`${gw.url}${API_PATHS.calls}?limit=20`, { [TOKEN_HEADER]: gw.api.token() })).calls;
const caps = async (gw: RunningGateway) => (await getJson<StatusResponse>(`${gw.url}${API_PATHS.status}`)).caps;

/** Nothing held and nothing spent on any cap. */
async function assertNothingHeldOrSpent(gw: RunningGateway): Promise<void> {
  for (const cap of await caps(gw)) {
    assert.equal(Number(cap.reservedExact), 0, `cap ${cap.id} still holds ${cap.reservedExact} USD for calls that are over`);
    assert.equal(Number(cap.spentExact), 0, `cap ${cap.id} was charged ${cap.spentExact} USD for calls that never reached Bedrock`);
  }
}

/** The SDK as users run it (its default handler: HTTP/2 cleartext to an http:// endpoint), one attempt. */
const oneAttempt = (url: string) => new BedrockRuntimeClient({ region: "us-east-1", endpoint: url, credentials: CREDENTIALS, maxAttempts: 1 });

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * A request signed by hand (aws4, as a script would) and sent over HTTP/1.1 with Node's own
 * client: the gateway's ServerResponse path, which boto3 and the AWS CLI reach, for the cases that
 * are about HTTP/1.1 itself.
 */
function signedHttp1(url: string, requestPath: string, body: string, region = "us-east-1"): Promise<RawAnswer> {
  const port = Number(new URL(url).port);
  const req = { host: `127.0.0.1:${port}`, method: "POST", path: requestPath, body, service: "bedrock", region, headers: { "content-type": "application/json" } };
  aws4.sign(req, CREDENTIALS);
  return new Promise((resolve, reject) => {
    const r = http.request({ host: "127.0.0.1", port, method: "POST", path: req.path, headers: req.headers as Record<string, string>, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    r.on("error", reject);
    r.end(body);
  });
}

/** The InvokeModel call `invoke` makes, over HTTP/1.1 (signedHttp1). */
const invokeHttp1 = (url: string) => signedHttp1(url, `/model/${encodeURIComponent(SONNET_45)}/invoke`, anthropicBody("Hi", 300));

/** Records the raw response headers the client received. */
function watchHeaders(client: BedrockRuntimeClient): { headers?: Record<string, string> } {
  const seen: { headers?: Record<string, string> } = {};
  client.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      seen.headers = (out.response as { headers: Record<string, string> }).headers;
      return out;
    },
    { step: "deserialize", name: "watchHeaders" },
  );
  return seen;
}

const invoke = (client: BedrockRuntimeClient) => client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Hi", 300) }));
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: Error) => e);

describe("not sent: a cap's header that HTTP cannot carry as it is", function () {
  this.timeout(30_000);
  // A tier cap's id is `<cap>@<caller>`, and a caller may be a user named 李雷.
  let h: Harness;
  before(async () => {
    h = await startHarness({ user: "李雷", pricing: PRICING, tiers: { pro: { caps: [{ id: "pro-day", window: "day", limitUsd: 0.001, action: "warn" }] } }, callers: { 李雷: "pro" } });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  /** The warned call's response headers, over HTTP/1.1 (where the raw header broke Node's ServerResponse) or the SDK's default HTTP/2. */
  const overHttp1 = async (url: string): Promise<Record<string, unknown>> => {
    const answer = await invokeHttp1(url);
    assert.equal(answer.status, 200, answer.text);
    return answer.headers;
  };
  const overDefault = async (url: string): Promise<Record<string, unknown> | undefined> => {
    const client = clientFor(url);
    const seen = watchHeaders(client);
    try {
      await invoke(client);
    } finally {
      client.destroy();
    }
    return seen.headers;
  };
  for (const [label, answer] of [["HTTP/1.1", overHttp1], ["HTTP/2", overDefault]] as const) {
    it(`${label}: the warned call goes through at its real cost, its warning percent-encoded, and nothing stays reserved`, async () => {
      h.fake.behave(() => ({ kind: "ok", usage: { input: 0, output: 10 } }));
      const headers = await answer(h.gateway.url);
      const warning = headers?.["x-bedrock-budget-warning"];
      assert.ok(typeof warning === "string", "the warning header is missing");
      assert.match(warning, /^[\x20-\x7e]+$/, "a header value is printable ASCII");
      assert.equal(decodeURIComponent(warning), "cap=pro-day@李雷 could pass its limit");
      const [call] = await calls(h.gateway);
      assert.equal(call?.outcome, "ok");
      assert.equal(call?.costPicos, "150000000"); // 10 output tokens × $15/1M
      for (const cap of await caps(h.gateway)) assert.equal(Number(cap.reservedExact), 0, `cap ${cap.id} still holds a reservation`);
    });
  }
});

describe("not sent: a failure between admission and forwarding", function () {
  this.timeout(30_000);
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ pricing: PRICING, caps: [{ id: "daily", window: "day", limitUsd: 0.001, action: "warn" }] });
  });
  afterEach(() => h.close());

  it("settles the admitted call at $0 and releases it, sends nothing, and leaves nothing for a restart to charge", async () => {
    // Any throw after the reserve is journaled (here: setting the warning header) must settle the call.
    const setHeader = http.ServerResponse.prototype.setHeader; // inherited: restored by deleting the override
    http.ServerResponse.prototype.setHeader = function (this: http.ServerResponse, name: string, value: number | string | readonly string[]) {
      if (name === "x-bedrock-budget-warning") throw new Error("injected: cannot set the header");
      return setHeader.call(this, name, value);
    } as typeof setHeader;
    let answer: RawAnswer;
    try {
      answer = await invokeHttp1(h.gateway.url); // http.ServerResponse: the HTTP/1.1 path
    } finally {
      delete (http.ServerResponse.prototype as Partial<http.ServerResponse>).setHeader;
    }
    assert.notEqual(answer.status, 200, "the call should have failed");
    assert.equal(h.fake.hits.length, 0, "nothing reached Bedrock");
    const [call] = await calls(h.gateway);
    assert.equal(call?.costPicos, "0");
    assert.match(call?.message ?? "", /not sent to Bedrock/);
    await assertNothingHeldOrSpent(h.gateway);
    await h.restart();
    assert.deepEqual((await calls(h.gateway)).filter((c) => c.outcome === "interrupted"), [], "a restart found a reservation nobody settled");
    await assertNothingHeldOrSpent(h.gateway);
  });

  it("a request Node refuses to build for the upstream is not sent: $0, released, and the SDK sees a 502", async () => {
    const request = http.request;
    let refused = 0;
    (http as { request: unknown }).request = (...args: unknown[]) => {
      const options = args[0] as http.RequestOptions;
      if (String(options.port) === new URL(h.fake.url).port) {
        refused++;
        throw Object.assign(new TypeError("injected: invalid header"), { code: "ERR_INVALID_CHAR" });
      }
      return (request as (...a: unknown[]) => http.ClientRequest)(...args);
    };
    const client = oneAttempt(h.gateway.url);
    let err: Error | undefined;
    try {
      err = await failure(invoke(client));
    } finally {
      (http as { request: unknown }).request = request;
      client.destroy();
    }
    assert.equal(refused, 1);
    assert.equal((err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode, 502);
    const [call] = await calls(h.gateway);
    assert.equal(call?.outcome, "upstream-error");
    assert.equal(call?.costPicos, "0");
    await assertNothingHeldOrSpent(h.gateway);
  });
});

describe("not sent: the credential scope's region", function () {
  this.timeout(30_000);
  let h: Harness;
  before(async () => {
    h = await startHarness({ pricing: PRICING, caps: [{ id: "daily", window: "day", limitUsd: 10 }] });
  });
  after(() => h.close());
  beforeEach(() => h.fake.reset());

  /** A Converse call signed by hand for `region`, over HTTP/1.1 (signedHttp1). */
  async function signedFor(region: string): Promise<{ status: number; type: string | undefined; message: string }> {
    const body = JSON.stringify({ messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 300 } });
    const answer = await signedHttp1(h.gateway.url, `/model/${encodeURIComponent(HAIKU)}/converse`, body, region);
    const type = answer.headers["x-amzn-errortype"];
    return { status: answer.status, type: typeof type === "string" ? type : undefined, message: answer.text ? ((JSON.parse(answer.text) as { message?: string }).message ?? "") : "" };
  }

  it("one that forms no host name (us-east-1:x) is refused with a 400 naming it, and nothing is reserved or charged", async () => {
    const answer = await signedFor("us-east-1:x");
    assert.equal(answer.status, 400);
    assert.equal(answer.type, "ValidationException");
    assert.match(answer.message, /region "us-east-1:x".*not an AWS region/);
    assert.equal(h.fake.hits.length, 0);
    for (const call of await calls(h.gateway)) assert.equal(call.costPicos, "0", `charged ${call.costPicos} picos: ${call.message}`);
    await assertNothingHeldOrSpent(h.gateway);
  });

  it("regions of every shape AWS names pass the check and are forwarded", async () => {
    for (const region of ["us-east-1", "us-gov-west-1", "eu-central-2", "ap-southeast-5", "eusc-de-east-1"]) {
      const before = h.fake.hits.length;
      const answer = await signedFor(region);
      assert.notEqual(answer.type, "ValidationException", `${region}: ${answer.message}`);
      assert.equal(h.fake.hits.length, before + 1, `${region} was not forwarded (${answer.status} ${answer.message})`);
    }
  });
});

// ---- TLS: an upstream whose handshake fails never received the request ----

/** A certificate for `subject`'s key, signed by `issuerKey`; a CA, or a leaf for 127.0.0.1. */
function certificate(o: { serial: string; subject: string; issuer: string; publicKey: forge.pki.PublicKey; issuerKey: forge.pki.rsa.PrivateKey; ca: boolean }): string {
  const cert = forge.pki.createCertificate();
  cert.serialNumber = o.serial;
  cert.publicKey = o.publicKey;
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: "commonName", value: o.subject }]);
  cert.setIssuer([{ name: "commonName", value: o.issuer }]);
  cert.setExtensions(o.ca ? [{ name: "basicConstraints", cA: true }] : [{ name: "basicConstraints", cA: false }, { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }]);
  cert.sign(o.issuerKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** An RSA key pair from node:crypto (fast), in forge's form. */
function keyPair(): { publicKey: forge.pki.PublicKey; privateKey: forge.pki.rsa.PrivateKey; pem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  return { publicKey: forge.pki.publicKeyFromPem(publicKey), privateKey: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey, pem: privateKey };
}

/** A CA no trust store knows (as a TLS-inspecting proxy's), and a leaf for 127.0.0.1 it signed. */
function untrustedChain(): { key: string; leaf: string; ca: string } {
  const ca = keyPair();
  const leaf = keyPair();
  return {
    key: leaf.pem,
    ca: certificate({ serial: "01", subject: "Inspecting Proxy CA", issuer: "Inspecting Proxy CA", publicKey: ca.publicKey, issuerKey: ca.privateKey, ca: true }),
    leaf: certificate({ serial: "02", subject: "127.0.0.1", issuer: "Inspecting Proxy CA", publicKey: leaf.publicKey, issuerKey: ca.privateKey, ca: false }),
  };
}

interface Upstream {
  port: number;
  /** HTTP requests the upstream read (none may have been billed unless it read one). */
  requests(): number;
  close(): Promise<void>;
}

async function listen(server: net.Server, requests: () => number): Promise<Upstream> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An HTTPS server answering every request it reads; `withCa`: it sends its CA along (SELF_SIGNED_CERT_IN_CHAIN), else the leaf alone. */
async function tlsUpstream(withCa: boolean): Promise<Upstream> {
  const chain = untrustedChain();
  let n = 0;
  const server = https.createServer({ key: chain.key, cert: withCa ? chain.leaf + chain.ca : chain.leaf }, (_req, res) => {
    n++;
    res.end("{}");
  });
  return listen(server, () => n);
}

/** Not TLS at all: answers the ClientHello in plain HTTP, as a misconfigured proxy port does (EPROTO). */
async function plainUpstream(): Promise<Upstream> {
  const server = net.createServer((s) => {
    s.on("error", () => undefined);
    s.once("data", () => s.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"));
  });
  return listen(server, () => 0);
}

/** Resets the connection on the ClientHello (a reset during the handshake). */
async function resettingUpstream(): Promise<Upstream> {
  const server = net.createServer((s) => {
    s.on("error", () => undefined);
    s.once("data", () => s.resetAndDestroy());
  });
  return listen(server, () => 0);
}

describe("not sent: the upstream's TLS handshake fails", function () {
  this.timeout(60_000);
  let ledgerDir: string;
  beforeEach(async () => {
    ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-notsent-"));
  });
  afterEach(() => rm(ledgerDir, { recursive: true, force: true }));

  async function throughGateway(upstream: Upstream, expectCode: RegExp): Promise<void> {
    const gw = await startGateway({
      config: validated({ port: 0, ledgerDir, user: "tester", timeZone: "UTC", pricing: PRICING, upstreamEndpoint: `https://127.0.0.1:${upstream.port}`, caps: [{ id: "daily", window: "day", limitUsd: 10 }] }, "test"),
      credentials: async () => CREDENTIALS,
      log: silentLogger(),
    });
    const client = clientFor(gw.url); // default retries: each attempt is a call of its own
    try {
      const err = await failure(client.send(new ConverseCommand({ modelId: HAIKU, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 300 } })));
      assert.equal(err?.name, "ServiceUnavailableException");
      assert.match(err?.message ?? "", /could not reach Bedrock/);
      assert.equal(upstream.requests(), 0);
      const journaled = await calls(gw);
      assert.ok(journaled.length >= 1);
      for (const call of journaled) {
        assert.equal(call.costPicos, "0", `charged ${call.costPicos} picos for a call that never reached the upstream (${call.message})`);
        assert.equal(call.outcome, "upstream-error");
        assert.match(call.message ?? "", expectCode);
      }
      await assertNothingHeldOrSpent(gw);
    } finally {
      client.destroy();
      await gw.close();
      await upstream.close();
    }
  }

  it("a certificate signed by an unknown CA, sent alone: not charged", async () => {
    await throughGateway(await tlsUpstream(false), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  });
  it("a chain ending in a self-signed CA no one trusts (a TLS-inspecting proxy): not charged", async () => {
    await throughGateway(await tlsUpstream(true), /SELF_SIGNED_CERT_IN_CHAIN/);
  });
  it("a plain-HTTP answer to the handshake: not charged", async () => {
    await throughGateway(await plainUpstream(), /EPROTO/);
  });
  it("a reset during the handshake: not charged", async () => {
    await throughGateway(await resettingUpstream(), /ECONNRESET/);
  });
});

describe("not sent: what may have reached the upstream is still charged", function () {
  this.timeout(30_000);
  it("a fresh plain-HTTP connection reset after it connected: charged its worst case (the request may have been read)", async () => {
    let reads = 0;
    const server = net.createServer((s) => {
      s.on("error", () => undefined);
      s.once("data", () => {
        reads++;
        s.resetAndDestroy();
      });
    });
    const upstream = await listen(server, () => reads);
    const ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-notsent-"));
    const gw = await startGateway({
      config: validated({ port: 0, ledgerDir, user: "tester", timeZone: "UTC", pricing: PRICING, upstreamEndpoint: `http://127.0.0.1:${upstream.port}`, caps: [{ id: "daily", window: "day", limitUsd: 10 }] }, "test"),
      credentials: async () => CREDENTIALS,
      log: silentLogger(),
    });
    const client = oneAttempt(gw.url);
    try {
      const err = await failure(invoke(client));
      assert.ok(err);
      assert.ok(upstream.requests() >= 1, "the upstream read the request");
      const [call] = await calls(gw);
      assert.equal(call?.outcome, "upstream-failed");
      assert.equal(call?.costPicos, SONNET_WORST);
    } finally {
      client.destroy();
      await gw.close();
      await upstream.close();
      await rm(ledgerDir, { recursive: true, force: true });
    }
  });
});
