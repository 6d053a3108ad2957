/**
 * Static evaluation of TypeScript/JavaScript expressions: literals, template literals, object and
 * array literals, `+`, member access, JSON.stringify, and identifiers that resolve to one
 * declaration in an enclosing scope that is const (or assigned exactly once). Calls of helper
 * functions in the same file are followed into their single `return`. Anything else is unknown.
 */
import type { SyntaxNode } from "./parsers";
import { extentsAround, field, isField, NameOccurrences, namedChildren, nodeAt } from "./syntax";
import { HelperReturns, mergeSpread, onlyReturned, resolveOnce } from "./evaluation";
import { concat, member, partsOf, unknown, type Value } from "./values";
import type { SiteDeps } from "./reuse";

type DeclKind = "const" | "let" | "var" | "function" | "param";

interface Decl {
  kind: DeclKind;
  /** The extent of the declaration's scope (indexes, kept as numbers: node getters cross into wasm). */
  start: number;
  end: number;
  /** The scope node itself: the assignments a `let`/`var` may get are looked for around it. */
  scope: SyntaxNode;
  value?: SyntaxNode;
}

const WRAPPERS = new Set(["parenthesized_expression", "as_expression", "satisfies_expression", "non_null_expression", "type_assertion"]);
const MAX_DEPTH = 24;

/** What one occurrence of a name does: declare it, or assign it (`assigned`: the value, read at `start`). */
type Binding = { decl: Decl } | { assigned: SyntaxNode; start: number };

/**
 * Declarations and assignments of one file, read per name on first use (and cached): only names
 * that a Bedrock call actually refers to are ever looked up, and only around where they are used.
 */
export class TsScope {
  private readonly names = new Map<string, NameOccurrences<Binding>>();
  private readonly resolving = new Set<number>();
  /** When set, what evaluation reads is recorded here (declarations followed, names looked up). */
  deps: SiteDeps | undefined;
  /** Helpers' returns, walked once per helper for this scope's find. */
  readonly helperReturns = new HelperReturns(NESTED_FUNCTIONS);

  constructor(private readonly root: SyntaxNode, private readonly text: string) {}

  /** The value of an expression node, as far as it is knowable from this file. */
  evaluate(node: SyntaxNode | undefined, depth = 0): Value {
    if (!node) return unknown("missing");
    if (depth > MAX_DEPTH) return unknown("too deep");
    const next = (n: SyntaxNode | undefined) => this.evaluate(n, depth + 1);
    switch (node.type) {
      case "string":
        return { kind: "str", parts: [stringText(node)] };
      case "template_string":
        return this.template(node, depth);
      case "number":
        return { kind: "num", value: Number(node.text.replace(/_/g, "")) };
      case "true":
      case "false":
        return { kind: "bool", value: node.type === "true" };
      case "null":
      case "undefined":
        return { kind: "null" };
      case "object":
        return this.object(node, depth);
      case "array": {
        const items: Value[] = [];
        let open = false;
        for (const el of namedChildren(node)) {
          if (el.type === "spread_element") {
            const spread = next(namedChildren(el)[0]);
            if (spread.kind === "arr") items.push(...spread.items);
            else open = true;
          } else if (el.type !== "comment") items.push(next(el));
        }
        return { kind: "arr", items, open };
      }
      case "identifier":
        return this.identifier(node, depth);
      case "member_expression": {
        const prop = field(node, "property");
        return prop ? member(next(field(node, "object")), prop.text) : unknown("member");
      }
      case "subscript_expression": {
        const key = next(field(node, "index"));
        const keyText = key.kind === "num" ? String(key.value) : key.kind === "str" ? key.parts.join("") : undefined;
        return keyText === undefined ? unknown("computed key") : member(next(field(node, "object")), keyText);
      }
      case "binary_expression":
        if (field(node, "operator")?.text !== "+") return unknown(`${field(node, "operator")?.text} expression`);
        return concat(next(field(node, "left")), next(field(node, "right")));
      case "call_expression":
        return this.call(node, depth);
      default:
        if (WRAPPERS.has(node.type)) return next(namedChildren(node).find((c) => c.type !== "comment"));
        return unknown(`${node.type} not evaluated statically`);
    }
  }

  private template(node: SyntaxNode, depth: number): Value {
    const parts: (string | null)[] = [];
    for (const child of namedChildren(node)) {
      if (child.type === "string_fragment") parts.push(child.text);
      else if (child.type === "escape_sequence") parts.push(unescape(child.text));
      else if (child.type === "template_substitution") parts.push(...partsOf(this.evaluate(namedChildren(child)[0], depth + 1)));
    }
    return { kind: "str", parts };
  }

  private object(node: SyntaxNode, depth: number): Value {
    const entries = new Map<string, Value>();
    let open = false;
    for (const child of namedChildren(node)) {
      if (child.type === "pair") {
        const key = propertyKey(field(child, "key"), (n) => this.evaluate(n, depth + 1));
        if (key === undefined) open = true;
        else entries.set(key, this.evaluate(field(child, "value"), depth + 1));
      } else if (child.type === "shorthand_property_identifier") {
        entries.set(child.text, this.identifier(child, depth + 1));
      } else if (child.type === "spread_element") {
        open = mergeSpread(entries, this.evaluate(namedChildren(child)[0], depth + 1)) || open;
      }
    }
    return { kind: "obj", entries, open };
  }

  private call(node: SyntaxNode, depth: number): Value {
    const fn = field(node, "function");
    const args = namedChildren(field(node, "arguments") ?? node).filter((a) => a.type !== "comment");
    if (!fn) return unknown("call");
    const callee = fn.text.replace(/\s+/g, "");
    if (callee === "JSON.stringify") return { kind: "json", of: this.evaluate(args[0], depth + 1) };
    // Bytes of a string (TextEncoder, Buffer, Uint8Array): same content for our purposes.
    if (/(^|\.)encode$/.test(callee) || callee === "Buffer.from") return this.evaluate(args[0], depth + 1);
    if (fn.type === "identifier") return this.helperCall(fn, depth);
    return unknown(`result of ${callee}()`);
  }

  /** A helper function in the same file whose body is one returned expression. */
  private helperCall(fn: SyntaxNode, depth: number): Value {
    const decl = this.lookup(fn.text, fn);
    if (decl?.value) this.deps?.reads.push([decl.value.startIndex, decl.value.endIndex]);
    let fnNode = decl?.kind === "function" || decl?.kind === "const" ? decl.value : undefined;
    while (fnNode && WRAPPERS.has(fnNode.type)) fnNode = namedChildren(fnNode)[0];
    if (!fnNode || !/function|arrow_function/.test(fnNode.type)) return unknown(`result of ${fn.text}()`);
    const body = field(fnNode, "body");
    if (body && body.type !== "statement_block") return this.evaluate(body, depth + 1);
    const sole = body ? this.helperReturns.soleReturn(fnNode, body) : undefined;
    return onlyReturned(sole ? [sole] : [], fn.text, (n) => this.evaluate(n, depth + 1));
  }

  private identifier(node: SyntaxNode, depth: number): Value {
    const name = node.text;
    if (name === "undefined") return { kind: "null" };
    const decl = this.lookup(name, node);
    if (!decl) return unknown(`${name} is not declared in this file`);
    if (decl.kind === "param") return unknown(`${name} is a parameter`);
    if (decl.kind === "function") return unknown(`${name} is a function`);
    let valueNode = decl.value;
    if (decl.kind !== "const") {
      const assigned = this.assignmentsIn(name, decl);
      if (assigned.length > 1 || (assigned.length === 1 && valueNode)) return unknown(`${name} is assigned more than once`);
      valueNode ??= assigned[0];
    }
    if (!valueNode) return unknown(`${name} has no value`);
    this.deps?.reads.push([valueNode.startIndex, valueNode.endIndex]);
    return resolveOnce(this.resolving, valueNode, name, (n) => this.evaluate(n, depth + 1));
  }

  /**
   * The innermost declaration of `name` whose scope encloses `at` (of several with the same scope
   * start, the last). Read from the inside out: the occurrences inside an ancestor A of `at` first.
   * Whatever is declared outside A and encloses `at` is scoped to a strict ancestor of A, so it starts
   * at or before A; a declaration found inside A that starts after A therefore wins over all of them.
   */
  private lookup(name: string, at: SyntaxNode): Decl | undefined {
    const from = at.startIndex;
    const names = this.occurrencesOf(name);
    const extents = extentsAround(this.root, at, this.text.length);
    for (let i = 0; i < extents.length; i++) {
      const [start, end] = extents[i]!;
      let best: Decl | undefined;
      for (const b of names.within(start, end)) {
        if (!("decl" in b)) continue;
        const d = b.decl;
        if (d.start <= from && from < d.end && (!best || d.start >= best.start)) best = d;
      }
      if (i === extents.length - 1 || (best && best.start > start)) {
        this.deps?.lookups.push({ name, within: [start, end] });
        return best;
      }
    }
    return undefined;
  }

  /**
   * What is assigned to `name` inside `decl`'s scope, in document order. The occurrences read are
   * those of the statement holding the scope: an assignment whose value starts the scope
   * (`x = function (x) {...}`) begins before it.
   */
  private assignmentsIn(name: string, decl: Decl): SyntaxNode[] {
    let holder = decl.scope;
    for (let p = holder.parent; p && p.type !== "statement_block" && p.type !== "program"; p = p.parent) holder = p;
    const whole = holder.parent === null;
    const within = [whole ? 0 : holder.startIndex, whole ? this.text.length : holder.endIndex] as const;
    this.deps?.lookups.push({ name, within });
    const out: SyntaxNode[] = [];
    for (const b of this.occurrencesOf(name).within(...within)) {
      if ("assigned" in b && b.start >= decl.start && b.start < decl.end) out.push(b.assigned);
    }
    return out;
  }

  private occurrencesOf(name: string): NameOccurrences<Binding> {
    let found = this.names.get(name);
    if (!found) {
      found = new NameOccurrences(this.text, name, (at) => {
        const node = nodeAt(this.root, at, at + name.length);
        return node && (node.type === "identifier" || node.type === "shorthand_property_identifier_pattern") ? classify(node) : null;
      });
      this.names.set(name, found);
    }
    return found;
  }
}

/** What one occurrence of a name does: declare it (const/let/var, function, parameter) or assign it; null: neither. */
function classify(id: SyntaxNode): Binding | null {
  const parent = id.parent;
  if (!parent) return null;
  const add = (kind: DeclKind, scope: SyntaxNode, value?: SyntaxNode): Binding => ({ decl: { kind, start: scope.startIndex, end: scope.endIndex, scope, ...(value && { value }) } });
  const assign = (node: SyntaxNode): Binding => ({ assigned: node, start: node.startIndex });
  const unknownIn = (scope: SyntaxNode | null) => (scope ? add("param", scope) : null);
  switch (parent.type) {
    case "variable_declarator": {
      if (!isField(parent, "name", id)) return null;
      const declaration = parent.parent;
      if (!declaration) return null;
      const keyword = declaration.firstChild?.text;
      let scope = declaration.parent ?? declaration;
      if (scope.type === "export_statement") scope = scope.parent ?? scope;
      const value = field(parent, "value");
      return add(keyword === "const" ? "const" : keyword === "let" ? "let" : "var", scope, value);
    }
    case "function_declaration":
    case "generator_function_declaration": {
      if (!isField(parent, "name", id)) return null;
      let scope = parent.parent ?? parent;
      if (scope.type === "export_statement") scope = scope.parent ?? scope;
      return add("function", scope, parent);
    }
    case "required_parameter":
    case "optional_parameter":
      if (isField(parent, "pattern", id)) return unknownIn(parent.parent?.parent ?? null);
      return null;
    case "formal_parameters":
      return unknownIn(parent.parent);
    case "arrow_function":
      if (isField(parent, "parameter", id)) return unknownIn(parent);
      return null;
    case "for_in_statement":
      if (isField(parent, "left", id)) return unknownIn(parent);
      return null;
    case "catch_clause":
      if (isField(parent, "parameter", id)) return unknownIn(parent);
      return null;
    case "import_specifier":
    case "import_clause":
    case "namespace_import":
      return unknownIn(id.tree.rootNode);
    case "object_assignment_pattern": // `{ a = 1 }`: binds `a`, the default is read where it is used
    case "assignment_pattern":
      if (isField(parent, "left", id)) return unknownIn(patternScope(parent));
      return null;
    case "object_pattern":
    case "array_pattern":
    case "pair_pattern":
    case "rest_pattern": // destructuring: bound, but not to a value we read
      return unknownIn(patternScope(parent));
    case "assignment_expression":
      if (isField(parent, "left", id)) return assign(field(parent, "right") ?? parent);
      return null;
    case "augmented_assignment_expression":
      if (isField(parent, "left", id)) return assign(parent); // evaluates to unknown
      return null;
    case "update_expression":
      return assign(parent);
  }
  return null;
}

const PATTERN_PARTS = new Set(["object_pattern", "array_pattern", "pair_pattern", "assignment_pattern", "object_assignment_pattern", "rest_pattern", "required_parameter", "optional_parameter"]);

/**
 * Where a destructured name is bound: a parameter's pattern binds in its function (the enclosing
 * block would let a later module `const` of the same name stand for the argument), a catch or
 * for-in/of pattern in that clause, a declaration's pattern in its block.
 */
function patternScope(pattern: SyntaxNode): SyntaxNode | null {
  let n: SyntaxNode | null = pattern;
  while (n && PATTERN_PARTS.has(n.type)) n = n.parent;
  if (n?.type === "formal_parameters") return n.parent;
  if (n?.type === "catch_clause" || n?.type === "for_in_statement") return n;
  return enclosingBlock(pattern);
}

function enclosingBlock(node: SyntaxNode): SyntaxNode | null {
  for (let n: SyntaxNode | null = node; n; n = n.parent) if (n.type === "statement_block" || n.type === "program") return n;
  return null;
}

/** Nodes whose `return`s are their own: a helper's result is read from its returns outside them. */
const NESTED_FUNCTIONS = ["function_declaration", "function_expression", "generator_function_declaration", "generator_function", "arrow_function", "method_definition"];

function propertyKey(key: SyntaxNode | undefined, evaluate: (n: SyntaxNode) => Value): string | undefined {
  if (!key) return undefined;
  if (key.type === "property_identifier" || key.type === "number") return key.text;
  if (key.type === "string") return stringText(key);
  if (key.type === "computed_property_name") {
    const v = evaluate(namedChildren(key)[0]!);
    return v.kind === "str" && v.parts.every((p) => p !== null) ? v.parts.join("") : undefined;
  }
  return undefined;
}

/** A quoted string literal's value (fragments and escapes). */
export function stringText(node: SyntaxNode): string {
  return namedChildren(node)
    .map((c) => (c.type === "escape_sequence" ? unescape(c.text) : c.text))
    .join("");
}

const SIMPLE_ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", v: "\v", "0": "\0" };

/** A code point's text; one past U+10FFFF (a syntax error in the source) reads as U+FFFD rather than throwing. */
function codePoint(n: number): string {
  return n <= 0x10ffff ? String.fromCodePoint(n) : "\ufffd";
}

function unescape(seq: string): string {
  const c = seq.slice(1);
  if (c in SIMPLE_ESCAPES) return SIMPLE_ESCAPES[c]!;
  if (/^u\{[0-9a-fA-F]+\}$/.test(c)) return codePoint(parseInt(c.slice(2, -1), 16));
  if (/^(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2})$/.test(c)) return String.fromCharCode(parseInt(c.slice(1), 16));
  if (c.startsWith("\n") || c.startsWith("\r")) return ""; // line continuation
  return c;
}

