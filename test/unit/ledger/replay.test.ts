// The ledger's replay on open: what a restart charges for calls the gateway never settled, and that settled days are never counted twice.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Journal } from "../../../server/ledger/journal";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, JournalEntry, ReserveEntry } from "../../../server/ledger/types";

const TZ = "Europe/Paris";

function reserve(id: string, at: string, worst: string, o: Partial<ReserveEntry> = {}): ReserveEntry {
  return { type: "reserve", id, at, user: "ana", tool: "aws-cli", operation: "ConverseStream", modelId: "us.anthropic.claude-x", baseModelId: "anthropic.claude-x", worstCasePicos: worst, capIds: ["d"], ...o };
}

function call(id: string, at: string, costPicos: string): CallRecord {
  return {
    type: "settle", id, at, startedAt: at, user: "ana", tool: "aws-cli", operation: "Converse", modelId: "m1", baseModelId: "m1",
    usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos, worstCasePicos: "9000", outcome: "ok", status: 200, latencyMs: 12, tags: {},
  };
}

async function settles(dir: string): Promise<CallRecord[]> {
  const j = await Journal.open(dir);
  const out: JournalEntry[] = [];
  for await (const e of j.read()) out.push(e);
  await j.close();
  return out.filter((e): e is CallRecord => e.type === "settle");
}

describe("ledger: replay on open", () => {
  let dir: string;
  let clock: Date;
  const open = () => Ledger.open(dir, { now: () => clock, timeZone: TZ });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-replay-"));
    clock = new Date("2026-11-22T10:00:00.000Z");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("charges every call left open by a crash its worst case, oldest first, with a record that says why", async () => {
    const l1 = await open();
    await l1.reserve(reserve("late", "2026-11-22T09:30:00.000Z", "777000"));
    await l1.reserve(reserve("early", "2026-11-22T09:00:00.000Z", "120000", { baseModelId: undefined, modelId: "amazon.nova-pro-v1:0", operation: "InvokeModel" }));
    await l1.journal.close(); // the crash: neither call settled

    clock = new Date("2026-11-22T11:00:00.000Z");
    const l2 = await open();
    const written = await settles(dir);
    assert.deepEqual(written.map((s) => s.id), ["early", "late"]);
    assert.deepEqual(written[0], {
      type: "settle",
      id: "early",
      at: "2026-11-22T11:00:00.000Z",
      startedAt: "2026-11-22T09:00:00.000Z",
      user: "ana",
      tool: "aws-cli",
      operation: "InvokeModel",
      modelId: "amazon.nova-pro-v1:0",
      baseModelId: "amazon.nova-pro-v1:0", // the reserve named no base model: the model id stands for it
      usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
      usageEstimated: true,
      costPicos: "120000",
      worstCasePicos: "120000",
      outcome: "interrupted",
      status: 0,
      latencyMs: 0,
      tags: {},
      message: "the gateway stopped before this call settled; charged its worst case",
    });
    assert.equal(written[1]!.baseModelId, "anthropic.claude-x");
    assert.equal(written[1]!.costPicos, "777000");
    assert.deepEqual(l2.todayTotals(clock), {
      calls: 2,
      costPicos: 897000n,
      byModel: { "amazon.nova-pro-v1:0": { calls: 1, costPicos: 120000n }, "anthropic.claude-x": { calls: 1, costPicos: 777000n } },
    });
    await l2.close();
  });

  it("a clean restart counts every day once: days older than the snapshot's margin are not added again", async () => {
    const l1 = await open();
    await l1.settle(call("mon", "2026-11-16T10:00:00.000Z", "100"));
    await l1.settle(call("sat", "2026-11-21T10:00:00.000Z", "200"));
    await l1.settle(call("sun", "2026-11-22T09:00:00.000Z", "400"));
    await l1.close();
    const days = (l: Ledger) => Object.fromEntries(Object.entries(l.rollups()).map(([d, byModel]) => [d, byModel.m1!.costPicos]));
    const expected = { "2026-11-16": "100", "2026-11-21": "200", "2026-11-22": "400" };
    for (const at of ["2026-11-22T10:00:00.000Z", "2026-11-22T10:05:00.000Z"]) {
      clock = new Date(at);
      const l = await open();
      assert.deepEqual(days(l), expected);
      assert.deepEqual(l.todayTotals(clock), { calls: 1, costPicos: 400n, byModel: { m1: { calls: 1, costPicos: 400n } } });
      await l.close();
    }
    // Recent calls still list all three, newest first.
    const l = await open();
    assert.deepEqual((await l.recentCalls({ limit: 10 })).calls.map((c) => c.id), ["sun", "sat", "mon"]);
    await l.close();
  });
});
