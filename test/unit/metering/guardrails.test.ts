import assert from "node:assert/strict";
import { guardrailCost, guardrailEstimate, guardrailTextUnits, guardrailWorstCase } from "../../../server/metering/guardrails";

const body = (...texts: string[]) => ({ source: "INPUT", content: texts.map((text) => ({ text: { text } })) });

describe("guardrail pricing", () => {
  it("counts text units of up to 1,000 characters per content block", () => {
    assert.equal(guardrailTextUnits(body("short")), 1);
    assert.equal(guardrailTextUnits(body("x".repeat(1000), "y".repeat(1001))), 3);
  });

  it("refuses a body without a content list", () => {
    assert.throws(() => guardrailTextUnits({ source: "INPUT" }), /content list/);
    assert.throws(() => guardrailTextUnits("not an object"), /content list/);
  });

  it("reserves every configured policy on every unit", () => {
    // 3 units × ($0.15 + $0.15) per 1,000 units = $0.0009
    assert.equal(guardrailWorstCase(3, { contentPolicy: 0.15, topicPolicy: 0.15 }), 900_000_000n);
  });

  it("charges the policy units the response reports, at their own prices; unpriced policies are free", () => {
    const response = { usage: { contentPolicyUnits: 2, topicPolicyUnits: 1, wordPolicyUnits: 5 } };
    // 2 × $0.15 + 1 × $0.15 per 1,000 units; word filters have no price here.
    assert.equal(guardrailCost(response, { contentPolicy: 0.15, topicPolicy: 0.15 }), 450_000_000n);
    assert.equal(guardrailCost({ action: "NONE" }, { contentPolicy: 0.15 }), undefined);
  });

  it("gives admission a reservation under the guardrail's own id", () => {
    const e = guardrailEstimate("gr-1", 2, { contentPolicy: 0.1 });
    assert.equal(e.rates.baseModelId, "guardrail/gr-1");
    assert.equal(e.worstCasePicos, 200_000_000n);
  });
});
