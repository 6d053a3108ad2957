/** Try-it mode: the real JS SDK through `bedrock-budget serve --simulate`, with no AWS credentials anywhere. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { ConverseCommand, ConverseStreamCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import type { HttpResponse } from "@smithy/protocol-http";
import { chromium, type Page } from "playwright-core";
import { GatewaySecret } from "../../server/ledger/secret";
import { API_PATHS, DASHBOARD_PATHS, TOKEN_HEADER, type StatusResponse } from "../../server/protocol";
import { serve, type Served } from "../support/cliProcess";
import { anthropicBody, clientFor, SONNET_45 } from "../support/harness";

const CHROMIUM = "/usr/bin/chromium";

/** No AWS keys, no AWS files, no instance metadata: nothing to find credentials with. */
const noAwsEnv = (home: string) => ({
  PATH: process.env.PATH, HOME: home, TZ: "UTC",
  AWS_CONFIG_FILE: "/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials", AWS_EC2_METADATA_DISABLED: "true",
});

describe("serve --simulate", function () {
  this.timeout(60_000);
  let dir: string;
  let served: Served | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-sim-"));
  });
  afterEach(async () => {
    if (served && served.child.exitCode === null) {
      served.child.kill("SIGTERM");
      await served.exited;
    }
    served = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("answers the real SDK without AWS credentials, refuses at a $0.01 cap, labels every answer and records only in the simulated ledger", async () => {
    const configFile = path.join(dir, "config.json");
    // A webhook in the user's settings: simulated spend must not reach the team's channel as real.
    const webhookPosts: string[] = [];
    const webhook = http.createServer((req, res) => {
      webhookPosts.push(req.url ?? "");
      res.end("ok");
    });
    await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
    after(() => webhook.close());
    const alertWebhook = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
    await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 0.01 }], timeZone: "UTC", alertWebhook, alertThresholds: [50, 100] }));
    const ledger = path.join(dir, "ledger");
    served = await serve(["--simulate", "--config", configFile, "--port", "0", "--ledger", ledger], noAwsEnv(dir));

    // Any key signs: nothing the simulator answers costs money.
    const client = clientFor(served.url, { accessKeyId: "AKIDANYKEYATALL", secretAccessKey: "not-a-real-secret" });
    const simulatedHeader: Array<string | undefined> = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        simulatedHeader.push((out.response as HttpResponse).headers["x-bedrock-budget-simulated"]);
        return out;
      },
      { step: "deserialize", priority: "low", name: "recordSimulatedHeader" },
    );

    const stream = await client.send(new ConverseStreamCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Say hello" }] }], inferenceConfig: { maxTokens: 40 } }));
    let streamed = "";
    let streamedOutput = 0;
    for await (const event of stream.stream!) {
      if (event.contentBlockDelta?.delta?.text) streamed += event.contentBlockDelta.delta.text;
      if (event.metadata) streamedOutput = event.metadata.usage!.outputTokens!;
    }
    assert.match(streamed, /simulator/);
    assert.ok(streamedOutput > 0 && streamedOutput <= 40, `streamed output tokens: ${streamedOutput}`);

    const invoked = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Say hello", 30) }));
    const message = JSON.parse(new TextDecoder().decode(invoked.body)) as { content: Array<{ text: string }>; usage: { output_tokens: number } };
    assert.match(message.content[0]!.text, /simulator/);

    let answered = 0;
    let refusal: Error | undefined;
    for (let i = 0; i < 20 && !refusal; i++) {
      try {
        const out = await client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Tell me about caps" }] }], inferenceConfig: { maxTokens: 200 } }));
        assert.ok(out.output?.message?.content?.[0]?.text);
        assert.ok(out.usage!.inputTokens! > 0 && out.usage!.outputTokens! > 0);
        answered++;
      } catch (err) {
        refusal = err as Error;
      }
    }
    client.destroy();
    assert.ok(answered >= 1, "answers before the cap");
    assert.ok(refusal, "a refusal within 20 calls");
    assert.equal(refusal.name, "ServiceQuotaExceededException");
    assert.match(refusal.message, /cap "daily"/);
    assert.equal(simulatedHeader.length, answered + 3);
    assert.deepEqual(new Set(simulatedHeader), new Set(["true"]), "every answer, the refusal too, is labelled simulated");

    const status = (await (await fetch(`${served.url}${API_PATHS.status}`)).json()) as StatusResponse;
    assert.equal(status.simulated, true);
    assert.equal(status.today.calls, answered + 2);

    served.child.kill("SIGTERM");
    assert.equal(await served.exited, 0);
    const simulatedJournal = path.join(ledger, "simulated", "journal");
    const lines = (await Promise.all((await readdir(simulatedJournal)).map((f) => readFile(path.join(simulatedJournal, f), "utf8")))).join("").trim().split("\n");
    assert.ok(lines.some((l) => l.includes('"refused"')), "the refusal is journaled in the simulated ledger");
    assert.equal(existsSync(path.join(ledger, "journal")), false, "nothing in the real ledger");
    const logLines = served.stderr().trim().split("\n");
    assert.ok(logLines.length > 0);
    for (const line of logLines) assert.match(line, /\[simulated\]/, `log line not labelled: ${line}`);
    assert.ok(status.caps.find((c) => c.id === "daily")!.spentUsd >= 0.005, "the 50% threshold was crossed");
    assert.deepEqual(webhookPosts, [], "no alert of simulated spend went to the webhook");
  });

  it("a call asking for the priority tier is answered at that tier and recorded at its rate, as Bedrock reports and bills it", async () => {
    const ledger = path.join(dir, "ledger");
    served = await serve(["--simulate", "--port", "0", "--ledger", ledger], noAwsEnv(dir));
    const client = clientFor(served.url, { accessKeyId: "AKIDANYKEYATALL", secretAccessKey: "not-a-real-secret" });
    const converse = (priority: boolean) =>
      client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "Tell me about tiers" }] }], inferenceConfig: { maxTokens: 200 }, ...(priority ? { serviceTier: { type: "priority" as const } } : {}) }));
    const invoke = (priority: boolean) => client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("Tell me about tiers", 200), contentType: "application/json", ...(priority ? { serviceTier: "priority" as const } : {}) }));
    assert.equal((await converse(true)).serviceTier?.type, "priority");
    await converse(false);
    assert.equal((await invoke(true)).serviceTier, "priority");
    await invoke(false);
    client.destroy();
    served.child.kill("SIGTERM");
    assert.equal(await served.exited, 0);
    const journal = path.join(ledger, "simulated", "journal");
    const settled = (await Promise.all((await readdir(journal)).map((f) => readFile(path.join(journal, f), "utf8")))).join("").trim().split("\n")
      .map((l) => JSON.parse(l) as { type: string; operation: string; costPicos: string; serviceTier?: string })
      .filter((e) => e.type === "settle");
    for (const operation of ["Converse", "InvokeModel"]) {
      const priority = settled.find((e) => e.operation === operation && e.serviceTier === "priority");
      const standard = settled.find((e) => e.operation === operation && e.serviceTier === undefined);
      assert.ok(priority && standard, `${operation}: ${JSON.stringify(settled)}`);
      // The same request and answer: the priority tier's 75% premium.
      assert.equal(BigInt(priority.costPicos) * 10_000n, BigInt(standard.costPicos) * 17_500n, operation);
    }
  });

  it("never uses the settings' team ledger, a reload included: simulated spend does not reach the team's spend files or its caps", async () => {
    const team = path.join(dir, "team");
    await mkdir(path.join(team, "default"), { recursive: true });
    // A team cap a simulated call would break: were the team ledger used, the call would be refused and its spend written beside the team's.
    await writeFile(path.join(team, "default", "team.json"), JSON.stringify({ timeZone: "UTC", caps: [{ id: "team-day", window: "day", limitUsd: 0.000001 }] }));
    const configFile = path.join(dir, "config.json");
    await writeFile(configFile, JSON.stringify({ timeZone: "UTC", teamLedger: team }));
    served = await serve(["--simulate", "--config", configFile, "--port", "0", "--ledger", path.join(dir, "ledger")], noAwsEnv(dir));
    assert.match(served.stderr(), /teamLedger is not used in simulate mode/);
    const client = clientFor(served.url, { accessKeyId: "AKIDANYKEYATALL", secretAccessKey: "not-a-real-secret" });
    const call = () => client.send(new ConverseCommand({ modelId: SONNET_45, messages: [{ role: "user", content: [{ text: "hello" }] }], inferenceConfig: { maxTokens: 50 } }));
    await call();
    // A live edit that keeps teamLedger: still not used.
    await writeFile(configFile, JSON.stringify({ timeZone: "UTC", teamLedger: team, logLevel: "debug" }));
    for (let i = 0; i < 100 && !/configuration reloaded/.test(served.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(served.stderr(), /configuration reloaded/);
    await call();
    client.destroy();
    assert.deepEqual(await readdir(team, { recursive: true }), ["default", path.join("default", "team.json")], "nothing written in the team folder");
  });

  /** A simulated gateway's dashboard open in Chromium (skipped without it, outside CI); `page` is set up before the page loads. */
  async function onSimulatedDashboard(test: Mocha.Context, use: (page: Page, loaded: () => Promise<void>) => Promise<void>): Promise<void> {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI === "true") throw new Error(`${CHROMIUM} is not installed; .ci/run installs it before the tests`);
      return test.skip();
    }
    const ledger = path.join(dir, "ledger");
    served = await serve(["--simulate", "--port", "0", "--ledger", ledger], noAwsEnv(dir));
    const url = `${served.url}${DASHBOARD_PATHS.page}?token=${(await GatewaySecret.read(path.join(ledger, "simulated")))!.token()}`;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    try {
      const page = await browser.newPage();
      await use(page, async () => {
        await page.goto(url);
        await page.waitForSelector("#simulated:not([hidden])", { timeout: 20_000 });
      });
    } finally {
      await browser.close();
    }
  }

  it("says so on the dashboard: a banner and the header line", async function () {
    await onSimulatedDashboard(this, async (page, loaded) => {
      await loaded();
      assert.match((await page.textContent("#simulated"))!, /not AWS/);
      assert.match((await page.textContent(".sub"))!, /simulated/);
    });
  });

  it("the dashboard's bill comparison says nothing was billed and never asks Cost Explorer (no placeholder credentials sent to AWS)", async function () {
    await onSimulatedDashboard(this, async (page, loaded) => {
      const asked: string[] = [];
      page.on("request", (r) => asked.push(new URL(r.url()).pathname));
      await loaded();
      await page.click("#reconcile-load");
      await page.locator(".reconcile-out p").filter({ hasNotText: "Reading the bill" }).first().waitFor({ timeout: 20_000 });
      assert.match((await page.textContent(".reconcile-out"))!, /billed nothing/);
      assert.ok(!asked.includes(DASHBOARD_PATHS.reconcile), `the page asked ${DASHBOARD_PATHS.reconcile}`);
    });
  });

  it("the bill comparison's route refuses in simulate mode (a script or an old page never sends the placeholder credentials to Cost Explorer)", async () => {
    const ledger = path.join(dir, "ledger");
    // Cost Explorer pointed at a local listener: a request reaching it is what must not happen.
    const asked: string[] = [];
    const ce = http.createServer((req, res) => {
      asked.push(req.url ?? "");
      res.statusCode = 500;
      res.end();
    });
    await new Promise<void>((resolve) => ce.listen(0, "127.0.0.1", resolve));
    after(() => ce.close());
    served = await serve(["--simulate", "--port", "0", "--ledger", ledger], { ...noAwsEnv(dir), AWS_ENDPOINT_URL_COST_EXPLORER: `http://127.0.0.1:${(ce.address() as AddressInfo).port}` });
    const secret = (await GatewaySecret.read(path.join(ledger, "simulated")))!;
    const answer = await fetch(`${served.url}${DASHBOARD_PATHS.reconcile}?month=2026-11`, { headers: { [TOKEN_HEADER]: secret.token() } });
    assert.equal(answer.status, 400);
    assert.match(((await answer.json()) as { message: string }).message, /simulate mode: nothing was billed/);
    assert.deepEqual(asked, [], "Cost Explorer was not asked");
  });

  it("refuses --simulate with --upstream: simulated calls never leave the machine", async () => {
    await assert.rejects(serve(["--simulate", "--upstream", "https://bedrock-runtime.us-east-1.amazonaws.com", "--port", "0", "--ledger", path.join(dir, "l")]), /exited with 2[\s\S]*--simulate answers every call itself/);
  });
});
