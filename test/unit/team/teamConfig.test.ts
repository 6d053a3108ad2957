import assert from "node:assert/strict";
import fc from "fast-check";
import { validated } from "../../../server/config/load";
import { capAction, capId } from "../../../server/config/schema";
import { mergeTeamCaps, parseTeamFile, parseTeamFileText, type TeamFile } from "../../../server/team/teamConfig";

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

  it("refuses a key set twice (JSON keeps the last: the team's caps dropped unseen) and a file saved as null, naming them", () => {
    const twice = parseTeamFileText('{"caps": [{"id": "team-day", "window": "day", "limitUsd": 50}], "members": {"ana": {"tier": "a"}, "ana": {}}, "caps": []}');
    assert.deepEqual(twice, {
      ok: false,
      errors: [
        "members.ana: set twice; JSON keeps only the last, so the first would be dropped without a word. Keep one",
        "caps: set twice; JSON keeps only the last, so the first would be dropped without a word. Keep one",
      ],
    });
    assert.deepEqual(parseTeamFileText("null"), { ok: false, errors: ["(team.json): the file holds null, not the team's settings object"] });
  });

  it("refuses a key named __proto__ by its path (zod would drop the entry: a tier or a member's caps lost without a word)", () => {
    const r = parseTeamFileText('{"members": {"ana": {"tier": "small"}, "__proto__": {"caps": []}}, "tiers": {"small": {"caps": []}}}');
    assert.deepEqual(r, { ok: false, errors: ['members.__proto__: "__proto__" cannot be a key (JavaScript reserves it, so the entry would be lost)'] });
    const deep = parseTeamFileText('{"caps": [{"window": "day", "limitUsd": 1, "tags": {"__proto__": "x"}}]}');
    assert.ok(!deep.ok);
    assert.match(deep.errors[0]!, /^caps\[0\]\.tags\.__proto__: /);
  });
});

describe("team: merging team.json with a member's settings", () => {
  // Built per test, not while the file loads: Stryker runs code reached at load time in a fresh process per mutant (TESTING.md).
  let team: { team: TeamFile };
  let settings: ReturnType<typeof validated>;
  beforeEach(() => {
    const parsed = parseTeamFile({
      timeZone: "UTC",
      caps: [{ id: "team-month", window: "month", limitUsd: 500 }],
      tiers: { junior: { caps: [{ id: "daily", window: "day", limitUsd: 5 }] }, senior: { caps: [{ id: "daily", window: "day", limitUsd: 50 }] } },
      defaultTier: "junior",
      members: { alice: { tier: "senior", caps: [{ id: "opus", window: "day", limitUsd: 20, model: "*opus*" }] } },
      pricing: { "m*": { inputPer1M: 1, outputPer1M: 2 }, "n*": { inputPer1M: 3, outputPer1M: 4 } },
    });
    assert.ok(parsed.ok);
    team = parsed;
    settings = validated(
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
  });

  it("gives a listed member their tier and own caps; the lower limit holds on the same id", () => {
    const eff = mergeTeamCaps(settings, team.team, "alice");
    assert.deepEqual(eff.team.map((c) => c.id), ["team-month", "side-project"]);
    assert.deepEqual(eff.personal.map((c) => [c.id, c.limitUsd]), [["daily", 50], ["opus", 20], ["mine", 30]]);
    assert.equal(eff.warnings.length, 1);
    assert.match(eff.warnings[0]!, /"daily"/);
    assert.equal(eff.teamTimeZone, "UTC");
  });

  it("gives an unlisted member the default tier; pricing: the member's own rows, team.json's kept apart (raise-only)", () => {
    const eff = mergeTeamCaps(settings, team.team, "zed");
    assert.deepEqual(eff.personal.map((c) => [c.id, c.limitUsd]), [["daily", 5], ["mine", 30]]);
    assert.deepEqual(Object.keys(eff.pricing), ["n*"]);
    assert.equal(eff.pricing["n*"]!.inputPer1M, 9);
    assert.equal(eff.teamPricing["m*"]!.inputPer1M, 1);
    assert.equal(eff.teamPricing["n*"]!.inputPer1M, 3);
  });

  it("without team.json, team caps come from the settings alone", () => {
    const eff = mergeTeamCaps(settings, undefined, "alice");
    assert.deepEqual(eff.team.map((c) => c.id), ["side-project"]);
    assert.deepEqual(eff.personal.map((c) => c.id), ["mine", "daily"]);
    assert.equal(eff.teamTimeZone, "UTC", "the member's own zone (Europe/Paris): members in other zones would each count in other windows");
  });
});

describe("team: team.json can only tighten a member's caps", () => {
  const own = (caps: unknown[], pricing: Record<string, unknown> = {}) => validated({ caps, pricing }, "test");
  const teamOf = (raw: unknown) => {
    const r = parseTeamFile(raw);
    assert.ok(r.ok, JSON.stringify(r));
    return r.team;
  };

  it("a $50 daily cap in team.json does not raise alice's own $5 one", () => {
    const team = teamOf({ members: { alice: { caps: [{ id: "daily", window: "day", limitUsd: 50 }] } } });
    const eff = mergeTeamCaps(own([{ id: "daily", window: "day", limitUsd: 5 }]), team, "alice");
    assert.deepEqual(eff.personal.map((c) => [c.id, c.limitUsd]), [["daily", 5]]);
    assert.match(eff.warnings.join("\n"), /"daily".*lower, \$5, applies/);
    // Via a tier, likewise; and team.json's stricter figure binds.
    const tier = teamOf({ tiers: { t: { caps: [{ id: "daily", window: "day", limitUsd: 50 }] } }, defaultTier: "t" });
    assert.deepEqual(mergeTeamCaps(own([{ id: "daily", window: "day", limitUsd: 5 }]), tier, "bob").personal.map((c) => c.limitUsd), [5]);
    assert.deepEqual(mergeTeamCaps(own([{ id: "daily", window: "day", limitUsd: 500 }]), tier, "bob").personal.map((c) => c.limitUsd), [50]);
  });

  it("a team cap with the same id as the member's stricter one: the stricter holds for that member", () => {
    const team = teamOf({ caps: [{ id: "team-month", window: "month", limitUsd: 500 }] });
    const eff = mergeTeamCaps(own([{ id: "team-month", scope: "team", window: "month", limitUsd: 100 }]), team, "alice");
    assert.deepEqual(eff.team.map((c) => [c.id, c.scope, c.limitUsd]), [["team-month", "team", 100]]);
    const looser = mergeTeamCaps(own([{ id: "team-month", scope: "team", window: "month", limitUsd: 900 }]), team, "alice");
    assert.deepEqual(looser.team.map((c) => [c.id, c.limitUsd]), [["team-month", 500]]);
  });

  it("a same-id cap with another window, model or scope cannot lengthen, widen or remove the member's: both apply", () => {
    const team = teamOf({
      caps: [{ id: "x", window: "day", limitUsd: 1 }],
      members: { alice: { caps: [{ id: "opus", window: "week", limitUsd: 100, model: "*" }, { id: "daily", window: "month", limitUsd: 1000 }] } },
    });
    const eff = mergeTeamCaps(
      own([{ id: "opus", window: "day", limitUsd: 10, model: "*opus*" }, { id: "daily", window: "day", limitUsd: 5 }, { id: "x", window: "day", limitUsd: 2 }, { id: "opus:own", window: "day", limitUsd: 3 }]),
      team, "alice",
    );
    assert.deepEqual(eff.personal.map((c) => [c.id, c.window, c.model ?? "", c.limitUsd]), [
      ["opus", "week", "*", 100], ["daily", "month", "", 1000],
      ["opus:own2", "day", "*opus*", 10], ["daily:own", "day", "", 5], ["x:own", "day", "", 2], ["opus:own", "day", "", 3],
    ]);
    assert.deepEqual(eff.team.map((c) => [c.id, c.limitUsd]), [["x", 1]]);
    assert.equal(new Set([...eff.personal, ...eff.team].map((c) => c.id)).size, 7, "every cap keeps an id of its own");
  });

  it("a same-id cap in team.json that only warns, or downgrades, does not stand in for the member's block: both apply", () => {
    const warnTier = teamOf({ defaultTier: "t", tiers: { t: { caps: [{ window: "day", limitUsd: 1_000_000, action: "warn" }] } } });
    const eff = mergeTeamCaps(own([{ window: "day", limitUsd: 10 }]), warnTier, "alice");
    assert.deepEqual(eff.personal.map((c) => [capId(c), c.limitUsd, c.action ?? "block"]), [["personal-day", 1_000_000, "warn"], ["personal-day:own", 10, "block"]]);
    assert.match(eff.warnings.join("\n"), /"personal-day".*acts otherwise at its limit: both apply, yours as "personal-day:own"/);
    // Same action, other downgrade target or threshold: both apply too.
    const downgrade = { window: "day", limitUsd: 10, action: "downgrade", downgradeTo: "amazon.nova-lite-v1:0" };
    const lead = teamOf({ members: { alice: { caps: [{ ...downgrade, downgradeTo: "anthropic.claude-opus-4-1-20250805-v1:0" }, { ...downgrade, id: "at", downgradeAt: 0.5 }] } } });
    const both = mergeTeamCaps(own([downgrade, { ...downgrade, id: "at", downgradeAt: 0.9 }]), lead, "alice");
    assert.deepEqual(both.personal.map((c) => [capId(c), c.downgradeTo, c.downgradeAt]), [
      ["personal-day", "anthropic.claude-opus-4-1-20250805-v1:0", undefined], ["at", "amazon.nova-lite-v1:0", 0.5],
      ["personal-day:own", "amazon.nova-lite-v1:0", undefined], ["at:own", "amazon.nova-lite-v1:0", 0.9],
    ]);
    // The same action and parameters: still one cap, at the lower limit.
    const same = mergeTeamCaps(own([{ window: "day", limitUsd: 10, action: "warn" }]), teamOf({ defaultTier: "t", tiers: { t: { caps: [{ window: "day", limitUsd: 5, action: "warn" }] } } }), "alice");
    assert.deepEqual(same.personal.map((c) => [capId(c), c.limitUsd, c.action]), [["personal-day", 5, "warn"]]);
  });

  it("property: every cap either source declares is enforced at its limit or lower", () => {
    const window = fc.constantFrom("day" as const, "week" as const, "month" as const);
    const cap = fc.record({ id: fc.constantFrom("a", "b", "c", "a:own"), scope: fc.constantFrom("personal" as const, "team" as const), window, limitUsd: fc.integer({ min: 1, max: 100 }), model: fc.option(fc.constantFrom("*", "*opus*"), { nil: undefined }), action: fc.constantFrom(undefined, "block" as const, "warn" as const) });
    // Team caps can only block (the schema says so); undefined fields are left out, as a settings file would.
    const shaped = ({ model, action, ...c }: { model: string | undefined; action: "block" | "warn" | undefined; id: string; scope: "personal" | "team"; window: "day" | "week" | "month"; limitUsd: number }) => ({
      ...c, ...(model === undefined ? {} : { model }), ...(action === undefined || c.scope === "team" ? {} : { action }),
    });
    const uniq = <T extends { id: string }>(caps: T[]) => caps.filter((c, i) => caps.findIndex((o) => o.id === c.id) === i);
    fc.assert(
      fc.property(fc.array(cap, { maxLength: 5 }), fc.array(cap, { maxLength: 5 }), (mine, lead) => {
        const settings = own(uniq(mine).map(shaped));
        const team = teamOf({
          caps: uniq(lead).filter((c) => c.scope === "team").map(shaped),
          members: { alice: { caps: uniq(lead).filter((c) => c.scope === "personal").map(shaped) } },
        });
        const eff = mergeTeamCaps(settings, team, "alice");
        const all = [...eff.personal, ...eff.team];
        assert.equal(new Set(all.map((c) => c.id)).size, all.length, "ids are unique");
        for (const c of [...settings.caps, ...team.caps, ...team.members.alice!.caps]) {
          assert.ok(all.some((e) => e.scope === c.scope && e.window === c.window && e.model === c.model && e.limitUsd <= c.limitUsd && capAction(e) === capAction(c)), `${JSON.stringify(c)} is enforced, and acts as declared`);
        }
      }),
      { numRuns: 300 },
    );
  });
});
