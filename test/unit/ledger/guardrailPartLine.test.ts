/** A settled call's journal line whose guardrail part is malformed: quarantined like any other bad field, its money never dropped from the caps. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord, ReserveEntry } from "../../../server/ledger/types";

const AT = "2026-11-22T09:00:00.000Z";

function reserve(id: string, worst: string): ReserveEntry {
  return { type: "reserve", id, at: AT, user: "u", tool: "cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1", worstCasePicos: worst, capIds: ["d"] };
}

function settle(id: string, cost: string, worst: string, guardrail: unknown): CallRecord {
  return {
    type: "settle", id, at: AT, startedAt: AT, user: "u", tool: "cli", operation: "Converse", modelId: "us.m1", baseModelId: "m1",
    usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: cost, worstCasePicos: worst, outcome: "ok", status: 200, latencyMs: 12, tags: {},
    guardrail: guardrail as CallRecord["guardrail"],
  };
}

describe("ledger: a journal line with a malformed guardrail part", () => {
  let dir: string;
  let file: string;
  const clock = new Date("2026-11-22T12:00:00.000Z");
  const part = { id: "gr-1", costPicos: "400", worstCasePicos: "1000", units: 8, unitsEstimated: false };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-guardrail-part-"));
    await mkdir(path.join(dir, "journal"));
    file = path.join(dir, "journal", "2026-11.jsonl");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is moved aside and its call charged the most it could have cost; a well-formed part is kept as written", async () => {
    const bad = JSON.stringify(settle("bad", "900", "5000", { ...part, units: "8" }));
    const orphan = JSON.stringify(settle("orphan", "700", "3000", { ...part, costPicos: "4e2" }));
    const good = settle("good", "900", "5000", part);
    await writeFile(file, [JSON.stringify(reserve("bad", "5000")), bad, JSON.stringify(reserve("good", "5000")), JSON.stringify(good), orphan, ""].join("\n"));

    const ledger = await Ledger.open(dir, { now: () => clock, timeZone: "UTC" });
    try {
      assert.deepEqual(ledger.journal.quarantine, { lines: 2, unknownAmountLines: 0, files: [`${file}.bad`] });
      assert.deepEqual((await readFile(`${file}.bad`, "utf8")).trimEnd().split("\n"), [bad, orphan], "kept byte for byte");
      const byId = new Map((await ledger.recentCalls({ limit: 10 })).calls.map((c) => [c.id, c]));
      // Never below the cost the line names: its reservation's worst case, or its own largest figure.
      assert.deepEqual([byId.get("bad")?.outcome, byId.get("bad")?.costPicos], ["interrupted", "5000"]);
      assert.deepEqual([byId.get("orphan")?.outcome, byId.get("orphan")?.costPicos], ["interrupted", "3000"]);
      assert.deepEqual(byId.get("good"), good);
      assert.equal(ledger.todayTotals(clock).costPicos, 5000n + 3000n + 900n);
    } finally {
      await ledger.close();
    }
  });
});
