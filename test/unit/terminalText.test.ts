import assert from "node:assert/strict";
import { printableText, printableValue, withPrintableStrings } from "../../server/terminalText";

describe("terminal text (what the CLI prints of strings others wrote)", () => {
  it("a value is one line: line breaks, escape sequences, C1 controls and bidi overrides are shown escaped", () => {
    assert.equal(printableValue("a\nb\r\tc\u001b[8md\u009b2Je\u202egnp.exe\u0007"), "a\\x0ab\\x0d\\x09c\\x1b[8md\\x9b2Je\\u202egnp.exe\\x07");
    assert.equal(printableValue("café ✓ 李雷 anthropic.claude-v2:1"), "café ✓ 李雷 anthropic.claude-v2:1", "printable text passes as it is");
  });

  it("a text we laid out keeps its line breaks and tabs, and loses every other control", () => {
    assert.equal(printableText("line 1\n\tline 2\u001b[2K\r\n"), "line 1\n\tline 2\\x1b[2K\\x0d\n");
  });

  it("every string of a parsed reply, keys and nested arrays included; other values untouched", () => {
    const reply = { user: "al\u001bice", caps: [{ id: "x\ny", limitUsd: 5, team: null, ok: true }], byModel: { "m\u001b": { calls: 1 } } };
    assert.deepEqual(withPrintableStrings(reply), { user: "al\\x1bice", caps: [{ id: "x\\x0ay", limitUsd: 5, team: null, ok: true }], byModel: { "m\\x1b": { calls: 1 } } });
  });
});
