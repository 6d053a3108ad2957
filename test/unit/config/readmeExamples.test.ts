/** The configuration examples README's Policies section shows are valid settings: an example that rots fails here. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseConfig } from "../../../server/config/schema";
import { capsInForce } from "../../../server/policy/plans";

const README = readFileSync(path.join(__dirname, "../../../README.md"), "utf8");

function policyExamples(): string[] {
  const start = README.indexOf("\n## Policies\n");
  const end = README.indexOf("\n## ", start + 1);
  assert.ok(start >= 0 && end > start, "README has a Policies section");
  return [...README.slice(start, end).matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

describe("README policy examples", () => {
  it("every JSON example of the Policies section is a valid configuration", () => {
    const examples = policyExamples();
    assert.ok(examples.length >= 5, `found ${examples.length} examples`);
    for (const text of examples) {
      const parsed = parseConfig(JSON.parse(text));
      assert.ok(parsed.ok, `${parsed.ok ? "" : parsed.errors.join("; ")}\n${text}`);
    }
  });

  it("the banking chatbot: 100 professional agents each get their own monthly wall under the team's", () => {
    const bank = policyExamples().find((t) => t.includes("banking-chatbot"));
    assert.ok(bank, "the banking chatbot example is there");
    const raw = JSON.parse(bank) as { callers: Record<string, string> };
    // The README shows three of the 100 agents; the rest are the same line.
    for (let i = 1; i <= 100; i++) raw.callers[`chatbot-agent-${String(i).padStart(3, "0")}`] = "professional";
    const parsed = parseConfig(raw);
    assert.ok(parsed.ok);
    const caps = capsInForce(parsed.config);
    assert.equal(caps.filter((c) => c.id?.startsWith("agent-month@")).length, 100, "one per-agent wall each");
    assert.deepEqual(caps.find((c) => c.id === "agent-month@chatbot-agent-042")?.callers, ["chatbot-agent-042"]);
    assert.equal(caps.find((c) => c.id === "chatbot-month")?.scope, "team");
    assert.deepEqual(parsed.config.alertThresholds, [80, 100]);
    assert.ok(caps.every((c) => (c.action ?? "block") === "block"), "block at 100%");
  });
});
