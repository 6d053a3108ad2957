/**
 * Ledger-size measurements: a journal of N calls (a reserve and a settle line each) written
 * directly, then what opening it costs, what recording one more call costs, and the start-up and
 * memory of a gateway process serving it.
 */
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Ledger } from "../../server/ledger/ledger";
import { journalMonth } from "../../server/ledger/journal";
import { ZERO_USAGE } from "../../server/metering/types";
import { cliEnv, serve } from "../support/cliProcess";
import { SONNET_45 } from "../support/harness";

const BASE = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/**
 * A UUID-shaped string numbered `i`: the gateway's call ids are randomUUID()s and Bedrock's request
 * ids are UUIDs too. (Short ids would measure a V8 quirk real journals do not have: JSON.parse
 * interns string values of up to 10 characters, so a million distinct short ids pile up in the
 * old generation until a full collection.)
 */
function uuidLike(prefix: string, i: number): string {
  return `${prefix}-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
}

function lines(i: number, at: string): string {
  const id = uuidLike("bbbbbbbb", i);
  return (
    `{"type":"reserve","id":"${id}","at":"${at}","user":"bench","tool":"bench","operation":"InvokeModel","modelId":"${SONNET_45}","baseModelId":"${BASE}","worstCasePicos":"960060000","capIds":["bench"]}\n` +
    `{"type":"settle","id":"${id}","at":"${at}","startedAt":"${at}","user":"bench","tool":"bench","operation":"InvokeModel","modelId":"${SONNET_45}","baseModelId":"${BASE}","usage":{"inputTokens":20,"outputTokens":40,"cacheReadInputTokens":0,"cacheWrite5mInputTokens":0,"cacheWrite1hInputTokens":0},"usageEstimated":false,"costPicos":"660000000","worstCasePicos":"960060000","outcome":"ok","status":200,"requestId":"${uuidLike("rrrrrrrr", i)}","latencyMs":3,"tags":{}}\n`
  );
}

/** A ledger folder whose journal holds `calls` settled calls spread over this month so far. */
export async function buildLedger(calls: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-bench-ledger-"));
  await mkdir(path.join(dir, "journal"), { recursive: true, mode: 0o700 });
  const now = Date.now();
  const monthStart = Date.parse(`${journalMonth(new Date(now))}-01T00:00:00Z`);
  const out = createWriteStream(path.join(dir, "journal", `${journalMonth(new Date(now))}.jsonl`), { mode: 0o600 });
  let batch = "";
  for (let i = 0; i < calls; i++) {
    batch += lines(i, new Date(monthStart + Math.floor(((now - 60_000 - monthStart) * i) / calls)).toISOString());
    if (batch.length > 1 << 22) {
      if (!out.write(batch)) await once(out, "drain");
      batch = "";
    }
  }
  out.end(batch);
  await once(out, "finish");
  // On disk before anything is measured, as a month's journal would be: otherwise the first
  // fdatasync of a recorded call pays for writing back the whole freshly written file.
  const fh = await open(path.join(dir, "journal", `${journalMonth(new Date(now))}.jsonl`), "r+");
  await fh.datasync();
  await fh.close();
  return dir;
}

export interface LedgerSizeResult {
  calls: number;
  coldOpenMs: number; // no state.json: the whole journal replayed
  warmOpenMs: number; // state.json present: only its tail replayed
  recordUs: number; // one reserve + settle: the median over the rounds of each round's mean (durability process)
  roundUs: number[]; // each round's mean µs per recorded call, in round order
}

/** Recording on two ledgers of different sizes, timed in alternating rounds in one process. */
export interface RecordingComparison {
  small: LedgerSizeResult;
  big: LedgerSizeResult;
  ratios: number[]; // per round: big's µs per call ÷ small's
  ratio: number; // the median of `ratios`
}

/** A full garbage collection, exposed at run time (the bench runs without --expose-gc). */
function fullGc(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** The middle value (the mean of the two middle ones for an even count). */
export function middle(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Opens the ledger twice: without state.json (whole journal replayed; the close writes it), then from it. The second stays open. */
async function openTwice(dir: string): Promise<{ ledger: Ledger; coldOpenMs: number; warmOpenMs: number }> {
  let t = performance.now();
  let ledger = await Ledger.open(dir, { timeZone: "UTC", durability: "process" });
  const coldOpenMs = performance.now() - t;
  await ledger.close(); // writes state.json
  t = performance.now();
  ledger = await Ledger.open(dir, { timeZone: "UTC", durability: "process" });
  return { ledger, coldOpenMs, warmOpenMs: performance.now() - t };
}

/** Records `n` calls (reserve + settle each, one after the other) numbered from `from`; the mean µs per call. */
async function record(ledger: Ledger, from: number, n: number): Promise<number> {
  const started = performance.now();
  for (let i = from; i < from + n; i++) {
    const at = new Date().toISOString();
    const id = `rec-${i}`;
    await ledger.reserve({ type: "reserve", id, at, user: "bench", tool: "bench", operation: "InvokeModel", modelId: SONNET_45, baseModelId: BASE, worstCasePicos: "960060000", capIds: ["bench"] });
    await ledger.settle({
      type: "settle", id, at, startedAt: at, user: "bench", tool: "bench", operation: "InvokeModel", modelId: SONNET_45, baseModelId: BASE,
      usage: { ...ZERO_USAGE, inputTokens: 20, outputTokens: 40 }, usageEstimated: false, costPicos: "660000000", worstCasePicos: "960060000", outcome: "ok", status: 200, latencyMs: 3, tags: {},
    });
  }
  return ((performance.now() - started) * 1000) / n;
}

/**
 * What recording one call costs on the ledger in `smallDir` (`smallCalls` calls) and the one in
 * `bigDir`, both open in this process at once and timed in `rounds` alternating rounds of
 * `records` ÷ `rounds` calls each (the order swapped every round), after a warm-up of a quarter of
 * `records` on each: whatever the machine does meanwhile meets both alike, where timing one ledger
 * and then, much later, the other let it decide their ratio. Also each ledger's open times.
 */
export async function compareRecording(smallDir: string, smallCalls: number, bigDir: string, bigCalls: number, records: number, rounds: number): Promise<RecordingComparison> {
  const small = await openTwice(smallDir);
  try {
    const big = await openTwice(bigDir);
    try {
      // The opens' garbage (every line of the journals parsed, in this process) is collected
      // before the recording is timed: a gateway has long collected it, and a full collection of it
      // landing inside a round would be charged to recording calls.
      fullGc();
      // The warm-up (JIT, the files' pages) is not counted.
      const warmup = Math.ceil(records / 4);
      await record(small.ledger, -warmup, warmup);
      await record(big.ledger, -warmup, warmup);
      const perRound = Math.max(1, Math.round(records / rounds));
      const smallUs: number[] = [];
      const bigUs: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const from = round * perRound;
        if (round % 2 === 0) {
          smallUs.push(await record(small.ledger, from, perRound));
          bigUs.push(await record(big.ledger, from, perRound));
        } else {
          bigUs.push(await record(big.ledger, from, perRound));
          smallUs.push(await record(small.ledger, from, perRound));
        }
      }
      const ratios = bigUs.map((b, i) => b / smallUs[i]!);
      const result = (calls: number, o: { coldOpenMs: number; warmOpenMs: number }, us: number[]): LedgerSizeResult => ({ calls, coldOpenMs: o.coldOpenMs, warmOpenMs: o.warmOpenMs, recordUs: middle(us), roundUs: us });
      return { small: result(smallCalls, small, smallUs), big: result(bigCalls, big, bigUs), ratios, ratio: middle(ratios) };
    } finally {
      await big.ledger.close();
    }
  } finally {
    await small.ledger.close();
  }
}

/** What one gateway start on a ledger measured. */
export interface GatewayStart {
  startupMs: number;
  rssMb: number; // VmRSS when listening
  builtRssMb: number; // VmRSS once the dashboard's aggregate is built (NaN unless asked for)
  peakRssMb: number; // VmHWM when last read: the most resident memory the process ever had
}

/** A process's resident memory now (VmRSS) and the most it ever had (VmHWM), in MB; NaN once it is gone. */
export async function processMemory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const mb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
  return { rss: mb("VmRSS"), peak: mb("VmHWM") };
}

/**
 * Spawn to "listening" of `bedrock-budget serve` on the ledger, and its resident memory then; with
 * `afterDashboard`, also its resident memory once the dashboard's aggregate is built from the
 * journal (after listening; the config must log at "debug", which says when). With
 * `withoutCheckpoint`, state.json is removed first: the start after an upgrade (or from an earlier
 * version's state.json), which replays the whole journal into the ledger, caps, quotas and dashboard.
 */
export async function gatewayStartup(dir: string, upstream: string, configFile: string, afterDashboard = false, withoutCheckpoint = false): Promise<GatewayStart> {
  if (withoutCheckpoint) await rm(path.join(dir, "state.json"), { force: true });
  const start = performance.now();
  // A first start replays a million calls whole: minutes on a loaded machine.
  const served = await serve(["--config", configFile, "--port", "0", "--ledger", dir, "--upstream", upstream], cliEnv(), 600_000);
  const startupMs = performance.now() - start;
  const memory = () => processMemory(served.child.pid!);
  try {
    const listening = await memory();
    let built = { rss: NaN, peak: listening.peak };
    if (afterDashboard) {
      const deadline = Date.now() + 300_000;
      while (!/dashboard: \d+ calls aggregated/.test(served.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      built = await memory();
    }
    return { startupMs, rssMb: listening.rss, builtRssMb: built.rss, peakRssMb: built.peak };
  } finally {
    served.child.kill("SIGTERM");
    await served.exited;
  }
}

export async function removeLedger(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
