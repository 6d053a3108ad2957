import assert from "node:assert/strict";
import { disguisedRoute, isStreaming, routeOf, routeProblem, targetProblem } from "../../../server/gateway/routes";

const SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const enc = encodeURIComponent;

describe("routes: routeOf", () => {
  it("names every model operation and decodes the percent-encoded model id", () => {
    const cases: Array<[string, string]> = [
      ["invoke", "InvokeModel"],
      ["invoke-with-response-stream", "InvokeModelWithResponseStream"],
      ["converse", "Converse"],
      ["converse-stream", "ConverseStream"],
      ["count-tokens", "CountTokens"],
    ];
    for (const [suffix, operation] of cases) {
      assert.deepEqual(routeOf("POST", `/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/${suffix}`), {
        kind: "model",
        operation,
        modelId: SONNET_45,
      });
    }
  });

  it("decodes inference profiles and ARNs with %3A and %2F into the model id", () => {
    const ids = [
      `us.${SONNET_45}`,
      `global.${SONNET_45}`,
      `arn:aws:bedrock:us-east-1::foundation-model/${SONNET_45}`,
      "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123xyz",
      "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/pm-1",
    ];
    for (const id of ids) {
      const path = `/model/${enc(id)}/converse`;
      assert.ok(path.includes("%3A") && (!id.includes("/") || path.includes("%2F")), path);
      assert.deepEqual(routeOf("POST", path), { kind: "model", operation: "Converse", modelId: id });
    }
    // Lower-case hex escapes decode too.
    assert.deepEqual(routeOf("POST", "/model/amazon.nova-lite-v1%3a0/invoke"), { kind: "model", operation: "InvokeModel", modelId: "amazon.nova-lite-v1:0" });
  });

  it("ignores the query string", () => {
    assert.deepEqual(routeOf("POST", `/model/${enc(SONNET_45)}/invoke?trace=1`), { kind: "model", operation: "InvokeModel", modelId: SONNET_45 });
  });

  it("routes ApplyGuardrail with its decoded id and version", () => {
    assert.deepEqual(routeOf("POST", "/guardrail/gr-abc123/version/DRAFT/apply"), {
      kind: "guardrail",
      operation: "ApplyGuardrail",
      guardrailId: "gr-abc123",
      version: "DRAFT",
    });
    const arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr-abc123";
    assert.deepEqual(routeOf("POST", `/guardrail/${enc(arn)}/version/3/apply`), {
      kind: "guardrail",
      operation: "ApplyGuardrail",
      guardrailId: arn,
      version: "3",
    });
  });

  it("marks the bidirectional stream and async invoke as unsupported, saying what they are", () => {
    const bidi = routeOf("POST", `/model/${enc("amazon.nova-sonic-v1:0")}/invoke-with-bidirectional-stream`);
    assert.equal(bidi.kind, "unsupported");
    assert.match((bidi as { what: string }).what, /InvokeModelWithBidirectionalStream/);

    const start = routeOf("POST", "/async-invoke");
    assert.equal(start.kind, "unsupported");
    assert.match((start as { what: string }).what, /StartAsyncInvoke/);

    for (const path of ["/async-invoke", "/async-invoke?maxResults=10", `/async-invoke/${enc("arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc")}`]) {
      const r = routeOf("GET", path);
      assert.equal(r.kind, "unsupported", path);
      assert.match((r as { what: string }).what, /AsyncInvoke/);
    }
  });

  it("calls everything else unknown", () => {
    const unknown: Array<[string, string]> = [
      ["GET", `/model/${enc(SONNET_45)}/invoke`],
      ["PUT", `/model/${enc(SONNET_45)}/converse`],
      ["POST", `/model/${enc(SONNET_45)}/generate`],
      ["POST", `/model/${enc(SONNET_45)}/invoke/extra`],
      ["POST", "/model//invoke"],
      ["POST", "/model/a/b/invoke"],
      ["POST", "/"],
      ["POST", "/models/x/invoke"],
      ["GET", "/guardrail/gr/version/1/apply"],
      ["POST", "/async-invoke/x"],
      ["DELETE", "/async-invoke"],
    ];
    for (const [method, path] of unknown) assert.deepEqual(routeOf(method, path), { kind: "unknown" }, `${method} ${path}`);
  });

  it("does not take inherited object keys such as constructor for operations", () => {
    assert.deepEqual(routeOf("POST", `/model/${enc(SONNET_45)}/constructor`), { kind: "unknown" });
  });

  it("calls a model path with bad percent-encoding unknown rather than throwing", () => {
    for (const path of ["/model/anthropic.claude%3/invoke", "/model/%E0%A4%A/converse", "/model/%ZZ/invoke"]) {
      assert.doesNotThrow(() => routeOf("POST", path));
      assert.deepEqual(routeOf("POST", path), { kind: "unknown" }, path);
    }
    // A guardrail id that does not decode is kept as sent.
    assert.deepEqual(routeOf("POST", "/guardrail/gr%ZZ/version/1/apply"), {
      kind: "guardrail",
      operation: "ApplyGuardrail",
      guardrailId: "gr%ZZ",
      version: "1",
    });
  });
});

describe("routes: isStreaming", () => {
  it("is true only for the two streaming operations", () => {
    assert.equal(isStreaming("InvokeModelWithResponseStream"), true);
    assert.equal(isStreaming("ConverseStream"), true);
    for (const op of ["InvokeModel", "Converse", "CountTokens", "ApplyGuardrail"] as const) assert.equal(isStreaming(op), false);
  });
});

describe("routes: targetProblem", () => {
  it("names a malformed percent-escape in the path or the query", () => {
    assert.match(targetProblem("/model/anthropic.claude%ZZ/invoke") ?? "", /path has a malformed percent-escape "%ZZ" at character 24/);
    assert.match(targetProblem("/model/a%3A0/invoke?x=%z") ?? "", /query has a malformed percent-escape "%z"/);
    assert.match(targetProblem("/model/a/invoke?x=%") ?? "", /query has a malformed percent-escape "%"/);
    assert.match(targetProblem("/model/a%C0%AF/invoke") ?? "", /path do not decode to UTF-8/);
  });

  it("passes well-formed targets, escapes of either case included", () => {
    for (const t of [`http://127.0.0.1:8777/model/${enc(SONNET_45)}/invoke`, "*", "model/x/invoke", ""]) assert.match(targetProblem(t) ?? "", /is not a path beginning with "\/"/, t);
    for (const t of [`/model/${enc(SONNET_45)}/invoke`, "/model/amazon.nova-lite-v1%3a0/invoke?trace=ENABLED&x=%41", "/", "/a?"]) assert.equal(targetProblem(t), undefined, t);
  });
});

describe("routes: routeProblem (Bedrock's modelId patterns, whole-id match)", () => {
  const model = (modelId: string, operation: "InvokeModel" | "CountTokens" = "InvokeModel") => routeProblem({ kind: "model", operation, modelId });

  it("accepts base ids, inference profiles and model ARNs", () => {
    for (const id of [
      SONNET_45,
      `global.${SONNET_45}`,
      "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
      `arn:aws:bedrock:us-east-1::foundation-model/${SONNET_45}`,
      "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123xyz",
      "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl",
      "arn:aws:bedrock:us-east-1:123456789012:prompt/ABCDEFGHIJ:2",
      "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1",
    ]) {
      assert.equal(model(id), undefined, id);
    }
    assert.equal(model(SONNET_45, "CountTokens"), undefined);
  });

  it("refuses ids no Bedrock model can have, quoting them", () => {
    for (const id of ["../../admin", "a/b", "anthropic.claude\u0000", "x y", "", "é", "a".repeat(2049), "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/pm-1"]) {
      const problem = model(id);
      assert.match(problem ?? "", /is not a Bedrock model id/, JSON.stringify(id));
    }
    assert.match(model("../../admin") ?? "", /"\.\.\/\.\.\/admin"/);
    assert.match(model("arn:aws:bedrock:us-east-1:123456789012:prompt-router/" + "a".repeat(300), "CountTokens") ?? "", /not one CountTokens accepts/);
  });

  it("checks a guardrail's version against Bedrock's pattern and its id for printable ASCII", () => {
    assert.equal(routeProblem(routeOf("POST", "/guardrail/gr-abc123/version/DRAFT/apply")), undefined);
    assert.match(routeProblem(routeOf("POST", "/guardrail/gr/version/01/apply")) ?? "", /guardrail version "01"/);
    assert.match(routeProblem(routeOf("POST", "/guardrail/gr%0A/version/1/apply")) ?? "", /guardrail identifier/);
  });
});

describe("routes: disguisedRoute (another spelling of a known operation)", () => {
  const model = `/model/${enc(SONNET_45)}`;
  it("names the operation that escaped letters, dot segments, doubled slashes or capitals spell", () => {
    assert.equal(disguisedRoute("POST", `${model}/%69nvoke`), "InvokeModel");
    assert.equal(disguisedRoute("POST", `${model}/./converse-stream`), "ConverseStream");
    assert.equal(disguisedRoute("POST", `/model/other/../${enc(SONNET_45)}/invoke`), "InvokeModel");
    assert.equal(disguisedRoute("POST", `/${model}/invoke/`), "InvokeModel");
    assert.equal(disguisedRoute("POST", `${model}/Converse?x=1`), "Converse");
    assert.equal(disguisedRoute("post", `${model}/invoke/`), "InvokeModel");
    assert.equal(disguisedRoute("POST", `/model/${enc("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x")}//invoke`), "InvokeModel", "an ARN's escaped slash stays in its id");
    assert.equal(disguisedRoute("POST", "/Guardrail/Gr1/VERSION/DRAFT/apply"), "ApplyGuardrail");
    assert.match(disguisedRoute("POST", "/async-invoke/") ?? "", /StartAsyncInvoke/);
  });

  it("reads a decoded %2F as a separator too: a path it makes spell, or name, an operation is disguised", () => {
    assert.equal(disguisedRoute("POST", `${model}%2Finvoke`), "InvokeModel");
    assert.equal(disguisedRoute("POST", `${model}/invoke%2f`), "InvokeModel");
    assert.equal(disguisedRoute("POST", `${model}/count-tokens%2F..%2Finvoke`), "InvokeModel");
    assert.equal(disguisedRoute("POST", `${model}/invoke%2F..%2Fsomething-new`), "InvokeModel", "hidden by a dot segment");
    assert.equal(disguisedRoute("POST", `/model%2F${enc(SONNET_45)}%2FConverse-Stream`), "ConverseStream");
    assert.equal(disguisedRoute("POST", `/model/${enc("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc")}%2Finvoke`), "InvokeModel");
    assert.equal(disguisedRoute("POST", "/guardrail%2Fgr1%2Fversion%2F1%2Fapply"), "ApplyGuardrail");
    assert.match(disguisedRoute("GET", "/async-invoke%2Fx") ?? "", /AsyncInvoke/);
  });

  it("names the operation an ending a server may cut off hides (path parameters, an extension, a NUL, a space, a backslash)", () => {
    for (const ending of [";v=1", ".json", "%00", "%20", "%5C", "%23frag", "%3Fx"]) {
      assert.equal(disguisedRoute("POST", `${model}/invoke${ending}`), "InvokeModel", ending);
      assert.equal(disguisedRoute("POST", `${model}/Converse-Stream${ending}`), "ConverseStream", ending);
    }
    assert.equal(disguisedRoute("POST", `${model}/invoke-with-bidirectional-stream;x`), "InvokeModelWithBidirectionalStream");
    assert.equal(disguisedRoute("POST", `${model}%2Finvoke;v=1`), "InvokeModel", "behind an escaped slash too");
    assert.equal(disguisedRoute("POST", `${model}/invoker`), undefined, "a longer word is another word");
    assert.equal(disguisedRoute("POST", `${model}/new.op`), undefined);
    assert.equal(disguisedRoute("GET", `${model}/invoke;v=1`), undefined, "model operations are POSTs");
  });

  it("an ARN's escaped slash in an unknown operation's path is left alone", () => {
    const arn = `/model/${enc("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc")}`;
    assert.equal(disguisedRoute("POST", `${arn}/something-new`), undefined);
    assert.equal(routeOf("POST", `${arn}/invoke`).kind, "model", "the ARN call itself is routed, never asked here");
  });

  it("leaves other paths alone, case of the ids included", () => {
    assert.equal(disguisedRoute("POST", "/foo/bar"), undefined);
    assert.equal(disguisedRoute("POST", `${model}/not-an-operation`), undefined);
    assert.equal(disguisedRoute("GET", `${model}/invoke`), undefined);
    assert.equal(disguisedRoute("POST", `${model}/%ZZ`), undefined, "a broken escape is targetProblem's to name");
  });
});
