/** A cap's `action` keys: validated across keys, blocking when bad, out of a workspace's reach, and block-only on team caps. */
import assert from "node:assert/strict";
import { settingsContribution, untrustedWorkspaces } from "../../../scripts/settingsContribution";
import { configFromSettings } from "../../../server/config/fromSettings";
import { parseConfig } from "../../../server/config/schema";
import { decidesMoney } from "../../../server/config/settingsCheck";
import { parseTeamFile } from "../../../server/team/teamConfig";

const block = { id: "daily", window: "day", limitUsd: 5 };

describe("config: cap actions (warn, downgrade, clamp)", () => {
  it("accepts each action with its keys", () => {
    const r = parseConfig({
      caps: [
        { id: "w", window: "day", limitUsd: 5, action: "warn" },
        { id: "d", window: "day", limitUsd: 5, action: "downgrade", downgradeTo: "us.anthropic.claude-haiku-4-5-20251001-v1:0", downgradeAt: 0.9 },
        { id: "c", window: "day", limitUsd: 5, action: "clamp" },
        { id: "b", window: "day", limitUsd: 5 },
      ],
    });
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.config.caps.map((c) => c.action), ["warn", "downgrade", "clamp", undefined]);
  });

  it("names what is wrong: downgrade without a model, downgrade keys on another action, an unknown action, a fraction past 1", () => {
    const errors = (cap: object) => {
      const r = parseConfig({ caps: [cap] });
      return r.ok ? [] : r.errors;
    };
    assert.match(errors({ ...block, action: "downgrade" }).join(), /caps\[0\]\.downgradeTo: .*needs "downgradeTo"/);
    assert.match(errors({ ...block, action: "clamp", downgradeTo: "x" }).join(), /caps\[0\]\.downgradeTo: .*only to a cap with action "downgrade"/);
    assert.match(errors({ ...block, downgradeAt: 0.5 }).join(), /caps\[0\]\.downgradeAt: /);
    assert.match(errors({ ...block, action: "warnn" }).join(), /caps\[0\]\.action: /);
    assert.match(errors({ ...block, action: "downgrade", downgradeTo: "x", downgradeAt: 1.5 }).join(), /caps\[0\]\.downgradeAt: /);
  });

  it("a downgradeTo that is no model id is refused when the settings are read, not when the cap first downgrades a call", () => {
    const r = parseConfig({ caps: [{ ...block, action: "downgrade", downgradeTo: "claude haiku please" }] });
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.errors.join(), /caps\[0\]\.downgradeTo: a Bedrock model id, inference profile or model ARN/);
    for (const id of ["amazon.nova-lite-v1:0", "us.anthropic.claude-haiku-4-5-20251001-v1:0", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"]) {
      assert.ok(parseConfig({ caps: [{ ...block, action: "downgrade", downgradeTo: id }] }).ok, id);
    }
  });

  it("a bad action blocks the gateway (it decides money) and the last good caps stay", () => {
    const previous = parseConfig({ caps: [block] });
    assert.ok(previous.ok);
    const check = configFromSettings({ caps: [{ ...block, action: "maybe" }] }, previous.config);
    assert.equal(check.blocking.length, 1);
    assert.match(check.blocking[0]!, /^bedrockBudget\.caps\[0\]\.action: /);
    assert.deepEqual(check.config.caps, previous.config.caps);
  });

  it("a workspace cannot turn a block cap into warn: caps (action included) are machine-scoped and ignored in Restricted Mode", () => {
    assert.equal(decidesMoney("caps"), true);
    const caps = settingsContribution().properties["bedrockBudget.caps"] as { scope: string; items: { properties: Record<string, unknown> } };
    assert.equal(caps.scope, "machine");
    assert.ok(caps.items.properties.action, "the action is a key of a cap, not a setting of its own a workspace could set");
    assert.ok(untrustedWorkspaces().restrictedConfigurations.includes("bedrockBudget.caps"));
    assert.ok(!Object.keys(settingsContribution().properties).some((k) => /action|downgrade/i.test(k)), "no top-level action setting");
  });

  it("team caps can only block, in the settings and in team.json; a member's personal caps may use any action", () => {
    const r = parseConfig({ caps: [{ ...block, scope: "team", action: "warn" }] });
    assert.ok(!r.ok);
    assert.match(r.errors.join(), /caps\[0\]\.action: a team cap can only block/);
    const team = parseTeamFile({ caps: [{ id: "t", window: "month", limitUsd: 500, action: "clamp" }] });
    assert.ok(!team.ok);
    assert.match(team.errors.join(), /caps\.0\.action|caps\[0\]\.action/);
    const member = parseTeamFile({ members: { alice: { caps: [{ id: "a", window: "day", limitUsd: 5, action: "warn" }] } } });
    assert.ok(member.ok, JSON.stringify(member));
  });
});
