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
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { CREDENTIALS } from "../support/harness";
import { FakeCostExplorer } from "../support/fakeCostExplorer";
import { FakePricing } from "../support/fakePricing";
import { FakeSns } from "../support/fakeSns";
import { FakeBedrock, type FakeCredentials } from "../support/fakeBedrock";
import { FakeSts } from "../support/fakeSts";

const ROOT = path.resolve(__dirname, "../..");
const PRICING_HOST = "api.pricing.us-east-1.amazonaws.com";
const CE_HOST = "ce.us-east-1.amazonaws.com";
const SNS_HOST = "sns.eu-west-1.amazonaws.com";
const HOOK_HOST = "hooks.example.com";
const TOPIC = "arn:aws:sns:eu-west-1:123456789012:budget-alerts";
const STS_HOSTS = ["sts.us-east-1.amazonaws.com", "sts.amazonaws.com"];
const BEDROCK_HOST = "bedrock.us-east-1.amazonaws.com";
const PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/team-a";
const ASSUMED: FakeCredentials = { accessKeyId: "ASIAASSUMEDROLEKEY01", secretAccessKey: "assumed-secret", sessionToken: "assumed-session" };

/**
 * The gateway's own credentials (a profile assuming a role through STS) and the control-plane
 * lookup of an application inference profile: what each gave, or why it failed.
 */
const CREDENTIAL_DRIVER = `
import { credentialSource } from ${JSON.stringify(path.join(ROOT, "server/credentials"))};
import { ProfileLookup } from ${JSON.stringify(path.join(ROOT, "server/gateway/profileLookup"))};
import { createLogger } from ${JSON.stringify(path.join(ROOT, "server/log"))};
import { isResolved } from ${JSON.stringify(path.join(ROOT, "server/metering/profiles"))};
void (async () => {
  const out: Record<string, string> = {};
  try { out.assumeRole = (await credentialSource("role")()).accessKeyId; } catch (err) { out.assumeRole = (err as Error).message; }
  const lookup = new ProfileLookup({ ledgerDir: process.env.DRIVER_LEDGER!, credentials: async () => JSON.parse(process.env.DRIVER_CREDENTIALS!), log: createLogger(() => {}, "error"), waitMs: 20_000 });
  const answer = await lookup.resolve(${JSON.stringify(PROFILE_ARN)});
  out.profile = isResolved(answer) ? answer.baseModelId : answer.failed;
  console.log(JSON.stringify(out));
})();
`;

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
  let sts: FakeSts;
  let bedrock: FakeBedrock;
  let hook: http.Server;
  let hooked: string[];
  let proxy: http.Server;
  let asked: Array<{ url: string; authorization: string | undefined }>;
  let answer: number;
  const portOf = (server: { address(): unknown }) => (server.address() as net.AddressInfo).port;

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-outbound-proxy-"));
    const names = [PRICING_HOST, CE_HOST, SNS_HOST, HOOK_HOST, BEDROCK_HOST, ...STS_HOSTS].map((h) => `DNS:${h}`).join(",");
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${PRICING_HOST}`, "-addext", `subjectAltName=${names}`, "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")]);
    if (made.status !== 0) return this.skip();
    cert = { key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) };
    await writeFile(path.join(dir, "driver.ts"), DRIVER);
    await writeFile(path.join(dir, "credentialDriver.ts"), CREDENTIAL_DRIVER);
    await mkdir(path.join(dir, "ledger"), { mode: 0o700 });
    await writeFile(path.join(dir, "credentials"), `[source]\naws_access_key_id = ${CREDENTIALS.accessKeyId}\naws_secret_access_key = ${CREDENTIALS.secretAccessKey}\n`);
    await writeFile(path.join(dir, "config"), "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/bedrock-budget\nsource_profile = source\nregion = us-east-1\n");
    sts = await FakeSts.start(CREDENTIALS, "us-east-1", ASSUMED);
    bedrock = await FakeBedrock.start({ credentials: CREDENTIALS, region: "us-east-1" });
    bedrock.inferenceProfiles.set(PROFILE_ARN, { models: ["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"] });
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
      [BEDROCK_HOST]: Number(new URL(bedrock.url).port),
      ...Object.fromEntries(STS_HOSTS.map((h) => [h, Number(new URL(sts.url).port)])),
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
    await Promise.all([pricing.close(), ce.close(), sns.close(), sts.close(), bedrock.close()]);
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    asked = [];
    hooked = [];
    answer = 200;
  });

  /** Runs the four calls in a child that trusts the test's certificate; resolves with each one's outcome. */
  function calls(env: Record<string, string>): Promise<Record<"prices" | "costExplorer" | "sns" | "webhook", string>> {
    return run("driver.ts", env);
  }

  /** Runs one driver in a child that trusts the test's certificate; resolves with the JSON it printed last. */
  function run<T>(driver: string, env: Record<string, string>): Promise<T> {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(dir, driver)], {
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
          resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "") as T);
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

  it("the gateway's own credentials (a role assumed through STS) and the lookup of an inference profile's model go through the tunnel too", async () => {
    const env = { AWS_CONFIG_FILE: path.join(dir, "config"), AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "credentials"), DRIVER_LEDGER: path.join(dir, "ledger") };
    const through = await run<Record<string, string>>("credentialDriver.ts", { ...env, HTTPS_PROXY: `http://127.0.0.1:${portOf(proxy)}` });
    assert.deepEqual(through, { assumeRole: ASSUMED.accessKeyId, profile: "anthropic.claude-3-5-haiku-20241022-v1:0" });
    const hosts = new Set(asked.map((a) => a.url.replace(/:443$/, "")));
    assert.ok(STS_HOSTS.some((h) => hosts.has(h)), `STS was reached through the proxy (asked: ${[...hosts].join(", ")})`);
    assert.ok(hosts.has(BEDROCK_HOST), "the control plane was reached through the proxy");
    assert.equal(sts.assumed.at(-1)?.RoleArn, "arn:aws:iam::123456789012:role/bedrock-budget");

    answer = 407;
    asked = [];
    const assumed = sts.assumed.length;
    await mkdir(path.join(dir, "ledger-2"), { mode: 0o700 }); // the first run's answer is kept in its profiles.json
    const refused = await run<Record<string, string>>("credentialDriver.ts", { ...env, DRIVER_LEDGER: path.join(dir, "ledger-2"), HTTPS_PROXY: `http://127.0.0.1:${portOf(proxy)}` });
    assert.match(refused.assumeRole!, /HTTPS_PROXY\): the proxy answered 407/);
    assert.match(refused.profile!, /HTTPS_PROXY\): the proxy answered 407/);
    assert.equal(sts.assumed.length, assumed, "nothing went around the refusing proxy");
  });
});
