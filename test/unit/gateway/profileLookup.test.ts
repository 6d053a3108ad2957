/** The control-plane lookup of application inference profiles: how long a call may wait for it. */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MAX_FAILED_LOOKUPS, MAX_LOOKUP_WARNINGS_PER_MINUTE, MAX_LOOKUPS_AT_ONCE, MAX_LOOKUPS_WAITING, ProfileLookup } from "../../../server/gateway/profileLookup";
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

  it("a caller naming many made-up profile ARNs at once starts at most a few lookups against AWS and writes a bounded number of warnings; the rest are priced at once (dearest rate) saying why", async () => {
    // Its own control plane: counts the requests open at once (each hangs until the lookup gives up).
    let open = 0;
    let most = 0;
    let total = 0;
    const plane = createServer((req) => {
      total++;
      most = Math.max(most, ++open);
      req.socket.once("close", () => open--);
    });
    await new Promise<void>((resolve) => plane.listen(0, "127.0.0.1", resolve));
    const saved = process.env.AWS_ENDPOINT_URL_BEDROCK;
    process.env.AWS_ENDPOINT_URL_BEDROCK = `http://127.0.0.1:${(plane.address() as AddressInfo).port}`;
    try {
      const warned: string[] = [];
      const lookup = new ProfileLookup({ ledgerDir: dir, credentials, log: createLogger((_level, line) => warned.push(line), "warn"), waitMs: 100, lookupTimeoutMs: 150 });
      const flood = 200;
      const answers = await Promise.all(Array.from({ length: flood }, (_, i) => lookup.resolve(`arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/flood-${i}`)));
      assert.ok(answers.every((a) => !isResolved(a)), "none is known");
      const refused = answers.filter((a) => !isResolved(a) && /not looked up: \d+ lookups .* under way/.test(a.failed));
      assert.equal(refused.length, flood - MAX_LOOKUPS_AT_ONCE - MAX_LOOKUPS_WAITING, "beyond the running and waiting lookups, each is refused at once, saying why");
      // Every lookup, run or dropped, ends.
      const pending = (lookup as unknown as { pending: Map<string, unknown> }).pending;
      for (let i = 0; i < 100 && pending.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(pending.size, 0, "lookups still under way");
      assert.ok(most <= MAX_LOOKUPS_AT_ONCE, `${most} lookups were sent to AWS at once (at most ${MAX_LOOKUPS_AT_ONCE})`);
      assert.ok(total <= 2 * MAX_LOOKUPS_AT_ONCE, `${total} requests sent: the waiting lookups nobody waits for any more are dropped`);
      assert.ok(warned.length <= MAX_LOOKUP_WARNINGS_PER_MINUTE, `${warned.length} warnings written (at most ${MAX_LOOKUP_WARNINGS_PER_MINUTE} a minute)`);
      assert.ok(warned.length > 0, "the failures are said");
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_BEDROCK;
      else process.env.AWS_ENDPOINT_URL_BEDROCK = saved;
      plane.closeAllConnections();
      await new Promise((resolve) => plane.close(resolve));
    }
  });

  it("the suppressed warnings are counted in the next one written a minute later", async () => {
    const warned: string[] = [];
    const lookup = new ProfileLookup({ ledgerDir: dir, credentials, log: createLogger((_level, line) => warned.push(line), "warn"), waitMs: 50 });
    const realNow = Date.now;
    let shift = 0;
    Date.now = () => realNow() + shift;
    try {
      // No region: each fails at once, without asking the control plane.
      for (let i = 0; i < MAX_LOOKUP_WARNINGS_PER_MINUTE + 5; i++) await lookup.resolve(`arn:aws:bedrock::123456789012:application-inference-profile/quiet-${i}`);
      assert.equal(warned.length, MAX_LOOKUP_WARNINGS_PER_MINUTE);
      shift = 61_000;
      await lookup.resolve("arn:aws:bedrock::123456789012:application-inference-profile/later");
      assert.equal(warned.length, MAX_LOOKUP_WARNINGS_PER_MINUTE + 1);
      assert.match(warned.at(-1)!, /later.*\(5 more failed lookup\(s\) since .* not logged\)/);
    } finally {
      Date.now = realNow;
    }
  });
});
