/**
 * How the gateway reaches Bedrock upstream (server/gateway/upstream.ts): the host a call goes to.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { configureUpstreamProxy, exemptFromProxy, sendUpstream, upstreamTarget, UpstreamError } from "../../server/gateway/upstream";
import { httpsProxyAgent } from "../../server/httpsProxy";
import { API_PATHS, type StatusResponse } from "../../server/protocol";
import { cliEnv, serve } from "../support/cliProcess";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";

describe("upstream service: the host a call goes to", () => {
  it("a call signed for a region goes to that region's Bedrock Runtime host, under its partition's domain as the AWS SDK has it", () => {
    const host = (region: string) => upstreamTarget(undefined, region).hostname;
    assert.equal(host("us-east-1"), "bedrock-runtime.us-east-1.amazonaws.com");
    assert.equal(host("us-gov-west-1"), "bedrock-runtime.us-gov-west-1.amazonaws.com");
    assert.equal(host("eu-central-1"), "bedrock-runtime.eu-central-1.amazonaws.com");
    // Not amazonaws.com: sent there, the call failed with "could not reach Bedrock: ENOTFOUND".
    assert.equal(host("cn-north-1"), "bedrock-runtime.cn-north-1.amazonaws.com.cn");
    assert.equal(host("eusc-de-east-1"), "bedrock-runtime.eusc-de-east-1.amazonaws.eu");
    assert.equal(host("us-iso-east-1"), "bedrock-runtime.us-iso-east-1.c2s.ic.gov");
    assert.equal(host("us-isob-east-1"), "bedrock-runtime.us-isob-east-1.sc2s.sgov.gov");
    assert.equal(host("us-isof-south-1"), "bedrock-runtime.us-isof-south-1.csp.hci.ic.gov");
    assert.equal(host("eu-isoe-west-1"), "bedrock-runtime.eu-isoe-west-1.cloud.adc-e.uk");
    assert.deepEqual(upstreamTarget(undefined, "eu-west-1"), { protocol: "https:", hostname: "bedrock-runtime.eu-west-1.amazonaws.com", port: 443 });
  });

  it("a configured upstreamEndpoint wins over the caller's region", () => {
    assert.deepEqual(upstreamTarget("https://bedrock-runtime-fips.us-east-1.amazonaws.com", "eusc-de-east-1"), {
      protocol: "https:",
      hostname: "bedrock-runtime-fips.us-east-1.amazonaws.com",
      port: 443,
    });
  });

  it("an upstreamEndpoint on an IPv6 address (http://[::1]:port) is reached, the Host header as signed (every call failed with ENOTFOUND [::1])", async function () {
    const seen: Array<string | undefined> = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers.host);
      res.end("{}");
    });
    try {
      await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "::1", resolve));
    } catch {
      return this.skip(); // no IPv6 loopback on this host
    }
    try {
      const port = (server.address() as net.AddressInfo).port;
      const target = upstreamTarget(`http://[::1]:${port}`, "us-east-1");
      const res = await sendUpstream({ target, method: "POST", rawPath: "/model/x/invoke", headers: { host: `[::1]:${port}` }, body: new Uint8Array() });
      res.resume();
      assert.equal(res.statusCode, 200);
      assert.deepEqual(seen, [`[::1]:${port}`]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("upstream service: an upstreamEndpoint with a path", function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), "bb-upstream-path-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("is refused when the settings are read, naming the key: the gateway does not start, so no call goes to the host's root with the path dropped", async () => {
    const config = path.join(dir, "config.json");
    await writeFile(config, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], upstreamEndpoint: "https://gw.example.com/bedrock" }));
    await assert.rejects(serve(["--config", config, "--port", "0", "--ledger", path.join(dir, "ledger")]), /exited with 2[\s\S]*upstreamEndpoint: scheme, host and port only/);
  });

  it("and should one reach the hop to Bedrock anyway, it is refused there too, naming the path and the origin to set", () => {
    assert.throws(() => upstreamTarget("https://gw.example.com/bedrock", "us-east-1"), /upstreamEndpoint https:\/\/gw\.example\.com\/bedrock has a path \(\/bedrock\).*\(https:\/\/gw\.example\.com\)/);
  });
});

describe("upstream service: a corporate proxy (HTTPS_PROXY, NO_PROXY)", function () {
  this.timeout(30_000);
  const BEDROCK = "bedrock-runtime.us-east-1.amazonaws.com";
  let dir: string;
  let cert: { key: Buffer; cert: Buffer } | undefined;
  let fake: FakeBedrock;
  /** A TLS server that stands for Bedrock (a certificate for its name) and hands the bytes to the fake. */
  let bedrockTls: tls.Server;
  /** A CONNECT proxy: records what it was asked, answers `answer`, then tunnels to `bedrockTls`. */
  let proxy: http.Server;
  let asked: Array<{ url: string; authorization: string | undefined }>;
  let answer: number;
  const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port;

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-proxy-"));
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${BEDROCK}`, "-addext", `subjectAltName=DNS:${BEDROCK}`, "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")]);
    if (made.status === 0) cert = { key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) };
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    const fakePort = Number(new URL(fake.url).port);
    bedrockTls = tls.createServer(cert ?? {}, (socket) => {
      const upstream = net.connect(fakePort, "127.0.0.1");
      socket.pipe(upstream).pipe(socket);
      socket.on("error", () => upstream.destroy());
      upstream.on("error", () => socket.destroy());
    });
    await new Promise<void>((resolve) => bedrockTls.listen(0, "127.0.0.1", resolve));
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on("connect", (req: http.IncomingMessage, socket: net.Socket) => {
      asked.push({ url: req.url ?? "", authorization: req.headers["proxy-authorization"] });
      socket.on("error", () => undefined);
      if (answer !== 200) return void socket.end(`HTTP/1.1 ${answer} Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n`);
      const tunnel = net.connect(portOf(bedrockTls), "127.0.0.1", () => {
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        socket.pipe(tunnel).pipe(socket);
      });
      tunnel.on("error", () => socket.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  });
  after(async () => {
    configureUpstreamProxy({});
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
    await new Promise((resolve) => bedrockTls.close(resolve));
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    asked = [];
    answer = 200;
    fake.reset();
  });
  afterEach(() => configureUpstreamProxy({}));

  it("NO_PROXY: a host, a domain (with or without a leading dot or *.), a port, '*'; loopback never goes through the proxy", () => {
    assert.equal(exemptFromProxy(BEDROCK, 443, []), false);
    assert.equal(exemptFromProxy(BEDROCK, 443, ["amazonaws.com"]), true);
    assert.equal(exemptFromProxy(BEDROCK, 443, [".amazonaws.com"]), true);
    assert.equal(exemptFromProxy(BEDROCK, 443, ["*.amazonaws.com"]), true);
    assert.equal(exemptFromProxy(BEDROCK, 443, [BEDROCK]), true);
    assert.equal(exemptFromProxy(BEDROCK, 443, [`${BEDROCK}:443`]), true);
    assert.equal(exemptFromProxy(BEDROCK, 443, [`${BEDROCK}:8443`]), false);
    assert.equal(exemptFromProxy(BEDROCK, 443, ["*"]), true);
    assert.equal(exemptFromProxy(BEDROCK, 443, ["zonaws.com", "example.com"]), false, "a suffix that is not a whole label");
    assert.equal(exemptFromProxy("127.0.0.1", 8443, []), true);
    assert.equal(exemptFromProxy("localhost", 8443, []), true);
  });

  it("NO_PROXY: IPv6 addresses bare or bracketed (with a port), CIDR blocks and ranges, as curl and Go read them; a name entry never matches an address by suffix", () => {
    // Bare IPv6: its colons are not a port (it was read as host "fd00:" on port 1, so matched nothing).
    assert.equal(exemptFromProxy("[fd00::1]", 443, ["fd00::1"]), true);
    assert.equal(exemptFromProxy("fd00::1", 443, ["fd00:0:0:0:0:0:0:1"]), true, "the same address written out");
    assert.equal(exemptFromProxy("[fd00::2]", 443, ["fd00::1"]), false);
    assert.equal(exemptFromProxy("[fd00::1]", 8080, ["[fd00::1]:8080"]), true);
    assert.equal(exemptFromProxy("[fd00::1]", 443, ["[fd00::1]:8080"]), false, "another port");
    assert.equal(exemptFromProxy("[fd00::1]", 443, ["[fd00::1]"]), true);
    // CIDR blocks (curl 7.86+, Go, Python requests for IPv4).
    assert.equal(exemptFromProxy("10.1.2.3", 443, ["10.0.0.0/8"]), true);
    assert.equal(exemptFromProxy("11.1.2.3", 443, ["10.0.0.0/8"]), false);
    assert.equal(exemptFromProxy("[fd12:3456::9]", 443, ["fd00::/8"]), true);
    assert.equal(exemptFromProxy("[fe80::1]", 443, ["fd00::/8"]), false);
    assert.equal(exemptFromProxy("[fe80::1]", 443, ["fd00::/200", "10.0.0.0/33"]), false, "a block that cannot be is ignored");
    assert.equal(exemptFromProxy("fd00.example.com", 443, ["fd00::/8"]), false, "a name is not resolved to compare it with a block");
    // Node 24's own ranges.
    assert.equal(exemptFromProxy("10.0.0.5", 443, ["10.0.0.1-10.0.0.9"]), true);
    assert.equal(exemptFromProxy("10.0.0.5", 443, ["10.0.0.9-10.0.0.1"]), false, "a range backwards matches nothing");
    assert.equal(exemptFromProxy("my-host.corp", 443, ["my-host.corp"]), true, "a name with a hyphen is no range");
    // IPv4 addresses match exactly, with a port when one is named; a name entry is not an address suffix.
    assert.equal(exemptFromProxy("10.0.0.1", 443, ["10.0.0.1"]), true);
    assert.equal(exemptFromProxy("10.0.0.1", 443, ["10.0.0.1:8443"]), false);
    assert.equal(exemptFromProxy("10.0.0.1", 443, ["0.0.1"]), false);
    // The list from the report, as the gateway reads it from the environment.
    configureUpstreamProxy({ HTTPS_PROXY: "http://proxy.example:3128", NO_PROXY: "::1,fd00::/8,10.0.0.0/8,[::1]:8080" });
    assert.equal(httpsProxyAgent("[fd00::5]", 443, {}), undefined, "a VPC endpoint on fd00::5 is reached directly");
    assert.equal(httpsProxyAgent("10.20.30.40", 443, {}), undefined);
    assert.ok(httpsProxyAgent(BEDROCK, 443, {}) instanceof https.Agent, "Bedrock still through the proxy");
  });

  it("a call to Bedrock goes through the CONNECT tunnel HTTPS_PROXY names, with its credentials, TLS checked end to end, and succeeds at its real cost", async function () {
    if (!cert) this.skip();
    // The gateway runs as the CLI so that it trusts the test's "Bedrock" certificate (NODE_EXTRA_CA_CERTS).
    const configFile = path.join(dir, "config.json");
    await writeFile(configFile, JSON.stringify({ port: 0, upstreamEndpoint: `https://${BEDROCK}`, timeZone: "UTC", caps: [{ id: "daily", window: "day", limitUsd: 10 }] }));
    const env = cliEnv({ HTTPS_PROXY: `http://alice:s%40cret@127.0.0.1:${portOf(proxy)}`, NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") });
    const served = await serve(["--config", configFile, "--ledger", path.join(dir, "ledger")], env);
    const client = clientFor(served.url);
    try {
      fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("through the proxy", 600) }));
      assert.deepEqual(asked, [{ url: `${BEDROCK}:443`, authorization: `Basic ${Buffer.from("alice:s@cret").toString("base64")}` }]);
      assert.equal(fake.hits.length, 1, "the call reached Bedrock through the tunnel");
      const status = (await (await fetch(`${served.url}${API_PATHS.status}`)).json()) as StatusResponse;
      assert.equal(status.caps[0]!.spentExact, "0.0105", "charged its real usage: 1000 × $3/1M + 500 × $15/1M");
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("again", 600) }));
      assert.equal(fake.hits.length, 2);
      assert.equal(asked.length, 1, "the next call reuses the kept-alive tunnel");
    } finally {
      client.destroy();
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  const BEDROCK_TARGET = { protocol: "https:" as const, hostname: BEDROCK, port: 443 };
  const send = () => sendUpstream({ target: BEDROCK_TARGET, method: "POST", rawPath: "/model/x/invoke", headers: { "content-type": "application/json" }, body: new Uint8Array() });

  it("a proxy that refuses the tunnel (407): the call fails unsent (charged nothing), saying so, the proxy's password never shown", async () => {
    answer = 407;
    configureUpstreamProxy({ https_proxy: `http://alice:hunter2@127.0.0.1:${portOf(proxy)}` });
    const err = await send().then(() => assert.fail("sent"), (e: unknown) => e as UpstreamError);
    assert.ok(err instanceof UpstreamError);
    assert.equal(err.notSent, true, "nothing can have reached Bedrock");
    assert.match(err.message, /proxy http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY\): the proxy answered 407/);
    assert.match(err.message, /user name and password in HTTPS_PROXY/);
    assert.doesNotMatch(err.message, /hunter2/);
    assert.equal(asked.length, 1);

    answer = 403;
    const forbidden = await send().then(() => assert.fail("sent"), (e: unknown) => e as UpstreamError);
    assert.equal(forbidden.notSent, true);
    assert.match(forbidden.message, /answered 403 .*name it in NO_PROXY/);
  });

  it("a proxy whose certificate for Bedrock is not trusted (TLS inspection): refused unsent, never sent in the clear to it", async function () {
    if (!cert) this.skip();
    configureUpstreamProxy({ HTTPS_PROXY: `127.0.0.1:${portOf(proxy)}` });
    const err = await send().then(() => assert.fail("sent"), (e: unknown) => e as UpstreamError);
    assert.equal(err.notSent, true);
    assert.match(err.message, /HTTPS_PROXY.*(SELF_SIGNED|certificate)/);
    assert.equal(fake.hits.length, 0);
  });

  it("an HTTPS_PROXY that is not a URL: calls are refused unsent, saying how to fix it (never sent around the proxy)", async () => {
    configureUpstreamProxy({ HTTPS_PROXY: "http://[bad" });
    const err = await send().then(() => assert.fail("sent"), (e: unknown) => e as UpstreamError);
    assert.equal(err.notSent, true);
    assert.match(err.message, /HTTPS_PROXY is not a URL.*NO_PROXY/);
  });
});
