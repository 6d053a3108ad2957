import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { findCallSites, type CallSite } from "../../../server/lsp/callSites/index";
import { estimateTokensOfText, PER_MESSAGE_OVERHEAD_TOKENS } from "../../../server/metering/tokens";

const FIXTURES = path.join(__dirname, "../../fixtures/callsites");
const read = (file: string) => readFileSync(path.join(FIXTURES, file), "utf8");

describe("call sites: Python", () => {
  let sites: CallSite[];
  const text = read("boto3_client.py");
  before(async () => (sites = await findCallSites(text, "python")));

  it("finds boto3 calls on a client kept in a variable and on a client passed in", () => {
    assert.deepEqual(
      sites.map((s) => [s.operation, s.meteredOperation]),
      [
        ["invoke_model", "InvokeModel"],
        ["converse", "Converse"],
        ["invoke_model_with_response_stream", "InvokeModelWithResponseStream"],
        ["converse_stream", "ConverseStream"],
      ],
    );
    assert.ok(sites.every((s) => s.api === "boto3" && s.language === "python"));
    const line = text.split("\n").findIndex((l) => l.includes("runtime.invoke_model("));
    assert.equal(sites[0]!.range.start.line, line);
    assert.equal(sites[0]!.range.start.character, text.split("\n")[line]!.indexOf("runtime.invoke_model("));
  });

  it("reads json.dumps(dict) bodies and keeps the literal parts of f-strings", () => {
    const s = sites[0]!;
    assert.equal(s.modelId, "us.anthropic.claude-haiku-4-5-20251001-v1:0");
    assert.equal(s.maxTokens, 64);
    assert.equal(s.promptComplete, false);
    assert.equal(s.promptText, "Classify the support ticket as billing, bug or other.\nTicket: \nAnswer with one word.");
  });

  it("resolves module constants in keyword arguments (Converse)", () => {
    const s = sites[1]!;
    assert.equal(s.modelId, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.equal(s.maxTokens, 1024);
    assert.equal(s.promptComplete, true);
    const t = "You are a patient teacher.\nExplain what an inference profile is.";
    assert.equal(s.knownInputTokens, estimateTokensOfText(t) + PER_MESSAGE_OVERHEAD_TOKENS);
  });

  it("reads json.dumps(...).encode() bodies with foundation-model ARNs", () => {
    const s = sites[2]!;
    assert.equal(s.modelId, "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-70b-instruct-v1:0");
    assert.equal(s.maxTokens, 400);
    assert.equal(s.promptText, "Tell a story about .");
  });

  it("expands **kwargs dicts and sees a missing limit", () => {
    const s = sites[3]!;
    assert.equal(s.modelId, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.equal(s.maxTokens, undefined);
    assert.equal(s.maxTokensUnknown, false);
  });

  it("finds AnthropicBedrock (aliased import) messages.create, not the plain client's", async () => {
    const found = await findCallSites(read("anthropic_bedrock.py"), "python");
    assert.equal(found.length, 1);
    assert.deepEqual([found[0]!.api, found[0]!.modelId, found[0]!.maxTokens], ["anthropic-bedrock-sdk", "anthropic.claude-opus-4-1-20250805-v1:0", 4000]);
    assert.equal(found[0]!.promptText, "Draft a polite email about ");
  });

  it("finds AnthropicBedrock imported across a line continuation or in parentheses, and not in a file that only names Claude model ids", async () => {
    const call = 'client.messages.create(model="anthropic.claude-3-haiku-20240307-v1:0", max_tokens=5, messages=[])\n';
    for (const imports of ["import json, \\\n    anthropic\nclient = anthropic.AnthropicBedrock()\n", "from \\\n  anthropic import (\n    AnthropicBedrock,\n)\nclient = AnthropicBedrock()\n"]) {
      const found = await findCallSites(imports + call, "python");
      assert.deepEqual(found.map((s) => [s.api, s.maxTokens]), [["anthropic-bedrock-sdk", 5]], imports);
    }
    assert.deepEqual(await findCallSites('import json\nMODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"\n' + call, "python"), []);
  });

  it("reads a call whose variable is assigned nothing yet (`label =` typed halfway: the parser inserts an empty name)", async () => {
    const src = 'import boto3\nruntime = boto3.client("bedrock-runtime")\ndef f():\n    label =;\n    return runtime.converse(modelId="m", messages=[{"role": "user", "content": [{"text": label}]}])\n';
    const found = await findCallSites(src, "python");
    assert.deepEqual(found.map((s) => [s.operation, s.modelId, s.promptComplete]), [["converse", "m", false]]);
  });

  it("needs boto3 (or bedrock-runtime) in the file for the common word converse", async () => {
    assert.deepEqual(await findCallSites('bot.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0")\n', "python"), []);
    assert.equal((await findCallSites('c.invoke_model(modelId="m", body="{}")\n', "python")).length, 1);
  });

  it("does not take a name bound twice, or a parameter, for a constant", async () => {
    const src = `import boto3
M = "anthropic.claude-3-haiku-20240307-v1:0"
N = "a"
N = "b"
def f(M):
    return c.converse(modelId=M)
c.converse(modelId=N)
c.converse(modelId=M, inferenceConfig=dict(maxTokens=5))
`;
    const found = await findCallSites(src, "python");
    assert.deepEqual(found.map((s) => [s.modelId, s.maxTokens]), [[undefined, undefined], [undefined, undefined], ["anthropic.claude-3-haiku-20240307-v1:0", 5]]);
  });

  it("does not let methods see their class body's names (Python does not): a method's MODEL is the module's", async () => {
    const src = `import boto3
MODEL = "amazon.nova-micro-v1:0"
class C:
    MODEL = "anthropic.claude-opus-4-1-20250805-v1:0"
    R = c.converse(modelId=MODEL)
    def f(self, c):
        return c.converse(modelId=MODEL)
`;
    const found = await findCallSites(src, "python");
    assert.deepEqual(found.map((s) => s.modelId), ["anthropic.claude-opus-4-1-20250805-v1:0", "amazon.nova-micro-v1:0"]);
  });

  it("counts a function's assignment to a name it declares global as the module's (bound twice: not known)", async () => {
    const src = `import boto3
MODEL = "amazon.nova-micro-v1:0"
def upgrade():
    global MODEL
    MODEL = "anthropic.claude-opus-4-1-20250805-v1:0"
def ask(c):
    return c.converse(modelId=MODEL)
def local(c):
    MODEL = "amazon.nova-lite-v1:0"
    return c.converse(modelId=MODEL)
def reads(c):
    global MODEL
    return c.converse(modelId=MODEL)
`;
    const found = await findCallSites(src, "python");
    assert.deepEqual(found.map((s) => s.modelId), [undefined, "amazon.nova-lite-v1:0", undefined]);
  });

  it("counts a nested function's assignment to a name it declares nonlocal as the enclosing function's", async () => {
    const src = `import boto3
def run(c):
    model = "amazon.nova-micro-v1:0"
    def upgrade():
        nonlocal model
        model = "anthropic.claude-opus-4-1-20250805-v1:0"
    upgrade()
    return c.converse(modelId=model)
def steady(c):
    model = "amazon.nova-micro-v1:0"
    def reads():
        nonlocal model
        return c.converse(modelId=model)
    return reads()
`;
    const found = await findCallSites(src, "python");
    // run's model may be Opus by the call: bound twice, not known (not Nova Micro's price under an Opus call).
    assert.deepEqual(found.map((s) => s.modelId), [undefined, "amazon.nova-micro-v1:0"]);
  });
});
