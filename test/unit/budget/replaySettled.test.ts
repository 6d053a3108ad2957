// The one journal-replay loop: which settled calls it charges, dated by their start, to which caps, and that it waits for each charge.
import assert from "node:assert/strict";
import { replaySettled, type ReplayedSpend, type SettledCall } from "../../../server/budget/replay";
import { capMatcher } from "../../../server/budget/capMatch";

async function* journal(calls: SettledCall[]): AsyncIterable<SettledCall> {
  for (const c of calls) yield c;
}

const c = (id: string, costPicos: string, o: Partial<SettledCall> = {}): SettledCall => ({ id, modelId: "amazon.nova-lite-v1:0", costPicos, startedAt: "2026-11-21T23:59:30.000Z", ...o });

describe("budget/replay: replaySettled", () => {
  it("charges each call with a cost to the caps that apply, dated by its start (not its settlement), and counts them", async () => {
    const charged: ReplayedSpend[] = [];
    const askedAt: string[] = [];
    const claude = capMatcher("anthropic.*");
    const n = await replaySettled(
      journal([
        c("nova", "1500"),
        c("free", "0"), // a refused call: nothing to charge
        c("profile", "2000", { modelId: "arn:aws:bedrock:us-east-1:1:application-inference-profile/p", baseModelId: "anthropic.claude-3-haiku", startedAt: "2026-11-22T08:00:00.000Z" }),
        c("claude-only", "3000", { modelId: "anthropic.claude-3-haiku" }),
      ]),
      (call, at) => {
        askedAt.push(at.toISOString());
        return [...(claude(call.modelId, call.baseModelId) ? ["claude"] : []), ...(call.modelId.startsWith("amazon.") ? ["nova"] : [])];
      },
      (s) => {
        charged.push(s);
      },
    );
    assert.equal(n, 3);
    assert.deepEqual(charged, [
      { id: "nova", amount: 1500n, at: new Date("2026-11-21T23:59:30.000Z"), capIds: ["nova"] },
      { id: "profile", amount: 2000n, at: new Date("2026-11-22T08:00:00.000Z"), capIds: ["claude"] },
      { id: "claude-only", amount: 3000n, at: new Date("2026-11-21T23:59:30.000Z"), capIds: ["claude"] },
    ]);
    assert.deepEqual(askedAt, ["2026-11-21T23:59:30.000Z", "2026-11-22T08:00:00.000Z", "2026-11-21T23:59:30.000Z"]);
  });

  it("skips calls no cap applies to, and does not count them", async () => {
    const charged: string[] = [];
    const n = await replaySettled(journal([c("a", "10"), c("b", "20", { modelId: "meta.llama3-8b-instruct-v1:0" }), c("c", "30")]), (call) => (call.modelId.startsWith("amazon.") ? ["cap"] : []), (s) => {
      charged.push(s.id);
    });
    assert.equal(n, 2);
    assert.deepEqual(charged, ["a", "c"]);
  });

  it("waits for each charge that returns a promise before it resolves (a store that writes in batches)", async () => {
    const written: string[] = [];
    const n = await replaySettled(journal([c("a", "10"), c("b", "20")]), () => ["cap"], (s) =>
      new Promise<void>((resolve) => setImmediate(() => {
        written.push(s.id);
        resolve();
      })),
    );
    assert.equal(n, 2);
    assert.deepEqual(written, ["a", "b"], "every charge is done when the replay resolves");
  });
});
