/** The one key a guardrail's spend is grouped under, and the test that tells it from a model id (server/shared/guardrailModel.ts). */
import assert from "node:assert/strict";
import { callUnderModel, guardrailModelKey, isGuardrailModelKey } from "../../../server/shared/guardrailModel";

describe("guardrail model keys", () => {
  it("a guardrail's key is recognised as one; model ids, ARNs and ids that merely mention a guardrail are not", () => {
    assert.equal(guardrailModelKey("gr-1"), "guardrail/gr-1");
    assert.equal(isGuardrailModelKey(guardrailModelKey("gr-1")), true);
    for (const id of ["anthropic.claude-sonnet-4-5-20250929-v1:0", "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr-1", "my-guardrail/x", "Guardrail/gr-1"]) {
      assert.equal(isGuardrailModelKey(id), false, id);
    }
  });

  it("the call log lists a model call under its attached guardrail's key, and under its model, but not under another guardrail", () => {
    const call = { modelId: "us.amazon.nova-pro-v1:0", baseModelId: "amazon.nova-pro-v1:0", guardrail: { id: "gr-1" } };
    assert.deepEqual(["guardrail/gr-1", "amazon.nova-pro-v1:0", "us.amazon.nova-pro-v1:0", "guardrail/gr-2"].map((m) => callUnderModel(call, m)), [true, true, true, false]);
  });
});
