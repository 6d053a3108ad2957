import assert from "node:assert/strict";
import { findCallSites } from "../../../server/lsp/callSites/index";
import { mayImportAnthropic } from "../../../server/lsp/callSites/pyFinder";

// The pattern this check replaced (quadratic on runs of `import`): the new one must answer the same.
const QUADRATIC = /\bimport\b[\w.,\s\\]*?\banthropic\b|\bfrom[\s\\]+anthropic\b/;

describe("call sites: Python, the anthropic import pre-check", () => {
  it("sees imports across names, commas, dots, blanks and line continuations, and not a bare model id", () => {
    for (const yes of ["import anthropic", "import json, \\\n    anthropic", "from \\\n  anthropic import (\n AnthropicBedrock)", "import a.b, anthropic.x", "from  anthropic import X"]) {
      assert.equal(mayImportAnthropic(yes), true, yes);
    }
    for (const no of ['MODEL = "global.anthropic.claude-sonnet-4-5"', "import json\n# anthropic", "import anthropicx", "ximport anthropic", "anthropic import", "from anthropic_x import y", "import (anthropic"]) {
      assert.equal(mayImportAnthropic(no), false, no);
    }
  });

  it("answers as the old pattern did on every short mix of the words and separators", () => {
    const parts = ["import", "anthropic", "from", " ", "\n", "\\", ".", ",", "(", "#", "x", "ximport"];
    const texts: string[] = [""];
    for (let len = 1; len <= 4; len++) {
      for (const prefix of texts.filter((t) => t.split("\u0000").length === len)) for (const p of parts) texts.push(prefix + "\u0000" + p);
    }
    for (const t of texts.map((x) => x.replaceAll("\u0000", ""))) assert.equal(mayImportAnthropic(t), QUADRATIC.test(t), JSON.stringify(t));
  });

  it("still finds the call in a file that also holds a long run of `import` words", async () => {
    const src = "x = 1 # " + "import ".repeat(2000) + "\nfrom anthropic import AnthropicBedrock\nclient = AnthropicBedrock()\n" +
      'client.messages.create(model="anthropic.claude-3-haiku-20240307-v1:0", max_tokens=5, messages=[])\n';
    assert.deepEqual((await findCallSites(src, "python")).map((s) => [s.api, s.maxTokens]), [["anthropic-bedrock-sdk", 5]]);
  });
});
