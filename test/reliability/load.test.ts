/**
 * The wall under load: 500 calls at once from five processes (the real SDK) against day, week,
 * month and model-scoped caps on one gateway process. No cap is exceeded, refused calls never
 * reach Bedrock, and the journal holds exactly what the responses cost by the price table.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import type { CallRecord } from "../../server/ledger/types";
import { FakeBedrock } from "../support/fakeBedrock";
import { CREDENTIALS } from "../support/harness";
import type { WorkerCall, WorkerInput, WorkerResult } from "./loadWorker";
import {
  cleanup, costOfTokens, decimalToPicos, GatewayProcess, HAIKU_3, NOVA_LITE, seedJournal, settledCalls, tempDir, utcWindowStart,
} from "./support";

const WORKERS = 5;
const CALLS_PER_WORKER = 100;
const WORKER = path.join(__dirname, "loadWorker.ts");

interface CapSpec {
  id: string;
  window: "day" | "week" | "month";
  limitUsd: number;
  model?: string;
}

const CAPS: CapSpec[] = [
  { id: "nova-day", window: "day", limitUsd: 0.02, model: "*nova*" },
  { id: "day", window: "day", limitUsd: 0.2 },
  { id: "claude-week", window: "week", limitUsd: 0.3, model: "*claude*" },
  { id: "month", window: "month", limitUsd: 0.4 },
];

const capApplies = (cap: CapSpec, modelId: string) => cap.model === undefined || modelId.includes(cap.model.replaceAll("*", ""));

/**
 * Spend already on the ledger from earlier in the week and the month. On the 1st, and on a Monday,
 * that is today: each seed, and both together, fit every cap they may then fall in (day $0.2,
 * nova-day $0.02), so "no cap exceeded" holds on any date.
 */
function priorSpend(now: Date): CallRecord[] {
  const seed = (id: string, modelId: string, startedAt: Date, costUsd: string): CallRecord => {
    const at = new Date(Math.min(startedAt.getTime() + 60_000, now.getTime() - 1_000)).toISOString();
    return {
      type: "settle", id, at, startedAt: at, user: "tester", tool: "seed", operation: "InvokeModel", modelId, baseModelId: modelId,
      usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
      usageEstimated: false, costPicos: String(decimalToPicos(costUsd)), worstCasePicos: String(decimalToPicos(costUsd)),
      outcome: "ok", status: 200, latencyMs: 1, tags: {},
    };
  };
  return [
    seed("seed-week", HAIKU_3, utcWindowStart("week", now), "0.12"),
    seed("seed-month", NOVA_LITE, utcWindowStart("month", now), "0.015"),
  ];
}

function workerCalls(): WorkerCall[] {
  const calls: WorkerCall[] = [];
  for (let i = 0; i < CALLS_PER_WORKER; i++) {
    const maxTokens = 500 + Math.floor(Math.random() * 1500);
    const op = i % 5 < 2 ? "InvokeModel" : i % 5 === 2 ? "ConverseStream" : "Converse";
    calls.push({ op, model: op === "Converse" ? NOVA_LITE : HAIKU_3, maxTokens });
  }
  return calls;
}

/** Starts a worker process; resolves `ready` once its client is built, `results` when it is done. */
function startWorker(input: WorkerInput) {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER, JSON.stringify(input)], { stdio: ["pipe", "pipe", "pipe"], cwd: path.resolve(__dirname, "../..") });
  let out = "";
  let err = "";
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.startsWith("ready\n")) onReady();
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const results = new Promise<WorkerResult[]>((resolve, reject) => {
    child.once("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("["));
      if (code !== 0 || !line) reject(new Error(`load worker exited with ${code}: ${err}`));
      else resolve(JSON.parse(line) as WorkerResult[]);
    });
  });
  return { ready, go: () => child.stdin.end("go\n"), results, kill: () => child.kill("SIGKILL") };
}

function maxTokensOf(body: Buffer): number {
  const json = JSON.parse(body.toString("utf8")) as { max_tokens?: number; inferenceConfig?: { maxTokens?: number } };
  return json.max_tokens ?? json.inferenceConfig?.maxTokens ?? 1;
}

describe("reliability: the wall under load", function () {
  this.timeout(180_000);
  let fake: FakeBedrock;
  let dir: string;
  let gateway: GatewayProcess;
  let seeds: CallRecord[];

  before(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    // Real usage below each call's worst case (Bedrock never bills above max tokens), random within it.
    fake.behave((hit) => ({
      kind: "ok",
      usage: { input: 1 + Math.floor(Math.random() * 20), output: 1 + Math.floor(Math.random() * maxTokensOf(hit.body)) },
    }));
    dir = await tempDir("load");
    seeds = priorSpend(new Date());
    await seedJournal(`${dir}/ledger`, seeds);
    gateway = await GatewayProcess.start({ dir, upstream: fake.url, config: { caps: CAPS } });
  });
  after(async () => {
    await gateway?.stop();
    await fake?.close();
    await cleanup(dir);
  });

  it("500 concurrent calls from 5 processes: no cap exceeded, refusals never forwarded, the journal equals what the responses cost", async () => {
    const workers = Array.from({ length: WORKERS }, () =>
      startWorker({ endpoint: gateway.url, accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: CREDENTIALS.secretAccessKey, calls: workerCalls() }),
    );
    let results: WorkerResult[];
    try {
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      results = (await Promise.all(workers.map((w) => w.results))).flat();
    } catch (err) {
      for (const w of workers) w.kill();
      throw err;
    }
    const status = await gateway.idle();

    assert.equal(results.length, WORKERS * CALLS_PER_WORKER);
    const admitted = results.filter((r): r is Extract<WorkerResult, { ok: true }> => r.ok);
    const refused = results.filter((r) => !r.ok && r.name === "ServiceQuotaExceededException");
    const other = results.filter((r) => !r.ok && r.name !== "ServiceQuotaExceededException");
    assert.ok(admitted.length > 0 && refused.length > 0, `the caps must bind: ${admitted.length} admitted, ${refused.length} refused`);
    console.log(`      ${admitted.length} answered, ${refused.length} refused, ${other.length} failed otherwise`);

    // Refused calls never reach Bedrock: the fake saw exactly the calls that were not refused.
    assert.equal(fake.hits.length, admitted.length + other.length, "upstream hits = calls not refused");

    // The journal: one settled line per call, each costing what its response's usage costs.
    const settled = (await settledCalls(gateway.ledgerDir)).filter((c) => !c.id.startsWith("seed-"));
    assert.equal(settled.length, results.length, "one settled line per call");
    assert.equal(settled.filter((c) => c.outcome === "refused").length, refused.length, "one refused line per refusal");
    const byRequest = new Map(settled.filter((c) => c.requestId).map((c) => [c.requestId, c]));
    let expectedTotal = 0n;
    for (const r of admitted) {
      const cost = costOfTokens(r.model, r.input, r.output);
      expectedTotal += cost;
      const line = byRequest.get(r.requestId);
      assert.equal(line?.outcome, "ok", `call ${r.requestId} was answered`);
      assert.equal(line.costPicos, String(cost), `call ${r.requestId} (${r.op} ${r.model}, ${r.input} in / ${r.output} out)`);
    }

    // No cap exceeded: settled spend in each window, summed here from the journal (prior spend included).
    const all = [...seeds, ...settled];
    for (const cap of CAPS) {
      const start = utcWindowStart(cap.window).getTime();
      const spent = all
        .filter((c) => Date.parse(c.startedAt) >= start && capApplies(cap, c.modelId))
        .reduce((sum, c) => sum + BigInt(c.costPicos), 0n);
      const limit = decimalToPicos(String(cap.limitUsd));
      assert.ok(spent <= limit, `cap ${cap.id}: settled ${spent} picos > limit ${limit}`);
      const shown = status.caps.find((c) => c.id === cap.id);
      assert.ok(shown, `status lists cap ${cap.id}`);
      assert.equal(decimalToPicos(shown.spentExact), spent, `status of cap ${cap.id} agrees with the journal`);
      assert.equal(decimalToPicos(shown.reservedExact), 0n, `nothing left reserved on ${cap.id}`);
    }

    // Every admitted call fits its worst case (usage never exceeds max tokens), so none may fail:
    // each is answered or refused; then the journal's total is exactly what the answers cost.
    assert.deepEqual(other, [], "every call is either answered or refused by a cap");
    const journalTotal = settled.reduce((sum, c) => sum + BigInt(c.costPicos), 0n);
    assert.equal(journalTotal, expectedTotal, "journal total = sum of the responses' costs");
  });
});
