import assert from "node:assert/strict";
import { DocumentTrees } from "../../../server/lsp/callSites/documentTrees";
import { findCallSitesSync, initParsers } from "../../../server/lsp/callSites/index";

const HEAD = 'import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\n';
const withText = (escape: string) =>
  `const z = new ConverseCommand({ modelId: "amazon.nova-micro-v1:0", messages: [{ role: "user", content: [{ text: "${escape}" }] }] });\n`;
const withLimit = (n: number) =>
  `async function f() { return new ConverseCommand({ modelId: "amazon.nova-micro-v1:0", messages: [], inferenceConfig: { maxTokens: ${n} } }); }\n`;

describe("lsp: escapes past the last code point, and a finder that throws", () => {
  before(() => initParsers());

  it("reads a TypeScript \\u{110000} and a Python \\U00110000 as U+FFFD, keeping the file's lenses", () => {
    const ts = findCallSitesSync(HEAD + withText("a\\u{110000}b"), "typescript");
    assert.deepEqual(ts.map((s) => s.promptText), ["a\ufffdb"]);
    const py = 'import boto3\nc = boto3.client("bedrock-runtime")\nc.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "a\\U00110000b"}]}])\n';
    assert.deepEqual(findCallSitesSync(py, "python").map((s) => s.promptText), ["a\ufffdb"]);
  });

  it("forgets the document's kept facts when finding its sites throws, so the next edit does not reuse an older version's", () => {
    const versions = [HEAD + withText("\\u{1F600}") + withLimit(10), HEAD + withText("\\u{1F601}") + withLimit(99), HEAD + withText("\\u{1F600}") + withLimit(99)];
    const trees = new DocumentTrees();
    const fromCodePoint = String.fromCodePoint;
    try {
      assert.deepEqual(trees.callSites("file:///t.ts", "typescript", versions[0]!), findCallSitesSync(versions[0]!, "typescript"));
      // Stands for any failure inside the finders (the escape above used to throw here).
      String.fromCodePoint = () => {
        throw new RangeError("finder failed");
      };
      try {
        assert.throws(() => trees.callSites("file:///t.ts", "typescript", versions[1]!), /finder failed/);
      } finally {
        String.fromCodePoint = fromCodePoint;
      }
      const after = trees.callSites("file:///t.ts", "typescript", versions[2]!);
      assert.deepEqual(after.map((s) => s.maxTokens), [undefined, 99]);
      assert.deepEqual(after, findCallSitesSync(versions[2]!, "typescript"));
    } finally {
      String.fromCodePoint = fromCodePoint;
      trees.clear();
    }
  });
});
