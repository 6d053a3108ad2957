/**
 * Shared set-up of the reliability suite: a gateway as a CLI child process on its own ledger
 * (restartable, killable), the journal read straight from disk, costs computed from the price
 * table independently of the gateway, SigV4 signing with aws4, RSS sampling, and the rule for
 * capabilities this machine may lack (fail in CI, skip with a reason elsewhere).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import aws4 from "aws4";
import type { CallRecord, JournalEntry } from "../../server/ledger/types";
import { API_PATHS, type StatusResponse } from "../../server/protocol";
import { serve, type Served } from "../support/cliProcess";
import { CREDENTIALS } from "../support/harness";
import type { FakeCredentials } from "../support/fakeBedrock";

export const REGION = "us-east-1";
export const HAIKU_3 = "anthropic.claude-3-haiku-20240307-v1:0";
export const NOVA_LITE = "amazon.nova-lite-v1:0";

/** Polls a condition a bounded number of times (the state changes in another process). */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, tries = 100, everyMs = 50): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out waiting until ${what}`);
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `bb-rel-${prefix}-`));
}

// ---------------------------------------------------------------------------------------------
// The gateway process

export interface GatewaySpec {
  /** Folder for the config file (and, unless ledgerDir is given, the ledger). */
  dir: string;
  ledgerDir?: string;
  upstream: string;
  /** The config file's content; port, ledger and upstream come from flags. */
  config?: Record<string, unknown>;
}

/** `bedrock-budget serve` on a free port; start() again after kill9() reuses the same ledger. */
export class GatewayProcess {
  private served: Served | undefined;
  readonly ledgerDir: string;
  private readonly configFile: string;

  private constructor(private readonly spec: GatewaySpec) {
    this.ledgerDir = spec.ledgerDir ?? path.join(spec.dir, "ledger");
    this.configFile = path.join(spec.dir, "config.json");
  }

  static async start(spec: GatewaySpec): Promise<GatewayProcess> {
    const gw = new GatewayProcess(spec);
    await mkdir(spec.dir, { recursive: true });
    await writeFile(gw.configFile, JSON.stringify({ timeZone: "UTC", logLevel: "warn", ...spec.config }));
    await gw.start();
    return gw;
  }

  /** Starts (or restarts) the process on the same ledger; rejects with its stderr if it cannot open. */
  async start(): Promise<void> {
    assert.ok(!this.alive(), "the gateway is already running");
    this.served = await serve(["--config", this.configFile, "--port", "0", "--ledger", this.ledgerDir, "--upstream", this.spec.upstream]);
  }

  private get s(): Served {
    assert.ok(this.served, "the gateway was never started");
    return this.served;
  }

  get url(): string {
    return this.s.url;
  }
  get port(): number {
    return this.s.port;
  }
  get pid(): number {
    return this.s.child.pid!;
  }
  stderr(): string {
    return this.served?.stderr() ?? "";
  }
  alive(): boolean {
    return this.served !== undefined && this.served.child.exitCode === null && this.served.child.signalCode === null;
  }

  /** Whether the process is up and its status route answers. */
  async answers(): Promise<boolean> {
    if (!this.alive()) return false;
    try {
      const r = await fetch(`${this.url}${API_PATHS.status}`, { signal: AbortSignal.timeout(5_000) });
      return r.status === 200;
    } catch {
      return false;
    }
  }

  async status(): Promise<StatusResponse> {
    const r = await fetch(`${this.url}${API_PATHS.status}`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(r.status, 200, `status route: HTTP ${r.status}`);
    return (await r.json()) as StatusResponse;
  }

  /** Waits until no call is in flight and nothing is reserved on any cap. */
  async idle(): Promise<StatusResponse> {
    let last: StatusResponse | undefined;
    await eventually(async () => {
      last = await this.status();
      return last.inFlight === 0 && last.caps.every((c) => decimalToPicos(c.reservedExact) === 0n);
    }, "the gateway is idle with nothing reserved", 200, 50).catch(() => {
      assert.fail(`the gateway did not become idle: inFlight ${last?.inFlight}, reserved ${last?.caps.map((c) => `${c.id}=${c.reservedExact}`).join(", ")}`);
    });
    return last!;
  }

  async kill9(): Promise<void> {
    if (!this.alive()) return;
    this.s.child.kill("SIGKILL");
    await this.s.exited;
  }

  /** SIGTERM, then SIGKILL if it is still up after `graceMs` (teardown must not hang). */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.alive()) return;
    this.s.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([this.s.exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!gone) await this.kill9();
  }

  /** Resident set size of the process, from /proc/<pid>/status. */
  rssBytes(): number {
    return rssBytes(this.pid);
  }
}

export function rssBytes(pid: number): number {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  assert.ok(m, `no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

export const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The journal, read from disk (not through the gateway)

export async function readJournal(ledgerDir: string): Promise<JournalEntry[]> {
  const dir = path.join(ledgerDir, "journal");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d{4}-\d{2}\.jsonl$/.test(n)).sort();
  const out: JournalEntry[] = [];
  for (const name of names) {
    const lines = (await readFile(path.join(dir, name), "utf8")).split("\n");
    lines.pop(); // after the last newline: nothing, or a line still being written
    for (const line of lines) if (line.trim()) out.push(JSON.parse(line) as JournalEntry);
  }
  return out;
}

export async function settledCalls(ledgerDir: string): Promise<CallRecord[]> {
  return (await readJournal(ledgerDir)).filter((e): e is CallRecord => e.type === "settle");
}

/** Writes settled calls straight into the journal before a gateway starts (prior spend). */
export async function seedJournal(ledgerDir: string, records: CallRecord[]): Promise<void> {
  const dir = path.join(ledgerDir, "journal");
  await mkdir(dir, { recursive: true });
  for (const r of records) {
    await writeFile(path.join(dir, `${r.at.slice(0, 7)}.jsonl`), `${JSON.stringify(r)}\n`, { flag: "a" });
  }
}

// ---------------------------------------------------------------------------------------------
// Money, computed here from the price table (never read back from the gateway)

interface PriceRow {
  id: string;
  inputPer1M: number;
  outputPer1M: number;
}

const PRICE_ROWS = (JSON.parse(readFileSync(path.resolve(__dirname, "../../server/metering/prices.json"), "utf8")) as { models: PriceRow[] }).models;

/** "0.25" USD per 1M tokens → 250000 pico-dollars per token, exactly (no float arithmetic). */
function picosPerToken(usdPer1M: number): bigint {
  const [whole = "0", frac = ""] = String(usdPer1M).split(".");
  assert.ok(frac.length <= 6 && !/e/i.test(String(usdPer1M)), `price ${usdPer1M} has more precision than this helper handles`);
  return BigInt(whole) * 1_000_000n + BigInt(frac.padEnd(6, "0") || "0");
}

/** What `input` + `output` tokens of an in-region base model id cost by the built-in table. */
export function costOfTokens(modelId: string, input: number, output: number): bigint {
  const row = PRICE_ROWS.find((r) => r.id === modelId);
  assert.ok(row, `no price row ${modelId}`);
  return BigInt(input) * picosPerToken(row.inputPer1M) + BigInt(output) * picosPerToken(row.outputPer1M);
}

/** A decimal USD string ("0.0105") → pico-dollars. */
export function decimalToPicos(usd: string): bigint {
  const negative = usd.startsWith("-");
  const [whole = "0", frac = ""] = usd.replace(/^-/, "").split(".");
  assert.ok(frac.length <= 12, `more than 12 decimals: ${usd}`);
  const picos = BigInt(whole) * 1_000_000_000_000n + BigInt(frac.padEnd(12, "0") || "0");
  return negative ? -picos : picos;
}

/** UTC starts of the current day, week (Monday) and month: the suite's gateways run in UTC. */
export function utcWindowStart(window: "day" | "week" | "month", now = new Date()): Date {
  const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  if (window === "day") return day;
  if (window === "month") return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const sinceMonday = (day.getUTCDay() + 6) % 7;
  return new Date(day.getTime() - sinceMonday * 86_400_000);
}

/**
 * The real SDK client with its default handler; one attempt, so each call is one request the
 * test can account for (the SDK's retries would otherwise repeat some of them).
 */
export function sdkClient(endpoint: string): BedrockRuntimeClient {
  return new BedrockRuntimeClient({ region: REGION, endpoint, credentials: CREDENTIALS, maxAttempts: 1 });
}

// ---------------------------------------------------------------------------------------------
// Signing raw requests with aws4, synchronously (the fuzzers build thousands). The gateway
// verifies with aws4 too; the JS SDK's own signer reaches it through sdkClient above.

export interface RawRequest {
  method: string;
  /** Path and query exactly as they go on the wire. */
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** Signs `req` for the gateway at `host` ("127.0.0.1:port") as the SDK would, with the gateway's credentials. */
export function signFor(host: string, req: RawRequest, credentials: FakeCredentials = CREDENTIALS, date?: Date): RawRequest {
  const opts = {
    host,
    method: req.method,
    path: req.path,
    headers: { "content-type": "application/json", ...req.headers } as Record<string, string>,
    body: req.body,
    service: "bedrock",
    region: REGION,
  };
  const signer = new aws4.RequestSigner(opts, { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey });
  if (date) signer.datetime = date.toISOString().replace(/[:-]|\.\d{3}/g, "");
  signer.sign();
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers)) headers[k.toLowerCase()] = String(v);
  return { ...req, headers };
}

// ---------------------------------------------------------------------------------------------
// Capabilities: in CI a missing one fails the suite; elsewhere the test is skipped, saying why.

export function requireCapability(ctx: Mocha.Context, ok: boolean, why: string): void {
  if (ok) return;
  if (process.env.CI === "true") assert.fail(`this machine lacks what the test needs, and CI must not skip it: ${why}`);
  console.log(`      skipped: ${why}`);
  ctx.skip();
}

export async function cleanup(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
