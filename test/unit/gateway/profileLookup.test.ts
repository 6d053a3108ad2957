/** The control-plane lookup of application inference profiles: how long a call may wait for it. */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MAX_FAILED_LOOKUPS, ProfileLookup } from "../../../server/gateway/profileLookup";
import { createLogger } from "../../../server/log";
import { isResolved } from "../../../server/metering/profiles";

const ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/hung";
const credentials = async () => ({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" });

describe("gateway/profileLookup", function () {
  this.timeout(10_000);
  let server: Server;
  let dir: string;
  let asked = 0;
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_BEDROCK;

  before(async () => {
    // A control plane that takes the request and never answers (a proxy or firewall that swallows it).
    server = createServer(() => void asked++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    process.env.AWS_ENDPOINT_URL_BEDROCK = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = await mkdtemp(path.join(os.tmpdir(), "profile-lookup-"));
  });
  after(async () => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_BEDROCK;
    else process.env.AWS_ENDPOINT_URL_BEDROCK = savedEndpoint;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("a control plane that does not answer delays only the first call: later calls are priced at once (dearest rate) until the retry", async () => {
    const lookup = new ProfileLookup({ ledgerDir: dir, credentials, log: createLogger(() => {}, "error"), waitMs: 300 });
    const first = await lookup.resolve(ARN);
    assert.ok(!isResolved(first));
    assert.match(first.failed, /did not answer within 300 ms/);
    assert.equal(asked, 1);

    const started = Date.now();
    for (let i = 0; i < 3; i++) {
      const later = await lookup.resolve(ARN);
      assert.ok(!isResolved(later));
      assert.match(later.failed, /did not answer within 300 ms/);
    }
    assert.ok(Date.now() - started < 150, `later calls waited ${Date.now() - started} ms for the same unanswered lookup`);
    assert.equal(asked, 1, "not asked again before the retry time");
  });

  it("a lookup the control plane never answers gives up (said in the log), so the retry a minute later asks again instead of waiting on it", async () => {
    const warned: string[] = [];
    const arn = `${ARN}-2`;
    const lookup = new ProfileLookup({ ledgerDir: dir, credentials, log: createLogger((level, line) => warned.push(`${level}: ${line}`), "warn"), waitMs: 50, lookupTimeoutMs: 200 });
    assert.ok(!isResolved(await lookup.resolve(arn)));
    for (let i = 0; i < 60 && !warned.some((l) => l.includes(arn)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(warned.some((l) => l.startsWith("warn:") && l.includes(arn) && /GetInferenceProfile failed/.test(l)), warned.join("\n") || "no lookup ended");
  });

  it("a caller naming ever new made-up ARNs does not grow the gateway's memory without bound: the failed lookups kept are capped, the newest still spare a second wait", async () => {
    const lookup = new ProfileLookup({ ledgerDir: dir, credentials, log: createLogger(() => {}, "error"), waitMs: 50 });
    // No region in the ARN: each fails at once, without asking the control plane.
    for (let i = 0; i < MAX_FAILED_LOOKUPS + 500; i++) assert.ok(!isResolved(await lookup.resolve(`arn:aws:bedrock::123456789012:application-inference-profile/made-up-${i}`)));
    const failures = (lookup as unknown as { failures: Map<string, unknown> }).failures;
    assert.ok(failures.size <= MAX_FAILED_LOOKUPS, `${failures.size} failed lookups kept (at most ${MAX_FAILED_LOOKUPS})`);

    // The re-read rate limit still holds for the newest: a hung lookup is asked once, then answered from memory.
    const before = asked;
    const arn = `${ARN}-after-the-flood`;
    assert.match((await lookup.resolve(arn) as { failed: string }).failed, /did not answer within 50 ms/);
    for (let i = 0; i < 40 && asked === before; i++) await new Promise((r) => setTimeout(r, 50));
    assert.match((await lookup.resolve(arn) as { failed: string }).failed, /did not answer within 50 ms/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(asked - before, 1, "asked once");
    assert.ok(failures.size <= MAX_FAILED_LOOKUPS);
  });
});
