import assert from "node:assert/strict";
import { initParsers, parse, type Grammar, type SyntaxNode } from "../../../server/lsp/callSites/parsers";
import { TsScope } from "../../../server/lsp/callSites/tsValues";
import { PyScope } from "../../../server/lsp/callSites/pyValues";
import { findCallSites } from "../../../server/lsp/callSites/index";

/** The calls of `helper(` in `text`, evaluated by one scope (as one find does), then the scope. */
function evaluateCalls<S extends TsScope | PyScope>(grammar: Grammar, text: string, callType: string, helper: string, make: (root: SyntaxNode) => S) {
  const tree = parse(grammar, text);
  try {
    const scope = make(tree.rootNode);
    const calls = tree.rootNode.descendantsOfType(callType).filter((c) => c.text.startsWith(`${helper}(`));
    return { values: calls.map((c) => scope.evaluate(c)), scope };
  } finally {
    tree.delete();
  }
}

describe("call sites: helper functions' returns", () => {
  before(() => initParsers());

  it("TypeScript: a helper used by many calls is walked once per find; nested functions' returns are theirs", () => {
    const text = `function lim() {
  const f = () => { return 1; };
  function g() { return 2; }
  return 64;
}
function two(a: boolean) { if (a) return 1; return 2; }
const a = lim(); const b = lim(); const c = lim();
const d = two(true); const e = two(false);
`;
    const r = evaluateCalls("typescript", text, "call_expression", "lim", (root) => new TsScope(root, text));
    assert.deepEqual(r.values, [1, 2, 3].map(() => ({ kind: "num", value: 64 })));
    assert.equal(r.scope.helperReturns.walks, 1);
    const t = evaluateCalls("typescript", text, "call_expression", "two", (root) => new TsScope(root, text));
    assert.deepEqual(t.values.map((v) => v.kind), ["unknown", "unknown"]);
    assert.equal(t.scope.helperReturns.walks, 1);
  });

  it("Python: the same, a nested def's return being its own", () => {
    const text = `def lim():
    def inner():
        return 1
    return 64
def two(a):
    if a:
        return 1
    return 2
a = lim()
b = lim()
c = two(1)
d = two(0)
`;
    const r = evaluateCalls("python", text, "call", "lim", (root) => new PyScope(root, text));
    assert.deepEqual(r.values, [{ kind: "num", value: 64 }, { kind: "num", value: 64 }]);
    assert.equal(r.scope.helperReturns.walks, 1);
    const t = evaluateCalls("python", text, "call", "two", (root) => new PyScope(root, text));
    assert.deepEqual(t.values.map((v) => v.kind), ["unknown", "unknown"]);
    assert.equal(t.scope.helperReturns.walks, 1);
  });

  it("lenses of calls sharing a helper read its limit, and a helper with two returns leaves it unknown", async () => {
    const src = `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
function lim() { if (Math.random()) { const f = function () { return 5; }; } return 64; }
function two(a: boolean) { if (a) { return 1; } return 2000; }
new ConverseCommand({ modelId: "m", inferenceConfig: { maxTokens: lim() } });
new ConverseCommand({ modelId: "m", inferenceConfig: { maxTokens: lim() } });
new ConverseCommand({ modelId: "m", inferenceConfig: { maxTokens: two(true) } });`;
    const found = await findCallSites(src, "typescript");
    assert.deepEqual(found.map((s) => [s.maxTokens, s.maxTokensUnknown]), [[64, false], [64, false], [undefined, true]]);
  });

  it("Python: a call's limit read from a helper defined in the module (its def binds it there)", async () => {
    const src = `import boto3
def lim():
    return 64
def ask(c):
    return c.converse(modelId="m", inferenceConfig={"maxTokens": lim()})
c.converse(modelId="m", inferenceConfig={"maxTokens": lim()})
`;
    const found = await findCallSites(src, "python");
    assert.deepEqual(found.map((s) => s.maxTokens), [64, 64]);
  });
});
