/**
 * The gateway's calls other than model calls (price updates, SNS and webhook alerts, Cost Explorer)
 * go through the corporate proxy HTTPS_PROXY names, by the same CONNECT tunnel and rules as model
 * calls (server/httpsProxy.ts), and fail naming HTTPS_PROXY when it refuses or is broken.
 * They run in a child process so that it can trust the test's certificate for the AWS hosts
 * (NODE_EXTRA_CA_CERTS is read when a process starts).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { CREDENTIALS } from "../support/harness";
import { FakeCostExplorer } from "../support/fakeCostExplorer";
import { FakePricing } from "../support/fakePricing";
import { FakeSns } from "../support/fakeSns";

const ROOT = path.resolve(__dirname, "../..");
const PRICING_HOST = "api.pricing.us-east-1.amazonaws.com";
const CE_HOST = "ce.us-east-1.amazonaws.com";
const SNS_HOST = "sns.eu-west-1.amazonaws.com";
const HOOK_HOST = "hooks.example.com";
const TOPIC = "arn:aws:sns:eu-west-1:123456789012:budget-alerts";

/** What the child does: each outbound call once, reporting "ok" or why it failed. */
const DRIVER = `
import { fetchBedrockBill } from ${JSON.stringify(path.join(ROOT, "server/billing/costExplorer"))};
import { fetchBedrockPrices } from ${JSON.stringify(path.join(ROOT, "server/pricing/fetchPrices"))};
import { snsChannel, webhookChannel } from ${JSON.stringify(path.join(ROOT, "server/policy/alertChannels"))};
import { failureReason } from ${JSON.stringify(path.join(ROOT, "server/policy/alerts"))};
const credentials = async () => JSON.parse(process.env.DRIVER_CREDENTIALS!);
const alert = { key: "daily@2026-11-29T00:00:00.000Z#80", covers: [], capId: "daily", threshold: 80 as const, spentUsd: 8, limitUsd: 10, window: "day" as const, resetsAt: "2099-01-01T00:00:00.000Z", text: "Bedrock Budget: cap daily has passed 80%" };
const viaChannel = async (channel: ReturnType<typeof webhookChannel>) => {
  try { await channel.send(alert, new AbortController().signal); } finally { channel.close(); }
};
const calls: Record<string, () => Promise<unknown>> = {
  prices: () => fetchBedrockPrices("us-east-1", credentials),
  costExplorer: () => fetchBedrockBill("2026-11", ["Amazon Bedrock"], credentials, new Date("2026-11-20T00:00:00Z")),
  sns: () => viaChannel(snsChannel(process.env.DRIVER_TOPIC!, credentials)),
  webhook: () => viaChannel(webhookChannel(process.env.DRIVER_WEBHOOK!)),
};
void (async () => {
  const out: Record<string, string> = {};
  for (const [name, call] of Object.entries(calls)) {
    try { await call(); out[name] = "ok"; } catch (err) { out[name] = failureReason(err); }
  }
  console.log(JSON.stringify(out));
})();
`;

describe("outbound proxy: price updates, alerts and Cost Explorer go through HTTPS_PROXY", function () {
  this.timeout(60_000);
  let dir: string;
  let cert: { key: Buffer; cert: Buffer } | undefined;
  let pricing: FakePricing;
  let ce: FakeCostExplorer;
  let sns: FakeSns;
  let hook: http.Server;
  let hooked: string[];
  let proxy: http.Server;
  let asked: Array<{ url: string; authorization: string | undefined }>;
  let answer: number;
  const portOf = (server: { address(): unknown }) => (server.address() as net.AddressInfo).port;

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-outbound-proxy-"));
    const names = [PRICING_HOST, CE_HOST, SNS_HOST, HOOK_HOST].map((h) => `DNS:${h}`).join(",");
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${PRICING_HOST}`, "-addext", `subjectAltName=${names}`, "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")]);
    if (made.status !== 0) return this.skip();
    cert = { key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) };
    await writeFile(path.join(dir, "driver.ts"), DRIVER);
    pricing = await FakePricing.start(CREDENTIALS, []);
    ce = await FakeCostExplorer.start(CREDENTIALS, []);
    sns = await FakeSns.start(CREDENTIALS, "eu-west-1");
    hook = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        hooked.push(body);
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
    const backends: Record<string, number> = {
      [PRICING_HOST]: Number(new URL(pricing.url).port),
      [CE_HOST]: Number(new URL(ce.url).port),
      [SNS_HOST]: Number(new URL(sns.url).port),
      [HOOK_HOST]: portOf(hook),
    };
    // A CONNECT proxy that stands for the corporate one and, past it, for the AWS hosts: it ends
    // TLS with a certificate for their names and hands the bytes to the local fakes.
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on("connect", (req: http.IncomingMessage, socket: net.Socket) => {
      asked.push({ url: req.url ?? "", authorization: req.headers["proxy-authorization"] });
      socket.on("error", () => undefined);
      if (answer !== 200) return void socket.end(`HTTP/1.1 ${answer} Refused\r\nContent-Length: 0\r\n\r\n`);
      const port = backends[(req.url ?? "").replace(/:\d+$/, "")];
      if (!port) return void socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      const secure = new tls.TLSSocket(socket, { isServer: true, key: cert!.key, cert: cert!.cert });
      const backend = net.connect(port, "127.0.0.1");
      secure.pipe(backend).pipe(secure);
      secure.on("error", () => backend.destroy());
      backend.on("error", () => secure.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  });
  after(async () => {
    if (!cert) return;
    proxy.closeAllConnections();
    hook.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
    await new Promise((resolve) => hook.close(resolve));
    await Promise.all([pricing.close(), ce.close(), sns.close()]);
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    asked = [];
    hooked = [];
    answer = 200;
  });

  /** Runs the four calls in a child that trusts the test's certificate; resolves with each one's outcome. */
  function calls(env: Record<string, string>): Promise<Record<"prices" | "costExplorer" | "sns" | "webhook", string>> {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(dir, "driver.ts")], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        AWS_CONFIG_FILE: path.join(dir, "no-config"),
        AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "no-credentials"),
        NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem"),
        DRIVER_CREDENTIALS: JSON.stringify(CREDENTIALS),
        DRIVER_TOPIC: TOPIC,
        DRIVER_WEBHOOK: `https://${HOOK_HOST}/services/T0/B0/x`,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    return new Promise((resolve, reject) =>
      child.once("exit", (code) => {
        try {
          resolve(JSON.parse(out.trim().split("\n").at(-1) ?? ""));
        } catch {
          reject(new Error(`the driver exited with ${code}: ${out}\n${err}`));
        }
      }),
    );
  }

  it("each call reaches its AWS host (and the webhook its host) through the CONNECT tunnel, with the proxy's credentials, TLS checked end to end", async () => {
    const pricingHits = pricing.service.hits.length;
    const ceHits = ce.hits.length;
    const published = sns.publishes.length;
    const result = await calls({ HTTPS_PROXY: `http://alice:s%40cret@127.0.0.1:${portOf(proxy)}` });
    assert.deepEqual(result, { prices: "ok", costExplorer: "ok", sns: "ok", webhook: "ok" });
    const hosts = new Set(asked.map((a) => a.url));
    assert.deepEqual([...hosts].sort(), [`${PRICING_HOST}:443`, `${CE_HOST}:443`, `${HOOK_HOST}:443`, `${SNS_HOST}:443`]);
    for (const a of asked) assert.equal(a.authorization, `Basic ${Buffer.from("alice:s@cret").toString("base64")}`);
    assert.ok(pricing.service.hits.length > pricingHits, "the Price List was asked, through the tunnel");
    assert.ok(ce.hits.length > ceHits, "Cost Explorer was asked, through the tunnel");
    assert.equal(sns.publishes.length, published + 1, "the alert was published to SNS");
    assert.deepEqual(sns.refused, []);
    assert.deepEqual(hooked.map((b) => JSON.parse(b) as unknown), [{ text: "Bedrock Budget: cap daily has passed 80%" }]);
  });

  it("a proxy that refuses the tunnel (407): every call fails saying so and naming HTTPS_PROXY (never its password), and none goes around it", async () => {
    answer = 407;
    const pricingHits = pricing.service.hits.length;
    const ceHits = ce.hits.length;
    const published = sns.publishes.length;
    const result = await calls({ https_proxy: `http://alice:hunter2@127.0.0.1:${portOf(proxy)}` });
    for (const [name, outcome] of Object.entries(result)) {
      assert.match(outcome, /proxy http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY\): the proxy answered 407 .*user name and password in HTTPS_PROXY/, name);
      assert.doesNotMatch(outcome, /hunter2/, name);
    }
    assert.equal(pricing.service.hits.length, pricingHits);
    assert.equal(ce.hits.length, ceHits);
    assert.equal(sns.publishes.length, published);
    assert.deepEqual(hooked, []);
  });

  it("an HTTPS_PROXY that is not a URL: every call fails naming HTTPS_PROXY and how to fix it, instead of going direct", async () => {
    const result = await calls({ HTTPS_PROXY: "http://[bad" });
    for (const [name, outcome] of Object.entries(result)) assert.match(outcome, /HTTPS_PROXY is not a URL.*NO_PROXY/, name);
    assert.deepEqual(asked, []);
  });

  it("loopback targets (a local SNS endpoint, an http:// webhook on this machine) are never proxied: they work while the proxy refuses everything", async () => {
    answer = 403;
    const published = sns.publishes.length;
    const result = await calls({ HTTPS_PROXY: `http://127.0.0.1:${portOf(proxy)}`, AWS_ENDPOINT_URL_SNS: sns.url, DRIVER_WEBHOOK: `http://127.0.0.1:${portOf(hook)}/hook` });
    assert.equal(result.sns, "ok");
    assert.equal(result.webhook, "ok");
    assert.match(result.prices, /HTTPS_PROXY\): the proxy answered 403 .*name it in NO_PROXY/);
    assert.equal(sns.publishes.length, published + 1);
    assert.equal(hooked.length, 1);
    assert.deepEqual(asked.map((a) => a.url).sort(), [`${PRICING_HOST}:443`, `${CE_HOST}:443`]);
  });
});
