import assert from "node:assert/strict";
import {
  attachedGuardrail, AttachedGuardrailError, attachedGuardrailCharge, attachedGuardrailOf, converseAnswerChars, guardedInputUnits, guardrailTraceOf,
  guardrailWorstCaseLine, MAX_CHARS_PER_OUTPUT_TOKEN, outputUnitsBound, reportedGuardrailUsage, withAttachedGuardrail,
  costByModel, guardrailPart, guardrailPartOfRecord, worstCaseGuardrailCharge,
} from "../../../server/metering/attachedGuardrail";
import type { Estimate } from "../../../server/metering/estimate";
import { guardrailWorstCase } from "../../../server/metering/guardrails";

/** $0.5 per 1,000 units over the priced policies: $0.0005 a unit. */
const PRICING = { contentPolicy: 0.15, topicPolicy: 0.15, wordPolicy: 0.1, sensitiveInformationPolicy: 0.1 };
const PER_UNIT = 500_000_000n;

/** A Converse trace as Bedrock sends it: assessments keyed by guardrail id, each with invocationMetrics.usage. */
const usage = (units: number) => ({
  invocationMetrics: {
    guardrailProcessingLatency: 10,
    usage: { contentPolicyUnits: units, topicPolicyUnits: units, wordPolicyUnits: 0, sensitiveInformationPolicyUnits: 0, sensitiveInformationPolicyFreeUnits: 0, contextualGroundingPolicyUnits: 0 },
  },
});

describe("attached guardrail pricing", () => {
  it("reads the guardrail a Converse body names, and none when it names none", () => {
    assert.deepEqual(attachedGuardrailOf("Converse", { guardrailConfig: { guardrailIdentifier: "gr-1", guardrailVersion: "2" } }, {}), { id: "gr-1", version: "2" });
    assert.equal(attachedGuardrailOf("ConverseStream", {}, {}), undefined);
  });

  it("refuses a guardrailConfig it cannot read: not an object, no identifier", () => {
    assert.throws(() => attachedGuardrailOf("Converse", { guardrailConfig: "gr-1" }, {}), AttachedGuardrailError);
    assert.throws(() => attachedGuardrailOf("Converse", { guardrailConfig: { guardrailVersion: "1" } }, {}), /guardrailIdentifier/);
    assert.throws(() => attachedGuardrailOf("Converse", { guardrailConfig: { guardrailIdentifier: " " } }, {}), /guardrailIdentifier/);
  });

  it("reads InvokeModel's guardrail header, refusing an empty or repeated one", () => {
    assert.deepEqual(attachedGuardrailOf("InvokeModel", {}, { "x-amzn-bedrock-guardrailidentifier": "gr-2", "x-amzn-bedrock-guardrailversion": "DRAFT" }), { id: "gr-2", version: "DRAFT" });
    assert.throws(() => attachedGuardrailOf("InvokeModel", {}, { "x-amzn-bedrock-guardrailidentifier": "" }), AttachedGuardrailError);
    assert.throws(() => attachedGuardrailOf("InvokeModel", {}, { "x-amzn-bedrock-guardrailidentifier": ["a", "b"] }), AttachedGuardrailError);
  });

  it("counts only guardContent blocks when a Converse body has any, else every message and the system prompt", () => {
    const messages = [
      { role: "user", content: [{ text: "x".repeat(2500) }] },
      { role: "assistant", content: [{ text: "ok" }] },
      { role: "user", content: [{ guardContent: { text: { text: "y".repeat(1001) } } }] },
    ];
    assert.equal(guardedInputUnits("Converse", { messages }, 0), 2);
    assert.equal(guardedInputUnits("Converse", { messages: messages.slice(0, 2), system: [{ text: "be nice" }] }, 0), 3 + 1 + 1);
    assert.equal(guardedInputUnits("InvokeModel", { prompt: "z" }, 3001), 4, "InvokeModel: the whole body");
  });

  it("still counts every message when only the system prompt holds guardContent (Bedrock selects in each part separately)", () => {
    // A 5,000-character question with a guarded system prompt: Bedrock evaluates the system's
    // guardContent and the whole question, so the reservation must cover 1 + 5 units, not 1.
    const body = {
      messages: [{ role: "user", content: [{ text: "q".repeat(5000) }] }],
      system: [{ text: "be nice" }, { guardContent: { text: { text: "policy" } } }],
    };
    assert.equal(guardedInputUnits("Converse", body, 0), 1 + 5);
    // And the other way round: guardContent in the messages alone leaves the system prompt counted (errs high).
    const guardedMessages = { messages: [{ role: "user", content: [{ text: "x".repeat(3000) }, { guardContent: { text: { text: "y" } } }] }], system: [{ text: "s".repeat(1500) }] };
    assert.equal(guardedInputUnits("ConverseStream", guardedMessages, 0), 1 + 2);
  });

  it("bounds the output's text units by the output limit at the longest token's characters", () => {
    assert.equal(MAX_CHARS_PER_OUTPUT_TOKEN, 128);
    assert.equal(outputUnitsBound(100), 13 + 1);
    assert.equal(outputUnitsBound(0), 1);
  });

  it("reserves input and output units on every priced policy, on top of the model's worst case", () => {
    const guard = attachedGuardrail("gr-1", 2, 100, PRICING);
    assert.equal(guard.worstCasePicos, (2n + 14n) * PER_UNIT);
    const model = { worstCasePicos: 1000n, notes: [] } as unknown as Estimate;
    const both = withAttachedGuardrail(model, guard);
    assert.equal(both.worstCasePicos, 1000n + guard.worstCasePicos);
    assert.equal(both.guardrail, guard);
  });

  it("sums the units every assessment of a Converse or InvokeModel trace reports", () => {
    const converse = { trace: { guardrail: { inputAssessment: { "gr-1": usage(2) }, outputAssessments: { "gr-1": [usage(1), usage(1)] } } } };
    assert.deepEqual(reportedGuardrailUsage(guardrailTraceOf(converse)), {
      contentPolicyUnits: 4, topicPolicyUnits: 4, wordPolicyUnits: 0, sensitiveInformationPolicyUnits: 0, contextualGroundingPolicyUnits: 0,
    });
    const invoke = { "amazon-bedrock-trace": { guardrail: { input: { "gr-1": usage(1) }, outputs: [{ "gr-1": usage(1) }] } } };
    assert.equal(reportedGuardrailUsage(guardrailTraceOf(invoke))?.contentPolicyUnits, 2);
    assert.equal(reportedGuardrailUsage({ inputAssessment: { "gr-1": { topicPolicy: {} } } }), undefined, "no usage in it");
    assert.equal(reportedGuardrailUsage({ a: { invocationMetrics: { usage: { contentPolicyUnits: -1 } } } }), undefined, "a count that is no count");
  });

  it("charges the reported units at their policies' prices, saying so", () => {
    const guard = attachedGuardrail("gr-1", 1, 100, PRICING);
    const charge = attachedGuardrailCharge(guard, { inputAssessment: { "gr-1": usage(1) } }, 50);
    // 1 content unit at $0.15 + 1 topic unit at $0.15 per 1,000.
    assert.equal(charge.picos, 300_000_000n);
    assert.equal(charge.estimated, false);
    assert.match(charge.note, /the 2 policy units Bedrock reported/);
  });

  it("estimates from the text when no usage is reported, and says when that passes what was reserved", () => {
    const guard = attachedGuardrail("gr-1", 1, 1, PRICING); // 1 input + 2 output units reserved
    const fits = attachedGuardrailCharge(guard, undefined, 1500);
    assert.equal(fits.picos, 3n * PER_UNIT);
    assert.equal(fits.estimated, true);
    assert.match(fits.note, /estimated from text \(1 input \+ 2 output/);
    assert.doesNotMatch(fits.note, /above/);
    const over = attachedGuardrailCharge(guard, undefined, 5000);
    assert.equal(over.picos, 6n * PER_UNIT);
    assert.match(over.note, /above the \$0\.0015 reserved for it/);
    assert.equal(attachedGuardrailCharge(guard, undefined, 0).picos, PER_UNIT, "no answer text: the input alone");
  });

  it("measures a Converse answer's text", () => {
    assert.equal(converseAnswerChars({ output: { message: { content: [{ text: "abc" }, { toolUse: { input: { a: 1 } } }] } } }), 3 + 7);
    assert.equal(converseAnswerChars({}), 0);
  });
});

describe("metering/attachedGuardrail: the worst case as a line for a clamp", () => {
  it("is never below the guardrail's worst case at any output limit, and close to it", () => {
    for (const pricing of [{ contentPolicy: 0.15 }, { contentPolicy: 0.15, topicPolicy: 0.15, wordPolicy: 0.1, sensitiveInformationPolicy: 0.1 }, { automatedReasoningPolicy: 0.17 }]) {
      for (const inputUnits of [0, 1, 7, 250]) {
        const line = guardrailWorstCaseLine(inputUnits, pricing);
        for (const tokens of [0, 1, 7, 8, 100, 999, 4096, 64_000, 128_000]) {
          const exact = attachedGuardrail("g", inputUnits, tokens, pricing).worstCasePicos;
          const bound = line.fixedPicos + BigInt(tokens) * line.perOutputTokenPicos;
          assert.ok(bound >= exact, `${JSON.stringify(pricing)} ${inputUnits} units, ${tokens} tokens: ${bound} < ${exact}`);
          // Within two units' price plus a pico a token of the exact figure: a clamp loses little room.
          const unit = guardrailWorstCase(1, pricing);
          assert.ok(bound - exact <= 2n * unit + BigInt(tokens) + 2n, `${bound} vs ${exact}`);
        }
      }
    }
  });
});

describe("attached guardrail: the part a call's record keeps", () => {
  it("counts the policy units charged: those reported, else the estimated text units on each priced policy; and what the record keeps", () => {
    const guard = attachedGuardrail("gr-1", 2, 10, PRICING); // 2 input units, 10 output tokens: up to 3 output units
    const reported = attachedGuardrailCharge(guard, { inputAssessment: { "gr-1": usage(2) } }, 50);
    assert.equal(reported.units, 4, "contentPolicyUnits 2 + topicPolicyUnits 2");
    assert.deepEqual(guardrailPart(guard, reported), { id: "gr-1", costPicos: String(reported.picos), worstCasePicos: String(guard.worstCasePicos), units: 4, unitsEstimated: false });
    const estimated = attachedGuardrailCharge(guard, undefined, 1500); // 2 input + 2 output text units, 4 priced policies
    assert.equal(estimated.units, 16);
    assert.equal(guardrailPart(guard, estimated).unitsEstimated, true);
    assert.deepEqual(worstCaseGuardrailCharge(guard), { picos: guard.worstCasePicos, estimated: true, units: (2 + guard.maxOutputUnits) * 4 });
  });

  it("reads a record's part back only when it is well formed and no larger than the call", () => {
    const part = { id: "gr-1", costPicos: "10", worstCasePicos: "20", units: 4, unitsEstimated: false };
    assert.deepEqual(guardrailPartOfRecord({ costPicos: "10", worstCasePicos: "20", guardrail: part }), { ...part, costPicos: 10n, worstCasePicos: 20n });
    assert.equal(guardrailPartOfRecord({ costPicos: "10", worstCasePicos: "20" }), undefined);
    assert.equal(guardrailPartOfRecord({ costPicos: "9", worstCasePicos: "20", guardrail: part }), undefined);
    assert.equal(guardrailPartOfRecord({ costPicos: "10", worstCasePicos: "19", guardrail: part }), undefined);
    for (const bad of [{ ...part, id: 1 }, { ...part, costPicos: 10 }, { ...part, worstCasePicos: "2e1" }, { ...part, units: -1 }, { ...part, unitsEstimated: "no" }]) {
      assert.equal(guardrailPartOfRecord({ costPicos: "10", worstCasePicos: "20", guardrail: bad as never }), undefined, JSON.stringify(bad));
    }
  });

  it("splits a call's cost by model: the guardrail's part under guardrail/<id>, the rest with the model, adding up to the call", () => {
    const part = { id: "gr-1", costPicos: "3", worstCasePicos: "5", units: 4, unitsEstimated: false };
    assert.deepEqual(costByModel({ costPicos: "10", worstCasePicos: "20", guardrail: part }), { model: 7n, guardrail: { key: "guardrail/gr-1", cost: 3n } });
    assert.deepEqual(costByModel({ costPicos: "10", worstCasePicos: "20", guardrail: { ...part, costPicos: "0" } }), { model: 10n }, "a $0 part adds no row");
    assert.deepEqual(costByModel({ costPicos: "10", worstCasePicos: "20" }), { model: 10n });
    assert.deepEqual(costByModel({ costPicos: "2", worstCasePicos: "20", guardrail: part }), { model: 2n }, "a part larger than its call stays with the model");
  });

  it("reads a part's money as the journal does, whatever its number of digits (a line the ledger counts is split in the reports too)", () => {
    const big = `1${"0".repeat(30)}`; // 31 digits: the journal's schema accepts it and the caps count it
    const part = { id: "gr-1", costPicos: big, worstCasePicos: big, units: 4, unitsEstimated: true };
    assert.deepEqual(guardrailPartOfRecord({ costPicos: `2${"0".repeat(30)}`, worstCasePicos: `3${"0".repeat(30)}`, guardrail: part }), { ...part, costPicos: 10n ** 30n, worstCasePicos: 10n ** 30n });
  });
});
