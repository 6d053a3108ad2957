// What a restart charges for journal lines it cannot trust: the labels and the largest amount still readable, never less.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord } from "../../../server/ledger/types";

describe("ledger: salvaging invalid journal lines", () => {
  let dir: string;
  const clock = new Date("2026-11-22T12:00:00.000Z");

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-salvage-"));
    await mkdir(path.join(dir, "journal"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function interruptedAfter(lines: unknown[]): Promise<CallRecord[]> {
    await writeFile(path.join(dir, "journal", "2026-11.jsonl"), lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n");
    const l = await Ledger.open(dir, { now: () => clock, timeZone: "UTC" });
    const calls = (await l.recentCalls({ limit: 50, outcome: "interrupted" })).calls;
    await l.close();
    return calls.sort((a, b) => a.costPicos.localeCompare(b.costPicos, "en", { numeric: true }));
  }

  it("keeps every label it can read and charges the larger of the two amounts it names", async () => {
    const [c] = await interruptedAfter([
      { type: "settle", id: "s1", at: "not-a-date", startedAt: "2026-11-22T08:00:00.000Z", user: "ana", tool: "boto3", operation: "ConverseStream", modelId: "us.m1", baseModelId: "m1", costPicos: "900", worstCasePicos: 5000 },
    ]);
    assert.ok(c);
    const { id, at, startedAt, user, tool, operation, modelId, baseModelId, costPicos, worstCasePicos, outcome, message } = c;
    assert.deepEqual(
      { id, at, startedAt, user, tool, operation, modelId, baseModelId, costPicos, worstCasePicos, outcome, message },
      {
        id: "s1", at: "2026-11-22T12:00:00.000Z", startedAt: "2026-11-22T08:00:00.000Z", user: "ana", tool: "boto3", operation: "ConverseStream",
        modelId: "us.m1", baseModelId: "m1", costPicos: "5000", worstCasePicos: "5000", outcome: "interrupted",
        message: "its journal line was invalid and was moved aside; charged the largest amount it named",
      },
    );
  });

  it("marks what it cannot read, takes `at` when there is no start, and reads amounts only as whole non-negative numbers", async () => {
    const calls = await interruptedAfter([
      { type: "settle", id: "s2", at: "2026-11-22T07:00:00Z", user: "", tool: 5, operation: "Summon", modelId: "", costPicos: "12abc", worstCasePicos: "300" },
      { type: "settle", id: "s3", at: "2026-11-22T07:30:00.000Z", startedAt: "never", costPicos: -5, worstCasePicos: 1.5 * 1000 + 0.5 },
      { type: "settle", id: "s4", at: "2026-11-22T07:40:00.000Z", startedAt: "never", costPicos: "70", worstCasePicos: "x70" },
    ]);
    assert.deepEqual(calls.map((c) => [c.id, c.costPicos]), [["s4", "70"], ["s2", "300"]]); // s3 names no readable amount
    const s2 = calls.find((c) => c.id === "s2")!;
    assert.deepEqual([s2.startedAt, s2.user, s2.tool, s2.operation, s2.modelId, s2.baseModelId], ["2026-11-22T07:00:00.000Z", "(unreadable)", "(unreadable)", "InvokeModel", "(unreadable)", "(unreadable)"]);
    const s4 = calls.find((c) => c.id === "s4")!;
    assert.equal(s4.startedAt, "2026-11-22T07:40:00.000Z");
  });

  it("an invalid line that raises its own open reservation charges the higher amount once; a lower one changes nothing", async () => {
    const reserve = (id: string, worst: string) => ({ type: "reserve", id, at: "2026-11-22T09:00:00.000Z", user: "u", tool: "cli", operation: "Converse", modelId: "m1", worstCasePicos: worst, capIds: ["d"] });
    const calls = await interruptedAfter([
      reserve("up", "1000"),
      { ...reserve("up", "8000"), at: "bad" }, // same call, invalid line naming more
      reserve("down", "6000"),
      { ...reserve("down", "10"), at: "bad" },
      reserve("same", "400"),
      { ...reserve("same", "400"), at: "bad" },
    ]);
    assert.deepEqual(calls.map((c) => [c.id, c.costPicos, c.message]), [
      ["same", "400", "the gateway stopped before this call settled; charged its worst case"],
      ["down", "6000", "the gateway stopped before this call settled; charged its worst case"],
      ["up", "8000", "the gateway stopped before this call settled; charged its worst case"],
    ]);
  });

  it("lines that are not objects, or name no amount, cost nothing more and do not stop the start", async () => {
    const calls = await interruptedAfter(["[1,2]", "null", '"text"', "{broken", { type: "settle", id: "z", at: "bad" }]);
    assert.deepEqual(calls, []);
  });
});
