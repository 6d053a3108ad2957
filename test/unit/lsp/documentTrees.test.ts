import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { DocumentTrees, editBetween } from "../../../server/lsp/callSites/documentTrees";
import { findCallSitesSync, initParsers, languageIdForPath } from "../../../server/lsp/callSites/index";

const FIXTURES = path.join(__dirname, "../../fixtures/callsites");

/** A small deterministic PRNG, so a failure replays. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe("lsp: incremental call-site parsing per document", () => {
  before(() => initParsers());

  for (const file of ["sdkCommands.ts", "boto3_client.py"]) {
    it(`after each of 60 edits to ${file} (a call typed, lines removed, non-ASCII text), the lenses equal a fresh parse's`, () => {
      const languageId = languageIdForPath(file)!;
      let text = readFileSync(path.join(FIXTURES, file), "utf8");
      const trees = new DocumentTrees();
      const random = prng(file.length);
      const inserts = ["é → ☃ 🎉 ", "\n", "modelId", "(", ")", "{", "maxTokens: 9,", "max_tokens=9, ", "\n\n  ", '"'];
      try {
        assert.deepEqual(trees.callSites("file:///doc", languageId, text), findCallSitesSync(text, languageId));
        for (let step = 0; step < 60; step++) {
          const at = Math.floor(random() * text.length);
          const removed = random() < 0.5 ? Math.floor(random() * 40) : 0;
          const inserted = random() < 0.7 ? inserts[Math.floor(random() * inserts.length)]! : "";
          text = text.slice(0, at) + inserted + text.slice(at + removed);
          assert.deepEqual(trees.callSites("file:///doc", languageId, text), findCallSitesSync(text, languageId), `step ${step}`);
        }
      } finally {
        trees.clear();
      }
    });
  }

  it("describes an edit by the span between the common prefix and suffix, in UTF-16 points", () => {
    assert.deepEqual(editBetween("ab\ncé\nd", "ab\nc🎉X\nd"), {
      startIndex: 4,
      oldEndIndex: 5,
      newEndIndex: 7,
      startPosition: { row: 1, column: 1 },
      oldEndPosition: { row: 1, column: 2 },
      newEndPosition: { row: 1, column: 4 },
    });
    assert.deepEqual(editBetween("x\n", "x\ny\nz"), {
      startIndex: 2, oldEndIndex: 2, newEndIndex: 5,
      startPosition: { row: 1, column: 0 }, oldEndPosition: { row: 1, column: 0 }, newEndPosition: { row: 2, column: 1 },
    });
  });
});
