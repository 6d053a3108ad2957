/**
 * Bedrock call sites in TypeScript/JavaScript: AWS SDK v3 commands (`new ConverseCommand({...})`,
 * also aliased or through a namespace import), the aggregated client's methods (`.converse({...})`,
 * only in files importing the Bedrock Runtime client, since `converse` is a common word), and the
 * Anthropic Bedrock SDK's `messages.create/stream` (only in files importing that SDK).
 */
import type { MeteredOperation } from "../../metering/types";
import type { SyntaxNode } from "./parsers";
import { readRequest } from "./request";
import { previousCall, siteOf, type Incremental, type SiteMatch, type SiteReader } from "./reuse";
import { field, isField, LineIndex, namedChildren, nodeAt, occurrences, type Located } from "./syntax";
import { TsScope } from "./tsValues";
import type { CallSite, CallSiteLanguage } from "./types";
import { unknown } from "./values";

const BEDROCK_RUNTIME = "@aws-sdk/client-bedrock-runtime";
const ANTHROPIC_BEDROCK = "@anthropic-ai/bedrock-sdk";
const ANTHROPIC_PLAIN = "@anthropic-ai/sdk";

const COMMANDS: Record<string, MeteredOperation> = {
  InvokeModelCommand: "InvokeModel",
  InvokeModelWithResponseStreamCommand: "InvokeModelWithResponseStream",
  ConverseCommand: "Converse",
  ConverseStreamCommand: "ConverseStream",
};
const METHODS: Record<string, MeteredOperation> = {
  invokeModel: "InvokeModel",
  invokeModelWithResponseStream: "InvokeModelWithResponseStream",
  converse: "Converse",
  converseStream: "ConverseStream",
};
const ANTHROPIC_METHODS: Record<string, MeteredOperation> = { create: "InvokeModel", stream: "InvokeModelWithResponseStream" };


/** What the file imports from the SDKs, under which local names. */
interface Imports {
  runtime: boolean;
  /** local name → exported command name (aliases included). */
  commands: Map<string, string>;
  anthropicBedrock: boolean;
  anthropicPlain: boolean;
  /** Local names of the AnthropicBedrock class. */
  anthropicClasses: Set<string>;
}

/** `inc`: the previous run and the edit since, to reuse the facts of sites the edit cannot have changed. */
export function findTsCallSites(root: SyntaxNode, text: string, language: CallSiteLanguage, inc?: Incremental): CallSite[] {
  const imports = readImports(root, text);
  const anthropicClients = anthropicInstances(root, text, imports);
  // Everything outside a site's own reading that decides what it is: a change here re-reads every site.
  const fileKey = JSON.stringify([language, imports.runtime, imports.anthropicBedrock, imports.anthropicPlain, [...imports.commands], [...imports.anthropicClasses], [...anthropicClients]]);
  if (inc) inc.memo.fileKey = fileKey;
  const lines = new LineIndex(text);
  let scope: TsScope | undefined; // built on the first match only: most files have no Bedrock call

  const reader: SiteReader = {
    callTypes: CALL_TYPES,
    match: (node) => matchCall(node, imports, anthropicClients),
    facts: (node, match, deps) => {
      scope ??= new TsScope(root, text);
      scope.deps = deps;
      const args = namedChildren(field(node, "arguments") ?? node).filter((a) => a.type !== "comment");
      const params = args[0] ? scope.evaluate(args[0]) : unknown("no argument");
      scope.deps = undefined;
      const anthropic = match.api === "anthropic-bedrock-sdk";
      return readRequest(match.metered, params, anthropic ? "model" : "modelId", !anthropic && match.metered.startsWith("InvokeModel"));
    },
  };
  const sites: CallSite[] = [];
  for (const call of candidates(root, text, imports, inc, fileKey)) {
    const site = siteOf(call, root, reader, inc, fileKey);
    if (!site) continue;
    sites.push({
      range: lines.rangeOf(call.start, call.end),
      language,
      api: site.match.api,
      operation: site.match.operation,
      meteredOperation: site.match.metered,
      ...site.facts,
    });
  }
  return sites;
}

const CALL_TYPES: ReadonlySet<string> = new Set(["new_expression", "call_expression"]);

/**
 * `new X(...)`, `new ns.X(...)` and `recv.method(...)` expressions whose X / method is one of the
 * names we care about, in document order. Names are located in the text, then checked in the tree,
 * except where the previous run already did and the edit changed nothing around them (`inc`).
 */
function candidates(root: SyntaxNode, text: string, imports: Imports, inc: Incremental | undefined, fileKey: string): Located[] {
  const names = new Set([...Object.keys(COMMANDS), ...imports.commands.keys()]);
  if (imports.runtime) for (const m of Object.keys(METHODS)) names.add(m);
  if (imports.anthropicBedrock) for (const m of Object.keys(ANTHROPIC_METHODS)) names.add(m);
  const found = new Map<string, Located>();
  for (const at of occurrences(text, names)) {
    const length = /^[\w$]+/.exec(text.slice(at, at + 80))?.[0].length ?? 1;
    const known = previousCall(inc, fileKey, at, length);
    const call = known === undefined ? callOf(root, at, length) : known && { start: known[0], end: known[1] };
    inc?.memo.calls.set(at, call ? [call.start, call.end] : null);
    // One entry per call (its extent: two calls never share one), the first name found deciding its place among equals.
    if (call && !found.has(`${call.start}:${call.end}`)) found.set(`${call.start}:${call.end}`, call);
  }
  return [...found.values()].sort((a, b) => a.start - b.start);
}

/** The call or `new` the name at [at, at + length) is the callee of, read from the tree. */
function callOf(root: SyntaxNode, at: number, length: number): Located | null {
  const id = nodeAt(root, at, at + length);
  if (!id || (id.type !== "identifier" && id.type !== "property_identifier")) return null;
  let callee = id;
  const parent = id.parent;
  if (parent?.type === "member_expression" && isField(parent, "property", id)) callee = parent;
  const expr = callee.parent;
  const isCall =
    (expr?.type === "new_expression" && isField(expr, "constructor", callee)) ||
    (expr?.type === "call_expression" && callee !== id && isField(expr, "function", callee));
  return isCall && expr ? { start: expr.startIndex, end: expr.endIndex, node: expr } : null;
}

function matchCall(node: SyntaxNode, imports: Imports, anthropicClients: Set<string>): SiteMatch | undefined {
  if (node.type === "new_expression") {
    const ctor = field(node, "constructor");
    let name: string | undefined;
    if (ctor?.type === "identifier") name = imports.commands.get(ctor.text) ?? ctor.text;
    else if (ctor?.type === "member_expression") name = field(ctor, "property")?.text;
    const metered = name === undefined ? undefined : COMMANDS[name];
    return metered && name ? { api: "aws-sdk-js-v3", operation: name, metered } : undefined;
  }
  if (node.type !== "call_expression") return undefined;
  const fn = field(node, "function");
  if (fn?.type !== "member_expression") return undefined;
  const method = field(fn, "property")?.text ?? "";
  const receiver = field(fn, "object");
  if (imports.runtime && Object.hasOwn(METHODS, method)) {
    return { api: "aws-sdk-js-v3", operation: method, metered: METHODS[method]! };
  }
  if (imports.anthropicBedrock && Object.hasOwn(ANTHROPIC_METHODS, method) && receiver?.type === "member_expression" && field(receiver, "property")?.text === "messages") {
    if (!isAnthropicClient(field(receiver, "object"), imports, anthropicClients)) return undefined;
    return { api: "anthropic-bedrock-sdk", operation: `messages.${method}`, metered: ANTHROPIC_METHODS[method]! };
  }
  return undefined;
}

/**
 * `x.messages.create`: x is an AnthropicBedrock client when it was built from that class in this
 * file; when the file builds none (a client passed in), any receiver counts, unless the file also
 * uses the plain Anthropic SDK, whose `messages.create` does not go to Bedrock.
 */
function isAnthropicClient(receiver: SyntaxNode | undefined, imports: Imports, clients: Set<string>): boolean {
  let r = receiver;
  if (r?.type === "member_expression" && field(r, "property")?.text === "beta") r = field(r, "object");
  if (r?.type === "new_expression") return imports.anthropicClasses.has(field(r, "constructor")?.text ?? "");
  const name = r?.type === "member_expression" ? field(r, "property")?.text : r?.text;
  if (clients.size > 0) return name !== undefined && clients.has(name);
  return !imports.anthropicPlain;
}

function readImports(root: SyntaxNode, text: string): Imports {
  const imports: Imports = { runtime: false, commands: new Map(), anthropicBedrock: false, anthropicPlain: false, anthropicClasses: new Set() };
  const modules = /(["'])(@aws-sdk\/client-bedrock-runtime|@anthropic-ai\/bedrock-sdk|@anthropic-ai\/sdk)\1/g;
  for (let m = modules.exec(text); m; m = modules.exec(text)) {
    const literal = nodeAt(root, m.index, m.index + m[0].length);
    const str = literal?.type === "string" ? literal : literal?.parent;
    if (str?.type !== "string") continue;
    const from = m[2]!;
    const owner = str.parent;
    if (owner?.type === "import_statement") {
      const clause = namedChildren(owner).find((c) => c.type === "import_clause");
      if (clause) bind(imports, from, clause);
      else mark(imports, from);
      continue;
    }
    // const { ConverseCommand: Converse } = require("@aws-sdk/client-bedrock-runtime")
    const call = owner?.type === "arguments" ? owner.parent : undefined;
    const declarator = call?.parent;
    if (call?.type !== "call_expression" || field(call, "function")?.text !== "require") continue;
    const name = declarator?.type === "variable_declarator" ? field(declarator, "name") : undefined;
    if (name) bind(imports, from, name);
    else mark(imports, from);
  }
  return imports;
}

function mark(imports: Imports, from: string): boolean {
  if (from === BEDROCK_RUNTIME) return (imports.runtime = true);
  if (from === ANTHROPIC_BEDROCK) return (imports.anthropicBedrock = true);
  if (from === ANTHROPIC_PLAIN) imports.anthropicPlain = true;
  return false;
}

/** Records local names from an import clause or a require pattern. */
function bind(imports: Imports, from: string, names: SyntaxNode): void {
  if (!mark(imports, from)) return;
  const add = (exported: string, local: string) => {
    if (from === BEDROCK_RUNTIME) imports.commands.set(local, exported);
    else if (exported === "AnthropicBedrock" || exported === "default") imports.anthropicClasses.add(local);
  };
  const visit = (n: SyntaxNode) => {
    switch (n.type) {
      case "identifier": // default import, or `const X = require(...)`
        return add("default", n.text);
      case "import_specifier": {
        const name = field(n, "name")?.text ?? "";
        return add(name, field(n, "alias")?.text ?? name);
      }
      case "shorthand_property_identifier_pattern":
        return add(n.text, n.text);
      case "pair_pattern":
        return add(field(n, "key")?.text ?? "", field(n, "value")?.text ?? "");
      default:
        for (const c of namedChildren(n)) visit(c);
    }
  };
  visit(names);
}

/** Names under which AnthropicBedrock clients are kept: `const c = new AnthropicBedrock()`, `this.c = ...`, fields. */
function anthropicInstances(root: SyntaxNode, text: string, imports: Imports): Set<string> {
  const names = new Set<string>();
  if (!imports.anthropicBedrock) return names;
  for (const at of occurrences(text, ["new"])) {
    const expr = nodeAt(root, at, at + 3)?.parent;
    if (expr?.type !== "new_expression") continue;
    const ctor = field(expr, "constructor");
    const cls = ctor?.type === "member_expression" ? field(ctor, "property")?.text : ctor?.text;
    if (!imports.anthropicClasses.has(cls ?? "") && cls !== "AnthropicBedrock") continue;
    const holder = expr.parent;
    const target =
      holder?.type === "assignment_expression" ? field(holder, "left")
      : holder?.type === "variable_declarator" || holder?.type === "public_field_definition" ? field(holder, "name")
      : undefined;
    const name = target?.type === "member_expression" ? field(target, "property")?.text : target?.text;
    if (name) names.add(name);
  }
  return names;
}
