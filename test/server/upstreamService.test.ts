/**
 * How the gateway reaches Bedrock upstream (server/gateway/upstream.ts): the host a call goes to.
 */
import assert from "node:assert/strict";
import { upstreamTarget } from "../../server/gateway/upstream";

describe("upstream service: the host a call goes to", () => {
  it("a call signed for a region goes to that region's Bedrock Runtime host, under its partition's domain as the AWS SDK has it", () => {
    const host = (region: string) => upstreamTarget(undefined, region).hostname;
    assert.equal(host("us-east-1"), "bedrock-runtime.us-east-1.amazonaws.com");
    assert.equal(host("us-gov-west-1"), "bedrock-runtime.us-gov-west-1.amazonaws.com");
    assert.equal(host("eu-central-1"), "bedrock-runtime.eu-central-1.amazonaws.com");
    // Not amazonaws.com: sent there, the call failed with "could not reach Bedrock: ENOTFOUND".
    assert.equal(host("cn-north-1"), "bedrock-runtime.cn-north-1.amazonaws.com.cn");
    assert.equal(host("eusc-de-east-1"), "bedrock-runtime.eusc-de-east-1.amazonaws.eu");
    assert.equal(host("us-iso-east-1"), "bedrock-runtime.us-iso-east-1.c2s.ic.gov");
    assert.equal(host("us-isob-east-1"), "bedrock-runtime.us-isob-east-1.sc2s.sgov.gov");
    assert.equal(host("us-isof-south-1"), "bedrock-runtime.us-isof-south-1.csp.hci.ic.gov");
    assert.equal(host("eu-isoe-west-1"), "bedrock-runtime.eu-isoe-west-1.cloud.adc-e.uk");
    assert.deepEqual(upstreamTarget(undefined, "eu-west-1"), { protocol: "https:", hostname: "bedrock-runtime.eu-west-1.amazonaws.com", port: 443 });
  });

  it("a configured upstreamEndpoint wins over the caller's region", () => {
    assert.deepEqual(upstreamTarget("https://bedrock-runtime-fips.us-east-1.amazonaws.com", "eusc-de-east-1"), {
      protocol: "https:",
      hostname: "bedrock-runtime-fips.us-east-1.amazonaws.com",
      port: 443,
    });
  });
});
