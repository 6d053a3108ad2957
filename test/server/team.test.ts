/**
 * Team caps across gateway processes (`node out/cli.js serve`; run `npm run build` first): a real
 * redis-server for the hard wall, a temp folder for the shared-folder ledger.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Redis from "ioredis";
import { InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { costOf, PriceBook } from "../../server/metering/prices";
import { silentLogger } from "../../server/log";
import { RedisTeamEngine, RESERVE_LUA, SETTLE_LUA, SETTLE_THEN_RESERVE_LUA } from "../../server/team/redisStore";
import { usdToPicos } from "../../server/metering/money";
import { ZERO_USAGE } from "../../server/metering/types";
import { FakeBedrock } from "../support/fakeBedrock";
import { serve } from "../support/cliProcess";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import {
  ceilMicros, hasRedis, invoke, journalCalls, startRedis, startTeamGateways, status, stopRedis, stopTeamGateways, waitFor,
  REDIS_SERVER, type CallOutcome, type RedisProcess, type TeamGateway,
} from "./teamSupport";

const GATEWAYS = 3;
const CALLS_EACH = 50;
const CAP_USD = 0.6; // each call reserves ~$0.0153 and settles at $0.0105: about 57 of 150 fit
const dayStartMs = () => Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());

async function load(gateways: TeamGateway[], calls = CALLS_EACH): Promise<CallOutcome[][]> {
  return Promise.all(gateways.map((g, gi) => Promise.all(Array.from({ length: calls }, (_, i) => invoke(g.client, `gw ${gi} call ${i}`)))));
}

/**
 * Input free, output $15 per 1M tokens: a call of `invoke` (1,000 max tokens) reserves exactly
 * 1,000 × $0.000015 = $0.015 = 15,000 µ$, and settles at the fake's 500 output tokens: $0.0075 = 7,500 µ$.
 */
const PRICING = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };
const WORST_MICROS = 15_000n;
const SETTLED_MICROS = 7_500n;

/**
 * Sends `calls` calls from each gateway at once, holding the admitted ones at the fake until every
 * call was admitted or refused: no settlement frees room mid-burst, so the number admitted is
 * exactly what the reservations allow.
 */
async function heldBurst(fake: FakeBedrock, gateways: TeamGateway[], calls: number): Promise<CallOutcome[]> {
  const total = gateways.length * calls;
  let failed = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const check = () => {
    if (fake.hits.length + failed >= total) release();
  };
  fake.behave(() => {
    queueMicrotask(check);
    return { kind: "ok", usage: { input: 1000, output: 500 }, after: gate };
  });
  const results = await Promise.all(gateways.flatMap((g, gi) => Array.from({ length: calls }, (_, i) => invoke(g.client, `gw ${gi} call ${i}`).then((r) => {
    if (!r.ok) {
      failed++;
      check();
    }
    return r;
  }))));
  const other = results.find((r) => !r.ok && r.name !== "ServiceQuotaExceededException");
  assert.equal(other, undefined, "every call went through or was refused by a cap");
  return results;
}

/** Waits for a team cap's window in Redis to hold no reservation, and returns its settled micro-dollars. */
async function settledMicros(admin: Redis, team: string, capId: string): Promise<bigint> {
  const key = `{bb:${team}}:w:${capId}:${dayStartMs()}`;
  return waitFor(`${capId} to settle in Redis`, async () => {
    const [spent, reserved] = await Promise.all([admin.get(`${key}:spent`), admin.get(`${key}:reserved`)]);
    return reserved === "0" && spent !== null ? BigInt(spent) : undefined;
  });
}

const shaOf = (lua: string) => createHash("sha1").update(lua).digest("hex");
const SCRIPTS = new Map([[shaOf(RESERVE_LUA), "reserve"], [shaOf(SETTLE_LUA), "settle"], [shaOf(SETTLE_THEN_RESERVE_LUA), "settle-then-reserve"]] as const);

/**
 * What a command in MONITOR's log does, if it is one of the team scripts: the call it reserves for,
 * the calls it settles. ioredis sends a script's source (EVAL) the first time on a connection, its
 * SHA1 (EVALSHA) after; MONITOR shows the source with its newlines escaped.
 */
function scriptCall(args: string[]): { script: string; reserves?: string; settles: string[] } | undefined {
  const name = args[0]!.toLowerCase();
  const sha = name === "evalsha" ? args[1]! : name === "eval" ? shaOf(args[1]!.replace(/\\n/g, "\n")) : undefined;
  const script = sha === undefined ? undefined : SCRIPTS.get(sha as never);
  if (!script) return undefined;
  const argv = args.slice(3 + Number(args[2]));
  if (script === "reserve") return { script, reserves: argv[0]!, settles: [] };
  if (script === "settle") return { script, settles: [argv[0]!] };
  const settles: string[] = [];
  let a = 1;
  for (let i = 0; i < Number(argv[0]); i++) {
    settles.push(argv[a]!);
    a += 3 + Number(argv[a + 2]);
  }
  return { script, reserves: argv[a]!, settles };
}

function teamCost(calls: { costPicos: string; outcome: string }[]): bigint {
  return calls.reduce((a, c) => a + BigInt(c.costPicos), 0n);
}

describe("team caps: Redis (hard wall)", function () {
  this.timeout(120_000);
  let fake: FakeBedrock;
  let redis: RedisProcess | undefined;
  let root: string;
  let gateways: TeamGateway[] = [];
  let admin: Redis | undefined;

  before(function () {
    if (!hasRedis()) {
      // CI installs redis-server before the first test: there a missing server is a failure, not a skip.
      if (process.env.CI === "true") throw new Error(`${REDIS_SERVER} is missing; .ci/run installs redis-server before the tests`);
      console.log(`    (skipped: ${REDIS_SERVER} is missing; .ci/run installs redis-server)`);
      this.skip();
    }
  });
  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
    redis = await startRedis();
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-redis-"));
    admin = new Redis({ host: "127.0.0.1", port: redis.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  });
  afterEach(async () => {
    await stopTeamGateways(gateways);
    gateways = [];
    admin?.disconnect();
    await stopRedis(redis);
    await fake.close();
    await rm(root, { recursive: true, force: true });
  });

  it(`${GATEWAYS} gateways × ${CALLS_EACH} concurrent calls: the settled team spend never exceeds the cap, refused calls never reach Bedrock`, async () => {
    gateways = await startTeamGateways(root, GATEWAYS, () => ({
      upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t1", caps: [{ id: "team-day", scope: "team", window: "day", limitUsd: CAP_USD }],
    }));
    const results = (await load(gateways)).flat();
    const ok = results.filter((r) => r.ok).length;
    const refused = results.filter((r) => !r.ok && r.name === "ServiceQuotaExceededException");
    assert.equal(ok + refused.length, GATEWAYS * CALLS_EACH, `every call went through or was refused: ${JSON.stringify(results.find((r) => !r.ok && r.name !== "ServiceQuotaExceededException"))}`);
    assert.ok(ok > 0 && refused.length > 0, `the team cap admits some calls, not all (ok ${ok}, refused ${refused.length})`);
    assert.match(refused[0]!.ok ? "" : refused[0]!.message, /cap "team-day" \(team, day\)/);
    assert.equal(fake.hits.length, ok, "only admitted calls reached Bedrock");

    const journals = await Promise.all(gateways.map((g) => journalCalls(g.ledgerDir)));
    const settled = journals.flat().filter((c) => c.outcome !== "refused");
    assert.equal(settled.length, ok);
    const total = teamCost(settled);
    assert.ok(total <= BigInt(Math.round(CAP_USD * 1e6)) * 1_000_000n, `settled team spend $${Number(total) / 1e12} is within the $${CAP_USD} cap`);
    await admin!.connect();
    const key = `{bb:t1}:w:team-day:${dayStartMs()}`;
    const spentMicros = await waitFor("settles in Redis", async () => {
      const [spent, reserved] = await Promise.all([admin!.get(`${key}:spent`), admin!.get(`${key}:reserved`)]);
      return reserved === "0" && spent !== null ? BigInt(spent) : undefined;
    });
    assert.equal(spentMicros, settled.reduce((a, c) => a + ceilMicros(BigInt(c.costPicos)), 0n), "Redis holds the sum of the journals (each call rounded up to a micro-dollar)");
    const s = await status(gateways[0]!.served.url);
    const cap = s.caps.find((c) => c.id === "team-day")!;
    assert.equal(cap.scope, "team");
    assert.equal(cap.team?.source, "redis");
    assert.equal(cap.team?.stale, false);
    console.log(`    redis: ${ok} admitted, ${refused.length} refused, team spend $${(Number(total) / 1e12).toFixed(4)} of $${CAP_USD}`);
  });

  it("two team caps, the second one tight: every reservation lands on both, so the tight one admits exactly $0.30 / $0.015 = 20 calls", async () => {
    gateways = await startTeamGateways(root, 2, () => ({
      upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t3", pricing: PRICING,
      caps: [{ id: "team-wide", scope: "team", window: "day", limitUsd: 100 }, { id: "team-tight", scope: "team", window: "day", limitUsd: 0.3 }],
    }));
    const results = await heldBurst(fake, gateways, 40);
    const admitted = results.filter((r) => r.ok).length;
    assert.equal(admitted, 20, "300,000 µ$ / 15,000 µ$ per reservation = 20 calls admitted, no more, no fewer");
    const refusal = results.find((r) => !r.ok);
    assert.match(refusal && !refusal.ok ? refusal.message : "", /cap "team-tight" \(team, day\)/);
    await admin!.connect();
    // 20 calls settled at 7,500 µ$ each = 150,000 µ$, counted on both caps.
    assert.equal(await settledMicros(admin!, "t3", "team-wide"), 20n * SETTLED_MICROS);
    assert.equal(await settledMicros(admin!, "t3", "team-tight"), 20n * SETTLED_MICROS);
  });

  it("admits as many concurrent calls as the cap holds worst cases: $0.60 / $0.015 = 40 of 100", async () => {
    gateways = await startTeamGateways(root, 2, () => ({
      upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t4", pricing: PRICING,
      caps: [{ id: "team-day", scope: "team", window: "day", limitUsd: 0.6 }],
    }));
    const results = await heldBurst(fake, gateways, 50);
    assert.equal(results.filter((r) => r.ok).length, Number(600_000n / WORST_MICROS), "each admitted call holds its worst case once: 600,000 / 15,000 = 40");
    assert.equal(fake.hits.length, 40, "only admitted calls reached Bedrock");
    await admin!.connect();
    assert.equal(await settledMicros(admin!, "t4", "team-day"), 40n * SETTLED_MICROS, "40 × 7,500 µ$ = 300,000 µ$");
  });

  it("admission is one Redis round trip: between a call's arrival and Bedrock seeing it the gateway runs the reserve script and nothing else; the answer does not wait for the settle", async () => {
    gateways = await startTeamGateways(root, 1, () => ({
      upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t9", pricing: PRICING, caps: [{ id: "team-day", scope: "team", window: "day", limitUsd: 100 }],
    }));
    const g = gateways[0]!;
    await admin!.connect();
    assert.equal((await invoke(g.client, "warm-up")).ok, true); // loads the scripts on the gateway's connection
    await settledMicros(admin!, "t9", "team-day"); // and its settle is in before MONITOR starts
    const monitor = await admin!.monitor();
    const seen: { args: string[]; source: string }[] = [];
    monitor.on("monitor", (_time: string, args: unknown[], source: string) => seen.push({ args: args.map(String), source }));
    try {
      // Markers in Redis's own order of execution: ECHO before each call, and ECHO when Bedrock sees it.
      fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 }, after: admin!.echo("bedrock-saw-the-call") }));
      for (let i = 0; i < 3; i++) {
        await admin!.echo(`call-${i}`);
        assert.equal((await invoke(g.client, `call ${i}`)).ok, true);
      }
      // The periodic refresh (team figures, team.json, the replay marker) reads on its own timer.
      const refreshReads = new Set(["strlen", "getrange", "exists", "get"]);
      const fromGateway = (c: { args: string[]; source: string }) => c.source !== "lua" && c.args[0] !== "echo" && !refreshReads.has(c.args[0]!.toLowerCase());
      const reserved: string[] = [];
      for (let i = 0; i < 3; i++) {
        const from = seen.findIndex((c) => c.args[0] === "echo" && c.args[1] === `call-${i}`);
        const to = seen.findIndex((c, j) => j > from && c.args[0] === "echo" && c.args[1] === "bedrock-saw-the-call");
        assert.ok(from >= 0 && to > from, `the markers of call ${i} are in the monitor's log`);
        // An earlier call's settle may land here alone: it follows that call's answer, on no caller's path.
        const between = seen.slice(from + 1, to).filter((c) => fromGateway(c) && scriptCall(c.args)?.script !== "settle");
        assert.equal(between.length, 1, `call ${i}: one command before Bedrock saw it, got ${JSON.stringify(between.map((c) => c.args.slice(0, 2)))}`);
        const reservation = scriptCall(between[0]!.args);
        assert.ok(reservation?.reserves && !reserved.includes(reservation.reserves), `call ${i}: that command is the reserve script, for this call`);
        reserved.push(reservation.reserves);
      }
      // Each call's settle follows its answer, once: carried by a later reservation, or alone.
      const start = seen.findIndex((c) => c.args[0] === "echo" && c.args[1] === "call-0");
      const settled = () => seen.slice(start).flatMap((c) => (fromGateway(c) ? scriptCall(c.args)?.settles ?? [] : []));
      await waitFor("the settles", async () => (settled().length >= 3 ? true : undefined));
      assert.deepEqual(settled(), reserved, "one settle per call, in order");
      assert.deepEqual(seen.slice(start).filter((c) => fromGateway(c) && !scriptCall(c.args)).map((c) => c.args[0]), [], "and no other command");
    } finally {
      monitor.disconnect();
    }

    // With Redis's writes paused from the moment Bedrock sees the call, the caller is answered all the
    // same: the settle waits in Redis, and the hold counts until it lands.
    const key = `{bb:t9}:w:team-day:${dayStartMs()}`;
    const before = BigInt((await admin!.get(`${key}:spent`)) ?? "0");
    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 }, after: admin!.call("CLIENT", "PAUSE", "5000", "WRITE") }));
    try {
      assert.equal((await invoke(g.client, "while Redis pauses writes")).ok, true, "answered while the settle cannot run");
      assert.equal(BigInt((await admin!.get(`${key}:spent`)) ?? "0"), before, "not settled in Redis yet");
      assert.equal(await admin!.get(`${key}:reserved`), String(WORST_MICROS), "its worst case still held");
    } finally {
      await admin!.call("CLIENT", "UNPAUSE");
    }
    assert.equal(await settledMicros(admin!, "t9", "team-day"), before + SETTLED_MICROS, "settled once Redis takes writes again");
    assert.doesNotMatch(g.served.stderr(), /settle of .* failed/, "no settle waited out its command timeout: the answer did not wait for it");
  });

  it("a reservation carries the settles queued before it in its one script call, settled first; with no reservation to carry it a settle goes alone", async () => {
    await admin!.connect();
    const settleWaitMs = 300;
    const store = await RedisTeamEngine.open({ url: redis!.url, team: "t10", writer: "test", history: async function* () {}, log: silentLogger(), now: () => new Date(), unavailable: "block", settleWaitMs });
    const key = `{bb:t10}:w:tight:${dayStartMs()}`;
    const micros = async (what: "spent" | "reserved") => Number((await admin!.get(`${key}:${what}`)) ?? "0");
    const seen: string[][] = [];
    let monitor: Redis | undefined;
    try {
      await store.setCaps([{ id: "tight", scope: "team", window: "day", limitUsd: 1 }], "UTC");
      monitor = await admin!.monitor();
      monitor.on("monitor", (_time: string, args: unknown[], source: string) => {
        if (source !== "lua") seen.push(args.map(String));
      });
      const ask = (callId: string, usd: number) => store.reserve({ callId, capIds: ["tight"], amount: usdToPicos(usd), now: new Date(), modelId: SONNET_45, caller: "AKIDEXAMPLE", tags: {} });
      const settle = (id: string, usd: number) => store.settle({ id, modelId: SONNET_45, costPicos: String(usdToPicos(usd)), startedAt: new Date().toISOString() });

      // 1. A call settles at $0.10 of its $0.60 hold and the next asks $0.60 in the same turn: carried
      //    and settled first, it is checked against $0.10 (against the hold, $1.20 > $1, it would be refused).
      assert.equal((await ask("first", 0.6)).ok, true);
      const firstSettled = settle("first", 0.1);
      const second = await ask("second", 0.6);
      assert.equal(second.ok, true, `admitted against the settled $0.10: ${second.ok ? "" : second.message}`);
      await firstSettled;
      assert.deepEqual([await micros("spent"), await micros("reserved")], [100_000, 600_000], "the first call's $0.10 booked, the second's hold in place");

      // 2. A call settles while another runs: it waits for the next reservation, which carries it.
      assert.equal((await ask("third", 0.2)).ok, true);
      const secondSettled = settle("second", 0.2);
      await new Promise((r) => setImmediate(r));
      assert.equal(await micros("spent"), 100_000, "not sent alone while another call runs");
      assert.equal((await ask("fourth", 0.4)).ok, true, "$0.30 spent + $0.20 and $0.40 held");
      await secondSettled;

      // 3. One settling while another runs, and no reservation comes: it goes alone after settleWaitMs.
      const thirdSettled = settle("third", 0.05);
      await thirdSettled;
      assert.deepEqual([await micros("spent"), await micros("reserved")], [350_000, 400_000]);
      // 4. The last one, with no other call running: sent after its turn.
      await settle("fourth", 0.3);
      assert.deepEqual([await micros("spent"), await micros("reserved")], [650_000, 0]);

      await waitFor("the monitor's log", async () => (seen.filter((c) => scriptCall(c)?.settles.includes("fourth")).length === 1 ? true : undefined));
      assert.deepEqual(seen.map((c) => scriptCall(c)).filter((c) => c !== undefined), [
        { script: "reserve", reserves: "first", settles: [] },
        { script: "settle-then-reserve", reserves: "second", settles: ["first"] },
        { script: "reserve", reserves: "third", settles: [] },
        { script: "settle-then-reserve", reserves: "fourth", settles: ["second"] },
        { script: "settle", settles: ["third"] },
        { script: "settle", settles: ["fourth"] },
      ], "one script call per reservation, settles carried where a reservation came, alone where none did");
    } finally {
      monitor?.disconnect();
      await store.close();
    }
  });

  it("a reconnect with Redis's data kept, and a gateway restart, replay the journal past the last replay, without counting a call twice; other caps or a rewritten journal replay the window whole", async () => {
    const caps = [{ id: "team-day", scope: "team", window: "day", limitUsd: 100 }];
    const config = () => ({ upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t5", pricing: PRICING, logLevel: "info", caps });
    gateways = await startTeamGateways(root, 1, config);
    const g = gateways[0]!;
    /** The replays logged so far: how many calls each re-sent, and whether it read past the last one. */
    const replays = (text: string) => [...text.matchAll(/journal replayed \((\d+) settled calls of the current windows(, past the last replay)?\)/g)].map((m) => `${m[1]}${m[2] ? " past" : " whole"}`);
    await waitFor("the replay at start-up", async () => (replays(g.served.stderr()).length >= 1 ? true : undefined));
    for (let i = 0; i < 5; i++) assert.equal((await invoke(g.client, `call ${i}`)).ok, true);
    await admin!.connect();
    // 5 calls × 7,500 µ$ = 37,500 µ$.
    assert.equal(await settledMicros(admin!, "t5", "team-day"), 5n * SETTLED_MICROS);

    // Drop the gateway's connection (Redis keeps its data): it reconnects and re-sends the 5 calls since its first replay.
    await admin!.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
    await waitFor("the replay after the reconnect", async () => (replays(g.served.stderr()).length >= 2 ? true : undefined));
    assert.deepEqual(replays(g.served.stderr()).slice(0, 2), ["0 whole", "5 past"]);
    assert.equal(await settledMicros(admin!, "t5", "team-day"), 5n * SETTLED_MICROS, "the replay after a reconnect counts nothing twice");

    // A new gateway process on the same ledger: nothing past that replay.
    const restart = async () => {
      await stopTeamGateways(gateways);
      const again = await serve(["--config", g.configFile]);
      gateways = [{ ...g, served: again, client: clientFor(again.url) }];
      await waitFor("the replay at start-up", async () => (replays(again.stderr()).length >= 1 ? true : undefined));
      return replays(again.stderr())[0];
    };
    assert.equal(await restart(), "0 past");
    assert.equal(await settledMicros(admin!, "t5", "team-day"), 5n * SETTLED_MICROS, "the replay after a restart counts nothing twice");
    assert.equal((await invoke(gateways[0]!.client, "one more")).ok, true);
    assert.equal(await settledMicros(admin!, "t5", "team-day"), 6n * SETTLED_MICROS, "and the next call counts once");

    // Another cap: its window starts from this machine's journal, all of it.
    caps.push({ id: "team-day-2", scope: "team", window: "day", limitUsd: 50 });
    await writeFile(g.configFile, JSON.stringify({ ...JSON.parse(await readFile(g.configFile, "utf8")), caps }));
    assert.equal(await restart(), "6 whole");
    // (The replay is logged once its settles are in; the new cap's window has held no reservation.)
    assert.equal(await admin!.get(`{bb:t5}:w:team-day-2:${dayStartMs()}:spent`), String(6n * SETTLED_MICROS), "the new cap counts the day's calls");
    assert.equal(await settledMicros(admin!, "t5", "team-day"), 6n * SETTLED_MICROS);

    // The journal's last line rewritten (same length, one character changed) while stopped: the marker no longer matches it.
    await stopTeamGateways(gateways);
    gateways = [];
    const journalDir = path.join(g.ledgerDir, "journal");
    const file = path.join(journalDir, (await readdir(journalDir)).filter((n) => n.endsWith(".jsonl")).sort().at(-1)!);
    const text = await readFile(file, "utf8");
    const last = text.lastIndexOf("\n", text.length - 2) + 1;
    const tool = text.indexOf('"tool":"', last) + '"tool":"'.length;
    await writeFile(file, text.slice(0, tool) + (text[tool] === "X" ? "Y" : "X") + text.slice(tool + 1));
    assert.equal(await restart(), "6 whole");
    assert.equal(await settledMicros(admin!, "t5", "team-day"), 6n * SETTLED_MICROS, "counted once all the same");

    // The store is shared: a marker naming no journal file of this machine's form (or an earlier version's date) is not followed.
    const [marker] = await admin!.keys("{bb:t5}:replayed:*");
    const mark = JSON.parse((await admin!.get(marker!))!) as { caps: string; months: Record<string, unknown> };
    for (const value of [JSON.stringify({ caps: mark.caps, months: { "../../../../etc/hostname": { end: 1, sha: "0" } } }), new Date().toISOString()]) {
      await stopTeamGateways(gateways);
      await admin!.set(marker!, value);
      assert.equal(await restart(), "6 whole", value);
    }
  });

  it("a team cap that arrives in team.json while a call runs counts that call when it settles, once", async () => {
    await admin!.connect();
    gateways = await startTeamGateways(root, 1, () => ({
      upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t8", pricing: PRICING, logLevel: "info",
      caps: [{ id: "team-day", scope: "team", window: "day", limitUsd: 100 }],
    }));
    const g = gateways[0]!;
    const replays = () => [...g.served.stderr().matchAll(/journal replayed \(/g)].length;
    await waitFor("the replay at start-up", async () => (replays() >= 1 ? true : undefined));
    const held = fake.holdCalls({ input: 1000, output: 500 });
    const running = invoke(g.client, "running when the cap comes");
    await held.reached;

    // The new cap's replay reads the journal while the call has only its reservation there.
    await admin!.set("{bb:t8}:team.json", JSON.stringify({ caps: [{ id: "team-new", window: "day", limitUsd: 50 }] }));
    await waitFor("the new cap's replay", async () => (replays() >= 2 && (await status(g.served.url)).caps.some((c) => c.id === "team-new") ? true : undefined));
    assert.equal(await admin!.get(`{bb:t8}:w:team-new:${dayStartMs()}:spent`), null, "nothing settled in the new cap's window yet");

    held.answer();
    assert.equal((await running).ok, true);
    assert.equal(await settledMicros(admin!, "t8", "team-day"), SETTLED_MICROS);
    assert.equal(await admin!.get(`{bb:t8}:w:team-new:${dayStartMs()}:spent`), String(SETTLED_MICROS), "the call that ran when the cap came counts on it");

    // Another change of caps replays the window whole: the call is still counted once on each.
    await admin!.set("{bb:t8}:team.json", JSON.stringify({ caps: [{ id: "team-new", window: "day", limitUsd: 40 }] }));
    await waitFor("the next replay", async () => (replays() >= 3 ? true : undefined));
    assert.equal(await admin!.get(`{bb:t8}:w:team-new:${dayStartMs()}:spent`), String(SETTLED_MICROS));
    assert.equal(await settledMicros(admin!, "t8", "team-day"), SETTLED_MICROS);
  });

  it("a stream that outgrows its worst case grows its team reservation, and is cut at the team cap", async () => {
    gateways = await startTeamGateways(root, 1, () => ({
      upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t6", pricing: PRICING,
      caps: [{ id: "team-stream", scope: "team", window: "day", limitUsd: 0.003 }],
    }));
    // Asks for 10 tokens (worst case 150 µ$); the model sends 300 chunks of 10 tokens (150 µ$ each):
    // only growing its reservation in Redis chunk by chunk lets it pass 150 µ$, and the cap stops it near 3,000 µ$.
    fake.behave(() => ({ kind: "ok", usage: { input: 0, output: 3000 }, chunks: 300, chunkDelayMs: 2 }));
    const out = await gateways[0]!.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("go", 10) }));
    let chunks = 0;
    const err = await (async () => {
      for await (const part of out.body!) if (part.chunk) chunks++;
    })().then(() => undefined, (e: Error) => e);
    assert.equal(err?.name, "ModelStreamErrorException", `the stream was cut (it relayed ${chunks} chunks)`);
    assert.match(err.message, /cap "team-stream" \(team, day\)/);
    assert.ok(chunks > 1, `the stream grew past its 10-token worst case first (${chunks} chunks relayed)`);
    await admin!.connect();
    const spent = await settledMicros(admin!, "t6", "team-stream");
    // Redis answers a growth asynchronously (MeteredCall.grow): its refusal cuts the stream at the
    // next frame, so the frames relayed meanwhile (a few µ$ each) may pass the cap; allow 10%.
    assert.ok(spent > 150n && spent <= 3_300n, `the team was charged what was generated, about the cap: ${spent} µ$`);
    const [call] = await journalCalls(gateways[0]!.ledgerDir);
    assert.equal(ceilMicros(BigInt(call!.costPicos)), spent, "Redis holds what the journal charged");
  });

  it("team.json in Redis takes effect without a restart; one over the 1 MiB bound is refused and the last good stays in force", async () => {
    await admin!.connect();
    await admin!.set("{bb:t7}:team.json", JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 100 }] }));
    gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t7" }));
    const g = gateways[0]!;
    const limit = async () => (await status(g.served.url)).caps.find((c) => c.id === "team-day")?.limitUsd;
    await waitFor("the team cap from Redis", async () => ((await limit()) === 100 ? true : undefined), 10_000);
    const huge = JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 0.001 }] }) + " ".repeat(1024 * 1024);
    await admin!.set("{bb:t7}:team.json", huge);
    await waitFor("the refusal in the log", async () => (/over the 1048576-byte limit; the last good team\.json stays in force/.test(g.served.stderr()) ? true : undefined), 10_000);
    assert.equal(await limit(), 100, "the oversized team.json was not applied");
    assert.equal((await invoke(g.client, "still admitted")).ok, true);
  });

  it("a gateway started while Redis is down: with teamUnavailable block every call is refused (team.json's caps are unknown) until Redis answers; with personalOnly calls are admitted", async () => {
    await redis!.stop();
    gateways = await startTeamGateways(root, 2, (i) => ({ upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t11", teamUnavailable: i === 0 ? "block" : "personalOnly" }));
    const [blocking, personalOnly] = gateways as [TeamGateway, TeamGateway];
    const refused = await invoke(blocking.client, "store down since the start");
    assert.equal(refused.ok, false);
    assert.match(refused.message!, /team ledger \(redis:\/\/127\.0\.0\.1:\d+\) has not been readable since the gateway started, so team\.json's caps are unknown \(teamUnavailable: "block"\)/);
    assert.equal((await invoke(personalOnly.client, "personal caps only")).ok, true, "personalOnly admits under the personal caps");
    await redis!.start();
    await admin!.connect();
    await admin!.set("{bb:t11}:team.json", JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 100 }] }));
    await waitFor("admitted once Redis answers", async () => ((await invoke(blocking.client, "store back")).ok ? true : undefined), 20_000);
    assert.equal((await status(blocking.served.url)).caps.find((c) => c.id === "team-day")?.limitUsd, 100, "team.json read, its cap in force");
  });

  it("Redis stopped mid-load and restarted empty: no crash, the policy applies, and the team total is rebuilt from the journals", async () => {
    gateways = await startTeamGateways(root, GATEWAYS, (i) => ({
      upstreamEndpoint: fake.url, teamLedger: redis!.url, team: "t2", teamUnavailable: i === 2 ? "personalOnly" : "block",
      caps: [{ id: "team-day", scope: "team", window: "day", limitUsd: 100 }, { id: "mine", window: "day", limitUsd: 50 }],
    }));
    const before = (await load(gateways, 10)).flat();
    assert.ok(before.every((r) => r.ok), "all admitted while Redis is up");

    // Mid-load: calls keep coming while Redis goes away.
    const during = load(gateways, 20);
    await new Promise((r) => setTimeout(r, 30));
    await redis!.stop("SIGKILL");
    await during;
    const down = await Promise.all(gateways.map((g, i) => invoke(g.client, `while down ${i}`)));
    for (const i of [0, 1]) {
      const r = down[i]!;
      assert.equal(r.ok, false, `gateway ${i} (block) refuses while the team store is down`);
      if (!r.ok) {
        assert.equal(r.name, "ServiceQuotaExceededException");
        assert.match(r.message, /team ledger \(redis:\/\/127\.0\.0\.1:\d+\) is unreachable/);
      }
      assert.ok(r.ms < 2500, `decided in ${Math.round(r.ms)} ms`);
    }
    assert.equal(down[2]!.ok, true, "gateway 2 (personalOnly) admits under its personal caps");
    const s = await status(gateways[2]!.served.url);
    assert.equal(s.caps.find((c) => c.id === "team-day")!.team!.stale, true, "status says the team figure is stale");

    await redis!.start(); // empty: no persistence
    for (const g of gateways) assert.equal(g.served.child.exitCode, null, "no gateway crashed");
    const after = await waitFor("team admission again", async () => {
      const r = await invoke(gateways[0]!.client, "after recovery");
      return r.ok ? r : undefined;
    }, 15_000, 200);
    assert.ok(after.ok);
    await (await load(gateways, 5)).flat();

    await admin!.connect();
    const key = `{bb:t2}:w:team-day:${dayStartMs()}`;
    const expected = async () => {
      const journals = (await Promise.all(gateways.map((g) => journalCalls(g.ledgerDir)))).flat();
      return journals.reduce((a, c) => a + ceilMicros(BigInt(c.costPicos)), 0n);
    };
    const [inRedis, fromJournals] = await waitFor("the team total to equal the journals", async () => {
      const [spent, reserved] = await Promise.all([admin!.get(`${key}:spent`), admin!.get(`${key}:reserved`)]);
      const want = await expected();
      return spent !== null && reserved === "0" && BigInt(spent) === want ? [BigInt(spent), want] : undefined;
    }, 15_000, 200).catch(async (err: Error) => {
      throw new Error(`${err.message}; Redis has ${await admin!.get(`${key}:spent`)} µ$ (reserved ${await admin!.get(`${key}:reserved`)}), journals ${await expected()} µ$`);
    });
    assert.equal(inRedis, fromJournals);
    assert.ok(fromJournals! > 0n);
    for (const g of gateways) assert.equal(g.served.child.exitCode, null, "no gateway crashed");
  });
});

describe("team caps: shared folder (soft wall)", function () {
  this.timeout(120_000);
  let fake: FakeBedrock;
  let root: string;
  let gateways: TeamGateway[] = [];

  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-folder-"));
  });
  afterEach(async () => {
    await stopTeamGateways(gateways);
    gateways = [];
    await fake.close();
    await rm(root, { recursive: true, force: true });
  });

  it(`${GATEWAYS} gateways × ${CALLS_EACH} concurrent calls: the overshoot is at most one worst case per gateway, and every gateway converges to the same team total`, async () => {
    const shared = path.join(root, "shared");
    await mkdir(path.join(shared, "t1"), { recursive: true });
    await writeFile(path.join(shared, "t1", "team.json"), JSON.stringify({ timeZone: "UTC", caps: [{ id: "team-day", window: "day", limitUsd: CAP_USD }] }));
    gateways = await startTeamGateways(root, GATEWAYS, () => ({ upstreamEndpoint: fake.url, teamLedger: shared, team: "t1" }));
    const results = (await load(gateways)).flat();
    const ok = results.filter((r) => r.ok).length;
    const refused = results.filter((r) => !r.ok && r.name === "ServiceQuotaExceededException").length;
    assert.equal(ok + refused, GATEWAYS * CALLS_EACH);
    assert.equal(fake.hits.length, ok, "only admitted calls reached Bedrock");
    const settled = (await Promise.all(gateways.map((g) => journalCalls(g.ledgerDir)))).flat();
    const total = teamCost(settled);
    const cap = BigInt(Math.round(CAP_USD * 1e6)) * 1_000_000n;
    const overshoot = total > cap ? total - cap : 0n;
    console.log(
      `    folder: ${ok} admitted, ${refused} refused; team spend $${(Number(total) / 1e12).toFixed(4)} of $${CAP_USD}: ` +
        `overshoot $${(Number(overshoot) / 1e12).toFixed(4)} (${((Number(overshoot) / Number(cap)) * 100).toFixed(1)}% of the cap)`,
    );
    const exact = (Number(total / 1_000_000n) / 1e6).toString();
    const figures = await waitFor("every gateway to show the same team total", async () => {
      const all = await Promise.all(gateways.map((g) => status(g.served.url)));
      const caps = all.map((s) => s.caps.find((c) => c.id === "team-day")!);
      return caps.every((c) => c.spentExact === caps[0]!.spentExact && c.reservedExact === "0") && BigInt(Math.round(Number(caps[0]!.spentExact) * 1e6)) * 1_000_000n === total ? caps : undefined;
    });
    for (const c of figures) {
      assert.equal(c.scope, "team");
      assert.equal(c.team?.source, "folder");
      assert.equal(c.team?.stale, false);
    }
    assert.ok(ok > 0 && refused > 0, `the team cap admits some calls, not all (ok ${ok}, refused ${refused})`);
    assert.equal(Number(figures[0]!.spentExact), Number(exact));
    // Reservations are shared through the spend files (write-then-verify): the overshoot is at most one call's worst case per gateway.
    const worst = WORST_MICROS * 1_000_000n;
    assert.ok(total <= cap + worst * BigInt(GATEWAYS), `the team spends at most the cap plus one worst case per gateway (spent ${total}, cap ${cap})`);
  });

  it("a change to team.json takes effect within seconds, without a restart; an invalid one keeps the last good", async () => {
    const shared = path.join(root, "shared");
    await mkdir(path.join(shared, "default"), { recursive: true });
    const teamFile = path.join(shared, "default", "team.json");
    await writeFile(teamFile, JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 100 }] }));
    gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: shared }));
    const g = gateways[0]!;
    assert.equal((await invoke(g.client, "first")).ok, true);
    await writeFile(teamFile, JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 0.001 }], members: { member0: { caps: [{ id: "lead-set", window: "day", limitUsd: 5 }] } } }));
    const s = await waitFor("the new team cap", async () => {
      const st = await status(g.served.url);
      return st.caps.find((c) => c.id === "team-day")?.limitUsd === 0.001 ? st : undefined;
    }, 10_000);
    assert.ok(s.caps.some((c) => c.id === "lead-set" && c.scope === "personal"), "the member's personal cap from team.json applies");
    const refused = await invoke(g.client, "second");
    assert.equal(refused.ok, false);
    await writeFile(teamFile, "{ not json");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await status(g.served.url)).caps.find((c) => c.id === "team-day")?.limitUsd, 0.001, "the last good team.json stays in force");
    assert.match(g.served.stderr(), /invalid team\.json/);
  });

  it("an invalid team.json at start, with no earlier valid one: every call is refused naming it (the team's caps are unknown), until a valid one is written", async () => {
    const shared = path.join(root, "shared");
    await mkdir(path.join(shared, "default"), { recursive: true });
    const teamFile = path.join(shared, "default", "team.json");
    await writeFile(teamFile, JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: "500" }] }));
    gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: shared }));
    const g = gateways[0]!;
    const refused = await invoke(g.client, "team caps unknown");
    assert.equal(refused.ok, false);
    assert.match(refused.message!, /team\.json in the team ledger \(.*shared\) cannot be used \(it is invalid: .*limitUsd.*\), and no earlier valid version is in force/);
    assert.match((await status(g.served.url)).blocked ?? "", /team\.json .* cannot be used/, "the status (status bar, dashboard) says why");
    assert.equal((await status(g.served.url)).blockedBy, "team", "and that the team caps are the cause, not the settings");
    assert.equal(fake.hits.length, 0, "nothing reached Bedrock");
    await writeFile(teamFile, JSON.stringify({ caps: [{ id: "team-day", window: "day", limitUsd: 500 }] }));
    await waitFor("calls admitted once team.json is valid", async () => ((await invoke(g.client, "fixed")).ok ? true : undefined), 10_000);
    assert.equal((await status(g.served.url)).blocked, undefined);
  });

  describe("team.json can only tighten, and only regular files are read", () => {
    const shared = () => path.join(root, "shared");
    const teamDir = (name: string) => path.join(shared(), name);
    const writeTeam = async (name: string, team: unknown, pad = 0) => {
      await mkdir(teamDir(name), { recursive: true });
      await writeFile(path.join(teamDir(name), "team.json"), JSON.stringify(team) + " ".repeat(pad));
    };
    const settled = (g: TeamGateway, count: number) =>
      waitFor(`${count} settled call(s) in the journal`, async () => {
        const calls = (await journalCalls(g.ledgerDir)).filter((c) => c.outcome !== "refused");
        return calls.length >= count ? calls : undefined;
      });
    /** Sequential calls (~$0.0153 reserved, $0.0105 settled each) until one is refused. */
    const spendUntilRefused = async (g: TeamGateway, max = 12) => {
      for (let i = 0; i < max; i++) {
        const r = await invoke(g.client, `call ${i}`);
        if (!r.ok) return { admitted: i, refusal: r };
      }
      return { admitted: max, refusal: undefined };
    };

    it("a $50 daily cap for a member in team.json does not raise her own $0.05 one: her calls are refused past $0.05", async () => {
      await writeTeam("default", { members: { member0: { caps: [{ id: "daily", window: "day", limitUsd: 50 }] } } });
      gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: shared(), caps: [{ id: "daily", window: "day", limitUsd: 0.05 }] }));
      const g = gateways[0]!;
      const { admitted, refusal } = await spendUntilRefused(g);
      assert.ok(refusal && refusal.name === "ServiceQuotaExceededException", `refused within 12 calls (admitted ${admitted}): ${JSON.stringify(refusal)}`);
      assert.match(refusal.message, /cap "daily" \(personal, day\)/);
      assert.equal(fake.hits.length, admitted, "the refused call never reached Bedrock");
      assert.ok(teamCost(await settled(g, admitted)) <= usdToPicos("0.05"), "settled spend is within her own $0.05");
      assert.equal((await status(g.served.url)).caps.find((c) => c.id === "daily")?.limitUsd, 0.05);
    });

    it("a team cap in team.json with the id of a member's stricter team cap: the stricter holds for that member", async () => {
      await writeTeam("default", { caps: [{ id: "team-day", window: "day", limitUsd: 100 }] });
      gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: shared(), caps: [{ id: "team-day", scope: "team", window: "day", limitUsd: 0.05 }] }));
      const g = gateways[0]!;
      const { admitted, refusal } = await spendUntilRefused(g);
      assert.ok(refusal && refusal.name === "ServiceQuotaExceededException", `refused within 12 calls (admitted ${admitted}): ${JSON.stringify(refusal)}`);
      assert.match(refusal.message, /cap "team-day" \(team, day\)/);
      assert.equal(fake.hits.length, admitted);
      assert.ok(teamCost(await settled(g, admitted)) <= usdToPicos("0.05"));
      assert.equal((await status(g.served.url)).caps.find((c) => c.id === "team-day")?.limitUsd, 0.05);
    });

    it("team prices never undercut: \"*\" at $0 and a row below Claude's price leave the built-in price; a row above raises it", async () => {
      const teams = [
        { "*": { inputPer1M: 0, outputPer1M: 0 } },
        { "anthropic.claude-sonnet-4-5*": { inputPer1M: 0.1, outputPer1M: 0.2 } },
        { "anthropic.claude-sonnet-4-5*": { inputPer1M: 30, outputPer1M: 150 } },
      ];
      await Promise.all(teams.map((pricing, i) => writeTeam(`p${i}`, { pricing })));
      gateways = await startTeamGateways(root, teams.length, (i) => ({ upstreamEndpoint: fake.url, teamLedger: shared(), team: `p${i}` }));
      const outcomes = await Promise.all(gateways.map((g) => invoke(g.client, "priced")));
      assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes));
      const costs = await Promise.all(gateways.map(async (g) => BigInt((await settled(g, 1))[0]!.costPicos)));
      const builtIn = costOf({ ...ZERO_USAGE, inputTokens: 1000, outputTokens: 500 }, new PriceBook().rates(SONNET_45));
      assert.equal(builtIn, usdToPicos("0.0105"));
      assert.equal(costs[0], builtIn, '"*" at $0 does not make calls free');
      assert.equal(costs[1], builtIn, "a row below the built-in price does not lower it");
      assert.equal(costs[2], usdToPicos("0.105"), "a row above the built-in price raises it (1,000 × $30/M + 500 × $150/M)");
    });

    it("FIFOs named team.json and as a peer's spend file: the gateway starts, logs them, refuses calls while team.json cannot be read, and serves once it can", async function () {
      this.timeout(40_000); // start-up froze for good on a FIFO: serve() gives up after 15 s, so this fails rather than hangs
      await mkdir(path.join(teamDir("default"), "spend"), { recursive: true });
      execFileSync("mkfifo", [path.join(teamDir("default"), "team.json")]);
      execFileSync("mkfifo", [path.join(teamDir("default"), "spend", "peer@box-0123456789ab.json")]);
      gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: shared(), caps: [{ id: "team-day", scope: "team", window: "day", limitUsd: 1 }] }));
      const g = gateways[0]!;
      const refused = await invoke(g.client, "team.json unreadable");
      assert.equal(refused.ok, false);
      assert.match(refused.message!, /team\.json in the team ledger .* cannot be used \(not a regular file \(a FIFO\)\)/);
      const log = await waitFor("both FIFOs named in the log", async () => {
        const text = g.served.stderr();
        return /team\.json: not a regular file \(a FIFO\)/.test(text) && /peer@box-0123456789ab\.json: not a regular file \(a FIFO\)/.test(text) ? text : undefined;
      });
      assert.match(log, /not reading .*default\/team\.json/);
      await rm(path.join(teamDir("default"), "team.json"));
      await writeTeam("default", { caps: [{ id: "team-day", window: "day", limitUsd: 1 }] });
      await waitFor("served once team.json is a file", async () => ((await invoke(g.client, "served")).ok ? true : undefined), 10_000);
    });

    it("a symlinked team.json is not followed", async () => {
      const elsewhere = path.join(root, "elsewhere.json");
      await writeFile(elsewhere, JSON.stringify({ caps: [{ id: "linked-cap", window: "day", limitUsd: 0.001 }] }));
      await mkdir(teamDir("default"), { recursive: true });
      await symlink(elsewhere, path.join(teamDir("default"), "team.json"));
      gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: shared() }));
      const g = gateways[0]!;
      assert.equal((await status(g.served.url)).caps.some((c) => c.id === "linked-cap"), false, "the linked file's caps do not apply");
      assert.match(g.served.stderr(), /not reading .*team\.json: not a regular file \(a symbolic link\)/);
      const refused = await invoke(g.client, "team.json is a link");
      assert.equal(refused.ok, false, "nor are calls admitted without them: the team's caps are unknown");
      assert.match(refused.message!, /cannot be used \(not a regular file \(a symbolic link\)\)/);
    });

    it("an oversized team.json is refused and named in the log; the last good one stays in force", async () => {
      await writeTeam("default", { caps: [{ id: "team-day", window: "day", limitUsd: 100 }] });
      gateways = await startTeamGateways(root, 1, () => ({ upstreamEndpoint: fake.url, teamLedger: shared() }));
      const g = gateways[0]!;
      assert.equal((await status(g.served.url)).caps.find((c) => c.id === "team-day")?.limitUsd, 100);
      await writeTeam("default", { caps: [{ id: "team-day", window: "day", limitUsd: 0.001 }] }, 1024 * 1024);
      await waitFor("the refusal in the log", async () => (/team\.json: \d+ bytes, over the 1048576-byte limit; the last good team\.json stays in force/.test(g.served.stderr()) ? true : undefined));
      assert.equal((await status(g.served.url)).caps.find((c) => c.id === "team-day")?.limitUsd, 100, "the last good team.json stays in force");
      assert.equal((await invoke(g.client, "still served")).ok, true);
    });
  });
});
