/**
 * What "one round trip of Redis" costs in this run, to read (d) − (c) against: a PING, and one
 * reserve script call made the way the gateway makes it (RedisTeamEngine.reserve: the client's
 * encoding, the loopback round trip and the Lua script), each timed alone from this process.
 * The holds taken are released, untimed, so the cap never fills.
 */
import Redis from "ioredis";
import { silentLogger } from "../../server/log";
import { usdToPicos } from "../../server/metering/money";
import { RedisTeamEngine } from "../../server/team/redisStore";
import { median } from "./lenses.bench";

export interface RedisRoundTrips {
  /** p50 of a PING, ms. */
  ping: number;
  /** p50 of one reserve script call (RedisTeamEngine.reserve), ms. */
  reserve: number;
}

export async function redisRoundTrips(url: string, calls: number): Promise<RedisRoundTrips> {
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  const store = await RedisTeamEngine.open({ url, team: "bench-rtt", writer: "bench", history: async function* () {}, log: silentLogger(), now: () => new Date(), unavailable: "block" });
  try {
    await store.setCaps([{ id: "rtt", scope: "team", window: "day", limitUsd: 1_000_000 }], "UTC");
    const ping: number[] = [];
    const reserve: number[] = [];
    const amount = usdToPicos(0.015);
    for (let i = 0; i < calls; i++) {
      let t0 = performance.now();
      await client.ping();
      ping.push(performance.now() - t0);
      t0 = performance.now();
      const r = await store.reserve({ callId: `rtt-${i}`, capIds: ["rtt"], amount, now: new Date(), modelId: "bench", caller: "bench", tags: {} });
      reserve.push(performance.now() - t0);
      if (!r.ok) throw new Error(`the round-trip probe's reserve was refused: ${r.message}`);
      await store.release(`rtt-${i}`);
    }
    return { ping: median(ping), reserve: median(reserve) };
  } finally {
    await store.close();
    client.disconnect();
  }
}
