/**
 * Benchmark (not a test: nothing asserts on time). `npm run bench:team` (needs /usr/bin/redis-server)
 *
 * Admission latency — meteredCall.admit(): reserve on every cap, journal the reservation (fdatasync)
 * — with a team cap in the embedded ledger (the local engine) against the same team cap in Redis
 * (one Lua script round trip on top), in one run: interleaved rounds, medians and their ratio.
 * Each admitted call is settled right after (not timed), so the caps never fill.
 */
import { ProfileCredentials } from "../../server/gateway/callerCredentials";
import { RateLimiter } from "../../server/policy/rateLimit";
import { AdmissionGate } from "../../server/gateway/admissionGate";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BudgetEngine } from "../../server/budget/engine";
import { validated } from "../../server/config/load";
import type { CapConfig } from "../../server/config/schema";
import { Caps, LocalCapStore } from "../../server/budget/caps";
import type { GatewayContext } from "../../server/gateway/context";
import { inboundGuard } from "../../server/gateway/inbound";
import { admit } from "../../server/gateway/meteredCall";
import { Ledger } from "../../server/ledger/ledger";
import { repeatFilter, silentLogger } from "../../server/log";
import { estimateFromParts } from "../../server/metering/estimate";
import { PriceBook } from "../../server/metering/prices";
import { ZERO_USAGE } from "../../server/metering/types";
import { RedisTeamEngine } from "../../server/team/redisStore";
import { SONNET_45 } from "../support/harness";
import { hasRedis, REDIS_SERVER, startRedis, stopRedis } from "../server/teamSupport";

const PLAN = { warmup: 200, rounds: 20, calls: 100, concurrent: { rounds: 5, callers: 32, calls: 320 } };

async function main(): Promise<void> {
  if (!hasRedis()) {
    console.log(`skipped: ${REDIS_SERVER} is missing`);
    return;
  }
  const redis = await startRedis();
  const dir = await mkdtemp(path.join(os.tmpdir(), "bb-team-bench-"));
  const teamCap: CapConfig = { id: "team-month", scope: "team", window: "month", limitUsd: 1_000_000 };
  const personal: CapConfig = { id: "mine", scope: "personal", window: "day", limitUsd: 1_000_000 };
  const log = silentLogger();
  const prices = new PriceBook();
  const estimate = estimateFromParts({ modelId: SONNET_45, inputTokens: 1000, maxOutputTokens: 1000 }, prices);

  const context = async (name: string, caps: CapConfig[]): Promise<GatewayContext> => {
    const ledger = await Ledger.open(path.join(dir, name), { timeZone: "UTC" });
    return {
      config: validated({ caps, timeZone: "UTC" }, "bench"), prices, caps: new Caps(new LocalCapStore(new BudgetEngine(caps, "UTC"), () => "UTC", () => new Date())), ledger,
      credentials: async () => ({ accessKeyId: "x", secretAccessKey: "y" }), callerProfiles: new ProfileCredentials([]), rateLimiter: new RateLimiter(), admissions: new AdmissionGate(), inbound: inboundGuard(), log, logRepeat: repeatFilter(log), user: "bench", timeZone: "UTC", now: () => new Date(), publish: () => undefined,
    };
  };
  const embedded = await context("embedded", [personal, teamCap]);
  const withRedis = await context("redis", [personal]);
  const store = await RedisTeamEngine.open({ url: redis.url, team: "bench", writer: "bench", history: withRedis.ledger.settledSince.bind(withRedis.ledger), log, now: () => new Date(), unavailable: "block" });
  await store.setCaps([teamCap], "UTC");
  withRedis.caps.team = store;

  let n = 0;
  const one = async (ctx: GatewayContext): Promise<number> => {
    const t0 = performance.now();
    const a = await admit(ctx, { id: `c${n++}`, operation: "InvokeModel", modelId: SONNET_45, tool: "bench", tags: {}, startedAt: new Date() }, estimate);
    const ms = performance.now() - t0;
    if (!a.ok) throw new Error(`refused: ${a.message}`);
    await a.call.settle({ outcome: "ok", usage: { ...ZERO_USAGE, inputTokens: 1000, outputTokens: 100 }, usageEstimated: false, status: 200 });
    return ms;
  };
  const targets = { embedded, redis: withRedis };
  for (let i = 0; i < PLAN.warmup; i++) await one(i % 2 ? embedded : withRedis);

  const sequential: Record<string, number[]> = { embedded: [], redis: [] };
  for (let r = 0; r < PLAN.rounds; r++) {
    const order = r % 2 ? (["embedded", "redis"] as const) : (["redis", "embedded"] as const);
    for (const name of order) for (let i = 0; i < PLAN.calls; i++) sequential[name]!.push(await one(targets[name]));
  }
  const concurrent: Record<string, number[]> = { embedded: [], redis: [] };
  const throughput: Record<string, number[]> = { embedded: [], redis: [] };
  for (let r = 0; r < PLAN.concurrent.rounds; r++) {
    for (const name of r % 2 ? (["embedded", "redis"] as const) : (["redis", "embedded"] as const)) {
      let left = PLAN.concurrent.calls;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: PLAN.concurrent.callers }, async () => {
        while (left-- > 0) concurrent[name]!.push(await one(targets[name]));
      }));
      throughput[name]!.push(PLAN.concurrent.calls / ((performance.now() - t0) / 1000));
    }
  }

  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
  const row = (label: string, e: number, r: number, unit: string) => console.log(`${label.padEnd(34)} ${e.toFixed(3).padStart(9)} ${r.toFixed(3).padStart(9)} ${unit.padEnd(8)} ratio ${(r / e).toFixed(2)}`);
  console.log(`admission latency: team cap in the embedded ledger vs in Redis (${REDIS_SERVER}, loopback), ledger in ${os.tmpdir()}`);
  console.log(`${"".padEnd(34)} ${"embedded".padStart(9)} ${"redis".padStart(9)}`);
  row("sequential admit, median", q(sequential.embedded!, 0.5), q(sequential.redis!, 0.5), "ms");
  row("sequential admit, p95", q(sequential.embedded!, 0.95), q(sequential.redis!, 0.95), "ms");
  row(`${PLAN.concurrent.callers} concurrent, admit median`, q(concurrent.embedded!, 0.5), q(concurrent.redis!, 0.5), "ms");
  row(`${PLAN.concurrent.callers} concurrent, admit p95`, q(concurrent.embedded!, 0.95), q(concurrent.redis!, 0.95), "ms");
  row(`${PLAN.concurrent.callers} concurrent, admit+settle`, q(throughput.embedded!, 0.5), q(throughput.redis!, 0.5), "calls/s");

  await store.close();
  await embedded.ledger.close();
  await withRedis.ledger.close();
  await stopRedis(redis);
  await rm(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
