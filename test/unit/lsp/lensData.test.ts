import assert from "node:assert/strict";
import { findCallSites } from "../../../server/lsp/callSites/index";
import { lensesFor, resolveLens, type LensData } from "../../../server/lsp/codeLenses";
import { PROMPT_PREVIEW_CHARS } from "../../../server/lsp/lensModel";
import { PriceBook } from "../../../server/metering/prices";

const prices = new PriceBook();

describe("code lenses: what a lens carries to its resolve", () => {
  it("carries a long prompt only as far as the hover's preview, and resolves to the same title as the full site", async () => {
    const system = "You are a helpful assistant. ".repeat(3500); // ~100 KB
    const src =
      `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nconst SYSTEM = ${JSON.stringify(system)};\n` +
      `export const complete = () => new ConverseCommand({ modelId: "amazon.nova-micro-v1:0", system: [{ text: SYSTEM }], messages: [], inferenceConfig: { maxTokens: 100 } });\n` +
      `export const partly = (q: string) => new ConverseCommand({ modelId: "amazon.nova-micro-v1:0", system: [{ text: SYSTEM }], messages: [{ role: "user", content: [{ text: q }] }] });\n`;
    const sites = await findCallSites(src, "typescript");
    assert.equal(sites.length, 2);
    const lenses = lensesFor("file:///a.ts", sites);
    for (const [i, lens] of lenses.entries()) {
      const wire = JSON.parse(JSON.stringify(lens)) as { range: typeof lens.range; data: LensData };
      assert.equal(wire.data.site.promptText, system.slice(0, PROMPT_PREVIEW_CHARS));
      const full = { range: lens.range, data: { kind: "bedrockBudget.callSite", uri: "file:///a.ts", site: sites[i]! } satisfies LensData };
      assert.ok(sites[i]!.promptText!.length > 100_000);
      // A book each: estimates are cached per book, and the cache must not be what makes them equal.
      assert.deepEqual(resolveLens(wire, new PriceBook()).command, resolveLens(full, new PriceBook()).command);
    }
    assert.match(resolveLens(lenses[1]!, prices).command!.title, /prompt partly unknown/);
  });
});
