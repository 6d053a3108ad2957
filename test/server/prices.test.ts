/**
 * `bedrock-budget prices update` against a local fake of the AWS Price List API (real
 * @aws-sdk/client-pricing, SigV4 checked), then calls through the real CLI gateway priced at the
 * fetched figures; rows the Price List lacks keep the built-in figure; a stale table is flagged.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS, DASHBOARD_PATHS, type PricesResponse, type StatusResponse } from "../../server/protocol";
import { FakeBedrock } from "../support/fakeBedrock";
import { FakePricing, type FakeProduct } from "../support/fakePricing";
import { validated } from "../../server/config/load";
import type { Logger } from "../../server/log";
import { clientFor, CREDENTIALS, startHarness } from "../support/harness";
import { cliEnv, run, serve, type Served } from "../support/cliProcess";
import { readyUrl, startLsp } from "../support/lspProcess";

const HAIKU_45 = "global.anthropic.claude-haiku-4-5-20251001-v1:0";
const NOVA_LITE = "amazon.nova-lite-v1:0";
const NOVA_PRO = "amazon.nova-pro-v1:0";

const bedrock = (attrs: Record<string, string>, unit: string, usd: string): FakeProduct => ({ serviceCode: "AmazonBedrock", attributes: { regionCode: "us-east-1", feature: "On-demand Inference", ...attrs }, unit, usd });
const marketplace = (usagetype: string, usd: string, regionCode = "us-east-1"): FakeProduct => ({
  serviceCode: "AmazonBedrockFoundationModels",
  attributes: { regionCode, servicename: "Claude Haiku 4.5 (Amazon Bedrock Edition)", usagetype },
  unit: "1M tokens",
  usd,
});

/** Recorded shapes; figures chosen to differ from the built-in table so the test sees which one priced a call. */
const PRODUCTS: FakeProduct[] = [
  // Nova Lite (no regional premium), per 1K tokens: $0.40 / $3.20 per 1M (built-in: 0.06 / 0.24).
  bedrock({ model: "Nova Lite", inferenceType: "Input tokens", usagetype: "USE1-NovaLite-input-tokens" }, "1K tokens", "0.0004000000"),
  bedrock({ model: "Nova Lite", inferenceType: "Output tokens", usagetype: "USE1-NovaLite-output-tokens" }, "1K tokens", "0.0032000000"),
  // Batch and another region's prices must not be taken.
  bedrock({ model: "Nova Lite", inferenceType: "Input tokens", usagetype: "USE1-NovaLite-input-tokens-batch" }, "1K tokens", "0.0000100000"),
  bedrock({ model: "Nova Lite", inferenceType: "Input tokens", usagetype: "USW2-NovaLite-input-tokens", regionCode: "us-west-2" }, "1K tokens", "0.0000200000"),
  // Nova Pro: input only (an incomplete row) — the built-in row stays whole.
  bedrock({ model: "Nova Pro", inferenceType: "Input tokens", usagetype: "USE1-NovaPro-input-tokens" }, "1K tokens", "0.0099000000"),
  // Claude Haiku 4.5 (marketplace, per 1M): global $0.90 / $4.50 (built-in 1 / 5), regional +10%.
  marketplace("USE1-MP:USE1_InputTokenCount-Units", "0.9900000000"),
  marketplace("USE1-MP:USE1_OutputTokenCount-Units", "4.9500000000"),
  marketplace("USE1-MP:USE1_InputTokenCount_Global-Units", "0.9000000000"),
  marketplace("USE1-MP:USE1_OutputTokenCount_Global-Units", "4.5000000000"),
];

const getJson = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;

async function eventually(check: () => Promise<boolean>, what: string, tries = 60, everyMs = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out waiting until ${what}`);
}

describe("prices update (AWS Price List)", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let pricing: FakePricing;
  let dir: string;
  let ledger: string;
  let served: Served | undefined;
  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    pricing = await FakePricing.start(CREDENTIALS, PRODUCTS);
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-prices-"));
    ledger = path.join(dir, "ledger");
  });
  afterEach(async () => {
    if (served && served.child.exitCode === null) {
      served.child.kill("SIGTERM");
      await served.exited;
    }
    served = undefined;
    await fake.close();
    await pricing.close();
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => cliEnv({ AWS_ENDPOINT_URL_PRICING: pricing.url });

  it("writes a private price file from the Price List, and a running gateway then prices calls at the fetched figures", async () => {
    served = await serve(["--port", "0", "--ledger", ledger, "--upstream", fake.url], env());
    const before = await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
    assert.equal(before.prices?.source, "built-in");

    const out = await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], env());
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /wrote .*aws-prices\.json: 2 model row\(s\) from the AWS Price List \(us-east-1, \d{4}-\d{2}-\d{2}\)/);
    assert.ok(pricing.hits.length >= 3, "both service codes asked, with pagination");
    assert.deepEqual([...new Set(pricing.hits.map((h) => h.body.ServiceCode))].sort(), ["AmazonBedrock", "AmazonBedrockFoundationModels"]);
    const file = path.join(ledger, "aws-prices.json");
    assert.equal((await stat(file)).mode & 0o777, 0o600, "the price file is the user's alone");
    const written = JSON.parse(await readFile(file, "utf8")) as { rows: Record<string, unknown> };
    assert.deepEqual(written.rows["amazon.nova-lite-v1:0"], { input: "0.4", output: "3.2" });
    assert.deepEqual(written.rows["anthropic.claude-haiku-4-5-20251001-v1:0"], { input: "0.9", output: "4.5" });

    await eventually(async () => (await getJson<StatusResponse>(`${served!.url}${API_PATHS.status}`)).prices?.source === "AWS Price List", "the gateway applies the new price file");

    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
    const client = clientFor(served.url);
    for (const modelId of [HAIKU_45, NOVA_LITE, NOVA_PRO]) {
      await client.send(new ConverseCommand({ modelId, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 500 } }));
    }
    client.destroy();
    const report = await run(["report", "--calls", "--format", "json", "--ledger", ledger], env());
    assert.equal(report.code, 0, report.stderr);
    const cost = Object.fromEntries((JSON.parse(report.stdout) as { modelId: string; costPicos: string }[]).map((r) => [r.modelId, r.costPicos]));
    // Haiku 4.5 through the global profile, fetched base price: 1000 × $0.90/1M + 500 × $4.50/1M = $0.00315.
    assert.equal(cost[HAIKU_45], String(1000n * 900_000n + 500n * 4_500_000n));
    // Nova Lite in-region, fetched: 1000 × $0.40/1M + 500 × $3.20/1M = $0.002.
    assert.equal(cost[NOVA_LITE], String(1000n * 400_000n + 500n * 3_200_000n));
    // Nova Pro: the Price List listed input only, so the built-in row ($0.80 / $3.20) prices it.
    assert.equal(cost[NOVA_PRO], String(1000n * 800_000n + 500n * 3_200_000n));

    const prices = await getJson<PricesResponse>(`${served.url}${DASHBOARD_PATHS.prices}`);
    const source = (id: string) => prices.models.find((m) => m.modelId === id)?.source ?? "";
    assert.match(source(NOVA_LITE), /^AWS Price List \d{4}-\d{2}-\d{2} \(us-east-1\)/);
    assert.doesNotMatch(source(NOVA_PRO), /AWS Price List/);
    assert.equal(prices.table?.source, "AWS Price List");
    assert.equal(prices.table?.stale, false);
  });

  it("a gateway started after the update prices at the file's figures; a Price List with nothing usable leaves no file", async () => {
    const empty = await FakePricing.start(CREDENTIALS, [marketplace("USW2-MP:USW2_InputTokenCount-Units", "9", "us-west-2")]);
    try {
      const none = await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], cliEnv({ AWS_ENDPOINT_URL_PRICING: empty.url }));
      assert.equal(none.code, 1);
      assert.match(none.stderr, /lists no on-demand token prices for us-east-1 .*not written/);
      await assert.rejects(stat(path.join(ledger, "aws-prices.json")), { code: "ENOENT" });
    } finally {
      await empty.close();
    }
    assert.equal((await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], env())).code, 0);
    served = await serve(["--port", "0", "--ledger", ledger, "--upstream", fake.url], env());
    fake.behave(() => ({ kind: "ok", usage: { input: 2000, output: 100 } }));
    const client = clientFor(served.url);
    await client.send(new ConverseCommand({ modelId: NOVA_LITE, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 100 } }));
    client.destroy();
    const report = await run(["report", "--calls", "--format", "json", "--ledger", ledger], env());
    const rows = JSON.parse(report.stdout) as { costPicos: string }[];
    assert.equal(rows[0]!.costPicos, String(2000n * 400_000n + 100n * 3_200_000n));
  });

  it("a Price List SKU under a pico-dollar per token is not taken (calls would be free): the row keeps the built-in figure and the update says why", async () => {
    const tiny = await FakePricing.start(CREDENTIALS, [
      // $1e-13 per 1M tokens: above 0 as written, $0 per token once priced.
      bedrock({ model: "Nova Lite", inferenceType: "Input tokens", usagetype: "USE1-NovaLite-input-tokens" }, "1K tokens", "0.0000000000000001"),
      bedrock({ model: "Nova Lite", inferenceType: "Output tokens", usagetype: "USE1-NovaLite-output-tokens" }, "1K tokens", "0.0032000000"),
      bedrock({ model: "Nova Pro", inferenceType: "Input tokens", usagetype: "USE1-NovaPro-input-tokens" }, "1K tokens", "0.0009000000"),
      bedrock({ model: "Nova Pro", inferenceType: "Output tokens", usagetype: "USE1-NovaPro-output-tokens" }, "1K tokens", "0.0036000000"),
    ]);
    try {
      const out = await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], cliEnv({ AWS_ENDPOINT_URL_PRICING: tiny.url }));
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /products not read: USE1-NovaLite-input-tokens \(price "0\.0000000000000001" per "1K tokens": 0\.0000000000001 per 1M tokens is \$0 per token/);
      const written = JSON.parse(await readFile(path.join(ledger, "aws-prices.json"), "utf8")) as { rows: Record<string, unknown>; missing: string[] };
      assert.equal(written.rows[NOVA_LITE], undefined, "Nova Lite keeps its built-in figure");
      assert.ok(written.missing.includes(NOVA_LITE));
      assert.deepEqual(written.rows[NOVA_PRO], { input: "0.9", output: "3.6" });
    } finally {
      await tiny.close();
    }
  });

  it("a refused signature gets the hint about credentials; a Price List it cannot reach does not", async () => {
    const denied = await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], cliEnv({ AWS_ENDPOINT_URL_PRICING: pricing.url, AWS_SECRET_ACCESS_KEY: "wrong" }));
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /the AWS Price List needs credentials, from awsProfile or the default chain, allowed pricing:GetProducts/);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const unreachable = await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], cliEnv({ AWS_ENDPOINT_URL_PRICING: `http://127.0.0.1:${port}` }));
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /ECONNREFUSED/);
    assert.doesNotMatch(unreachable.stderr, /needs credentials/);
  });

  it("status flags a price table older than 60 days, and names a fresh one's date", async () => {
    const old = new Date(Date.now() - 90 * 86_400_000).toISOString();
    const { mkdir } = await import("node:fs/promises");
    await mkdir(ledger, { recursive: true, mode: 0o700 });
    await writeFile(
      path.join(ledger, "aws-prices.json"),
      JSON.stringify({ version: 1, source: "AWS Price List", fetchedAt: old, region: "us-east-1", rows: { "amazon.nova-lite-v1:0": { input: "0.4", output: "3.2" } }, missing: [] }),
      { mode: 0o600 },
    );
    served = await serve(["--port", "0", "--ledger", ledger, "--upstream", fake.url], env());
    const status = await run(["status", "--port", String(served.port), "--ledger", ledger], env());
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`WARNING: prices: AWS Price List ${old.slice(0, 10)} \\(us-east-1\\), \\d+ row\\(s\\) at the built-in figure; 90 day\\(s\\) old: older than 60 days, refresh with: bedrock-budget prices update`));
    const body = await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
    assert.deepEqual([body.prices?.stale, body.prices?.ageDays, body.prices?.date], [true, 90, old.slice(0, 10)]);

    assert.equal((await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], env())).code, 0);
    await eventually(async () => (await getJson<StatusResponse>(`${served!.url}${API_PATHS.status}`)).prices?.stale === false, "the fresh table is in force");
    const fresh = await run(["status", "--port", String(served.port), "--ledger", ledger], env());
    assert.match(fresh.stdout, new RegExp(`^prices: AWS Price List ${new Date().toISOString().slice(0, 10)} \\(us-east-1\\), \\d+ row\\(s\\) at the built-in figure; 0 day\\(s\\) old$`, "m"));
    assert.doesNotMatch(fresh.stdout, /WARNING: prices/);
  });

  it("the code-lens hover names the Price List as the row's source once the price file is written", async () => {
    assert.equal((await run(["prices", "update", "--ledger", ledger, "--region", "us-east-1"], env())).code, 0);
    const lsp = await startLsp({ port: 0, ledgerDir: ledger, upstreamEndpoint: fake.url, timeZone: "UTC" });
    try {
      await lsp.waitFor("ready", () => readyUrl(lsp));
      await lsp.waitFor("a status naming the Price List", () => lsp.statuses.find((st) => st.prices?.source === "AWS Price List"));
      const uri = "file:///work/nova.ts";
      const text = [
        'import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";',
        "const client = new BedrockRuntimeClient({});",
        "await client.send(new InvokeModelCommand({",
        '  modelId: "amazon.nova-lite-v1:0",',
        '  body: JSON.stringify({ messages: [{ role: "user", content: [{ text: "Hello" }] }], inferenceConfig: { maxTokens: 100 } }),',
        "}));",
        "await client.send(new InvokeModelCommand({",
        '  modelId: "amazon.nova-pro-v1:0",',
        '  body: JSON.stringify({ messages: [{ role: "user", content: [{ text: "Hello" }] }], inferenceConfig: { maxTokens: 100 } }),',
        "}));",
      ].join("\n");
      await lsp.connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "typescript", version: 1, text } });
      const hover = async (line: number) => ((await lsp.connection.sendRequest("textDocument/hover", { textDocument: { uri }, position: { line, character: 4 } })) as { contents: { value: string } } | null)?.contents.value ?? "";
      await eventually(async () => /Price source: AWS Price List \d{4}-\d{2}-\d{2} \(us-east-1\)/.test(await hover(3)), "the hover names the Price List");
      const pro = await hover(7);
      assert.match(pro, /Price source: /);
      assert.doesNotMatch(pro, /AWS Price List/, "a row the Price List lacks keeps its built-in source");
    } finally {
      await lsp.stop();
    }
  });
});

describe("a price file that validates only in form (figures the gateway cannot price)", function () {
  this.timeout(60_000);
  const badFile = (rates: { input: string; output: string }) =>
    JSON.stringify({ version: 1, source: "AWS Price List", fetchedAt: new Date().toISOString(), region: "us-east-1", rows: { [NOVA_MICRO]: rates }, missing: [] });
  const NOVA_MICRO = "amazon.nova-micro-v1:0";
  const converse = (client: ReturnType<typeof clientFor>) =>
    client.send(new ConverseCommand({ modelId: NOVA_LITE, messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 1000 } }));

  it("written while the gateway runs: it is refused naming the file and the figure, the table in force stays, and a tightened cap still applies", async () => {
    const logs: string[] = [];
    const log = { debug() {}, info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m), error: (m: string) => logs.push(m), setLevel() {} } as unknown as Logger;
    const h = await startHarness({ caps: [{ id: "monthly", window: "month", limitUsd: 100 }] }, { log });
    try {
      const file = path.join(h.ledgerDir, "aws-prices.json");
      await writeFile(file, badFile({ input: "9".repeat(400), output: "0.14" }), { mode: 0o600 });
      await eventually(async () => logs.some((l) => /the prices in force stay/.test(l)), "the gateway reads the new price file");
      const refused = logs.find((l) => /the prices in force stay/.test(l))!;
      assert.ok(refused.includes(file), refused);
      assert.match(refused, /rows\.amazon\.nova-micro-v1:0\.input: 9{24}… is not a price per 1M tokens/);
      assert.ok(!logs.some((l) => /AWS Price List .* in force/.test(l)), "the bad table is never said to be in force");
      assert.equal((await getJson<StatusResponse>(`${h.gateway.url}${API_PATHS.status}`)).prices?.source, "built-in");

      // The user tightens the cap: the change applies, and a call that could pass it is refused.
      await h.gateway.reconfigure(validated({ port: 0, upstreamEndpoint: h.fake.url, ledgerDir: h.ledgerDir, user: "tester", timeZone: "UTC", caps: [{ id: "monthly", window: "month", limitUsd: 0.000001 }] }, "test"));
      await assert.rejects(converse(h.client), (err: Error) => {
        assert.equal(err.name, "ServiceQuotaExceededException");
        assert.match(err.message, /cap "monthly"/);
        return true;
      });
      assert.equal(h.fake.hits.length, 0, "the refused call never reached Bedrock");
    } finally {
      await h.close();
    }
  });

  for (const [what, rates, problem] of [
    ["an input price of 400 nines (Infinity as a number)", { input: "9".repeat(400), output: "0.14" }, /rows\.amazon\.nova-micro-v1:0\.input: 9{24}… is not a price per 1M tokens/],
    ["an output price under a pico-dollar per token ($0 per call)", { input: "0.035", output: "0.0000000000001" }, /rows\.amazon\.nova-micro-v1:0\.output: 0\.0000000000001 per 1M tokens is \$0 per token/],
  ] as const) {
    it(`at start-up, ${what}: the start stops with an error naming aws-prices.json and the figure`, async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), "bb-prices-bad-"));
      try {
        const ledger = path.join(dir, "ledger");
        const { mkdir } = await import("node:fs/promises");
        await mkdir(ledger, { recursive: true, mode: 0o700 });
        await writeFile(path.join(ledger, "aws-prices.json"), badFile(rates), { mode: 0o600 });
        const started = await serve(["--port", "0", "--ledger", ledger, "--upstream", "http://127.0.0.1:9"], cliEnv()).catch((err: Error) => err);
        if (!(started instanceof Error)) {
          started.child.kill("SIGTERM");
          await started.exited;
          assert.fail("the gateway started with a price file it cannot price");
        }
        assert.match(started.message, /exited with 1 before listening/);
        assert.match(started.message, /aws-prices\.json is not a valid price file/);
        assert.match(started.message, problem);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
