/**
 * Helpers of the team tests and bench: a real redis-server on a free loopback port (no
 * persistence, in a temp dir), gateway processes (`node out/cli.js serve --config …`), and sums
 * over their journals.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand, type BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import type { CallRecord } from "../../server/ledger/types";
import { API_PATHS, type StatusResponse } from "../../server/protocol";
import { serve, type Served } from "../support/cliProcess";
import { freePort } from "../support/ports";
import { anthropicBody, clientFor, SONNET_45 } from "../support/harness";

export const REDIS_SERVER = "/usr/bin/redis-server";
export const hasRedis = () => existsSync(REDIS_SERVER);

export interface RedisProcess {
  port: number;
  url: string;
  /** Stops the server (SIGKILL: as a crash; SIGTERM otherwise). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port, empty (no persistence). */
  start(): Promise<void>;
  dir: string;
}

export async function startRedis(): Promise<RedisProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-redis-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "yes"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      child = c;
      let out = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${out}`)), 10_000);
      c.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      c.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${out}`));
      });
    });
  await launch();
  const proc: RedisProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    async stop(signal = "SIGTERM") {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
      c.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    },
    start: launch,
  };
  return proc;
}

export async function stopRedis(r: RedisProcess | undefined): Promise<void> {
  if (!r) return;
  await r.stop();
  await rm(r.dir, { recursive: true, force: true });
}

export interface TeamGateway {
  served: Served;
  ledgerDir: string;
  configFile: string;
  client: BedrockRuntimeClient;
}

/** Starts `count` gateway processes, each with its own ledger and config file. */
export async function startTeamGateways(root: string, count: number, config: (i: number) => Record<string, unknown>): Promise<TeamGateway[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const ledgerDir = path.join(root, `gw${i}`);
      await mkdir(ledgerDir, { recursive: true });
      const configFile = path.join(root, `gw${i}.json`);
      await writeFile(configFile, JSON.stringify({ port: 0, ledgerDir, user: `member${i}`, timeZone: "UTC", logLevel: "warn", ...config(i) }, null, 2));
      const served = await serve(["--config", configFile]);
      return { served, ledgerDir, configFile, client: clientFor(served.url) };
    }),
  );
}

export async function stopTeamGateways(gateways: TeamGateway[]): Promise<void> {
  await Promise.all(
    gateways.map(async (g) => {
      g.client.destroy();
      if (g.served.child.exitCode === null) {
        g.served.child.kill("SIGTERM");
        await Promise.race([g.served.exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (g.served.child.exitCode === null) g.served.child.kill("SIGKILL");
      }
    }),
  );
}

export type CallOutcome = { ok: true; ms: number } | { ok: false; name: string; message: string; ms: number };

/** One InvokeModel call (worst case ~$0.0153 with 1,000 max tokens; the fake settles it at its usage). */
export async function invoke(client: BedrockRuntimeClient, text: string, maxTokens = 1000): Promise<CallOutcome> {
  const t0 = performance.now();
  try {
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody(text, maxTokens) }));
    return { ok: true, ms: performance.now() - t0 };
  } catch (err) {
    const e = err as Error;
    return { ok: false, name: e.name, message: e.message, ms: performance.now() - t0 };
  }
}

/** Settled calls in a ledger's journal. */
export async function journalCalls(ledgerDir: string): Promise<CallRecord[]> {
  const dir = path.join(ledgerDir, "journal");
  const out: CallRecord[] = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".jsonl")).sort()) {
    for (const line of (await readFile(path.join(dir, name), "utf8")).split("\n")) {
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line) as CallRecord;
        if (e.type === "settle") out.push(e);
      } catch {
        // a torn line: not settled
      }
    }
  }
  return out;
}

export async function status(url: string): Promise<StatusResponse> {
  const res = await fetch(`${url}${API_PATHS.status}`, { signal: AbortSignal.timeout(3000) });
  return (await res.json()) as StatusResponse;
}

export const PICOS_PER_USD = 1_000_000_000_000n;
export const ceilMicros = (picos: bigint) => (picos + 999_999n) / 1_000_000n;

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}
