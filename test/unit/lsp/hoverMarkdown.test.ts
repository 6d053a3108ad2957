import assert from "node:assert/strict";
import { findCallSites } from "../../../server/lsp/callSites/index";
import { callSiteEstimate, hoverMarkdown } from "../../../server/lsp/lensModel";
import { PriceBook } from "../../../server/metering/prices";

const prices = new PriceBook();

describe("lens model: the hover shows the source's text as written, never as Markdown", () => {
  it("escapes a model id outside code and fences ids and prompt text past their longest run of backticks", async () => {
    const src =
      'import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\n' +
      'new ConverseCommand({ modelId: "x ![t](https://evil.example/p.png) [run](https://evil.example) `", ' +
      'messages: [{ role: "user", content: [{ text: "a `` ![p](https://evil.example/p2.png) ``" }] }], inferenceConfig: { maxTokens: 5 } });\n';
    const [site] = await findCallSites(src, "typescript");
    const lines = hoverMarkdown(site!, callSiteEstimate(site!, prices)).split("\n");
    assert.equal(
      lines[0],
      "**Bedrock Budget** · `ConverseCommand` (AWS SDK for JavaScript v3) · " +
        "x \\!\\[t\\]\\(https\\:\\/\\/evil\\.example\\/p\\.png\\) \\[run\\]\\(https\\:\\/\\/evil\\.example\\) \\` (no price row: dearest rates assumed)",
    );
    assert.equal(lines[2], "Model id: `` x ![t](https://evil.example/p.png) [run](https://evil.example) ` ``");
    assert.equal(lines.at(-1), "Prompt text found: ``` a `` ![p](https://evil.example/p2.png) `` ```");
  });

  it("names unchecked caps in code spans their backticks cannot close", async () => {
    const src = 'import boto3\nc = boto3.client("bedrock-runtime")\nc.converse(modelId="amazon.nova-micro-v1:0", messages=[], inferenceConfig={"maxTokens": 5})\n';
    const [site] = await findCallSites(src, "python");
    const md = hoverMarkdown(site!, callSiteEstimate(site!, prices), ["team`[x](https://evil.example)", "plain"]);
    assert.match(md, /Not checked against `` team`\[x\]\(https:\/\/evil\.example\) ``, `plain`: /);
  });
});
