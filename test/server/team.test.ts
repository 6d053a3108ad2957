/**
 * Team caps across gateway processes (`node out/cli.js serve`; run `npm run build` first): a real
 * redis-server for the hard wall, a temp folder for the shared-folder ledger.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Redis from "ioredis";
import { FakeBedrock } from "../support/fakeBedrock";
import { CREDENTIALS } from "../support/harness";
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

  it(`${GATEWAYS} gateways × ${CALLS_EACH} concurrent calls: the overshoot is measured, and every gateway converges to the same team total`, async () => {
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
    // Each gateway enforces the cap against the total it last read, so N gateways bursting at once can reach N × the cap.
    assert.ok(total <= cap * BigInt(GATEWAYS), "the overshoot stays within (gateways - 1) × the cap");
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
});
