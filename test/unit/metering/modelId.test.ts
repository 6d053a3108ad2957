import assert from "node:assert/strict";
import { parseModelId } from "../../../server/metering/modelId";

describe("parseModelId", () => {
  it("keeps a foundation id as its own base, in-region", () => {
    assert.deepEqual(parseModelId("anthropic.claude-sonnet-4-5-20250929-v1:0"), {
      requestedId: "anthropic.claude-sonnet-4-5-20250929-v1:0",
      baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0",
      profile: "none",
    });
  });

  it("strips every system inference-profile prefix", () => {
    const base = "anthropic.claude-haiku-4-5-20251001-v1:0";
    for (const prefix of ["us", "eu", "apac", "jp", "au", "ca", "us-gov"]) {
      const p = parseModelId(`${prefix}.${base}`);
      assert.equal(p.baseModelId, base, prefix);
      assert.equal(p.profile, "geographic", prefix);
      assert.equal(p.profilePrefix, prefix);
    }
    const g = parseModelId(`global.${base}`);
    assert.equal(g.baseModelId, base);
    assert.equal(g.profile, "global");
  });

  it("reads foundation-model and inference-profile ARNs", () => {
    const fm = parseModelId("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-70b-instruct-v1:0");
    assert.equal(fm.baseModelId, "meta.llama3-1-70b-instruct-v1:0");
    assert.equal(fm.profile, "none");
    assert.equal(fm.arnKind, "foundation-model");

    const ip = parseModelId("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.equal(ip.baseModelId, "anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.equal(ip.profile, "geographic");
    assert.equal(ip.arnKind, "inference-profile");

    const gov = parseModelId("arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/global.amazon.nova-pro-v1:0");
    assert.equal(gov.baseModelId, "amazon.nova-pro-v1:0");
    assert.equal(gov.profile, "global");
  });

  it("leaves opaque ARNs without a base model", () => {
    const cases: [string, string][] = [
      ["arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5", "application-inference-profile"],
      ["arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef123456", "provisioned-model"],
      ["arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/xyz", "custom-model-deployment"],
      ["arn:aws:bedrock:us-east-1:123456789012:imported-model/abc", "imported-model"],
      ["arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT12345:1", "prompt"],
      ["arn:aws:bedrock:us-east-1:123456789012:prompt-router/router1", "prompt-router"],
    ];
    for (const [arn, kind] of cases) {
      const p = parseModelId(arn);
      assert.equal(p.baseModelId, undefined, arn);
      assert.equal(p.arnKind, kind, arn);
      assert.equal(p.requestedId, arn);
    }
  });
});
