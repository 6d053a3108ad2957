/**
 * `bedrock-budget report` and `whatif` as a user runs them, on a ledger written by the real Ledger
 * in Asia/Tokyo (UTC+9): calls near a month boundary sit in the journal file of the other UTC month.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { usdToPicos } from "../../server/metering/money";
import type { CallRecord } from "../../server/ledger/types";
import type { WhatIfResponse } from "../../server/protocol";
import { writeLedger } from "../support/dashboardSeed";
import { spawn } from "node:child_process";
import { CLI, cliEnv, run } from "../support/cliProcess";

const TZ = "Asia/Tokyo";
let n = 0;
/** A settled call started at a Tokyo wall time ("2026-11-30T23:30"), settled 2 s later. */
function call(tokyo: string, usd: string, o: Partial<CallRecord> = {}): CallRecord {
  const started = new Date(`${tokyo}:00+09:00`);
  const cost = usdToPicos(usd);
  return {
    type: "settle", id: `r${++n}`, startedAt: started.toISOString(), at: new Date(started.getTime() + 2000).toISOString(),
    user: "ana", caller: "AKIAEXAMPLE000000001", tool: "boto3", operation: "Converse",
    modelId: "global.anthropic.claude-sonnet-4-5-20250929-v1:0", baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0",
    usage: { inputTokens: 1000, outputTokens: 100, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: String(cost), worstCasePicos: String(cost * 2n), outcome: "ok", status: 200, latencyMs: 2000, tags: {}, ...o,
  };
}

const A = call("2026-11-01T00:30", "0.10", { tags: { project: "chatbot" } }); // Oct 31 15:30 UTC: journal file 2026-10
const B = call("2026-11-15T12:00", "0.25", { user: "bob", tool: "aws-cli", tags: { project: "chatbot", team: "support" }, usage: { inputTokens: 3000, outputTokens: 400, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 } });
const F = call("2026-11-20T09:00", "0", { outcome: "refused", status: 400, refusedBy: "monthly", worstCasePicos: String(usdToPicos("9")) });
const C = call("2026-11-30T23:30", "0.05", { modelId: "us.anthropic.claude-haiku-4-5-20251001-v1:0", baseModelId: "anthropic.claude-haiku-4-5-20251001-v1:0", tags: { project: "search" } }); // 14:30 UTC, file 2026-11
const D = call("2026-12-01T00:30", "1.00"); // Nov 30 15:30 UTC: December in Tokyo, file 2026-11
const E = call("2026-10-31T23:30", "2.00"); // Oct 31 14:30 UTC: October in Tokyo

interface TotalsJson {
  from: string;
  to: string;
  total: { calls: number; stopped: number; inputTokens: number; outputTokens: number; costUsd: string };
  groups: { dimension: string; key: string; calls: number; costUsd: string }[];
}

describe("cli: report (chargeback totals) and whatif, in Asia/Tokyo", function () {
  this.timeout(60_000);
  let dir: string;
  let ledger: string;
  let configFile: string;
  const report = (...args: string[]) => run(["report", "--config", configFile, "--ledger", ledger, ...args]);

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-report-"));
    ledger = path.join(dir, "ledger");
    configFile = path.join(dir, "config.json");
    await writeFile(configFile, JSON.stringify({ timeZone: TZ }));
    await writeLedger(ledger, [E, A, B, F, C, D], TZ);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** The journal summed independently of the report code: every settle line whose settlement is in `month` in Tokyo. */
  async function journalTotals(month: string): Promise<{ calls: number; stopped: number; picos: bigint; input: number; ids: string[] }> {
    const journalDir = path.join(ledger, "journal");
    const monthOf = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit" });
    const out = { calls: 0, stopped: 0, picos: 0n, input: 0, ids: [] as string[] };
    for (const name of (await readdir(journalDir)).filter((f) => f.endsWith(".jsonl"))) {
      for (const line of (await readFile(path.join(journalDir, name), "utf8")).split("\n").filter(Boolean)) {
        const e = JSON.parse(line) as CallRecord;
        if (e.type !== "settle" || monthOf.format(new Date(e.at)) !== month) continue;
        // Refused, throttled and over-quota attempts never left the machine: counted apart, as the status does.
        if (["refused", "throttled", "quota-exceeded"].includes(e.outcome)) out.stopped++;
        else out.calls++;
        out.picos += BigInt(e.costPicos);
        out.input += e.usage.inputTokens;
        out.ids.push(e.id);
      }
    }
    return out;
  }

  it("the seed sits where the real ledger puts it: the 00:30 call of Nov 1 in the October file, Dec 1 00:30 in the November file", async () => {
    const file = (m: string) => readFile(path.join(ledger, "journal", `${m}.jsonl`), "utf8");
    assert.match(await file("2026-10"), new RegExp(`"id":"${A.id}"`));
    assert.match(await file("2026-11"), new RegExp(`"id":"${D.id}"`));
  });

  it("--month totals equal the journal summed independently, including calls at 00:30 on the 1st and 23:30 on the 30th", async () => {
    const r = await report("--month", "2026-11", "--format", "json");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as TotalsJson;
    const expected = await journalTotals("2026-11");
    assert.deepEqual(expected.ids.sort(), [A.id, B.id, F.id, C.id].sort(), "the independent sum sees the boundary calls");
    assert.equal(out.total.calls, expected.calls);
    assert.deepEqual([out.total.calls, out.total.stopped], [3, 1], "F was refused: an attempt, not a call");
    assert.equal(usdToPicos(out.total.costUsd), expected.picos);
    assert.equal(out.total.costUsd, "0.4");
    assert.equal(out.total.inputTokens, expected.input);
    assert.equal(out.from, "2026-10-31T15:00:00.000Z");
    assert.equal(out.to, "2026-11-30T15:00:00.000Z");
    const group = (d: string, k: string) => out.groups.find((g) => g.dimension === d && g.key === k);
    assert.deepEqual([group("tag", "project=chatbot")!.calls, group("tag", "project=chatbot")!.costUsd], [2, "0.35"]);
    assert.equal(group("tag", "team=support")!.costUsd, "0.25");
    assert.equal(group("user", "bob")!.costUsd, "0.25");
    assert.equal(group("model", "anthropic.claude-haiku-4-5-20251001-v1:0")!.costUsd, "0.05");
    assert.equal(group("tool", "aws-cli")!.calls, 1);
    assert.equal(group("caller", "AKIAEXAMPLE000000001")!.calls, 3);

    const dec = JSON.parse((await report("--month", "2026-12", "--format", "json")).stdout) as TotalsJson;
    assert.deepEqual([dec.total.calls, dec.total.costUsd], [1, "1"], "Dec 1 00:30 Tokyo counts in December although its file is November's");
  });

  it("CSV: the total row first, then one row per dimension and key", async () => {
    const r = await report("--month", "2026-11");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines[0], "dimension,key,calls,inputTokens,outputTokens,cacheReadInputTokens,cacheWriteInputTokens,costUsd,stopped");
    assert.equal(lines[1], "total,,3,6000,700,0,0,0.4,1");
    assert.ok(lines.includes("tag,project=chatbot,2,4000,500,0,0,0.35,0"), r.stdout);
  });

  it("--from/--to: a date is a whole local day (--to included); an ISO time bound is exact (--to excluded)", async () => {
    const day = JSON.parse((await report("--from", "2026-11-30", "--to", "2026-11-30", "--format", "json")).stdout) as TotalsJson;
    assert.deepEqual([day.total.calls, day.total.costUsd], [1, "0.05"], "Nov 30 in Tokyo: the 23:30 call, not the one at 00:30 on Dec 1");
    const iso = JSON.parse((await report("--from", "2026-11-30T23:00:00+09:00", "--to", `${D.at.slice(0, -1)}+00:00`, "--format", "json")).stdout) as TotalsJson;
    assert.deepEqual([iso.total.calls, iso.total.costUsd], [1, "0.05"], "a call settled exactly at --to is outside");
    const two = JSON.parse((await report("--from", "2026-10-31", "--to", "2026-11-01", "--format", "json")).stdout) as TotalsJson;
    assert.deepEqual([two.total.calls, two.total.costUsd], [2, "2.1"], "Oct 31 and Nov 1 in Tokyo: E and A");
  });

  it("--calls prints the per-call rows, as before", async () => {
    const r = await report("--month", "2026-11", "--calls", "--format", "json");
    const rows = JSON.parse(r.stdout) as CallRecord[];
    assert.deepEqual(rows.map((c) => c.id).sort(), [A.id, B.id, F.id, C.id].sort());
    const csv = await report("--month", "2026-11", "--calls");
    assert.match(csv.stdout.split("\n")[0]!, /^at,startedAt,user,tool,/);
    assert.equal(csv.stdout.trim().split("\n").length, 5);
  });

  it("refuses a bad range, naming the flag", async () => {
    const bad = await report("--from", "2026-11-31");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from "2026-11-31" is not a calendar date/);
    const local = await report("--to", "2026-11-30T10:00");
    assert.equal(local.code, 2);
    assert.match(local.stderr, /ISO time with an offset/);
    const both = await report("--month", "2026-11", "--from", "2026-11-01");
    assert.equal(both.code, 2);
  });

  it("whatif replays the month against a proposed monthly cap: hand-computed refusals and cost", async () => {
    // $0.30 a month. In start order: A reserves its $0.20 worst case (fits), settles $0.10; B needs
    // $0.50 on top of $0.10 (refused, saves $0.25); F was refused for real (not replayed); C needs
    // $0.10 on top of $0.10 (fits). Actual $0.40, would have cost $0.15.
    const proposed = path.join(dir, "proposed.json");
    await writeFile(proposed, JSON.stringify({ timeZone: TZ, caps: [{ id: "monthly", window: "month", limitUsd: 0.3 }] }));
    const text = await run(["whatif", "--config", proposed, "--ledger", ledger, "--month", "2026-11"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /Calls replayed: 3 \(1 refused or throttled in the journal were not/);
    assert.match(text.stdout, /Actual cost: +\$0\.4\n/);
    assert.match(text.stdout, /Would be stopped: 1 call, saving \$0\.25/);
    assert.match(text.stdout, /refused by cap monthly: 1 call, \$0\.25/);
    assert.match(text.stdout, /Would have cost: +\$0\.15\n/);
    assert.match(text.stdout, /Replayed: rate limits and request quotas, caps and their actions\./);
    const json = JSON.parse((await run(["whatif", "--config", proposed, "--ledger", ledger, "--month", "2026-11", "--format", "json"])).stdout) as { wouldCostUsd: string; stopped: { calls: number } };
    assert.deepEqual([json.wouldCostUsd, json.stopped.calls], ["0.15", 1]);
    const missing = await run(["whatif", "--ledger", ledger]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /whatif needs --config/);
  });

  it("whatif replays a tier's monthly quota (in Tokyo's month) and a downgrade cap: hand-computed counts and dollars per policy", async () => {
    // The caller is on tier "pro": 2 requests a month. Cap "sonnet": $1 a month on Sonnet, downgrading to global Haiku
    // ($1 / $5 per million input / output tokens) from 10% ($0.10). A: worst case $0.20 ≥ $0.10: Haiku, 1000 in + 100 out
    // = $0.0015 (saves $0.0985). B: Haiku, 3000 in + 400 out = $0.005 (saves $0.245). F: refused for real, not replayed.
    // C (Nov 30 23:30 Tokyo, still November there): the month's 2 requests are used: quota-exceeded, saves $0.05.
    // Actual $0.40, would have cost $0.0065.
    const proposed = path.join(dir, "proposed-plans.json");
    await writeFile(proposed, JSON.stringify({
      timeZone: TZ,
      callers: { AKIAEXAMPLE000000001: "pro" },
      tiers: { pro: { rateLimit: { requestsPerMonth: 2 } } },
      caps: [{ id: "sonnet", window: "month", limitUsd: 1, model: "*sonnet*", action: "downgrade", downgradeTo: "global.anthropic.claude-haiku-4-5-20251001-v1:0", downgradeAt: 0.1 }],
    }));
    const text = await run(["whatif", "--config", proposed, "--ledger", ledger, "--month", "2026-11"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /Would be stopped: 1 call, saving \$0\.05\n/);
    assert.match(text.stdout, /quota-exceeded by tier "pro" rateLimit\.requestsPerMonth: 1 call, \$0\.05\n/);
    assert.match(text.stdout, /Would be changed: 2 calls, saving \$0\.3435\n/);
    assert.match(text.stdout, /downgraded by cap sonnet: 2 calls, \$0\.3435\n/);
    assert.match(text.stdout, /Would have cost: +\$0\.0065\n/);
    assert.match(text.stdout, /rate limits and request quotas: 1 stopped, 0 changed, \$0\.05 saved/);
    assert.match(text.stdout, /caps and their actions: 0 stopped, 2 changed, \$0\.3435 saved/);
    assert.match(text.stdout, /Approximate: .*a downgraded call's usage is assumed the same on the cheaper model/);
    const json = JSON.parse((await run(["whatif", "--config", proposed, "--ledger", ledger, "--month", "2026-11", "--format", "json"])).stdout) as WhatIfResponse;
    assert.deepEqual([json.actualUsd, json.wouldCostUsd, json.stopped.savedUsd, json.changed.savedUsd], ["0.4", "0.0065", "0.05", "0.3435"]);
    assert.deepEqual(json.changed.groups, [{ policy: "caps and their actions", outcome: "downgraded", by: "sonnet", calls: 2, savedUsd: "0.3435" }]);
  });
});

/** Runs the built CLI with its stdout a pipe, as `report … | jq` or a script reading it has it, collecting all it wrote (until the pipe closes, not just the exit). */
function piped(args: string[], nodeArgs: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr }));
  });
}

describe("cli: report through a pipe", function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-report-pipe-"));
    // 600 calls: some 500 KB of JSON, far more than the 64 KiB a pipe takes at once.
    await writeLedger(path.join(dir, "ledger"), Array.from({ length: 600 }, (_, i) => call(`2026-11-10T${String(10 + Math.floor(i / 60)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}`, "0.01")), TZ);
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ timeZone: TZ }));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const report = (...args: string[]) => piped(["report", "--config", path.join(dir, "config.json"), "--ledger", path.join(dir, "ledger"), "--month", "2026-11", ...args]);

  it("--calls prints every call when its output is a pipe, not the first 64 KiB", async () => {
    const json = await report("--calls", "--format", "json");
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as CallRecord[]).length, 600);
    const csv = await report("--calls");
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout.trim().split("\n").length, 601, "the header and 600 rows");
  });

  it("stops quietly when the reader closes the pipe early (report --calls | head): no stack trace, exit 0", async () => {
    const args = ["report", "--config", path.join(dir, "config.json"), "--ledger", path.join(dir, "ledger"), "--month", "2026-11", "--calls", "--format", "json"];
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.once("data", () => child.stdout.destroy()); // as head does after its first lines
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    assert.equal(stderr, "");
    assert.equal(code, 0);
  });
});

describe("cli: report over more calls than its heap could hold at once", function () {
  this.timeout(120_000);
  const N = 100_000;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-report-big-"));
    // Some 60 MB of journal (what a busy month or a team's year holds), written as the ledger files its settle lines.
    const journal = path.join(dir, "ledger", "journal");
    await mkdir(journal, { recursive: true, mode: 0o700 });
    const first = call("2026-11-10T10:00", "0.000001", { tags: { project: "chatbot" } });
    const start = Date.parse(first.at);
    const lines = Array.from({ length: N }, (_, i) => {
      const at = new Date(start + i * 10).toISOString();
      return JSON.stringify({ ...first, id: `big${i}`, startedAt: at, at });
    });
    await writeFile(path.join(journal, "2026-11.jsonl"), `${lines.join("\n")}\n`, { mode: 0o600 });
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ timeZone: TZ }));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  // A 64 MB heap: the report must hold a batch of calls at a time, not all of them (which, past some 600,000 calls, no heap could: JSON longer than V8's longest string).
  const report = (...args: string[]) => piped(["report", "--config", path.join(dir, "config.json"), "--ledger", path.join(dir, "ledger"), "--month", "2026-11", ...args], ["--max-old-space-size=64"]);

  it("totals them exactly and prints every call, in a 64 MB heap", async () => {
    const totals = await report("--format", "json");
    assert.equal(totals.code, 0, totals.stderr.slice(0, 2000));
    const t = JSON.parse(totals.stdout) as TotalsJson;
    assert.deepEqual([t.total.calls, t.total.costUsd], [N, "0.1"], "100,000 calls of $0.000001");
    const calls = await report("--calls", "--format", "json");
    assert.equal(calls.code, 0, calls.stderr.slice(0, 2000));
    const rows = JSON.parse(calls.stdout) as CallRecord[];
    assert.deepEqual([rows.length, rows[0]!.id, rows[N - 1]!.id], [N, "big0", `big${N - 1}`]);
  });
});
