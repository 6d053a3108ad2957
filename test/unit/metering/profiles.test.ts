import assert from "node:assert/strict";
import { isResolved, profileFromModels } from "../../../server/metering/profiles";

const ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";
const HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0";
const AT = new Date("2026-11-29T00:00:00Z");

describe("profileFromModels (GetInferenceProfile's models[].modelArn)", () => {
  it("one foundation model in one region: an in-region call of that model", () => {
    const p = profileFromModels(ARN, [{ modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}` }], AT);
    assert.ok(isResolved(p));
    assert.equal(p.baseModelId, HAIKU);
    assert.equal(p.profile, "none");
    assert.equal(p.resolvedAt, AT.toISOString());
  });

  it("the same model in several regions: a geographic (cross-region) profile", () => {
    const p = profileFromModels(ARN, ["us-east-1", "us-west-2"].map((r) => ({ modelArn: `arn:aws:bedrock:${r}::foundation-model/${HAIKU}` })), AT);
    assert.ok(isResolved(p));
    assert.equal(p.profile, "geographic");
  });

  it("a model ARN without a region (as global profiles list it): global", () => {
    const p = profileFromModels(ARN, [{ modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}` }, { modelArn: `arn:aws:bedrock:::foundation-model/${HAIKU}` }], AT);
    assert.ok(isResolved(p));
    assert.equal(p.profile, "global");
  });

  it("fails (priced at the dearest rate) on no model, two different models, or an opaque model", () => {
    for (const models of [
      [],
      undefined,
      [{ modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}` }, { modelArn: "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0" }],
      [{ modelArn: "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/x" }],
    ]) {
      const p = profileFromModels(ARN, models, AT);
      assert.ok(!isResolved(p), JSON.stringify(models));
      assert.match(p.failed, /abc|provisioned/);
    }
  });
});
