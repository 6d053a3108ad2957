// The reason a journal line is refused names the field and the rule, so a quarantined line can be understood.
import assert from "node:assert/strict";
import { checkEntry } from "../../../server/ledger/schema";

describe("ledger: journal line schema reasons", () => {
  const reserve = { type: "reserve", id: "r1", at: "2026-11-22T09:00:00.000Z", user: "u", tool: "cli", operation: "Converse", modelId: "m", worstCasePicos: "5000", capIds: [] };

  it("names the field and the rule it breaks", () => {
    assert.deepEqual(checkEntry({ ...reserve, at: "yesterday-ish" }), { ok: false, reason: "at: must be an ISO time" });
    assert.deepEqual(checkEntry({ ...reserve, worstCasePicos: "12.5" }), { ok: false, reason: "worstCasePicos: must be a whole number of pico-dollars" });
  });

  it("a line that is not an entry at all is named as the line", () => {
    const r = checkEntry(42);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, /^\(line\): ./);
    assert.deepEqual(checkEntry(reserve), { ok: true, entry: reserve });
  });

  it("checks a settled call's guardrail part as every other field it declares, naming the part's field", () => {
    const settle = {
      ...reserve, type: "settle", startedAt: reserve.at, baseModelId: "m",
      usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
      usageEstimated: false, costPicos: "900", worstCasePicos: "5000", outcome: "ok", status: 200, latencyMs: 3, tags: {},
    };
    const part = { id: "gr-1", costPicos: "400", worstCasePicos: "1000", units: 8, unitsEstimated: false };
    assert.deepEqual(checkEntry({ ...settle, guardrail: part }), { ok: true, entry: { ...settle, guardrail: part } });
    assert.deepEqual(checkEntry({ ...settle, guardrail: { ...part, costPicos: "4e2" } }), { ok: false, reason: "guardrail.costPicos: must be a whole number of pico-dollars" });
    assert.deepEqual(checkEntry({ ...settle, guardrail: { ...part, units: -1 } }), { ok: false, reason: "guardrail.units: Too small: expected number to be >=0" });
    assert.deepEqual(checkEntry({ ...settle, guardrail: "gr-1" }), { ok: false, reason: "guardrail: Invalid input: expected object, received string" });
  });

  it("names a nested field by its dotted path", () => {
    assert.deepEqual(checkEntry({ ...reserve, capIds: ["daily", 7] }), { ok: false, reason: "capIds.1: Invalid input: expected string, received number" });
  });
});
