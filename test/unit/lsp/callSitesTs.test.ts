import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { findCallSites, languageIdForPath, type CallSite } from "../../../server/lsp/callSites/index";
import { estimateTokensOfText, PER_MESSAGE_OVERHEAD_TOKENS } from "../../../server/metering/tokens";

const FIXTURES = path.join(__dirname, "../../fixtures/callsites");
const read = (file: string) => readFileSync(path.join(FIXTURES, file), "utf8");
const sitesOf = (file: string) => findCallSites(read(file), languageIdForPath(file)!);
const lineOf = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split("\n").length - 1;

describe("call sites: TypeScript / JavaScript", () => {
  let sites: CallSite[];
  const text = read("sdkCommands.ts");
  before(async () => (sites = await sitesOf("sdkCommands.ts")));

  it("finds every SDK v3 command, aliased or through a namespace, and nothing else", () => {
    assert.deepEqual(
      sites.map((s) => s.operation),
      ["ConverseCommand", "InvokeModelCommand", "ConverseStreamCommand", "InvokeModelWithResponseStreamCommand", "ConverseCommand"],
    );
    assert.ok(sites.every((s) => s.api === "aws-sdk-js-v3" && s.language === "typescript"));
    assert.deepEqual(
      sites.map((s) => s.meteredOperation),
      ["Converse", "InvokeModel", "ConverseStream", "InvokeModelWithResponseStream", "Converse"],
    );
  });

  it("reads a file whose import alias is typed halfway (`Command as` then nothing: the parser inserts an empty name)", async () => {
    const src = 'import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand as } from "@aws-sdk/client-bedrock-runtime";\nconst client = new BedrockRuntimeClient({});\nclient.send(new ConverseCommand({ modelId: "m" }));\n';
    const found = await findCallSites(src, "typescript");
    assert.deepEqual(found.map((s) => [s.operation, s.modelId]), [["ConverseCommand", "m"]]);
  });

  it("reports LSP ranges of the call expressions", () => {
    const start = sites[1]!.range.start;
    assert.equal(start.line, lineOf(text, "new Invoke({"));
    const lineText = text.split("\n")[start.line]!;
    assert.equal(start.character, lineText.indexOf("new Invoke({"));
    assert.equal(sites[1]!.range.end.line, start.line);
  });

  it("resolves constants, literals and inference-profile ids; counts literal prompt and system text", () => {
    const s = sites[0]!;
    assert.equal(s.modelId, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.equal(s.maxTokens, 1024);
    assert.equal(s.promptComplete, true);
    const system = "You are a careful reviewer. Answer in three bullet points.";
    const user = "Review this pull request description for clarity.";
    assert.equal(s.promptText, `${system}\n${user}`);
    assert.equal(s.knownInputTokens, estimateTokensOfText(`${system}\n${user}`) + PER_MESSAGE_OVERHEAD_TOKENS);
    assert.deepEqual(s.assumptions, []);
  });

  it("reads JSON.stringify bodies and keeps only the literal parts of template literals", () => {
    const s = sites[1]!;
    assert.equal(s.modelId, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0");
    assert.equal(s.maxTokens, 512);
    assert.equal(s.promptComplete, false);
    assert.equal(s.promptText, "Summarize the latest news about  in one paragraph.");
  });

  it("follows helpers: a command built in a function from an input returned by another", () => {
    const s = sites[2]!;
    assert.equal(s.modelId, "us.anthropic.claude-sonnet-4-20250514-v1:0");
    assert.equal(s.maxTokens, undefined);
    assert.equal(s.maxTokensUnknown, false, "the input is fully visible and sets no limit");
    assert.equal(s.promptComplete, false, "the question is a parameter");
  });

  it("resolves a let assigned once, object-constant members and TextEncoder(JSON.stringify(...))", () => {
    const s = sites[3]!;
    assert.equal(s.modelId, "anthropic.claude-3-haiku-20240307-v1:0");
    assert.equal(s.maxTokens, 200);
    assert.equal(s.promptComplete, true);
    assert.equal(s.promptText, "Be brief.\nName three prime numbers.");
  });

  it("says so when the model id is not knowable", () => {
    const s = sites[4]!;
    assert.equal(s.modelId, undefined);
    assert.equal(s.maxTokens, 300);
    assert.match(s.assumptions.join(";"), /model id not known statically/);
  });

  it("finds the aggregated client's methods in a CommonJS file", async () => {
    const js = await sitesOf("aggregatedClient.js");
    assert.deepEqual(js.map((s) => [s.operation, s.modelId, s.maxTokens, s.language]), [
      ["converse", "eu.anthropic.claude-haiku-4-5-20251001-v1:0", 256, "javascript"],
      ["invokeModel", "meta.llama3-8b-instruct-v1:0", 128, "javascript"],
    ]);
    assert.equal(js[1]!.promptText, "Write a haiku about budgets.");
  });

  it("finds AnthropicBedrock messages.create but not the plain Anthropic client's", async () => {
    const a = await sitesOf("anthropicBedrock.ts");
    assert.equal(a.length, 1);
    assert.equal(a[0]!.api, "anthropic-bedrock-sdk");
    assert.equal(a[0]!.operation, "messages.create");
    assert.equal(a[0]!.modelId, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.equal(a[0]!.maxTokens, 2048);
    assert.equal(a[0]!.usesPromptCache, true);
    assert.equal(a[0]!.promptComplete, false);
  });

  it("ignores look-alikes in files that import no Bedrock SDK", async () => {
    assert.deepEqual(await sitesOf("notBedrock.ts"), []);
  });

  it("gives UTF-16 positions after non-ASCII text, and [] for other languages", async () => {
    const src = 'const note = "prix en €, très cher";\nconst c = new ConverseCommand({ modelId: "x" });\n';
    const [site] = await findCallSites(`const é = "ü€"; new ConverseCommand({ modelId: "m" });`, "typescript");
    assert.equal(site!.range.start.character, 16);
    assert.equal((await findCallSites(src, "javascript"))[0]!.range.start.character, 10);
    assert.deepEqual(await findCallSites(src, "rust"), []);
  });

  it("marks the limit unknown (not missing) when it is a variable or the body is opaque", async () => {
    const src = `import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
export const f = (limit: number, body: string) => [
  new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", body: JSON.stringify({ max_tokens: limit, messages: [] }) }),
  new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", body }),
];`;
    const [a, b] = await findCallSites(src, "typescript");
    assert.deepEqual([a!.maxTokens, a!.maxTokensUnknown, a!.promptComplete], [undefined, true, true]);
    assert.deepEqual([b!.maxTokens, b!.maxTokensUnknown, b!.promptComplete], [undefined, true, false]);
  });

  it("does not take a shadowed or reassigned variable for a constant", async () => {
    const src = `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
const model = "anthropic.claude-3-haiku-20240307-v1:0";
let other = "anthropic.claude-3-haiku-20240307-v1:0";
other = "anthropic.claude-sonnet-4-5-20250929-v1:0";
function f(model: string) { return new ConverseCommand({ modelId: model }); }
new ConverseCommand({ modelId: other });
new ConverseCommand({ modelId: model });`;
    const found = await findCallSites(src, "typescript");
    assert.deepEqual(found.map((s) => s.modelId), [undefined, undefined, "anthropic.claude-3-haiku-20240307-v1:0"]);
  });

  it("takes a destructured parameter for a parameter, not for a module constant of the same name", async () => {
    const sigs = ["async function ask({ modelId }: { modelId: string })", "function ask({ modelId = 'x' })", "function ask([modelId])", "function ask({ a: modelId })", "const ask = ({ modelId }) =>"];
    for (const sig of sigs) {
      const src = `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";
${sig} { return new ConverseCommand({ modelId, messages: [] }); }
const modelId = "amazon.nova-micro-v1:0";
new ConverseCommand({ modelId, messages: [] });`;
      const found = await findCallSites(src, "typescript");
      assert.deepEqual(found.map((s) => s.modelId), [undefined, "amazon.nova-micro-v1:0"], sig);
    }
  });
});
