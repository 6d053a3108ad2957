import assert from "node:assert/strict";
import { findCallSites } from "../../../server/lsp/callSites/index";
import { callSiteEstimate } from "../../../server/lsp/lensModel";
import { estimateParsed } from "../../../server/metering/estimate";
import { PriceBook } from "../../../server/metering/prices";
import type { JsonObject } from "../../../server/metering/requestBody";

const prices = new PriceBook();
const MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0";
const base = { messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 4000 } };

/** The gateway's estimate of the same Converse body. */
const gateway = (body: JsonObject) => estimateParsed("Converse", MODEL, body, prices).worstCasePicos;

describe("lens model: a Converse request's service tier and latency", () => {
  const bodies: JsonObject[] = [
    { ...base, serviceTier: { type: "priority" }, performanceConfig: { latency: "optimized" } },
    { ...base, serviceTier: "priority" },
    { ...base, performanceConfig: { latency: "optimized" } },
    { ...base, serviceTier: { type: "flex" } },
    base,
  ];

  it("prices each as the gateway does (TypeScript SDK command and boto3 keywords), and the tiers as different estimates", async () => {
    const ts = bodies.map((b) => `new ConverseCommand(${JSON.stringify({ modelId: MODEL, ...b })});`).join("\n");
    const tsSites = await findCallSites(`import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\n${ts}\n`, "typescript");
    const pyCalls = bodies.map((b) => `c.converse(modelId="${MODEL}", ${Object.entries(b).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")})`).join("\n");
    const pySites = await findCallSites(`import boto3\n${pyCalls}\n`, "python");
    const expected = bodies.map(gateway);
    // The premium tiers cost more than standard: a lens ignoring them would match only the last.
    assert.ok(expected[0]! > expected[4]! && expected[1]! > expected[4]! && expected[2]! > expected[4]!);
    assert.deepEqual(tsSites.map((s) => callSiteEstimate(s, prices).worstCasePicos), expected);
    assert.deepEqual(pySites.map((s) => callSiteEstimate(s, prices).worstCasePicos), expected);
  });

  it("keeps estimates of sites differing only in tier apart (the estimate cache is keyed by it)", async () => {
    const src = `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
new ConverseCommand(${JSON.stringify({ modelId: MODEL, ...base })});
new ConverseCommand(${JSON.stringify({ modelId: MODEL, ...base, serviceTier: { type: "priority" } })});
`;
    const [plain, priority] = await findCallSites(src, "typescript");
    const book = new PriceBook(); // a fresh cache
    assert.equal(callSiteEstimate(plain!, book).worstCasePicos, gateway(base));
    assert.equal(callSiteEstimate(priority!, book).worstCasePicos, gateway({ ...base, serviceTier: { type: "priority" } }));
  });
});
