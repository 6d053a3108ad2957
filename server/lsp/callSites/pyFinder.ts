/**
 * Bedrock call sites in Python: boto3's bedrock-runtime client methods (`invoke_model`,
 * `invoke_model_with_response_stream`, `converse`, `converse_stream`) on any receiver, since a
 * client is often passed around; `converse*` only in files that use boto3 or name bedrock-runtime
 * (the word is common). Also the `anthropic` package's AnthropicBedrock `messages.create/stream`,
 * only in files that import AnthropicBedrock.
 */
import type { MeteredOperation } from "../../metering/types";
import type { SyntaxNode } from "./parsers";
import { PyScope } from "./pyValues";
import { readRequest } from "./request";
import { reusable, type Incremental, type SiteDeps } from "./reuse";
import { field, isField, LineIndex, namedChildren, nodeAt, occurrences } from "./syntax";
import type { CallSite } from "./types";

const METHODS: Record<string, MeteredOperation> = {
  invoke_model: "InvokeModel",
  invoke_model_with_response_stream: "InvokeModelWithResponseStream",
  converse: "Converse",
  converse_stream: "ConverseStream",
};
const DISTINCTIVE = new Set(["invoke_model", "invoke_model_with_response_stream"]);
const ANTHROPIC_METHODS: Record<string, MeteredOperation> = { create: "InvokeModel", stream: "InvokeModelWithResponseStream" };


/** `inc`: the previous run and the edit since, to reuse the facts of sites the edit cannot have changed. */
export function findPyCallSites(root: SyntaxNode, text: string, inc?: Incremental): CallSite[] {
  const usesBoto = /\b(a?io)?boto(3|core)\b|bedrock-runtime/.test(text);
  const anthropic = anthropicNames(root, text);
  // Everything outside a site's own reading that decides what it is: a change here re-reads every site.
  const fileKey = JSON.stringify([usesBoto, anthropic.imported, anthropic.plainToo, [...anthropic.classes], [...anthropic.instances]]);
  if (inc) inc.memo.fileKey = fileKey;
  const lines = new LineIndex(text);
  let scope: PyScope | undefined; // built on the first match only

  const sites: CallSite[] = [];
  for (const node of candidates(root, text, anthropic.imported)) {
    const fn = field(node, "function");
    if (fn?.type !== "attribute") continue;
    const method = field(fn, "attribute")?.text ?? "";
    const receiver = field(fn, "object");
    let match: { api: CallSite["api"]; operation: string; metered: MeteredOperation } | undefined;
    if (Object.hasOwn(METHODS, method) && (DISTINCTIVE.has(method) || usesBoto)) {
      match = { api: "boto3", operation: method, metered: METHODS[method]! };
    } else if (anthropic.imported && Object.hasOwn(ANTHROPIC_METHODS, method) && receiver?.type === "attribute" && field(receiver, "attribute")?.text === "messages") {
      if (isAnthropicClient(field(receiver, "object"), anthropic)) {
        match = { api: "anthropic-bedrock-sdk", operation: `messages.${method}`, metered: ANTHROPIC_METHODS[method]! };
      }
    }
    if (!match) continue;
    const how = `${match.api} ${match.operation} ${match.metered}`;
    const start = node.startIndex;
    const end = node.endIndex;
    let kept = reusable(inc, fileKey, how, start, end);
    if (!kept) {
      scope ??= new PyScope(root, text);
      const deps: SiteDeps = { reads: [[start, end]], lookups: [] };
      scope.deps = deps;
      const params = scope.keywordArguments(field(node, "arguments"));
      scope.deps = undefined;
      const isAnthropic = match.api === "anthropic-bedrock-sdk";
      kept = { end, how, deps, facts: readRequest(match.metered, params, isAnthropic ? "model" : "modelId", !isAnthropic && match.metered.startsWith("InvokeModel")) };
    }
    inc?.memo.sites.set(start, kept);
    sites.push({
      range: lines.range(node),
      language: "python",
      api: match.api,
      operation: match.operation,
      meteredOperation: match.metered,
      ...kept.facts,
    });
  }
  return sites;
}

interface AnthropicNames {
  imported: boolean;
  /** The plain `Anthropic` client is also used: only known AnthropicBedrock instances count. */
  plainToo: boolean;
  classes: Set<string>;
  instances: Set<string>;
}

/** `recv.method(...)` calls for the method names we care about, in document order (located in the text, checked in the tree). */
function candidates(root: SyntaxNode, text: string, anthropic: boolean): SyntaxNode[] {
  const names = Object.keys(METHODS);
  if (anthropic) names.push(...Object.keys(ANTHROPIC_METHODS));
  const out: SyntaxNode[] = [];
  for (const at of occurrences(text, names)) {
    const id = nodeAt(root, at, at + (/^\w+/.exec(text.slice(at, at + 64))?.[0].length ?? 1));
    const attr = id?.parent;
    if (!id || id.type !== "identifier" || attr?.type !== "attribute" || !isField(attr, "attribute", id)) continue;
    const call = attr.parent;
    if (call?.type === "call" && isField(call, "function", attr)) out.push(call);
  }
  return out;
}

function anthropicNames(root: SyntaxNode, text: string): AnthropicNames {
  const names: AnthropicNames = { imported: false, plainToo: false, classes: new Set(["anthropic.AnthropicBedrock"]), instances: new Set() };
  if (!/\banthropic\b/.test(text)) return names;
  for (const at of occurrences(text, ["anthropic"])) {
    const stmt = nodeAt(root, at, at + "anthropic".length)?.parent?.parent;
    if (stmt?.type === "import_statement") names.imported = true; // `import anthropic` → anthropic.AnthropicBedrock(...)
    if (stmt?.type !== "import_from_statement" || field(stmt, "module_name")?.text !== "anthropic") continue;
    for (const c of namedChildren(stmt).slice(1)) {
      const name = c.type === "aliased_import" ? field(c, "name")?.text : c.text;
      const local = c.type === "aliased_import" ? field(c, "alias")?.text : c.text;
      if (name === "AnthropicBedrock" || name === "AsyncAnthropicBedrock") {
        names.imported = true;
        if (local) names.classes.add(local);
      } else if (name === "Anthropic" || name === "AsyncAnthropic") names.plainToo = true;
    }
  }
  if (!names.imported) return names;
  // Instances: `x = Cls(...)` / `self.x = Cls(...)`; a plain `anthropic.Anthropic()` also counts as "plain too".
  const classNames = [...names.classes, "anthropic.Anthropic", "anthropic.AsyncAnthropic"].map((c) => c.split(".").pop()!);
  for (const at of occurrences(text, classNames)) {
    let callee = nodeAt(root, at, at + (/^\w+/.exec(text.slice(at, at + 64))?.[0].length ?? 1));
    if (callee?.parent?.type === "attribute" && isField(callee.parent, "attribute", callee)) callee = callee.parent;
    const call = callee?.parent;
    if (!callee || call?.type !== "call" || !isField(call, "function", callee)) continue;
    const cls = field(call, "function")?.text;
    if (cls === "anthropic.Anthropic" || cls === "anthropic.AsyncAnthropic") names.plainToo = true;
    if (cls === undefined || !names.classes.has(cls)) continue;
    const assignment = call.parent;
    if (assignment?.type !== "assignment") continue;
    const left = field(assignment, "left");
    const name = left?.type === "attribute" ? field(left, "attribute")?.text : left?.text;
    if (name) names.instances.add(name);
  }
  return names;
}

function isAnthropicClient(receiver: SyntaxNode | undefined, names: AnthropicNames): boolean {
  let r = receiver;
  if (r?.type === "attribute" && field(r, "attribute")?.text === "beta") r = field(r, "object");
  if (r?.type === "call") return names.classes.has(field(r, "function")?.text ?? "");
  const name = r?.type === "attribute" ? field(r, "attribute")?.text : r?.text;
  if (names.instances.size > 0) return name !== undefined && names.instances.has(name);
  return !names.plainToo;
}
