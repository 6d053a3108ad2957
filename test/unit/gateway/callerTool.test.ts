import assert from "node:assert/strict";
import { callerTool, parseTagsHeader, tagsFromHeader } from "../../../server/gateway/callerTool";
import { tagProblem } from "../../../server/config/tags";

describe("callerTool", () => {
  const cases: Array<[string, string]> = [
    [
      "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.0",
      "boto3",
    ],
    [
      "aws-cli/2.17.0 md/awscrt#0.20.11 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython exe/x86_64.ubuntu.22 cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#bedrock-runtime.invoke-model",
      "aws-cli",
    ],
    // AWS CLI v1 also carries Botocore/…: the CLI wins.
    ["aws-cli/1.33.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy botocore/1.35.0", "aws-cli"],
    ["Botocore/1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy", "botocore"],
    ["aws-sdk-js/3.1164.0 ua/2.1 os/linux#6.1.0 lang/js md/nodejs#20.20.2 api/bedrock-runtime#3.1164.0 m/N,E,e", "aws-sdk-js"],
    ["Anthropic/JS 0.30.0", "anthropic-sdk-js"],
    ["Anthropic/Python 0.40.0", "anthropic-sdk-python"],
    // What @anthropic-ai/bedrock-sdk 1.1.2 and the Vercel AI SDK 7 (generateText, streamText) send.
    ["AnthropicBedrock/JS 1.14.0", "anthropic-sdk-js"],
    ["ai/7.0.173 ai-sdk-provider-utils/5.0.51 node.js/v20.20.2 ai-sdk-amazon-bedrock/5.0.101 node.js/v20.20.2", "ai-sdk"],
    ["ai-sdk-amazon-bedrock/5.0.101 ai-sdk-provider-utils/5.0.51 node.js/v20.20.2 ai-sdk-amazon-bedrock/5.0.101 node.js/v20.20.2", "ai-sdk"],
    ["aws-sdk-js/3.600.0 ua/2.1 os/darwin#23.5.0 lang/js md/nodejs#20.12.0 api/bedrock-runtime#3.600.0 langchainjs-aws/0.1.0", "langchain"],
    ["curl/8.5.0", "curl"],
    ["aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22.4 md/GOOS#linux md/GOARCH#amd64 api/bedrockruntime#1.16.0", "aws-sdk-go"],
    ["aws-sdk-java/2.26.0 Linux/6.1 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS Java/21.0.3 vendor/Eclipse_Adoptium io/sync http/Apache cfg/retry-mode/legacy", "aws-sdk-java"],
  ];
  for (const [ua, tool] of cases) {
    it(`names ${tool} from "${ua.slice(0, 40)}…"`, () => assert.equal(callerTool(ua), tool));
  }

  it("falls back to the first word of an unknown User-Agent, at most 40 characters", () => {
    assert.equal(callerTool("python-requests/2.31.0"), "python-requests");
    assert.equal(callerTool("MyInternalTool 1.0"), "MyInternalTool");
    assert.equal(callerTool("x".repeat(100)), "x".repeat(40));
  });

  it("says unknown when there is no usable User-Agent", () => {
    assert.equal(callerTool(undefined), "unknown");
    assert.equal(callerTool(""), "unknown");
    assert.equal(callerTool(" leading-space"), "unknown");
  });
});

describe("tagsFromHeader", () => {
  it("parses key=value pairs separated by ';' (or ',' before the next key=) with surrounding spaces trimmed", () => {
    assert.deepEqual(tagsFromHeader("team=search; feature=summaries"), { team: "search", feature: "summaries" });
    assert.deepEqual(tagsFromHeader(" team = search ,feature=summaries;env=prod "), { team: "search", feature: "summaries", env: "prod" });
    assert.deepEqual(tagsFromHeader("project=chatbot,team=support"), { project: "chatbot", team: "support" });
  });

  it("keeps '=' and a ',' not followed by key= inside a value, and allows empty values", () => {
    assert.deepEqual(tagsFromHeader("q=a=b; empty="), { q: "a=b", empty: "" });
    assert.deepEqual(tagsFromHeader("project=a,b; team=x"), { project: "a,b", team: "x" });
    assert.deepEqual(tagsFromHeader("list=a, b, c"), { list: "a, b, c" });
  });

  it("skips empty parts; a part without a key or '=' is a problem, not skipped", () => {
    assert.deepEqual(parseTagsHeader("a=1; ; b=2;"), { tags: { a: "1", b: "2" } });
    for (const value of ["=orphan", "team=a; novalue", "   =x"]) assert.match(parseTagsHeader(value).problem ?? "", /is not key=value/, value);
  });

  it("lets a later duplicate key win", () => {
    assert.deepEqual(tagsFromHeader("team=a; team=b"), { team: "b" });
  });

  it("keeps long keys and values whole, for the grammar to refuse", () => {
    const tags = tagsFromHeader(`${"k".repeat(100)}=${"v".repeat(1000)}`);
    assert.deepEqual(tags, { ["k".repeat(100)]: "v".repeat(1000) });
    assert.match(tagProblem(tags, "the header") ?? "", /invalid tag key/);
    const many = tagsFromHeader(Array.from({ length: 20 }, (_, i) => `k${i}=v`).join("; "));
    assert.equal(Object.keys(many).length, 20);
    assert.match(tagProblem(many, "the header") ?? "", /has 20 tags/);
  });

  it("returns no tags without a header", () => {
    assert.deepEqual(tagsFromHeader(undefined), {});
    assert.deepEqual(tagsFromHeader(""), {});
  });
});
