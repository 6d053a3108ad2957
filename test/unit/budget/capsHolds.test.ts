// Caps over the personal and team stores: what a call is held, grown, settled, released and refused for, and what a journal replay charges.
import assert from "node:assert/strict";
import { Caps, LocalCapStore, type StoreReserveRequest, type StoreReserveResult } from "../../../server/budget/caps";
import { BudgetEngine } from "../../../server/budget/engine";
import type { SettledCall } from "../../../server/budget/replay";
import type { CapConfig } from "../../../server/config/schema";
import { usdToPicos } from "../../../server/metering/money";

const NOW = new Date("2026-11-22T11:00:00Z");
const NOVA = "amazon.nova-lite-v1:0";
const store = (caps: CapConfig[], zone = "UTC") => new LocalCapStore(new BudgetEngine(caps, zone), () => zone, () => NOW);
const call = (callId: string, usd: number, modelId = NOVA, baseModelId?: string) => ({ callId, modelId, ...(baseModelId ? { baseModelId } : {}), amount: usdToPicos(usd), now: NOW });
const settled = (id: string, usd: number, startedAt = NOW.toISOString()): SettledCall => ({ id, modelId: NOVA, costPicos: String(usdToPicos(usd)), startedAt });
const figures = (caps: Caps) => caps.status(NOW).map((s) => [s.id, s.spentPicos, s.reservedPicos]);
/** Lets the team store's asynchronous answer to a growth arrive (it resolves on the microtask queue). */
const teamAnswered = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A team store that cannot be reached: its reserve throws, as the Redis store's does when the connection drops mid-call. */
class UnreachableTeam extends LocalCapStore {
  override reserve(): Promise<StoreReserveResult> {
    return Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379"));
  }
}

/** A team store that admits without checking (teamUnavailable: "personalOnly" while it is down). */
class PersonalOnlyTeam extends LocalCapStore {
  override async reserve(req: StoreReserveRequest): Promise<StoreReserveResult> {
    return { ok: true, capIds: req.capIds, unchecked: true };
  }
}

describe("budget/caps: holds, growth, settlement, replay", () => {
  it("a personal refusal says which cap, what it holds and when it resets, in the configured zone, and leaves the team store untouched", async () => {
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 1 }], "Europe/Paris"), store([{ id: "team", scope: "team", window: "day", limitUsd: 100 }]));
    const r = await caps.reserve(call("big", 2));
    assert.ok(!r.ok);
    assert.equal(r.capId, "mine");
    assert.equal(
      r.message,
      'Bedrock Budget refused this call: it could cost up to $2.00, and cap "mine" (personal, day) has $0.00 spent and $0.00 reserved of $1.00. The cap resets at 2026-11-23 00:00 Europe/Paris.',
    );
    assert.deepEqual(figures(caps), [["mine", 0n, 0n], ["team", 0n, 0n]]);
  });

  it("a team refusal names the team cap", async () => {
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }]), store([{ id: "team", scope: "team", window: "month", limitUsd: 1 }]));
    const r = await caps.reserve(call("big", 3));
    assert.ok(!r.ok);
    assert.equal(r.capId, "team");
    assert.match(r.message, /cap "team" \(team, month\)/);
    assert.deepEqual(figures(caps), [["mine", 0n, 0n], ["team", 0n, 0n]]);
  });

  it("a cap scoped to a base model applies to a call through an inference profile ARN that resolves to it", async () => {
    const caps = new Caps(store([{ id: "nova", scope: "personal", window: "day", limitUsd: 1, model: "amazon.nova-*" }]));
    const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123";
    const r = await caps.reserve(call("p", 2, arn, NOVA));
    assert.ok(!r.ok, "the $1 cap on amazon.nova-* refuses a $2 call on a profile of Nova Lite");
    assert.equal(r.capId, "nova");
  });

  it("a team store that throws fails the call and gives the personal hold back", async () => {
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }]), new UnreachableTeam(new BudgetEngine([{ id: "team", scope: "team", window: "day", limitUsd: 10 }], "UTC"), () => "UTC", () => NOW));
    await assert.rejects(caps.reserve(call("x", 4)), /ECONNREFUSED/);
    assert.deepEqual(figures(caps), [["mine", 0n, 0n], ["team", 0n, 0n]]);
  });

  it("a team store that cannot answer does not matter to a call no team cap applies to", async () => {
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }]), new UnreachableTeam(new BudgetEngine([{ id: "team-claude", scope: "team", window: "day", limitUsd: 10, model: "anthropic.*" }], "UTC"), () => "UTC", () => NOW));
    const r = await caps.reserve(call("nova", 4));
    assert.ok(r.ok);
    assert.deepEqual(r.capIds, ["mine"]);
    assert.equal(r.team, undefined);
  });

  it("grows a stream on both stores; a team refusal of the growth is heard asynchronously, a personal one at once", async () => {
    const team = store([{ id: "team", scope: "team", window: "day", limitUsd: 3 }]);
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 5 }]), team);
    const held = await caps.reserve(call("s", 1));
    assert.ok(held.ok);
    const heard: string[] = [];
    assert.deepEqual(caps.grow("s", held, usdToPicos(1.5), NOW, (m) => heard.push(m)), { ok: true });
    await teamAnswered();
    assert.equal(heard.length, 0, "the team store admitted the growth");
    assert.deepEqual(figures(caps), [["mine", 0n, usdToPicos(2.5)], ["team", 0n, usdToPicos(2.5)]]);

    // $1 more passes the personal cap ($3.5 of $5) but not the team's ($3.5 of $3).
    assert.deepEqual(caps.grow("s", held, usdToPicos(1), NOW, (m) => heard.push(m)), { ok: true });
    await teamAnswered();
    assert.equal(heard.length, 1);
    assert.match(heard[0]!, /cap "team" \(team, day\) has \$0\.00 spent and \$2\.50 reserved of \$3\.00/);

    // $2 more is past the personal cap: refused now, and the team store is not asked.
    const r = caps.grow("s", held, usdToPicos(2), NOW, (m) => heard.push(m));
    assert.ok(!r.ok);
    assert.match(r.message, /cap "mine" \(personal, day\) has \$0\.00 spent and \$3\.50 reserved of \$5\.00/);
    await teamAnswered();
    assert.equal(heard.length, 1);
    assert.deepEqual(figures(caps), [["mine", 0n, usdToPicos(3.5)], ["team", 0n, usdToPicos(2.5)]]);
  });

  it("settles what the call cost on both stores, and releases a call never forwarded on both", async () => {
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }]), store([{ id: "team", scope: "team", window: "day", limitUsd: 10 }]));
    const a = await caps.reserve(call("a", 2));
    const b = await caps.reserve(call("b", 3));
    assert.ok(a.ok && b.ok);
    caps.settle(settled("a", 0.75), a);
    caps.release("b", b);
    await teamAnswered();
    assert.deepEqual(figures(caps), [["mine", usdToPicos(0.75), 0n], ["team", usdToPicos(0.75), 0n]]);
  });

  it("a call admitted without the team store holds nothing there, and is still booked on it when it settles", async () => {
    const team = new PersonalOnlyTeam(new BudgetEngine([{ id: "team", scope: "team", window: "day", limitUsd: 10 }], "UTC"), () => "UTC", () => NOW);
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }]), team);
    const r = await caps.reserve(call("u", 2));
    assert.ok(r.ok);
    assert.deepEqual(r.capIds, ["mine", "team"]);
    assert.equal(r.team, undefined, "no team hold to grow or release");
    assert.deepEqual(figures(caps), [["mine", 0n, usdToPicos(2)], ["team", 0n, 0n]]);
  });

  it("replays the journal from the earliest window start: this month's calls count on the month cap, today's on both", async () => {
    const caps = new Caps(store([
      { id: "today", scope: "personal", window: "day", limitUsd: 10 },
      { id: "november", scope: "personal", window: "month", limitUsd: 100 },
    ]));
    const asked: string[] = [];
    const journal = [settled("nov-3", 4, "2026-11-03T10:00:00Z"), settled("oct-31", 8, "2026-10-31T23:00:00Z"), settled("today", 1, "2026-11-22T08:00:00Z")];
    async function* since(from: Date) {
      asked.push(from.toISOString());
      for (const c of journal) if (Date.parse(c.startedAt) >= from.getTime()) yield c;
    }
    await caps.replay(since);
    assert.deepEqual(asked, ["2026-11-01T00:00:00.000Z"]);
    assert.deepEqual(figures(caps), [["today", usdToPicos(1), 0n], ["november", usdToPicos(5), 0n]]);
  });

  it("a replay limited to new caps charges only those, from their own window start", async () => {
    const caps = new Caps(store([
      { id: "november", scope: "personal", window: "month", limitUsd: 100 },
      { id: "new-today", scope: "personal", window: "day", limitUsd: 10 },
    ]));
    const asked: string[] = [];
    async function* since(from: Date) {
      asked.push(from.toISOString());
      yield settled("today", 2, "2026-11-22T08:00:00Z");
    }
    await caps.replay(since, new Set(["new-today"]));
    assert.deepEqual(asked, ["2026-11-22T00:00:00.000Z"]);
    assert.deepEqual(figures(caps), [["november", 0n, 0n], ["new-today", usdToPicos(2), 0n]]);
  });

  it("a replay leaves out the calls it is told count live (running when the cap came), and charges the rest", async () => {
    const caps = new Caps(store([{ id: "new-today", scope: "personal", window: "day", limitUsd: 10 }]));
    async function* since() {
      yield settled("before", 2, "2026-11-22T08:00:00Z");
      yield settled("running", 3, "2026-11-22T10:59:00Z");
    }
    await caps.replay(since, new Set(["new-today"]), new Set(["running"]));
    assert.deepEqual(figures(caps), [["new-today", usdToPicos(2), 0n]]);
  });

  it("replays from the earliest window start whatever the order of the caps", async () => {
    const caps = new Caps(store([
      { id: "november", scope: "personal", window: "month", limitUsd: 100 },
      { id: "today", scope: "personal", window: "day", limitUsd: 10 },
    ]));
    const asked: string[] = [];
    async function* since(from: Date) {
      asked.push(from.toISOString());
      if (Date.parse("2026-11-03T10:00:00Z") >= from.getTime()) yield settled("nov-3", 4, "2026-11-03T10:00:00Z");
    }
    await caps.replay(since);
    assert.deepEqual(asked, ["2026-11-01T00:00:00.000Z"]);
    assert.deepEqual(figures(caps), [["november", usdToPicos(4), 0n], ["today", 0n, 0n]]);
  });
});
