import assert from "node:assert/strict";
import { validated } from "../../../server/config/load";
import { mergeTeamCaps, parseTeamFile, parseTeamFileText } from "../../../server/team/teamConfig";

describe("team: team.json schema", () => {
  it("accepts a full team file and defaults the scopes", () => {
    const r = parseTeamFile({
      timeZone: "Europe/Paris",
      caps: [{ id: "team-month", window: "month", limitUsd: 500 }],
      tiers: { junior: { caps: [{ window: "day", limitUsd: 5 }] } },
      defaultTier: "junior",
      members: { alice: { caps: [{ id: "alice-opus", window: "day", limitUsd: 20, model: "*opus*" }] } },
      pricing: { "my-model*": { inputPer1M: 1, outputPer1M: 4 } },
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.team.caps[0]!.scope, "team");
    assert.equal(r.team.tiers.junior!.caps[0]!.scope, "personal");
    assert.equal(r.team.members.alice!.caps[0]!.scope, "personal");
  });

  it("names every problem by its key", () => {
    const r = parseTeamFile({
      caps: [{ id: "x", window: "month", limitUsd: -1 }, { id: "x", scope: "personal", window: "day", limitUsd: 1 }],
      extra: 1,
    });
    assert.ok(!r.ok);
    const text = r.errors.join("\n");
    assert.match(text, /^caps\[0\]\.limitUsd: /m);
    assert.match(text, /^caps\[1\]\.scope: .*team cap/m);
    assert.match(text, /extra/);
    // References are checked once the shapes are right.
    const refs = parseTeamFile({ tiers: { a: { caps: [] } }, defaultTier: "nope", members: { bob: { tier: "missing" } } });
    assert.ok(!refs.ok);
    assert.match(refs.errors.join("\n"), /^defaultTier: no tier named "nope"/m);
    assert.match(refs.errors.join("\n"), /^members\.bob\.tier: no tier named "missing"/m);
  });

  it("reports duplicate cap ids and bad JSON", () => {
    const dup = parseTeamFile({ caps: [{ id: "a", window: "day", limitUsd: 1 }, { id: "a", window: "month", limitUsd: 2 }] });
    assert.ok(!dup.ok);
    assert.match(dup.errors[0]!, /^caps\[1\]\.id: two caps have the id "a"/);
    const bad = parseTeamFileText("{ nope");
    assert.ok(!bad.ok);
    assert.match(bad.errors[0]!, /not valid JSON/);
  });
});

describe("team: merging team.json with a member's settings", () => {
  const team = parseTeamFile({
    timeZone: "UTC",
    caps: [{ id: "team-month", window: "month", limitUsd: 500 }],
    tiers: { junior: { caps: [{ id: "daily", window: "day", limitUsd: 5 }] }, senior: { caps: [{ id: "daily", window: "day", limitUsd: 50 }] } },
    defaultTier: "junior",
    members: { alice: { tier: "senior", caps: [{ id: "opus", window: "day", limitUsd: 20, model: "*opus*" }] } },
    pricing: { "m*": { inputPer1M: 1, outputPer1M: 2 }, "n*": { inputPer1M: 3, outputPer1M: 4 } },
  });
  assert.ok(team.ok);
  const settings = validated(
    {
      caps: [
        { id: "mine", window: "week", limitUsd: 30 },
        { id: "daily", window: "day", limitUsd: 1000 },
        { id: "side-project", scope: "team", window: "day", limitUsd: 10 },
      ],
      pricing: { "n*": { inputPer1M: 9, outputPer1M: 9 } },
    },
    "test",
  );

  it("gives a listed member their tier and own caps; team.json wins on the same id", () => {
    const eff = mergeTeamCaps(settings, team.team, "alice", "Europe/Paris");
    assert.deepEqual(eff.team.map((c) => c.id), ["team-month", "side-project"]);
    assert.deepEqual(eff.personal.map((c) => [c.id, c.limitUsd]), [["daily", 50], ["opus", 20], ["mine", 30]]);
    assert.equal(eff.warnings.length, 1);
    assert.match(eff.warnings[0]!, /"daily"/);
    assert.equal(eff.teamTimeZone, "UTC");
  });

  it("gives an unlisted member the default tier; pricing: the team's, then the member's own", () => {
    const eff = mergeTeamCaps(settings, team.team, "zed", "Europe/Paris");
    assert.deepEqual(eff.personal.map((c) => [c.id, c.limitUsd]), [["daily", 5], ["mine", 30]]);
    assert.equal(eff.pricing["m*"]!.inputPer1M, 1);
    assert.equal(eff.pricing["n*"]!.inputPer1M, 9);
  });

  it("without team.json, team caps come from the settings alone", () => {
    const eff = mergeTeamCaps(settings, undefined, "alice", "Europe/Paris");
    assert.deepEqual(eff.team.map((c) => c.id), ["side-project"]);
    assert.deepEqual(eff.personal.map((c) => c.id), ["mine", "daily"]);
    assert.equal(eff.teamTimeZone, "Europe/Paris");
  });
});
