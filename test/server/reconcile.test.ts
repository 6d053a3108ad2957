/**
 * `bedrock-budget reconcile` against a local fake of Cost Explorer (real
 * @aws-sdk/client-cost-explorer, SigV4 checked): per UTC day and model the ledger beside the
 * bill and the drift; guardrail usage types on one Guardrails line a day, other unmapped usage types on their own lines; the dashboard's route the same.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { chromium } from "playwright-core";
import os from "node:os";
import path from "node:path";
import { GatewaySecret } from "../../server/ledger/secret";
import type { CallRecord } from "../../server/ledger/types";
import { DASHBOARD_PATHS, TOKEN_HEADER, type ReconcileResponse } from "../../server/protocol";
import { FakeBedrock } from "../support/fakeBedrock";
import { FakeCostExplorer, type FakeCost } from "../support/fakeCostExplorer";
import { writeLedger } from "../support/dashboardSeed";
import { CREDENTIALS } from "../support/harness";
import { cliEnv, run, serve } from "../support/cliProcess";

/** Last month (UTC): the bill for it is complete, and the seeded calls are in the past. */
const now = new Date();
const MONTH = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
const day = (d: number) => `${MONTH}-${String(d).padStart(2, "0")}`;
const HAIKU_SERVICE = "Claude Haiku 4.5 (Amazon Bedrock Edition)";

function call(id: string, date: string, modelId: string, baseModelId: string, costPicos: bigint): CallRecord {
  return {
    type: "settle", id, at: `${date}T10:00:01.000Z`, startedAt: `${date}T10:00:00.000Z`, user: "tester", tool: "aws-sdk-js", operation: "Converse",
    modelId, baseModelId, usage: { inputTokens: 1000, outputTokens: 500, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: String(costPicos), worstCasePicos: String(costPicos), outcome: "ok", status: 200, latencyMs: 1000, tags: {},
  };
}

const LEDGER: CallRecord[] = [
  call("c1", day(3), "us.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", 3_500_000_000n), // $0.0035
  call("c2", day(3), "amazon.nova-2-lite-v1:0", "amazon.nova-2-lite-v1:0", 2_000_000_000n), // $0.002
  call("c3", day(4), "us.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0", 1_000_000_000_000n), // $1
];

const BILL: FakeCost[] = [
  { date: day(3), service: HAIKU_SERVICE, usageType: "USE1-MP:USE1_InputTokenCount-Units", amount: "0.0011" },
  { date: day(3), service: HAIKU_SERVICE, usageType: "USE1-MP:USE1_OutputTokenCount-Units", amount: "0.0027" },
  { date: day(3), service: "Amazon Bedrock", usageType: "USE1-Nova2.0Lite-input-tokens", amount: "0.0004" },
  { date: day(3), service: "Amazon Bedrock", usageType: "USE1-Nova2.0Lite-output-tokens", amount: "0.0016" },
  { date: day(4), service: HAIKU_SERVICE, usageType: "USE1-MP:USE1_OutputTokenCount-Units", amount: "1.25" },
  { date: day(4), service: "Amazon Bedrock", usageType: "USE1-Guardrail-ContentPolicyUnitsConsumed", amount: "0.15" },
  { date: day(5), service: HAIKU_SERVICE, usageType: "USE1-MP:USE1_InputTokenCount-Units", amount: "0.5" }, // a call outside the gateway
  { date: day(5), service: "Amazon Elastic Compute Cloud - Compute", usageType: "USE1-BoxUsage:t3.micro", amount: "3" }, // not Bedrock
  // Not usage: a credit, a refund and tax on the same services and usage types are left out of the bill.
  { date: day(4), service: HAIKU_SERVICE, usageType: "USE1-MP:USE1_OutputTokenCount-Units", amount: "-1.25", recordType: "Credit" },
  { date: day(3), service: "Amazon Bedrock", usageType: "USE1-Nova2.0Lite-output-tokens", amount: "-0.0016", recordType: "Refund" },
  { date: day(5), service: HAIKU_SERVICE, usageType: "USE1-MP:USE1_InputTokenCount-Units", amount: "0.04", recordType: "Tax" },
];

/** A loopback URL nothing listens on (a port just released). */
async function closedLoopbackUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const cells = (stdout: string, first: string, model: string) =>
  stdout.split("\n").find((l) => l.startsWith(first) && l.includes(model))?.replace(`${first}`, "").replace(model, "").trim().split(/\s+/);

describe("reconcile (Cost Explorer)", function () {
  this.timeout(60_000);
  let ce: FakeCostExplorer;
  let dir: string;
  let ledger: string;
  beforeEach(async () => {
    ce = await FakeCostExplorer.start(CREDENTIALS, BILL);
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-reconcile-"));
    ledger = path.join(dir, "ledger");
    await writeLedger(ledger, LEDGER);
  });
  afterEach(async () => {
    await ce.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("prints, per day and model, the ledger beside the bill and the drift in dollars and percent", async () => {
    const out = await run(["reconcile", "--ledger", ledger, "--month", MONTH], cliEnv({ AWS_ENDPOINT_URL_COST_EXPLORER: ce.url }));
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(ce.hits.map((h) => h.operation), ["GetDimensionValues", "GetCostAndUsage"]);
    const asked = ce.hits[1]!.body as { TimePeriod: { Start: string }; Filter: { And: { Dimensions: { Key: string; Values: string[] } }[] } };
    assert.equal(asked.TimePeriod.Start, day(1));
    const services = asked.Filter.And.find((e) => e.Dimensions.Key === "SERVICE")!.Dimensions.Values;
    assert.ok(services.includes("Amazon Bedrock") && services.includes(HAIKU_SERVICE));
    assert.deepEqual(asked.Filter.And.find((e) => e.Dimensions.Key === "RECORD_TYPE")?.Dimensions.Values, ["Usage"], "usage only: no credits, refunds or tax");

    assert.deepEqual(cells(out.stdout, day(3), "Claude Haiku 4.5"), ["$0.0035", "$0.0038", "+$0.0003", "+7.9%"]);
    assert.deepEqual(cells(out.stdout, day(3), "Amazon Nova 2 Lite"), ["$0.002", "$0.002", "$0.00", "0.0%"]);
    assert.deepEqual(cells(out.stdout, day(4), "Claude Haiku 4.5"), ["$1.00", "$1.25", "+$0.25", "+20.0%"]);
    assert.deepEqual(cells(out.stdout, day(4), "Guardrails"), ["$0.00", "$0.15", "+$0.15", "+100.0%"]);
    assert.deepEqual(cells(out.stdout, day(5), "Claude Haiku 4.5"), ["$0.00", "$0.50", "+$0.50", "+100.0%"]);
    assert.deepEqual(cells(out.stdout, "total", MONTH), ["$1.0055", "$1.9058", "+$0.9003", "+47.2%"]);
    assert.doesNotMatch(out.stdout, /BoxUsage/);
  });

  it("reads the bill of a marketplace model the price table lacks (a new release) on a line of its own", async () => {
    const NEW_SERVICE = "Claude Opus 9 (Amazon Bedrock Edition)";
    const newModel = await FakeCostExplorer.start(CREDENTIALS, [...BILL, { date: day(6), service: NEW_SERVICE, usageType: "USE1-MP:USE1_InputTokenCount-Units", amount: "2.5" }]);
    try {
      const out = await run(["reconcile", "--ledger", ledger, "--month", MONTH], cliEnv({ AWS_ENDPOINT_URL_COST_EXPLORER: newModel.url }));
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(cells(out.stdout, day(6), `unmapped usage type USE1-MP:USE1_InputTokenCount-Units (${NEW_SERVICE})`), ["$0.00", "$2.50", "+$2.50", "+100.0%"]);
      assert.deepEqual(cells(out.stdout, "total", MONTH), ["$1.0055", "$4.4058", "+$3.4003", "+77.2%"]);
    } finally {
      await newModel.close();
    }
  });

  it("the dashboard's reconcile route answers the same figures, with the token only", async () => {
    const fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    const served = await serve(["--port", "0", "--ledger", ledger, "--upstream", fake.url], cliEnv({ AWS_ENDPOINT_URL_COST_EXPLORER: ce.url }));
    try {
      const url = `${served.url}${DASHBOARD_PATHS.reconcile}?month=${MONTH}`;
      assert.equal((await fetch(url)).status, 403);
      const token = (await GatewaySecret.read(ledger))!.token();
      const res = await fetch(url, { headers: { [TOKEN_HEADER]: token } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as ReconcileResponse;
      assert.deepEqual([body.total.ledgerExact, body.total.billExact, body.total.driftExact, body.total.driftPercent], ["1.0055", "1.9058", "0.9003", 47.2]);
      const haiku4 = body.lines.find((l) => l.date === day(4) && l.model === "Claude Haiku 4.5");
      assert.deepEqual([haiku4?.ledgerExact, haiku4?.billExact, haiku4?.driftPercent], ["1", "1.25", 20]);
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
      await fake.close();
    }
  });

  it("says why when the bill cannot be read", async () => {
    const out = await run(["reconcile", "--ledger", ledger, "--month", MONTH], cliEnv({ AWS_ENDPOINT_URL_COST_EXPLORER: ce.url, AWS_SECRET_ACCESS_KEY: "wrong" }));
    assert.equal(out.code, 1);
    assert.match(out.stderr, /signature/i);
    assert.match(out.stderr, /Cost Explorer needs credentials, from awsProfile or the default chain, allowed ce:GetCostAndUsage and ce:GetDimensionValues/);
  });

  it("a Cost Explorer it cannot reach is said as such, without a hint about credentials", async () => {
    const closed = await closedLoopbackUrl();
    const out = await run(["reconcile", "--ledger", ledger, "--month", MONTH], cliEnv({ AWS_ENDPOINT_URL_COST_EXPLORER: closed }));
    assert.equal(out.code, 1);
    assert.match(out.stderr, /ECONNREFUSED/);
    assert.doesNotMatch(out.stderr, /needs credentials/);
  });

  it("the dashboard flags a stale price table and shows the ledger beside the bill when asked", async function () {
    if (!existsSync("/usr/bin/chromium")) {
      if (process.env.CI === "true") throw new Error("/usr/bin/chromium is not installed");
      return this.skip();
    }
    const old = new Date(Date.now() - 75 * 86_400_000).toISOString();
    await writeFile(path.join(ledger, "aws-prices.json"), JSON.stringify({ version: 1, source: "AWS Price List", fetchedAt: old, region: "us-east-1", rows: { "amazon.nova-pro-v1:0": { input: "0.8", output: "3.2" } }, missing: [] }), { mode: 0o600 });
    const fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    const served = await serve(["--port", "0", "--ledger", ledger, "--upstream", fake.url], cliEnv({ AWS_ENDPOINT_URL_COST_EXPLORER: ce.url }));
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
    try {
      const page = await browser.newPage();
      const token = (await GatewaySecret.read(ledger))!.token();
      await page.goto(`${served.url}${DASHBOARD_PATHS.page}?token=${token}`);
      await page.waitForSelector("#price-table:not([hidden])");
      const line = await page.textContent("#price-table");
      assert.match(line ?? "", new RegExp(`^Prices: AWS Price List ${old.slice(0, 10)} \\(us-east-1\\), \\d+ row\\(s\\) at the built-in figure, 75 day\\(s\\) old — older than 60 days`));
      assert.equal(await page.getAttribute("#price-table", "data-stale"), "true");
      assert.equal(ce.hits.length, 0, "the bill is read only when asked (each Cost Explorer request is billed)");

      await page.fill("#reconcile-month", MONTH);
      await page.click("#reconcile-load");
      await page.waitForSelector("table.reconcile tfoot");
      const total = await page.$$eval("table.reconcile tfoot td", (tds) => tds.map((td) => td.textContent));
      assert.deepEqual(total, ["Total", MONTH, "$1.0055", "$1.9058", "+$0.9003", "+47.2%"]);
      const rows = await page.$$eval("table.reconcile tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent).join(" | ")));
      assert.ok(rows.includes(`${day(4)} | Guardrails | $0.00 | $0.15 | +$0.15 | +100.0%`), rows.join("\n"));
    } finally {
      await browser.close();
      served.child.kill("SIGTERM");
      await served.exited;
      await fake.close();
    }
  });
});
