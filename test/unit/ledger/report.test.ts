/** The CSV export (report and dashboard): cells a spreadsheet would run as formulas are defused. */
import assert from "node:assert/strict";
import { CSV_COLUMNS, monthRange, MONTH_PATTERN, parseRange, toCsv } from "../../../server/ledger/report";
import type { CallRecord } from "../../../server/ledger/types";

function call(o: Partial<CallRecord>): CallRecord {
  return {
    type: "settle", id: "c1", at: "2026-11-22T10:00:00.000Z", startedAt: "2026-11-22T10:00:00.000Z", user: "u", tool: "cli",
    operation: "Converse", modelId: "us.m1", baseModelId: "m1",
    usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1000", worstCasePicos: "5000", outcome: "ok", status: 200, latencyMs: 12, tags: {}, ...o,
  };
}

describe("ledger/report: CSV export", () => {
  it("defuses cells starting with -, tab and CR (as well as =, + and @), and leaves numbers alone", () => {
    const csv = toCsv([
      call({ tool: "-2+3+cmd|' /C calc'!A0", user: "\t=1+1", requestId: "\r=HYPERLINK(\"x\")", modelId: "=SUM(A1)", baseModelId: "+1+1", serviceTier: "@x", latencyMs: -5 }),
    ]);
    const [, row] = csv.split("\n");
    const cells = row!.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, ""));
    const col = (name: string) => cells[["at", "startedAt", "user", "tool", "operation", "modelId", "baseModelId", "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWrite5mInputTokens", "cacheWrite1hInputTokens", "costUsd", "worstCaseUsd", "usageEstimated", "outcome", "status", "refusedBy", "requestId", "latencyMs", "serviceTier", "tags"].indexOf(name)]!;
    assert.equal(col("tool"), "'-2+3+cmd|' /C calc'!A0");
    assert.equal(col("user"), "'\t=1+1");
    assert.equal(col("requestId"), '"\'\r=HYPERLINK(""x"")"');
    assert.equal(col("modelId"), "'=SUM(A1)");
    assert.equal(col("baseModelId"), "'+1+1");
    assert.equal(col("serviceTier"), "'@x");
    assert.equal(col("latencyMs"), "-5", "a plain negative number stays a number");
    assert.equal(col("costUsd"), "0.000000001");
  });

  it("says who called, which model answered a downgraded call and what each cap did to it", () => {
    const csv = toCsv([
      call({
        caller: "AKIAEXAMPLE", callerProfile: "staging", modelId: "us.sonnet", answeredBy: "us.haiku",
        actions: [{ capId: "daily", action: "downgrade", detail: "us.sonnet -> us.haiku" }, { capId: "soft", action: "warn", detail: "past its limit" }],
      }),
      call({ id: "c2" }),
    ]);
    const [head, first, second] = csv.split("\n");
    assert.equal(head, CSV_COLUMNS.join(","));
    const cells = first!.split(",");
    const col = (name: (typeof CSV_COLUMNS)[number]) => cells[CSV_COLUMNS.indexOf(name)];
    assert.deepEqual([col("caller"), col("callerProfile"), col("modelId"), col("answeredBy")], ["AKIAEXAMPLE", "staging", "us.sonnet", "us.haiku"]);
    assert.equal(col("actions"), "daily:downgrade:us.sonnet -> us.haiku;soft:warn:past its limit");
    assert.deepEqual(second!.split(",").slice(-4), ["", "", "", ""], "a plain call leaves them empty");
    assert.deepEqual(CSV_COLUMNS.slice(0, 3), ["at", "startedAt", "user"], "the first columns keep their places");
  });
});

describe("ledger/report: --from/--to times", () => {
  const now = new Date("2026-12-03T06:00:00Z");

  it("refuses an ISO time on a day the calendar lacks (April 31, February 30) instead of reporting from the day after", () => {
    assert.equal(parseRange("2026-04-31T00:00:00+09:00", undefined, "Asia/Tokyo", now), '--from "2026-04-31T00:00:00+09:00" is not a calendar date');
    assert.equal(parseRange("2026-02-01", "2026-02-30T10:00:00Z", "UTC", now), '--to "2026-02-30T10:00:00Z" is not a calendar date');
    const end = parseRange("2026-02-28T00:00:00Z", "2026-02-28T24:00:00Z", "UTC", now);
    assert.ok(typeof end !== "string" && end.to.toISOString() === "2026-03-01T00:00:00.000Z", "24:00 is the end of a real day: still accepted");
  });

  it("refuses a date with a year before 1970 (a year 0026 is not read as 1926)", () => {
    assert.equal(parseRange("0026-11-01", undefined, "UTC", now), '--from "0026-11-01" is before 1970, when no call can have been made (a mistyped year?)');
    assert.equal(parseRange(undefined, "0099-12-31", "UTC", now, ""), 'to "0099-12-31" is before 1970, when no call can have been made (a mistyped year?)');
    assert.equal(parseRange("0026-11-01T00:00:00Z", undefined, "UTC", now), '--from "0026-11-01T00:00:00Z" is before 1970, when no call can have been made (a mistyped year?)');
    assert.equal(MONTH_PATTERN.test("0026-11"), false, "--month 0026-11 is refused, not read as 1926-11");
    assert.throws(() => monthRange("1969-12", "UTC"), /month must be YYYY-MM/);
    assert.equal(MONTH_PATTERN.test("1970-01") && MONTH_PATTERN.test("2026-11"), true);
    const ok = parseRange("1970-01-01", undefined, "UTC", now);
    assert.ok(typeof ok !== "string" && ok.from.toISOString() === "1970-01-01T00:00:00.000Z");
  });
});

describe("ledger/report: CSV export of a call's attached guardrail", () => {
  const col = (line: string, name: (typeof CSV_COLUMNS)[number]) => line.split(",")[CSV_COLUMNS.indexOf(name)];

  it("carries the guardrail's part of the cost, its policy units and whether they were estimated, in columns appended after the old ones", () => {
    const csv = toCsv([
      call({ costPicos: "5000000000", worstCasePicos: "9000000000", guardrail: { id: "gr-1", costPicos: "1500000000", worstCasePicos: "3000000000", units: 6, unitsEstimated: true } }),
      call({ id: "c2", costPicos: "5000000000", worstCasePicos: "9000000000", guardrail: { id: "gr-1", costPicos: "450000000", worstCasePicos: "3000000000", units: 3, unitsEstimated: false } }),
      call({ id: "c3" }),
    ]);
    const [head, estimated, reported, plain] = csv.split("\n");
    assert.deepEqual(head!.split(",").slice(-3), ["guardrailCostUsd", "guardrailUnits", "guardrailEstimated"]);
    assert.deepEqual(CSV_COLUMNS.slice(22, 26), ["caller", "callerProfile", "answeredBy", "actions"], "earlier columns keep their places");
    assert.deepEqual([col(estimated!, "costUsd"), col(estimated!, "guardrailCostUsd"), col(estimated!, "guardrailUnits"), col(estimated!, "guardrailEstimated")], ["0.005", "0.0015", "6", "true"]);
    assert.equal(col(estimated!, "usageEstimated"), "false", "the tokens were reported; only the guardrail's units were estimated");
    assert.deepEqual([col(reported!, "guardrailCostUsd"), col(reported!, "guardrailUnits"), col(reported!, "guardrailEstimated")], ["0.00045", "3", "false"]);
    assert.deepEqual(plain!.split(",").slice(-3), ["", "", ""], "a call without a guardrail leaves them empty");
  });

  it("leaves the columns empty for a guardrail part that is not well formed (a hand-edited journal line) instead of failing the export", () => {
    const bad = [
      { id: "gr", costPicos: "-1", worstCasePicos: "1", units: 1, unitsEstimated: false },
      { id: "gr", costPicos: "999999999999", worstCasePicos: "1", units: 1, unitsEstimated: false }, // more than the call cost
      { id: "gr", costPicos: "1", worstCasePicos: "1", units: 1.5, unitsEstimated: false },
      "gr-1",
      null,
    ];
    const csv = toCsv(bad.map((g, i) => call({ id: `b${i}`, guardrail: g as never })));
    for (const line of csv.split("\n").slice(1, -1)) assert.deepEqual(line.split(",").slice(-3), ["", "", ""], line);
  });
});
