/** A call interrupted by a crash keeps who made it and its tags: the restart's `interrupted` record still counts against caller- and tag-scoped caps and reports. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import type { ReserveEntry } from "../../../server/ledger/types";

describe("ledger: an interrupted call keeps its caller", () => {
  let dir: string;
  let clock = new Date("2026-11-22T10:00:00.000Z");
  const open = () => Ledger.open(dir, { now: () => clock, timeZone: "UTC" });
  const reserve = (id: string, extra: Partial<ReserveEntry>): ReserveEntry => ({
    type: "reserve", id, at: "2026-11-22T09:30:00.000Z", user: "u", tool: "cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1", worstCasePicos: "7000", capIds: ["d"], ...extra,
  });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-interrupted-"));
    clock = new Date("2026-11-22T10:00:00.000Z");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("charges the worst case once, with the caller, its profile and the tags the reservation named", async () => {
    const before = await open();
    await before.reserve(reserve("agent-call", { caller: "AKIAAGENT1", callerProfile: "chatbot-agent-001", tags: { project: "chatbot" } }));
    await before.reserve(reserve("plain-call", {}));
    await before.journal.close(); // the crash: no settle, no state flush

    clock = new Date("2026-11-22T11:00:00.000Z");
    const after = await open();
    const calls = (await after.recentCalls({ limit: 10, outcome: "interrupted" })).calls;
    await after.close();
    const agent = calls.find((c) => c.id === "agent-call");
    const plain = calls.find((c) => c.id === "plain-call");
    assert.ok(agent && plain);
    assert.deepEqual([agent.caller, agent.callerProfile, agent.tags, agent.costPicos], ["AKIAAGENT1", "chatbot-agent-001", { project: "chatbot" }, "7000"]);
    assert.equal("caller" in plain, false, "no caller is invented for a call that named none");
    assert.equal("callerProfile" in plain, false);
    assert.deepEqual(plain.tags, {});
  });
});
