// A cap or request quota added in the settings while the gateway runs: it walls at once at this window's real count,
// counts the calls already running, and refuses every call when the journal cannot be counted.
import assert from "node:assert/strict";
import { appendFile, mkdir, rename, rmdir } from "node:fs/promises";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { validated } from "../../server/config/load";
import type { ConfigInput } from "../../server/config/schema";
import { journalMonth } from "../../server/ledger/journal";
import { API_PATHS, type StatusResponse } from "../../server/protocol";
import { anthropicBody, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

/** Input free, output $15 per 1M tokens: a call's cost is easy to say. */
const PRICING = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };
const MONTH_CAP = (limitUsd: number) => [{ id: "month", window: "month" as const, limitUsd }];

const settings = (h: Harness, extra: Partial<ConfigInput>) =>
  validated({ port: 0, upstreamEndpoint: h.fake.url, ledgerDir: h.ledgerDir, user: "tester", timeZone: "UTC", pricing: PRICING, ...extra }, "test");
const status = async (h: Harness) => (await (await fetch(`${h.gateway.url}${API_PATHS.status}`)).json()) as StatusResponse;
const capFigures = async (h: Harness) => Object.fromEntries((await status(h)).caps.map((c) => [c.id, { spent: c.spentExact, reserved: c.reservedExact }]));
const invoke = (h: Harness, maxTokens = 1000) => h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", maxTokens) }));

/**
 * Journals `calls` settled calls of $0.001 each this month (a reserve and a settle line, as the
 * gateway writes them) while the gateway is stopped, then starts it again on that ledger.
 */
async function withHistory(h: Harness, calls: number): Promise<void> {
  await h.gateway.close();
  const now = new Date();
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const at = new Date(Math.max(monthStart, now.getTime() - 1000)).toISOString();
  const lines: string[] = [];
  for (let i = 0; i < calls; i++) {
    const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
    const common = { id, at, user: "tester", caller: CREDENTIALS.accessKeyId, tool: "script", operation: "InvokeModel", modelId: SONNET_45, baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0" };
    lines.push(JSON.stringify({ type: "reserve", ...common, worstCasePicos: "15000000000", capIds: [] }));
    lines.push(JSON.stringify({
      type: "settle", ...common, startedAt: at,
      usage: { inputTokens: 10, outputTokens: 66, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
      usageEstimated: false, costPicos: "1000000000", worstCasePicos: "15000000000", outcome: "ok", status: 200, latencyMs: 3, tags: {},
    }));
  }
  await mkdir(path.join(h.ledgerDir, "journal"), { recursive: true });
  await appendFile(path.join(h.ledgerDir, "journal", `${journalMonth(now)}.jsonl`), lines.join("\n") + "\n");
  await h.restart();
}

describe("gateway: a cap or a quota added while it runs", function () {
  this.timeout(60_000);
  let h: Harness;
  afterEach(() => h?.close());

  it("refuses at once a call the month's journal already puts past it, even while it is still counting that journal", async () => {
    h = await startHarness({ pricing: PRICING });
    await withHistory(h, 30_000); // $30 spent this month, before any cap
    h.fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 0 } })); // $0: input is free
    await invoke(h); // the SDK's connection is up: the next call reaches the gateway in a few ms
    h.fake.reset();
    assert.deepEqual((await status(h)).caps, []);

    // The settings change lands, and a call follows at once: the gateway is reading 60,000 journal lines.
    const applied = h.gateway.reconfigure(settings(h, { caps: MONTH_CAP(10) }));
    await assert.rejects(invoke(h), (err: Error) => {
      assert.equal(err.name, "ServiceQuotaExceededException");
      assert.match(err.message, /cap "month" \(personal, month\) has \$30\.00 spent/);
      return true;
    });
    await applied;
    assert.equal(h.fake.hits.length, 0, "the refused call never reached Bedrock");
    // 30,000 × $0.001, each once; the refused call costs nothing.
    assert.deepEqual((await capFigures(h)).month, { spent: "30", reserved: "0" });
  });

  it("counts a call that was running when the cap came, once, when it settles", async () => {
    h = await startHarness({ pricing: PRICING });
    const held = h.fake.holdCalls({ input: 100, output: 500 });
    const running = invoke(h, 1000);
    await held.reached;
    await h.gateway.reconfigure(settings(h, { caps: MONTH_CAP(1) }));
    // Its worst case (1,000 output tokens × $15 per 1M) is held on the new cap while it runs.
    assert.deepEqual((await capFigures(h)).month, { spent: "0", reserved: "0.015" });
    held.answer();
    await running;
    // 500 output tokens × $15 per 1M.
    assert.deepEqual((await capFigures(h)).month, { spent: "0.0075", reserved: "0" });
    await h.restart(settings(h, { caps: MONTH_CAP(1) }));
    assert.deepEqual((await capFigures(h)).month, { spent: "0.0075", reserved: "0" }, "a restart counts it from the journal: the same");
  });

  it("counts once a call that was running when the cap came and settles while the journal is being counted", async () => {
    h = await startHarness({ pricing: PRICING });
    await withHistory(h, 30_000);
    const held = h.fake.holdCalls({ input: 100, output: 500 });
    const running = invoke(h, 1000);
    await held.reached;
    const applied = h.gateway.reconfigure(settings(h, { caps: MONTH_CAP(100) }));
    held.answer(); // its settle line is journaled while the count reads the journal's 60,000 lines
    await running;
    await applied;
    // $30 of history and 500 output tokens × $15 per 1M: not twice, though the count read its line too.
    assert.deepEqual((await capFigures(h)).month, { spent: "30.0075", reserved: "0" });
  });

  it("a monthly request quota set while it runs refuses at once a caller the journal already puts over it", async () => {
    h = await startHarness({ pricing: PRICING });
    await withHistory(h, 30_000); // this caller's 30,000 calls this month
    await invoke(h);
    h.fake.reset();
    const applied = h.gateway.reconfigure(settings(h, { rateLimit: { requestsPerMonth: 20_000 } }));
    await assert.rejects(invoke(h), (err: Error) => {
      assert.equal(err.name, "ServiceQuotaExceededException");
      assert.match(err.message, /has used its quota of 20000 requests per month/);
      return true;
    });
    await applied;
    assert.equal(h.fake.hits.length, 0);
  });

  it("a request quota set while a call runs counts that call once, whether it settles after the count or during it", async () => {
    h = await startHarness({ pricing: PRICING });
    await withHistory(h, 30_000);
    const quota = (requestsPerMonth: number, timeZone = "UTC") => validated({ ...settings(h, {}), rateLimit: { requestsPerMonth }, timeZone }, "test");
    /** How many calls the quota still lets through (at most `most` + 1 are tried). */
    const admitted = async (most: number) => {
      h.fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 5 } }));
      let n = 0;
      while (n <= most && (await invoke(h).then(() => true, (err: Error) => (assert.match(err.message, /has used its quota of/), false)))) n++;
      return n;
    };
    const first = h.fake.holdCalls({ input: 5, output: 5 });
    const settlesAfter = invoke(h);
    await first.reached;
    await h.gateway.reconfigure(quota(30_002));
    first.answer();
    await settlesAfter;
    // 30,000 journaled calls and the one that was running: one more fits.
    assert.equal(await admitted(5), 1);

    await h.gateway.reconfigure(quota(30_004)); // the same zone: no count, room for two
    const second = h.fake.holdCalls({ input: 5, output: 5 });
    const settlesDuring = invoke(h);
    await second.reached;
    // Another time zone counts the month again (60,000 lines) while the call settles.
    const applied = h.gateway.reconfigure(quota(30_004, "Etc/GMT-1"));
    second.answer();
    await settlesDuring;
    await applied;
    // 30,002 journaled and the one that was running, not twice: one more fits.
    assert.equal(await admitted(5), 1);
  });

  it("a request quota set after a start without one counts from the checkpoint's tally, and the call running then once", async () => {
    h = await startHarness({ pricing: PRICING, rateLimit: { requestsPerMonth: 100 } });
    for (let i = 0; i < 2; i++) await invoke(h);
    await h.restart(settings(h, {})); // no quota now; the checkpoint keeps the tally of 2
    const held = h.fake.holdCalls({ input: 5, output: 5 });
    const running = invoke(h);
    await held.reached;
    await h.gateway.reconfigure(settings(h, { rateLimit: { requestsPerMonth: 4 } }));
    held.answer();
    await running;
    h.fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 5 } }));
    await invoke(h); // the 4th
    await assert.rejects(invoke(h), /has used its quota of 4 requests per month/);
  });

  it("a request quota taken away and given back counts the calls made without it", async () => {
    h = await startHarness({ pricing: PRICING, rateLimit: { requestsPerMonth: 4 } });
    await invoke(h);
    await h.gateway.reconfigure(settings(h, {}));
    for (let i = 0; i < 3; i++) await invoke(h);
    await h.gateway.reconfigure(settings(h, { rateLimit: { requestsPerMonth: 4 } }));
    await assert.rejects(invoke(h), /has used its quota of 4 requests per month/);
  });

  it("a caller moved onto a tier with a request quota starts from the calls made under none", async () => {
    const tiers = { basic: { rateLimit: { requestsPerMonth: 3 } } };
    h = await startHarness({ pricing: PRICING, tiers }); // a tier has a quota; this caller is on no tier
    for (let i = 0; i < 3; i++) await invoke(h);
    await h.gateway.reconfigure(settings(h, { tiers, callers: { [CREDENTIALS.accessKeyId]: "basic" } }));
    await assert.rejects(invoke(h), /has used its quota of 3 requests per month/);
  });

  it("refuses every call, saying why, when it cannot count the journal into the new cap; a restart counts it again", async () => {
    h = await startHarness({ pricing: PRICING });
    await invoke(h);
    const file = path.join(h.ledgerDir, "journal", `${journalMonth(new Date())}.jsonl`);
    // The month's journal cannot be read: a folder stands where the file was (the gateway keeps appending to the file it has open).
    await rename(file, `${file}.aside`);
    await mkdir(file);
    await assert.rejects(h.gateway.reconfigure(settings(h, { caps: MONTH_CAP(10) })), /counting this window's journal into cap\(s\) "month" failed: EISDIR/);
    h.fake.reset();
    await assert.rejects(invoke(h), (err: Error) => {
      assert.equal(err.name, "ServiceUnavailableException");
      assert.match(err.message, /counting this window's journal into cap\(s\) "month" failed.*Calls are refused until the gateway restarts \(the command "Bedrock Budget: Restart Gateway"/);
      return true;
    });
    assert.equal(h.fake.hits.length, 0, "no call reached Bedrock");
    // The status (status bar, `bedrock-budget status`) says why, as for settings that block calls.
    assert.match((await status(h)).blocked ?? "", /counting this window's journal into cap\(s\) "month" failed: EISDIR.*Restart Gateway/);
    assert.equal((await status(h)).blockedBy, "ledger");
    // Settings changes do not open it: the cap's total is still partial.
    await h.gateway.reconfigure(settings(h, { caps: MONTH_CAP(20) }));
    await assert.rejects(invoke(h), { name: "ServiceUnavailableException" });

    await rmdir(file);
    await rename(`${file}.aside`, file);
    await h.restart(settings(h, { caps: MONTH_CAP(10) }));
    await invoke(h);
    assert.equal(h.fake.hits.length, 1);
    assert.equal((await status(h)).blocked, undefined);
  });
});
