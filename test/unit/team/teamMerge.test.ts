// team.json: errors named by key, and how a member's caps merge with it (who wins, what is renamed, what the log says).
import assert from "node:assert/strict";
import { validated } from "../../../server/config/load";
import { mergeTeamCaps, parseTeamFile, type TeamFile } from "../../../server/team/teamConfig";

const own = (caps: unknown[]) => validated({ caps, pricing: {} }, "test");
const teamOf = (raw: unknown): TeamFile => {
  const r = parseTeamFile(raw);
  assert.ok(r.ok, JSON.stringify(r));
  return r.team;
};
const errorsOf = (raw: unknown): string[] => {
  const r = parseTeamFile(raw);
  assert.ok(!r.ok);
  return r.errors;
};

describe("team: team.json errors", () => {
  it("refuses a time zone that is not IANA's, naming the key", () => {
    assert.deepEqual(errorsOf({ timeZone: "Mars/Olympus" }), ["timeZone: an IANA time zone such as Europe/Paris"]);
    assert.equal(teamOf({ timeZone: "Asia/Kolkata" }).timeZone, "Asia/Kolkata");
  });

  it("names duplicate cap ids inside a tier and inside a member by their path", () => {
    const cap = { id: "d", window: "day", limitUsd: 1 };
    assert.deepEqual(errorsOf({ tiers: { t: { caps: [cap, cap] } } }), ['tiers.t.caps[1].id: two caps have the id "d"']);
    assert.deepEqual(errorsOf({ members: { bob: { caps: [cap, { ...cap, window: "week" }] } } }), ['members.bob.caps[1].id: two caps have the id "d"']);
  });

  it("a team.json that is not an object is named as the whole file", () => {
    const errors = errorsOf(42);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^\(team\.json\): /);
  });
});

describe("team: merging", () => {
  it("a member's own entry replaces their tier's cap of the same id, even when looser", () => {
    const team = teamOf({ tiers: { t: { caps: [{ id: "daily", window: "day", limitUsd: 5 }] } }, defaultTier: "t", members: { alice: { caps: [{ id: "daily", window: "day", limitUsd: 8 }] } } });
    assert.deepEqual(mergeTeamCaps(own([]), team, "alice").personal.map((c) => [c.id, c.limitUsd]), [["daily", 8]]);
    assert.deepEqual(mergeTeamCaps(own([]), team, "bob").personal.map((c) => [c.id, c.limitUsd]), [["daily", 5]]);
  });

  it("a team cap's id used again for a tier's or a member's personal cap: team.json is refused, naming each, not one cap silently dropped", () => {
    const r = parseTeamFile({
      caps: [{ id: "x", window: "month", limitUsd: 100 }, { window: "day", limitUsd: 50 }],
      tiers: { junior: { caps: [{ id: "x", window: "day", limitUsd: 5 }, { id: "fine", window: "day", limitUsd: 5 }] } },
      members: { alice: { caps: [{ id: "team-day", window: "day", limitUsd: 3 }] } },
    });
    assert.deepEqual(r, {
      ok: false,
      errors: [
        'tiers.junior.caps[0].id: a team cap in "caps" has the id "x": give this personal cap another id',
        'members.alice.caps[0].id: a team cap in "caps" has the id "team-day": give this personal cap another id',
      ],
    });
    // A member's cap replacing their tier's of the same id stays allowed (both personal).
    assert.ok(parseTeamFile({ tiers: { t: { caps: [{ id: "d", window: "day", limitUsd: 5 }] } }, members: { bob: { tier: "t", caps: [{ id: "d", window: "day", limitUsd: 9 }] } } }).ok);
  });

  it("the same cap at the same limit in both: one cap, nothing to warn about", () => {
    const team = teamOf({ members: { alice: { caps: [{ id: "daily", window: "day", limitUsd: 5 }] } } });
    const eff = mergeTeamCaps(own([{ id: "daily", window: "day", limitUsd: 5 }]), team, "alice");
    assert.deepEqual(eff.personal.map((c) => [c.id, c.limitUsd]), [["daily", 5]]);
    assert.deepEqual(eff.warnings, []);
  });

  it("warns in plain words when both apply, and picks the next free name", () => {
    const team = teamOf({ members: { alice: { caps: [{ id: "opus", window: "week", limitUsd: 100 }] } } });
    const eff = mergeTeamCaps(
      own([{ id: "opus", window: "day", limitUsd: 10 }, { id: "opus:own", window: "month", limitUsd: 50 }, { id: "opus:own2", window: "month", limitUsd: 60 }]),
      team, "alice",
    );
    assert.deepEqual(eff.personal.map((c) => [c.id, c.window, c.limitUsd]), [["opus", "week", 100], ["opus:own3", "day", 10], ["opus:own", "month", 50], ["opus:own2", "month", 60]]);
    assert.deepEqual(eff.warnings, ['cap "opus" in your settings limits another scope, window or model than team.json\'s cap of the same id, or acts otherwise at its limit: both apply, yours as "opus:own3"']);
  });

  it("says which figure applies when limits differ", () => {
    const team = teamOf({ caps: [{ id: "tm", window: "month", limitUsd: 500 }] });
    const eff = mergeTeamCaps(own([{ id: "tm", scope: "team", window: "month", limitUsd: 120.5 }]), team, "alice");
    assert.deepEqual(eff.warnings, ['cap "tm": team.json says $500, your settings $120.5; the lower, $120.5, applies']);
    assert.deepEqual(eff.team.map((c) => [c.id, c.limitUsd]), [["tm", 120.5]]);
  });
});
