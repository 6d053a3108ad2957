/** The chargeback totals alone (pure): every dimension, exact money, tag groups, missing caller. */
import assert from "node:assert/strict";
import { chargeback, printable, rowsOf } from "../../../server/ledger/chargeback";
import { totalsCsv } from "../../../server/ledger/report";
import type { CallRecord } from "../../../server/ledger/types";

let n = 0;
function call(o: Partial<CallRecord> & { input?: number; output?: number }): CallRecord {
  const { input = 10, output = 5, ...rest } = o;
  return {
    type: "settle", id: `c${++n}`, at: "2026-11-22T10:00:00.000Z", startedAt: "2026-11-22T10:00:00.000Z", user: "ana", tool: "boto3",
    operation: "Converse", modelId: "us.m1", baseModelId: "m1",
    usage: { inputTokens: input, outputTokens: output, cacheReadInputTokens: 1, cacheWrite5mInputTokens: 2, cacheWrite1hInputTokens: 3 },
    usageEstimated: false, costPicos: "100000000000", worstCasePicos: "500000000000", outcome: "ok", status: 200, latencyMs: 12, tags: {}, ...rest,
  };
}

describe("ledger/chargeback: totals", () => {
  const calls = [
    call({ user: "ana", baseModelId: "m1", tool: "boto3", caller: "AKIA1", tags: { project: "chatbot", team: "support" }, costPicos: "100000000000", input: 100, output: 10 }), // $0.10
    call({ user: "ana", baseModelId: "m2", tool: "aws-cli", caller: "AKIA1", tags: { project: "chatbot" }, costPicos: "200000000000", input: 200, output: 20 }), // $0.20
    call({ user: "bob", baseModelId: "m1", tool: "boto3", tags: {}, costPicos: "1", input: 1, output: 1 }), // one pico-dollar, no caller
    call({ user: "bob", baseModelId: "m1", tool: "boto3", caller: "apikey:0123456789abcdef", outcome: "refused", costPicos: "0", input: 0, output: 0, tags: { project: "search" } }),
  ];
  const report = chargeback(calls);
  const row = (dimension: string, key: string) => report.groups.find((g) => g.dimension === dimension && g.key === key);

  it("totals every call exactly: $0.10 + $0.20 + one pico-dollar is 0.300000000001, not a float", () => {
    assert.equal(report.total.calls, 3, "calls sent, as the status counts them");
    assert.equal(report.total.stopped, 1, "the refused attempt, counted apart");
    assert.equal(report.total.costPicos, 300_000_000_001n);
    assert.equal(printable(rowsOf(report)[0]!).costUsd, "0.300000000001");
    assert.equal(report.total.inputTokens, 301);
    assert.equal(report.total.outputTokens, 31);
    assert.equal(report.total.cacheReadInputTokens, 4);
    assert.equal(report.total.cacheWriteInputTokens, 20, "5-minute and 1-hour writes together");
  });

  it("groups by user, base model, tool and caller; each dimension adds up to the total", () => {
    assert.deepEqual([row("user", "ana")!.calls, row("user", "ana")!.costPicos], [2, 300_000_000_000n]);
    assert.deepEqual([row("user", "bob")!.calls, row("user", "bob")!.stopped, row("user", "bob")!.costPicos], [1, 1, 1n]);
    assert.equal(row("model", "m2")!.inputTokens, 200);
    assert.equal(row("tool", "aws-cli")!.outputTokens, 20);
    assert.equal(row("caller", "AKIA1")!.calls, 2);
    assert.equal(row("caller", "(unknown)")!.calls, 1, "a call recorded before callers were known");
    assert.deepEqual([row("caller", "apikey:0123456789abcdef")!.calls, row("caller", "apikey:0123456789abcdef")!.stopped], [0, 1]);
    for (const d of ["user", "model", "tool", "caller"]) {
      const groups = report.groups.filter((g) => g.dimension === d);
      assert.equal(groups.reduce((s, g) => s + g.costPicos, 0n), report.total.costPicos, d);
      assert.equal(groups.reduce((s, g) => s + g.calls, 0), report.total.calls, d);
      assert.equal(groups.reduce((s, g) => s + g.stopped, 0), report.total.stopped, d);
    }
  });

  it("groups by each tag value; a call with two tags counts under both, untagged calls under (untagged)", () => {
    assert.deepEqual([row("tag", "project=chatbot")!.calls, row("tag", "project=chatbot")!.costPicos], [2, 300_000_000_000n]);
    assert.equal(row("tag", "team=support")!.costPicos, 100_000_000_000n);
    assert.equal(row("tag", "project=search")!.stopped, 1);
    assert.equal(row("tag", "(untagged)")!.calls, 1);
  });

  it("lists each dimension dearest first", () => {
    assert.deepEqual(report.groups.filter((g) => g.dimension === "model").map((g) => g.key), ["m2", "m1"]);
  });

  it("prints CSV with the total first, money exact, formula cells defused", () => {
    const csv = totalsCsv(chargeback([call({ user: "=HYPERLINK(1)", costPicos: "1234500000000" })]));
    const lines = csv.trim().split("\n");
    assert.equal(lines[0], "dimension,key,calls,inputTokens,outputTokens,cacheReadInputTokens,cacheWriteInputTokens,costUsd,stopped", "stopped appended last");
    assert.equal(lines[1], "total,,1,10,5,1,5,1.2345,0");
    assert.ok(lines.includes("user,'=HYPERLINK(1),1,10,5,1,5,1.2345,0"), csv);
  });

  it("by model, a guardrail attached to a call counts under the guardrail (beside its ApplyGuardrail calls), the rest under the model; the total is unchanged", () => {
    const part = { id: "gr-1", costPicos: "30000000000", worstCasePicos: "90000000000", units: 60, unitsEstimated: false }; // $0.03 of the call's $0.10
    const calls = [
      call({ baseModelId: "m1", costPicos: "100000000000", guardrail: part }),
      call({ operation: "ApplyGuardrail", modelId: "guardrail/gr-1", baseModelId: "guardrail/gr-1", costPicos: "5000000000", input: 0, output: 0 }), // $0.005
      call({ baseModelId: "m2", costPicos: "100000000000", guardrail: { ...part, id: "gr-2", costPicos: "0" } }), // a guardrail that cost nothing
      call({ baseModelId: "m3", costPicos: "100000000000", guardrail: { ...part, costPicos: "200000000000" } }), // larger than the call: not trusted
    ];
    const r = chargeback(calls);
    const model = (key: string) => r.groups.find((g) => g.dimension === "model" && g.key === key);
    assert.deepEqual([model("m1")!.calls, model("m1")!.inputTokens, model("m1")!.costPicos], [1, 10, 70_000_000_000n], "the call and its tokens stay with its model");
    assert.deepEqual([model("guardrail/gr-1")!.calls, model("guardrail/gr-1")!.inputTokens, model("guardrail/gr-1")!.costPicos], [1, 0, 35_000_000_000n], "the attached part beside the ApplyGuardrail call");
    assert.equal(model("guardrail/gr-2"), undefined, "no row for a part of $0");
    assert.equal(model("m2")!.costPicos, 100_000_000_000n);
    assert.equal(model("m3")!.costPicos, 100_000_000_000n, "a part the record cannot hold stays with the model");
    assert.equal(r.total.costPicos, 305_000_000_000n);
    const models = r.groups.filter((g) => g.dimension === "model");
    assert.equal(models.reduce((s, g) => s + g.costPicos, 0n), r.total.costPicos, "to the pico-dollar");
    assert.equal(models.reduce((s, g) => s + g.calls, 0), r.total.calls);
    assert.equal(r.groups.find((g) => g.dimension === "user" && g.key === "ana")!.costPicos, r.total.costPicos, "other dimensions count the whole call");
    assert.ok(totalsCsv(r).split("\n").includes("model,guardrail/gr-1,1,0,0,1,5,0.035,0"), totalsCsv(r));
  });

  it("an empty period totals zero", () => {
    const empty = chargeback([]);
    assert.deepEqual([empty.total.calls, empty.total.costPicos, empty.groups.length], [0, 0n, 0]);
  });
});
