import assert from "node:assert/strict";
import { MeterModel, meterView, resetsIn, tightestCap } from "../../../client/statusModel";
import type { CapStatusDto, StatusResponse } from "../../../server/protocol";

function cap(id: string, spentUsd: number, limitUsd: number, window: CapStatusDto["window"] = "day", reservedUsd = 0): CapStatusDto {
  return {
    id, scope: "personal", window, limitUsd, spentUsd, reservedUsd, limitExact: String(limitUsd), spentExact: String(spentUsd), reservedExact: String(reservedUsd),
    windowStart: "2026-11-22T00:00:00.000Z", resetsAt: "2026-11-23T00:00:00.000Z",
  };
}
function status(caps: CapStatusDto[], todayUsd = 0): StatusResponse {
  return { user: "u", endpoint: "http://127.0.0.1:8777", timeZone: "UTC", caps, today: { calls: 3, costUsd: todayUsd, costExact: String(todayUsd) }, todayByModel: {}, inFlight: 0 };
}

describe("status bar meter", () => {
  it("shows spend figures only while the gateway serves: not over a failed or stopped state, not on the minute tick", () => {
    const m = new MeterModel();
    const figures = status([cap("daily", 3.42, 10)]);
    assert.equal(m.onStatus(figures), undefined, "figures before the gateway is ready wait");
    assert.equal(m.onState({ state: "ready", url: "http://127.0.0.1:8777", role: "leader" }), figures, "drawn once it serves");
    assert.equal(m.onTick(), figures, "the tick redraws them while it serves");
    assert.equal(m.onState({ state: "error", message: "the background process stopped" }), undefined, "the state is drawn");
    assert.equal(m.onTick(), undefined, "the tick leaves the error showing");
    const later = status([cap("daily", 4, 10)]);
    assert.equal(m.onStatus(later), undefined, "figures arriving while down are kept, not drawn");
    assert.equal(m.onState({ state: "starting" }), undefined);
    assert.equal(m.onState({ state: "ready", url: "http://127.0.0.1:8777", role: "follower" }), later, "serving again: the newest figures");
  });

  it("shows the tightest cap as spent / limit with its window", () => {
    const view = meterView(status([cap("month", 30, 100, "month"), cap("daily", 3.42, 10)]));
    assert.equal(view.text, "$(pulse) $3.42 / $10.00 today");
    assert.equal(view.severity, "normal");
  });

  it("counts reserved money when choosing the tightest cap", () => {
    assert.equal(tightestCap([cap("a", 5, 10), cap("b", 1, 10, "week", 7)])!.id, "b");
  });

  it("turns warning from 80% and error at 100%", () => {
    assert.equal(meterView(status([cap("d", 7.99, 10)])).severity, "normal");
    assert.equal(meterView(status([cap("d", 8, 10)])).severity, "warning");
    assert.equal(meterView(status([cap("d", 10, 10)])).severity, "error");
  });

  it("shows today's spend when no cap is set", () => {
    assert.equal(meterView(status([], 0.42)).text, "$(pulse) $0.42 today");
  });

  it("lists every cap in the tooltip with spent, reserved, limit and reset, and links to commands", () => {
    const now = new Date("2026-11-22T20:40:00.000Z");
    const tip = meterView(status([cap("daily", 3.42, 10, "day", 0.5), cap("opus", 1, 50, "month")]), now).tooltip;
    assert.match(tip, /\| daily \(personal, day\) \| \$3\.42 \| \$0\.50 \| \$10\.00 \| in 3 h 20 min \|/);
    assert.match(tip, /\| opus \(personal, month\) \| \$1\.00 \| \$0\.00 \| \$50\.00 \|/);
    assert.match(tip, /command:bedrockBudget\.showDashboard/);
  });

  it("words reset times for a person", () => {
    const now = new Date("2026-11-01T00:00:00Z");
    assert.equal(resetsIn(new Date("2026-11-01T00:05:00Z"), now), "in 5 min");
    assert.equal(resetsIn(new Date("2026-11-05T00:00:00Z"), now), "in 4 days");
  });
});

describe("status bar meter: team caps", () => {
  it("marks a team cap and says how fresh the shared figure is", () => {
    const now = new Date("2026-11-22T20:40:12.000Z");
    const team: CapStatusDto = {
      ...cap("team-month", 312, 500, "month"), scope: "team",
      team: { source: "folder", asOf: "2026-11-22T20:40:00.000Z", stale: false },
    };
    const view = meterView(status([team]), now);
    assert.equal(view.text, "$(pulse) team: $312.00 / $500.00 this month");
    assert.match(view.tooltip, /team\\-month \(team, month; team \(folder\), as of 12 s ago\)/);
    const stale = meterView(status([{ ...team, team: { ...team.team!, stale: true } }]), now);
    assert.match(stale.tooltip, /stale: the team ledger is not answering/);
  });
});

describe("status bar meter: blocked by settings", () => {
  it("says every call is refused while a setting that decides money is invalid, and why", () => {
    const view = meterView({ ...status([cap("daily", 1, 10)]), blocked: "Bedrock Budget refuses Bedrock calls until this setting is fixed: bedrockBudget.port: too big." });
    assert.equal(view.severity, "error");
    assert.match(view.text, /refused/);
    assert.match(view.tooltip, /bedrockBudget\.port: too big/);
  });

  it("names what to fix in the bar: settings, unknown team caps or an uncounted ledger, and no cause a gateway did not give", () => {
    const blocked = (blockedBy?: "settings" | "team" | "ledger") => meterView({ ...status([cap("daily", 1, 10)]), blocked: "why", ...(blockedBy ? { blockedBy } : {}) }).text;
    assert.equal(blocked("settings"), "$(error) Bedrock calls refused: settings");
    assert.equal(blocked("team"), "$(error) Bedrock calls refused: team caps unknown");
    assert.equal(blocked("ledger"), "$(error) Bedrock calls refused: ledger not counted");
    assert.equal(blocked(), "$(error) Bedrock calls refused", "an older gateway does not say what from");
    const newer = meterView({ ...status([cap("daily", 1, 10)]), blocked: "why", blockedBy: "quorum" as unknown as "team" }).text;
    assert.equal(newer, "$(error) Bedrock calls refused", "a cause a newer gateway gives and this build does not know is left out");
    const inherited = meterView({ ...status([cap("daily", 1, 10)]), blocked: "why", blockedBy: "toString" as unknown as "team" }).text;
    assert.equal(inherited, "$(error) Bedrock calls refused");
  });
});

describe("status bar meter: quarantined journal lines", () => {
  it("says in the tooltip how many journal lines were moved aside, loudly when an amount is unknown", () => {
    const files = ["/l/journal/2026-11.jsonl.bad", "/l/journal/2026-11.jsonl.bad-unknown-amount"];
    const clean = meterView({ ...status([cap("d", 1, 10)]), journal: { quarantinedLines: 0, unknownAmountLines: 0, quarantineFiles: [] } }).tooltip;
    assert.doesNotMatch(clean, /journal line/);
    const tip = meterView({ ...status([cap("d", 1, 10)]), journal: { quarantinedLines: 3, unknownAmountLines: 1, quarantineFiles: files } }).tooltip;
    assert.match(tip, /⚠️ 3 invalid journal lines moved aside; \*\*1 with an unknown amount: spend may be higher than shown\*\*/);
  });
});

describe("status bar meter: simulate mode", () => {
  it("labels simulated figures in the text and the tooltip, so they are never read as real spend", () => {
    const view = meterView({ ...status([cap("daily", 0.004, 0.01)]), simulated: true });
    assert.equal(view.text, "$(beaker) SIMULATED $0.00 / $0.01 today");
    assert.match(view.tooltip, /\*\*Simulated\*\*.*not AWS/);
    assert.doesNotMatch(meterView(status([cap("daily", 0.004, 0.01)])).text, /SIMULATED/);
  });
});
