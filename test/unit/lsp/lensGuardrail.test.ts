import assert from "node:assert/strict";
import { findCallSites } from "../../../server/lsp/callSites/index";
import { callSiteEstimate, hoverMarkdown, lensTitle } from "../../../server/lsp/lensModel";
import { resolveLens, lensesFor } from "../../../server/lsp/codeLenses";
import { estimateParsed } from "../../../server/metering/estimate";
import { attachedGuardrail, guardedInputUnits, withAttachedGuardrail } from "../../../server/metering/attachedGuardrail";
import { formatUsd } from "../../../server/metering/money";
import { PriceBook } from "../../../server/metering/prices";
import type { JsonObject } from "../../../server/metering/requestBody";
import type { MeteredOperation } from "../../../server/metering/types";

const prices = new PriceBook();
const MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0";
const pricing = { contentPolicy: 0.15, topicPolicy: 0.15 };
const prompt = "x".repeat(2500); // 3 text units
const converseBody = { messages: [{ role: "user", content: [{ text: prompt }] }], inferenceConfig: { maxTokens: 2000 } };

/** What the gateway reserves for the same body and guardrail (proxy.ts: the model's estimate plus attachedGuardrail's). */
function gateway(operation: MeteredOperation, json: JsonObject, bodyChars: number, id: string) {
  const model = estimateParsed(operation, MODEL, json, prices);
  return withAttachedGuardrail(model, attachedGuardrail(id, guardedInputUnits(operation, json, bodyChars), model.maxOutputTokens, pricing));
}

describe("lens model: a guardrail attached to the call", () => {
  it("Converse with guardrailConfig (TypeScript and boto3): the lens prices the guardrail's part as the gateway reserves it, and says it is included", async () => {
    const config = { guardrailIdentifier: "gr-abc", guardrailVersion: "1" };
    const ts = await findCallSites(
      `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nnew ConverseCommand(${JSON.stringify({ modelId: MODEL, ...converseBody, guardrailConfig: config })});\n`,
      "typescript",
    );
    const py = await findCallSites(
      `import boto3\nc.converse(modelId="${MODEL}", messages=${JSON.stringify(converseBody.messages)}, inferenceConfig=${JSON.stringify(converseBody.inferenceConfig)}, guardrailConfig=${JSON.stringify(config)})\n`,
      "python",
    );
    const expected = gateway("Converse", { ...converseBody, guardrailConfig: config }, 0, "gr-abc");
    const modelOnly = estimateParsed("Converse", MODEL, converseBody, prices).worstCasePicos;
    assert.ok(expected.guardrail && expected.guardrail.worstCasePicos > 0n);
    for (const site of [ts[0]!, py[0]!]) {
      const estimate = callSiteEstimate(site, prices, pricing);
      assert.equal(estimate.worstCasePicos, expected.worstCasePicos);
      assert.ok(estimate.worstCasePicos > modelOnly);
      const title = lensTitle(site, estimate);
      assert.match(title, new RegExp(`^≈ \\${formatUsd(expected.worstCasePicos)} per call`));
      assert.ok(title.includes(`guardrail included: ${formatUsd(expected.guardrail.worstCasePicos)}`), title);
      const hover = hoverMarkdown(site, estimate);
      assert.ok(hover.includes("guardrail `gr-abc`"), hover);
      assert.ok(hover.includes(`| ${formatUsd(expected.guardrail.worstCasePicos)} |`), hover);
      assert.ok(hover.includes(`**per call** (guardrail included) | | | **${formatUsd(expected.worstCasePicos)}**`), hover);
      // The input row is the model's input alone, not the guardrail's part.
      const inputPicos = modelOnly - 2000n * estimate.rates.output;
      assert.ok(hover.includes(`| ${formatUsd(inputPicos)} |`), hover);
    }
  });

  it("InvokeModel with guardrailIdentifier (AWS SDK v3 and boto3): the whole body's text units, as the gateway counts them", async () => {
    const body = { anthropic_version: "bedrock-2023-05-31", max_tokens: 1000, messages: [{ role: "user", content: prompt }] };
    const ts = await findCallSites(
      `import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";\nnew InvokeModelCommand({ modelId: "${MODEL}", guardrailIdentifier: "gr-1", guardrailVersion: "DRAFT", body: JSON.stringify(${JSON.stringify(body)}) });\n`,
      "typescript",
    );
    const py = await findCallSites(`import json, boto3\nc.invoke_model(modelId="${MODEL}", guardrailIdentifier="gr-1", body=json.dumps(${JSON.stringify(body)}))\n`, "python");
    const expected = gateway("InvokeModel", body, JSON.stringify(body).length, "gr-1");
    for (const site of [ts[0]!, py[0]!]) {
      assert.equal(callSiteEstimate(site, prices, pricing).worstCasePicos, expected.worstCasePicos);
      const lens = resolveLens(lensesFor("file:///a", [site])[0]!, prices, undefined, pricing);
      assert.ok(lens.command!.title.includes(`guardrail included: ${formatUsd(expected.guardrail!.worstCasePicos)}`), lens.command!.title);
    }
  });

  it("without guardrailPricing the lens shows the model's part and the hover says the guardrail is not priced (the gateway records it at $0)", async () => {
    const [site] = await findCallSites(
      `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nnew ConverseCommand(${JSON.stringify({ modelId: MODEL, ...converseBody, guardrailConfig: { guardrailIdentifier: "gr-abc" } })});\n`,
      "typescript",
    );
    const estimate = callSiteEstimate(site!, prices);
    assert.equal(estimate.worstCasePicos, estimateParsed("Converse", MODEL, converseBody, prices).worstCasePicos);
    assert.ok(!lensTitle(site!, estimate).includes("guardrail"));
    assert.match(hoverMarkdown(site!, estimate), /Guardrail `gr-abc`: not priced/);
  });

  it("a guardrail id or prompt not known statically still prices the guardrail, the unknown prompt at its assumed size", async () => {
    const src = `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
new ConverseCommand({ modelId: "${MODEL}", messages: [{ role: "user", content: [{ text: "${prompt}" }] }], inferenceConfig: { maxTokens: 2000 }, guardrailConfig: { guardrailIdentifier: process.env.GR, guardrailVersion: "1" } });
new ConverseCommand({ modelId: "${MODEL}", messages: [{ role: "user", content: [{ text: userText }] }], inferenceConfig: { maxTokens: 2000 }, guardrailConfig: cfg });
new ConverseCommand({ modelId: "${MODEL}", messages: [{ role: "user", content: [{ text: "${prompt}" }] }], inferenceConfig: { maxTokens: 2000 } });
`;
    const [unknownId, unknownPrompt, none] = await findCallSites(src, "typescript");
    const known = callSiteEstimate(unknownId!, prices, pricing);
    assert.equal(known.guardrail?.inputUnits, 3);
    assert.equal(known.worstCasePicos, gateway("Converse", { ...converseBody, guardrailConfig: { guardrailIdentifier: "x" } }, 0, "x").worstCasePicos);
    // 4,000 characters assumed for the unknown prompt: 4 text units.
    assert.equal(callSiteEstimate(unknownPrompt!, prices, pricing).guardrail?.inputUnits, 4);
    assert.equal(callSiteEstimate(none!, prices, pricing).guardrail, undefined);
  });

  it("keeps the estimates with and without guardrailPricing apart (the estimate cache is keyed by it)", async () => {
    const [site] = await findCallSites(
      `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nnew ConverseCommand(${JSON.stringify({ modelId: MODEL, ...converseBody, guardrailConfig: { guardrailIdentifier: "gr-abc" } })});\n`,
      "typescript",
    );
    const book = new PriceBook();
    const without = callSiteEstimate(site!, book).worstCasePicos;
    const withIt = callSiteEstimate(site!, book, pricing).worstCasePicos;
    const dearer = callSiteEstimate(site!, book, { ...pricing, wordPolicy: 0.1 }).worstCasePicos;
    assert.ok(without < withIt && withIt < dearer);
  });

  it("a guardrail id holding a pipe does not split the hover's table row (the id is the source's text)", async () => {
    const [site] = await findCallSites(
      `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nnew ConverseCommand(${JSON.stringify({ modelId: MODEL, ...converseBody, guardrailConfig: { guardrailIdentifier: "a|b|c" } })});\n`,
      "typescript",
    );
    const hover = hoverMarkdown(site!, callSiteEstimate(site!, prices, pricing));
    const row = hover.split("\n").find((l) => l.startsWith("| guardrail"))!;
    // Unescaped pipes delimit the cells: the row has the table's five, like its neighbours.
    assert.equal(row.split(/(?<!\\)\|/).length, 6, row);
  });
});
