import assert from "node:assert/strict";
import { Caps, LocalCapStore } from "../../../server/budget/caps";
import { BudgetEngine } from "../../../server/budget/engine";
import type { CapConfig } from "../../../server/config/schema";
import { usdToPicos } from "../../../server/metering/money";

const NOW = new Date("2026-11-22T11:00:00Z");
const store = (caps: CapConfig[]) => new LocalCapStore(new BudgetEngine(caps, "UTC"), () => "UTC", () => NOW);
const call = (callId: string, usd: number) => ({ callId, modelId: "amazon.nova-lite-v1:0", amount: usdToPicos(usd), now: NOW });

describe("budget/caps", () => {
  it("reserves on the personal and team caps, or on none: a team refusal releases the personal hold", async () => {
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }]), store([{ id: "team", scope: "team", window: "day", limitUsd: 1 }]));
    const refused = await caps.reserve(call("a", 2));
    assert.equal(refused.ok, false);
    assert.deepEqual(caps.status(NOW).map((s) => [s.id, s.reservedPicos]), [["mine", 0n], ["team", 0n]]);
    const held = await caps.reserve(call("b", 0.5));
    assert.ok(held.ok);
    assert.deepEqual(held.capIds, ["mine", "team"]);
    assert.deepEqual(caps.status(NOW).map((s) => [s.id, s.reservedPicos]), [["mine", usdToPicos(0.5)], ["team", usdToPicos(0.5)]]);
  });

  it("names the caps that apply to a call: personal first, then team, each scoped by its model", () => {
    const caps = new Caps(
      store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }, { id: "opus-only", scope: "personal", window: "day", limitUsd: 10, model: "*opus*" }]),
      store([{ id: "team", scope: "team", window: "day", limitUsd: 1 }]),
    );
    assert.deepEqual(caps.applicable({ modelId: "amazon.nova-lite-v1:0" }), ["mine", "team"]);
    assert.deepEqual(caps.applicable({ modelId: "anthropic.claude-opus-4-v1:0" }), ["mine", "opus-only", "team"]);
    assert.deepEqual(new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }])).applicable({ modelId: "m" }), ["mine"]);
  });

  it("a call held on a team store since replaced (its settings edited while the call ran) is booked on the store in force; the old hold is dropped", async () => {
    class SpyStore extends LocalCapStore {
      readonly settled: string[] = [];
      readonly released: string[] = [];
      override async settle(record: Parameters<LocalCapStore["settle"]>[0]) {
        this.settled.push(record.id);
        return super.settle(record);
      }
      override async release(callId: string) {
        this.released.push(callId);
        return super.release(callId);
      }
    }
    const spy = () => new SpyStore(new BudgetEngine([{ id: "team", scope: "team", window: "day", limitUsd: 10 }], "UTC"), () => "UTC", () => NOW);
    const settled = (id: string) => ({ id, modelId: "amazon.nova-lite-v1:0", costPicos: String(usdToPicos(1)), startedAt: NOW.toISOString() });
    const old = spy();
    const caps = new Caps(store([]), old);
    const held = await caps.reserve(call("running", 2));
    assert.ok(held.ok && held.team === old);
    const current = spy();
    caps.team = current;
    caps.settle(settled("running"), held);
    assert.deepEqual([old.settled, old.released, current.settled], [[], ["running"], ["running"]]);

    // The store that holds it still in force: settled there, nothing released.
    const same = await caps.reserve(call("stays", 2));
    assert.ok(same.ok && same.team === current);
    caps.settle(settled("stays"), same);
    assert.deepEqual([current.settled, current.released], [["running", "stays"], []]);

    // Admitted without a team hold (personalOnly while the store was down): booked on the store in force.
    caps.settle(settled("unchecked"), { capIds: [] });
    assert.deepEqual([current.settled, current.released, old.released], [["running", "stays", "unchecked"], [], ["running"]]);
  });

  it("settles a held call on both stores and replays the journal into the personal caps only", async () => {
    const caps = new Caps(store([{ id: "mine", scope: "personal", window: "day", limitUsd: 10 }]));
    const held = await caps.reserve(call("c", 1));
    assert.ok(held.ok);
    caps.settle({ id: "c", modelId: "amazon.nova-lite-v1:0", costPicos: String(usdToPicos(0.25)), startedAt: NOW.toISOString() }, held);
    async function* journal() {
      yield { id: "old", modelId: "amazon.nova-lite-v1:0", costPicos: String(usdToPicos(3)), startedAt: "2026-11-22T09:00:00Z" };
      yield { id: "free", modelId: "amazon.nova-lite-v1:0", costPicos: "0", startedAt: "2026-11-22T09:00:00Z" };
    }
    await caps.replay(() => journal(), new Set(["mine"]));
    const [mine] = caps.status(NOW);
    assert.equal(mine!.spentPicos, usdToPicos(3.25));
    assert.equal(mine!.reservedPicos, 0n);
  });

  it("replays each journaled call into the caps of its caller and tags only (a restart keeps separate walls separate)", async () => {
    const caps = new Caps(
      store([
        { id: "staging", scope: "personal", window: "day", limitUsd: 5, callers: ["staging"] },
        { id: "prod", scope: "personal", window: "day", limitUsd: 200, callers: ["AKIAPROD"] },
        { id: "chatbot", scope: "personal", window: "day", limitUsd: 50, tags: { project: "chatbot" } },
      ]),
    );
    const settled = (id: string, usd: number, who: { caller: string; callerProfile?: string }, tags: Record<string, string> = {}) => ({
      id, modelId: "amazon.nova-lite-v1:0", costPicos: String(usdToPicos(usd)), startedAt: NOW.toISOString(), ...who, user: "tester", tags,
    });
    async function* journal() {
      yield settled("1", 1, { caller: "AKIASTAGING", callerProfile: "staging" }, { project: "chatbot" });
      yield settled("2", 2, { caller: "AKIAPROD" });
      yield settled("3", 4, { caller: "AKIAOTHER" });
    }
    await caps.replay(() => journal());
    assert.deepEqual(caps.status(NOW).map((s) => [s.id, s.spentPicos]), [["staging", usdToPicos(1)], ["prod", usdToPicos(2)], ["chatbot", usdToPicos(1)]]);
    const refused = await caps.reserve({ ...call("s", 4.5), caller: "AKIASTAGING", callerProfile: "staging" });
    assert.equal(refused.ok, false, "staging's wall holds its replayed spend");
    const admitted = await caps.reserve({ ...call("p", 4.5), caller: "AKIAPROD" });
    assert.deepEqual(admitted.ok && admitted.capIds, ["prod"]);
  });
});
