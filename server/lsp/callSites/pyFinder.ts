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
import { previousCall, siteOf, type Incremental, type SiteMatch, type SiteReader } from "./reuse";
import { field, isField, LineIndex, namedChildren, nodeAt, occurrences, type Located } from "./syntax";
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

  const reader: SiteReader = {
    callTypes: CALL_TYPES,
    match: (node) => matchCall(node, usesBoto, anthropic),
    facts: (node, match, deps) => {
      scope ??= new PyScope(root, text);
      scope.deps = deps;
      const params = scope.keywordArguments(field(node, "arguments"));
      scope.deps = undefined;
      const isAnthropic = match.api === "anthropic-bedrock-sdk";
      return readRequest(match.metered, params, isAnthropic ? "model" : "modelId", !isAnthropic && match.metered.startsWith("InvokeModel"));
    },
  };
  const sites: CallSite[] = [];
  for (const call of candidates(root, text, anthropic.imported, inc, fileKey)) {
    const site = siteOf(call, root, reader, inc, fileKey);
    if (!site) continue;
    sites.push({
      range: lines.rangeOf(call.start, call.end),
      language: "python",
      api: site.match.api,
      operation: site.match.operation,
      meteredOperation: site.match.metered,
      ...site.facts,
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
function candidates(root: SyntaxNode, text: string, anthropic: boolean, inc: Incremental | undefined, fileKey: string): Located[] {
  const names = Object.keys(METHODS);
  if (anthropic) names.push(...Object.keys(ANTHROPIC_METHODS));
  const out: Located[] = [];
  for (const at of occurrences(text, names)) {
    const length = /^\w+/.exec(text.slice(at, at + 64))?.[0].length ?? 1;
    const known = previousCall(inc, fileKey, at, length);
    const call = known === undefined ? callOf(root, at, length) : known && { start: known[0], end: known[1] };
    inc?.memo.calls.set(at, call ? [call.start, call.end] : null);
    if (call) out.push(call);
  }
  return out;
}

const CALL_TYPES: ReadonlySet<string> = new Set(["call"]);

/** The call whose method is the name at [at, at + length), read from the tree. */
function callOf(root: SyntaxNode, at: number, length: number): Located | null {
  const id = nodeAt(root, at, at + length);
  const attr = id?.parent;
  if (!id || id.type !== "identifier" || attr?.type !== "attribute" || !isField(attr, "attribute", id)) return null;
  const call = attr.parent;
  return call?.type === "call" && isField(call, "function", attr) ? { start: call.startIndex, end: call.endIndex, node: call } : null;
}

function matchCall(node: SyntaxNode, usesBoto: boolean, anthropic: AnthropicNames): SiteMatch | undefined {
  const fn = field(node, "function");
  if (fn?.type !== "attribute") return undefined;
  const method = field(fn, "attribute")?.text ?? "";
  const receiver = field(fn, "object");
  if (Object.hasOwn(METHODS, method) && (DISTINCTIVE.has(method) || usesBoto)) {
    return { api: "boto3", operation: method, metered: METHODS[method]! };
  }
  if (anthropic.imported && Object.hasOwn(ANTHROPIC_METHODS, method) && receiver?.type === "attribute" && field(receiver, "attribute")?.text === "messages") {
    if (isAnthropicClient(field(receiver, "object"), anthropic)) {
      return { api: "anthropic-bedrock-sdk", operation: `messages.${method}`, metered: ANTHROPIC_METHODS[method]! };
    }
  }
  return undefined;
}

/**
 * Text that may hold `import …anthropic…` or `from anthropic import …` (names, dots, commas, blanks and
 * line continuations between): without it no statement below can be an import of the package, and the
 * word alone is in every Claude model id, which would each be looked up in the tree on every edit.
 */
export function mayImportAnthropic(text: string): boolean {
  // Same answer as /\bimport\b[\w.,\s\\]*?\banthropic\b|\bfrom[\s\\]+anthropic\b/, in linear time: that pattern
  // rescans the rest of a run from every `import` in it (`"import ".repeat(k)` took 72 s for 1 MB).
  // Here each maximal run of those characters is read once: its first `import`, then any `anthropic` after it.
  if (/\bfrom[\s\\]+anthropic\b/.test(text)) return true;
  const runs = /[\w.,\s\\]+/g;
  for (let run = runs.exec(text); run; run = runs.exec(text)) {
    const words = /\b(?:import|anthropic)\b/g;
    const chars = run[0];
    let sawImport = false;
    for (let w = words.exec(chars); w; w = words.exec(chars)) {
      if (w[0] === "import") sawImport = true;
      else if (sawImport) return true;
    }
  }
  return false;
}

function anthropicNames(root: SyntaxNode, text: string): AnthropicNames {
  const names: AnthropicNames = { imported: false, plainToo: false, classes: new Set(["anthropic.AnthropicBedrock"]), instances: new Set() };
  if (!mayImportAnthropic(text)) return names;
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
