/**
 * Team caps in Redis when the store holds something the gateway did not write: an empty team.json,
 * a figure that is not an integer (a teammate's INCRBYFLOAT, a hand-edited key), a team time-zone
 * change while a call runs. Each must fail closed: the last good team.json stays in force, a cap
 * whose figure cannot be read refuses the calls that need it, and no settled call goes uncounted.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Redis from "ioredis";
import type { Config } from "../../server/config/schema";
import type { CallRecord } from "../../server/ledger/types";
import { createLogger, silentLogger } from "../../server/log";
import { usdToPicos } from "../../server/metering/money";
import { RedisTeamEngine } from "../../server/team/redisStore";
import { TeamRuntime } from "../../server/team/runtime";
import { hasRedis, REDIS_SERVER, startRedis, stopRedis, type RedisProcess } from "./teamSupport";

const NOVA = "amazon.nova-lite-v1:0";
const MONTH_5 = JSON.stringify({ caps: [{ id: "team-month", window: "month", limitUsd: 5 }] });

describe("team caps in Redis: state the gateway did not write fails closed", function () {
  this.timeout(30_000);
  let redis: RedisProcess | undefined;
  let admin: Redis | undefined;
  let root: string;
  const closers: (() => Promise<void>)[] = [];

  before(function () {
    if (!hasRedis()) {
      // As team.test.ts: CI installs redis-server first, so there a missing server is a failure.
      if (process.env.CI === "true") throw new Error(`${REDIS_SERVER} is missing; .ci/run installs redis-server before the tests`);
      this.skip();
    }
  });
  beforeEach(async () => {
    redis = await startRedis();
    admin = new Redis({ host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: 1 });
    root = await mkdtemp(path.join(os.tmpdir(), "bb-redis-state-"));
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    admin?.disconnect();
    await stopRedis(redis);
    redis = undefined;
    await rm(root, { recursive: true, force: true });
  });

  const openRuntime = async (team: string) => {
    const runtime = await TeamRuntime.open({ config: { teamLedger: redis!.url, team } as unknown as Config, ledgerDir: root, user: "me", history: async function* () {}, log: silentLogger(), now: () => new Date() });
    closers.push(() => runtime.close());
    return runtime;
  };
  /** What the gateway does on a team.json change: the team caps in force, handed to the store. */
  const applyTeam = async (runtime: TeamRuntime) => {
    const eff = runtime.effective({ caps: [] } as unknown as Config, "me");
    await runtime.store.setCaps(eff.team, eff.teamTimeZone);
    return eff.team;
  };
  const refresh = (store: unknown) => (store as RedisTeamEngine).refresh();
  const ask = (store: { reserve: RedisTeamEngine["reserve"] }, callId: string, usd: number, capIds: string[]) =>
    store.reserve({ callId, modelId: NOVA, amount: usdToPicos(String(usd)), now: new Date(), capIds });

  describe("an empty team.json is invalid, not absent", () => {
    it("emptied after a valid one: the last good team cap stays in force and still refuses a call over it", async () => {
      await admin!.set("{bb:e1}:team.json", MONTH_5);
      const runtime = await openRuntime("e1");
      assert.deepEqual((await applyTeam(runtime)).map((c) => [c.id, c.limitUsd]), [["team-month", 5]]);
      // A lead's `redis-cli -x SET … < team.json` while the file was being saved.
      await admin!.set("{bb:e1}:team.json", "");
      await refresh(runtime.store);
      assert.deepEqual((await applyTeam(runtime)).map((c) => [c.id, c.limitUsd]), [["team-month", 5]], "the team cap was dropped");
      assert.equal(runtime.unusable(), undefined, "the last good team.json is in force: calls are not refused for it");
      assert.equal((await ask(runtime.store, "over", 6, ["team-month"])).ok, false, "a $6 call is refused by the $5 team cap");
    });

    it("empty at start, with no earlier valid one: every call is refused naming team.json, until a valid one is written", async () => {
      await admin!.set("{bb:e2}:team.json", "");
      const runtime = await openRuntime("e2");
      assert.match(runtime.unusable() ?? "admitted", /team\.json in the team ledger .* cannot be used \(it is invalid: .*not valid JSON.*\)/);
      await admin!.set("{bb:e2}:team.json", MONTH_5);
      await refresh(runtime.store);
      assert.equal(runtime.unusable(), undefined);
      assert.deepEqual((await applyTeam(runtime)).map((c) => c.id), ["team-month"]);
    });

    it("absent (the key deleted): no team caps, and calls are not refused for team.json", async () => {
      await admin!.set("{bb:e3}:team.json", MONTH_5);
      const runtime = await openRuntime("e3");
      await admin!.del("{bb:e3}:team.json");
      await refresh(runtime.store);
      assert.deepEqual(await applyTeam(runtime), []);
      assert.equal(runtime.unusable(), undefined);
    });
  });

  describe("a figure that is not an integer", () => {
    it("a spent key holding 1.5 does not freeze team.json: a lowered team cap takes effect", async () => {
      await admin!.set("{bb:f1}:team.json", JSON.stringify({ caps: [{ id: "team-month", window: "month", limitUsd: 500 }] }));
      const runtime = await openRuntime("f1");
      await applyTeam(runtime);
      const start = runtime.store.status(new Date())[0]!.windowStart.getTime();
      await admin!.incrbyfloat(`{bb:f1}:w:team-month:${start}:spent`, 1.5);
      await admin!.set("{bb:f1}:team.json", MONTH_5);
      await refresh(runtime.store);
      assert.deepEqual((await applyTeam(runtime)).map((c) => [c.id, c.limitUsd]), [["team-month", 5]], "the lead's tightened team.json is not in force");
    });

    it("refuses the calls that need that cap, naming the key (even with teamUnavailable personalOnly), and admits those that do not; a warning names it", async () => {
      const lines: string[] = [];
      const engine = await RedisTeamEngine.open({ url: redis!.url, team: "f2", writer: "aaaaaaaaaaaaaaaa", history: async function* () {}, log: createLogger((l, line) => lines.push(`${l} ${line}`), "warn"), now: () => new Date(), unavailable: "personalOnly" });
      closers.push(() => engine.close());
      const caps = (["month", "day", "week"] as const).map((window) => ({ id: `team-${window}`, scope: "team" as const, window, limitUsd: 500 }));
      await engine.setCaps(caps, "UTC");
      const base = (id: string) => `{bb:f2}:w:${id}:${engine.status(new Date()).find((s) => s.id === id)!.windowStart.getTime()}`;
      await admin!.incrbyfloat(`${base("team-month")}:spent`, 1.5);
      await admin!.set(`${base("team-day")}:reserved`, "abc");

      const month = await ask(engine, "m", 1, ["team-month"]);
      assert.equal(month.ok, false, "admitted on a cap whose spend cannot be read");
      assert.ok(!month.ok && month.message.includes(`${base("team-month")}:spent`), `the refusal names the key: ${month.ok ? "" : month.message}`);
      const day = await ask(engine, "d", 1, ["team-week", "team-day"]);
      assert.ok(!day.ok && day.message.includes(`${base("team-day")}:reserved`), `refused naming the key: ${day.ok ? "admitted" : day.message}`);
      assert.equal((await ask(engine, "w", 1, ["team-week"])).ok, true, "a cap with readable figures still admits");
      assert.equal(await admin!.get(`${base("team-week")}:reserved`), "1000000", "and only the admitted call holds anything");

      await engine.refresh();
      assert.ok(lines.some((l) => l.startsWith("warn") && l.includes(`${base("team-month")}:spent`)), `warned: ${lines.join("\n")}`);
    });

    for (const carried of [false, true]) {
      it(`a call settled ${carried ? "in a reservation's script" : "alone"} while its cap's spent key holds 1.5 is counted once the key is fixed`, async () => {
        const records: CallRecord[] = [];
        const engine = await RedisTeamEngine.open({
          url: redis!.url, team: "f3", writer: "aaaaaaaaaaaaaaaa", history: async function* () { yield* records; }, log: silentLogger(), now: () => new Date(), unavailable: "block",
          // Long enough that a reservation carries the settle, not the timer.
          settleWaitMs: carried ? 5_000 : 10,
        });
        closers.push(() => engine.close());
        await engine.setCaps([{ id: "team-month", scope: "team", window: "month", limitUsd: 1.5 }, { id: "team-day", scope: "team", window: "day", limitUsd: 100 }], "UTC");
        const spentKey = `{bb:f3}:w:team-month:${engine.status(new Date()).find((s) => s.id === "team-month")!.windowStart.getTime()}:spent`;
        assert.equal((await ask(engine, "paid", 1, ["team-month"])).ok, true);
        if (carried) assert.equal((await ask(engine, "running", 1, ["team-day"])).ok, true); // so the settle waits for a reservation
        await admin!.set(spentKey, "1.5");
        const record = { id: "paid", modelId: NOVA, costPicos: String(usdToPicos("1")), startedAt: new Date().toISOString() };
        records.push(record as unknown as CallRecord); // journaled before it settles, as the gateway does
        const settled = engine.settle(record);
        if (carried) assert.equal((await ask(engine, "carrier", 1, ["team-day"])).ok, true, "a reservation on a readable cap is admitted although a settle it carries meets the bad key");
        await settled;
        // The lead repairs the key (its 1.5 was not a gateway's figure).
        await admin!.set(spentKey, "0");
        await engine.refresh();
        assert.equal(await admin!.get(spentKey), "1000000", "the $1 settled while the key was bad counts once it is fixed");
        assert.equal((await ask(engine, "next", 1, ["team-month"])).ok, false, "a second $1 on the $1.50 cap is refused");
      });
    }
  });

  describe("Redis restarted empty (no persistence) or unreachable while calls run", () => {
    /** Waits, bounded, until the engine's connection is (or is no longer) ready. */
    const until = async (engine: RedisTeamEngine, ready: boolean) => {
      for (let i = 0; i < 200 && engine.isReady() !== ready; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(engine.isReady(), ready, `the engine's connection did not become ${ready ? "ready" : "closed"}`);
    };
    const CAP = [{ id: "team-month", scope: "team" as const, window: "month" as const, limitUsd: 10 }];
    const open = async (team: string, unavailable: "block" | "personalOnly", records: CallRecord[] = []) => {
      // The journal takes a moment to read, as a month of calls does.
      const history = async function* () {
        await new Promise((r) => setTimeout(r, 300));
        yield* records;
      };
      const engine = await RedisTeamEngine.open({ url: redis!.url, team, writer: "aaaaaaaaaaaaaaaa", history, log: silentLogger(), now: () => new Date(), unavailable, settleWaitMs: 10 });
      closers.push(() => engine.close());
      await engine.setCaps(CAP, "UTC");
      return engine;
    };
    const restartEmpty = async () => {
      await redis!.stop("SIGKILL");
      await redis!.start();
    };

    it("the first reservation after the restart waits until this machine's journal is counted again: $9 settled, a $5 call is refused", async () => {
      const settled = { id: "paid", modelId: NOVA, costPicos: String(usdToPicos("9")), startedAt: new Date().toISOString() };
      const engine = await open("r1", "block", [settled as unknown as CallRecord]);
      assert.equal((await ask(engine, "before", 5, ["team-month"])).ok, false, "the replay at start counted the journal's $9");
      await restartEmpty();
      await until(engine, true);
      const after = await ask(engine, "after", 5, ["team-month"]);
      assert.equal(after.ok, false, "admitted against a team total the restart emptied");
      assert.equal((await ask(engine, "small", 0.5, ["team-month"])).ok, true, "once rebuilt, what fits is admitted");
    });

    it("a call running across the restart keeps its hold: a second $6 on the $10 cap is refused until the first settles", async () => {
      const engine = await open("r2", "block");
      assert.equal((await ask(engine, "running", 6, ["team-month"])).ok, true);
      await restartEmpty();
      await until(engine, true);
      assert.equal((await ask(engine, "next", 6, ["team-month"])).ok, false, "admitted: the running call's $6 hold was lost with the restart");
      await engine.settle({ id: "running", modelId: NOVA, costPicos: String(usdToPicos("1")), startedAt: new Date().toISOString() });
      assert.equal((await ask(engine, "after", 6, ["team-month"])).ok, true, "its hold is gone once it settles: $1 + $6 fit");
    });

    it("a running call's growth the store cannot check is stopped with teamUnavailable block, and goes on with personalOnly", async () => {
      const blocking = await open("r3", "block");
      const lenient = await open("r4", "personalOnly");
      assert.equal((await ask(blocking, "b", 1, ["team-month"])).ok, true);
      assert.equal((await ask(lenient, "l", 1, ["team-month"])).ok, true);
      assert.equal((await blocking.extend("b", usdToPicos("50"), new Date())).ok, false, "while Redis answers, growth past the cap is refused");
      await redis!.stop("SIGKILL");
      await until(blocking, false);
      await until(lenient, false);
      const grown = await blocking.extend("b", usdToPicos("50"), new Date());
      assert.equal(grown.ok, false, "a $50 growth went on unchecked while the team ledger was down");
      assert.match(grown.ok ? "" : grown.message, /unreachable/);
      assert.equal((await lenient.extend("l", usdToPicos("50"), new Date())).ok, true);
    });
  });

  describe("a hold whose lease lapsed (its gateway crashed or is asleep)", () => {
    it("counts as spent until the call settles or is released, then the real cost replaces it", async () => {
      // The sleeper's lease (100 ms) lapses long before its first renewal (after 1 s): as a gateway that stopped.
      const sleeper = await RedisTeamEngine.open({ url: redis!.url, team: "l1", writer: "aaaaaaaaaaaaaaaa", history: async function* () {}, log: silentLogger(), now: () => new Date(), unavailable: "block", leaseMs: 100, settleWaitMs: 10 });
      const other = await RedisTeamEngine.open({ url: redis!.url, team: "l1", writer: "bbbbbbbbbbbbbbbb", history: async function* () {}, log: silentLogger(), now: () => new Date(), unavailable: "block", settleWaitMs: 10 });
      closers.push(() => sleeper.close(), () => other.close());
      const caps = [{ id: "team-month", scope: "team" as const, window: "month" as const, limitUsd: 10 }];
      await sleeper.setCaps(caps, "UTC");
      await other.setCaps(caps, "UTC");
      assert.equal((await ask(sleeper, "asleep", 6, ["team-month"])).ok, true);
      assert.equal((await ask(sleeper, "free", 1, ["team-month"])).ok, true);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await ask(other, "next", 5, ["team-month"])).ok, false, "admitted: the lapsed $6 and $1 holds were dropped as if those calls cost nothing");
      await sleeper.settle({ id: "asleep", modelId: NOVA, costPicos: String(usdToPicos("2")), startedAt: new Date().toISOString() });
      await sleeper.release("free"); // never forwarded after all: its $1 is taken back
      assert.equal((await ask(other, "fits", 8, ["team-month"])).ok, true, "the real $2 replaced the $6 charged, and the released $1 is gone: $2 + $8 fit");
      assert.equal((await ask(other, "over", 0.5, ["team-month"])).ok, false, "$2 + $8 + $0.50 > $10");
    });
  });

  describe("a team time-zone change while a call runs", () => {
    it("the running call's hold moves to the new windows: a second $6 on the $10 team cap is refused until the first settles", async () => {
      const engine = await RedisTeamEngine.open({ url: redis!.url, team: "z1", writer: "aaaaaaaaaaaaaaaa", history: async function* () {}, log: silentLogger(), now: () => new Date(), unavailable: "block", settleWaitMs: 10 });
      closers.push(() => engine.close());
      const caps = [{ id: "team-month", scope: "team" as const, window: "month" as const, limitUsd: 10 }];
      await engine.setCaps(caps, "UTC");
      assert.equal((await ask(engine, "running", 6, ["team-month"])).ok, true);
      await engine.setCaps(caps, "Europe/Paris");
      const second = await ask(engine, "next", 6, ["team-month"]);
      assert.equal(second.ok, false, "admitted: $6 in flight + $6 > $10");
      assert.match(second.ok ? "" : second.message, /cap "team-month" \(team, month\) has \$0\.00 spent and \$6\.00 reserved of \$10\.00/);
      await engine.settle({ id: "running", modelId: NOVA, costPicos: String(usdToPicos("1")), startedAt: new Date().toISOString() });
      assert.equal((await ask(engine, "after", 6, ["team-month"])).ok, true, "the settled call holds nothing in either window: $1 + $6 fit");
      assert.equal((await ask(engine, "full", 4, ["team-month"])).ok, false, "its $1 counts once in the new window: $1 + $6 + $4 > $10");
    });
  });
});
