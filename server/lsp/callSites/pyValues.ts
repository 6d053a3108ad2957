/**
 * Static evaluation of Python expressions: str/f-string/concatenated literals, numbers, dict/list
 * literals, `+`, subscripts, json.dumps(...) (and `.encode()` of it), `dict(k=v)`, keyword
 * arguments, and names bound exactly once in their scope (function, else module, as Python does).
 * Calls of helper functions in the same file are followed into their single `return`.
 */
import type { SyntaxNode } from "./parsers";
import { field, isField, NameOccurrences, namedChildren, nodeAt } from "./syntax";
import { HelperReturns, mergeSpread, onlyReturned, resolveOnce } from "./evaluation";
import { concat, member, partsOf, unknown, type Value } from "./values";
import type { SiteDeps } from "./reuse";

interface Binding {
  /** Undefined for bindings whose value is not an expression we read (parameters, loops, imports, +=). */
  value?: SyntaxNode;
  /** For `def name`, the function itself. */
  fn?: SyntaxNode;
}

/**
 * One occurrence that binds a name in a scope; `global` / `nonlocal`: a `global name` or
 * `nonlocal name` statement (it binds nothing itself: the scope's assignments bind the module's,
 * or an enclosing function's, name).
 */
interface Occurrence {
  binding: Binding;
  scopeId: number;
  global?: boolean;
  nonlocal?: boolean;
}

/** Comprehensions are scopes in Python 3: their loop names do not leak. */
const SCOPES = new Set(["function_definition", "lambda", "class_definition", "list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"]);
const MAX_DEPTH = 24;

/** Bindings of one file, found per name on first use (and cached): only names a Bedrock call refers to are looked up. */
export class PyScope {
  /** name → its occurrences, each read once: what it binds and in which scope. */
  private readonly names = new Map<string, NameOccurrences<Occurrence>>();
  private readonly resolving = new Set<number>();
  /** When set, what evaluation reads is recorded here (bindings followed, names looked up). */
  deps: SiteDeps | undefined;
  /** Helpers' returns, walked once per helper for this scope's find (a nested def's returns are its own). */
  readonly helperReturns = new HelperReturns(["function_definition", "class_definition"]);

  constructor(private readonly root: SyntaxNode, private readonly text: string) {}

  evaluate(node: SyntaxNode | undefined, depth = 0): Value {
    if (!node) return unknown("missing");
    if (depth > MAX_DEPTH) return unknown("too deep");
    const next = (n: SyntaxNode | undefined) => this.evaluate(n, depth + 1);
    switch (node.type) {
      case "string":
        return this.string(node, depth);
      case "concatenated_string":
        return namedChildren(node).reduce<Value>((acc, s) => concat(acc, next(s)), { kind: "str", parts: [] });
      case "integer":
      case "float":
        return { kind: "num", value: Number(node.text.replace(/_/g, "")) };
      case "true":
      case "false":
        return { kind: "bool", value: node.type === "true" };
      case "none":
        return { kind: "null" };
      case "dictionary":
        return this.dictionary(namedChildren(node), depth);
      case "list":
      case "tuple": {
        const items: Value[] = [];
        let open = false;
        for (const el of namedChildren(node)) {
          if (el.type === "comment") continue;
          if (el.type === "list_splat") {
            const v = next(namedChildren(el)[0]);
            if (v.kind === "arr") items.push(...v.items);
            else open = true;
          } else items.push(next(el));
        }
        return { kind: "arr", items, open };
      }
      case "parenthesized_expression":
        return next(namedChildren(node).find((c) => c.type !== "comment"));
      case "identifier":
        return this.identifier(node, depth);
      case "subscript": {
        const key = next(field(node, "subscript"));
        const keyText = key.kind === "num" ? String(key.value) : key.kind === "str" ? key.parts.join("") : undefined;
        return keyText === undefined ? unknown("computed key") : member(next(field(node, "value")), keyText);
      }
      case "binary_operator":
        if (field(node, "operator")?.text !== "+") return unknown("operator");
        return concat(next(field(node, "left")), next(field(node, "right")));
      case "call":
        return this.call(node, depth);
      default:
        return unknown(`${node.type} not evaluated statically`);
    }
  }

  /** Keyword arguments (and `**splats`) of a call as one object, as boto3 receives them. */
  keywordArguments(argList: SyntaxNode | undefined, depth = 0): Value {
    return this.dictionary(argList ? namedChildren(argList) : [], depth);
  }

  private string(node: SyntaxNode, depth: number): Value {
    const prefix = (namedChildren(node)[0]?.text ?? "").toLowerCase();
    const raw = prefix.includes("r");
    const formatted = prefix.includes("f");
    const parts: (string | null)[] = [];
    for (const child of namedChildren(node)) {
      if (child.type === "string_content") {
        let text = raw ? child.text : unescape(child.text);
        if (formatted) text = text.replace(/\{\{/g, "{").replace(/\}\}/g, "}");
        parts.push(text);
      } else if (child.type === "interpolation") {
        parts.push(...partsOf(this.evaluate(field(child, "expression"), depth + 1)));
      }
    }
    return { kind: "str", parts };
  }

  /** `pair`s, `keyword_argument`s and `**splat`s into one object. */
  private dictionary(children: SyntaxNode[], depth: number): Value {
    const entries = new Map<string, Value>();
    let open = false;
    for (const child of children) {
      if (child.type === "pair") {
        const key = this.evaluate(field(child, "key"), depth + 1);
        if (key.kind === "str" && key.parts.every((p) => p !== null)) entries.set(key.parts.join(""), this.evaluate(field(child, "value"), depth + 1));
        else open = true;
      } else if (child.type === "keyword_argument") {
        const name = field(child, "name")?.text;
        if (name) entries.set(name, this.evaluate(field(child, "value"), depth + 1));
      } else if (child.type === "dictionary_splat") {
        open = mergeSpread(entries, this.evaluate(namedChildren(child)[0], depth + 1)) || open;
      }
    }
    return { kind: "obj", entries, open };
  }

  private call(node: SyntaxNode, depth: number): Value {
    const fn = field(node, "function");
    const args = field(node, "arguments");
    const first = args ? namedChildren(args).find((a) => a.type !== "comment" && a.type !== "keyword_argument") : undefined;
    const callee = fn?.text.replace(/\s+/g, "") ?? "";
    if (callee === "json.dumps" || callee === "dumps") return { kind: "json", of: this.evaluate(first, depth + 1) };
    if (callee === "dict") return this.keywordArguments(args, depth + 1);
    // `.encode()` / bytes(...): the same content for our purposes.
    if (fn?.type === "attribute" && field(fn, "attribute")?.text === "encode") return this.evaluate(field(fn, "object"), depth + 1);
    if (callee === "bytes" || callee === "str") return this.evaluate(first, depth + 1);
    if (fn?.type === "identifier") return this.helperCall(fn, depth);
    return unknown(`result of ${callee}()`);
  }

  private helperCall(fn: SyntaxNode, depth: number): Value {
    const binding = this.lookup(fn.text, fn);
    const def = binding?.fn;
    if (!def) return unknown(`result of ${fn.text}()`);
    this.deps?.reads.push([def.startIndex, def.endIndex]);
    const sole = this.helperReturns.soleReturn(def, field(def, "body") ?? def);
    return onlyReturned(sole ? [sole] : [], fn.text, (n) => this.evaluate(n, depth + 1));
  }

  private identifier(node: SyntaxNode, depth: number): Value {
    const binding = this.lookup(node.text, node);
    if (!binding) return unknown(`${node.text} is not bound once in this file`);
    const value = binding.value;
    if (!value) return unknown(`${node.text} is not a plain assignment`);
    this.deps?.reads.push([value.startIndex, value.endIndex]);
    return resolveOnce(this.resolving, value, node.text, (n) => this.evaluate(n, depth + 1));
  }

  /**
   * Python's rule: a name bound anywhere in a function is local to it (unless it declares the name
   * `global` or `nonlocal`); else the enclosing function scopes, then the module. A class body is
   * seen only by code directly in it, not by its methods. A scope's bindings all come from
   * occurrences inside it, so only those are read; the module's include those of every `global`
   * declaring function, and a function's those of every function within it declaring `nonlocal`
   * (an intermediate function binding the name too only adds bindings: not known, never wrong).
   */
  private lookup(name: string, at: SyntaxNode): Binding | undefined {
    const names = this.occurrencesOf(name);
    const rootId = this.root.id;
    const whole = [0, this.text.length] as const;
    const found = (within: readonly [number, number], list: Occurrence[]) => {
      this.deps?.lookups.push({ name, within });
      return list.length === 1 ? list[0]!.binding : undefined;
    };
    for (let scope = enclosingScope(at) ?? this.root, innermost = true; ; scope = enclosingScope(scope) ?? this.root, innermost = false) {
      if (scope.id === rootId) return found(whole, this.moduleBindings(names));
      if (!innermost && scope.type === "class_definition") continue;
      const within = [scope.startIndex, scope.endIndex] as const;
      const scopeId = scope.id;
      const inside = names.within(...within);
      const own = inside.filter((b) => b.scopeId === scopeId);
      if (own.some((b) => b.global)) return found(whole, this.moduleBindings(names));
      if (own.some((b) => b.nonlocal)) continue;
      const nonlocalIn = new Set(inside.filter((b) => b.nonlocal).map((b) => b.scopeId));
      const list = [...own, ...inside.filter((b) => !b.nonlocal && nonlocalIn.has(b.scopeId))];
      if (list.length > 0) return found(within, list);
    }
  }

  /** The module's bindings of a name: those at top level and those in functions that declare it `global`. */
  private moduleBindings(names: NameOccurrences<Occurrence>): Occurrence[] {
    const all = names.within(0, this.text.length);
    const globalIn = new Set(all.filter((b) => b.global).map((b) => b.scopeId));
    return all.filter((b) => !b.global && (b.scopeId === this.root.id || globalIn.has(b.scopeId)));
  }

  private occurrencesOf(name: string): NameOccurrences<Occurrence> {
    let found = this.names.get(name);
    if (!found) {
      found = new NameOccurrences(this.text, name, (at) => {
        const id = nodeAt(this.root, at, at + name.length);
        if (id?.type !== "identifier") return null;
        if (id.parent?.type === "global_statement") return { binding: {}, scopeId: (enclosingScope(id) ?? this.root).id, global: true };
        if (id.parent?.type === "nonlocal_statement") return { binding: {}, scopeId: (enclosingScope(id) ?? this.root).id, nonlocal: true };
        const bound = classify(id);
        if (!bound) return null;
        return { binding: bound.binding, scopeId: (bound.scope ?? enclosingScope(id) ?? this.root).id };
      });
      this.names.set(name, found);
    }
    return found;
  }
}

const PARAMETER_PARENTS = new Set(["parameters", "lambda_parameters", "default_parameter", "typed_parameter", "typed_default_parameter", "list_splat_pattern", "dictionary_splat_pattern"]);
const UNREADABLE_TARGETS = new Set(["augmented_assignment", "for_statement", "named_expression", "as_pattern_target", "pattern_list", "tuple_pattern", "list_pattern", "aliased_import", "dotted_name"]);

/** Whether one occurrence of a name binds it, with what, and in which scope (when not the enclosing one). */
function classify(id: SyntaxNode): { binding: Binding; scope?: SyntaxNode } | undefined {
  const parent = id.parent;
  if (!parent) return undefined;
  if (parent.type === "assignment") {
    if (!isField(parent, "left", id)) return undefined;
    // `a = b = v`: the right side is itself an assignment, read on its own.
    const right = field(parent, "right");
    return { binding: right && right.type !== "assignment" ? { value: right } : {} };
  }
  // `def f` binds f where the def stands, not inside f (else no call of a helper ever found it).
  if (parent.type === "function_definition") return isField(parent, "name", id) ? { binding: { fn: parent }, scope: enclosingScope(parent) ?? parent.tree.rootNode } : undefined;
  if (PARAMETER_PARENTS.has(parent.type)) {
    if (parent.type === "default_parameter" || parent.type === "typed_default_parameter") {
      if (!isField(parent, "name", id)) return undefined;
    }
    let fn: SyntaxNode | null = parent;
    while (fn && fn.type !== "function_definition" && fn.type !== "lambda") fn = fn.parent;
    return fn ? { binding: {}, scope: fn } : undefined;
  }
  if (parent.type === "for_in_clause") return isField(parent, "left", id) && parent.parent ? { binding: {}, scope: parent.parent } : undefined;
  if (parent.type === "augmented_assignment" || parent.type === "for_statement") return isField(parent, "left", id) ? { binding: {} } : undefined;
  if (parent.type === "named_expression") return isField(parent, "name", id) ? { binding: {} } : undefined;
  if (parent.type === "dotted_name") {
    // `import a.b` binds `a`; `from m import x` binds x; both are values we cannot read.
    const stmt = parent.parent;
    const first = parent.firstNamedChild;
    if ((stmt?.type === "import_statement" || stmt?.type === "import_from_statement") && first?.id === id.id && !isField(stmt, "module_name", parent)) return { binding: {} };
    return undefined;
  }
  if (UNREADABLE_TARGETS.has(parent.type)) {
    if (parent.type === "aliased_import") return isField(parent, "alias", id) ? { binding: {} } : undefined;
    // Tuple targets count only on the left of an assignment or loop.
    const holder = parent.parent;
    if (parent.type === "pattern_list" || parent.type === "tuple_pattern" || parent.type === "list_pattern") {
      return holder && (holder.type === "assignment" || holder.type === "for_statement") && isField(holder, "left", parent) ? { binding: {} } : undefined;
    }
    return { binding: {} };
  }
  if (parent.type === "as_pattern") return isField(parent, "alias", id) ? { binding: {} } : undefined;
  return undefined;
}

function enclosingScope(node: SyntaxNode): SyntaxNode | undefined {
  for (let n = node.parent; n; n = n.parent) if (SCOPES.has(n.type)) return n;
  return undefined;
}

const SIMPLE_ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", f: "\f", v: "\v", "0": "\0", "\n": "" };

function unescape(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[\s\S])/g, (whole, c: string) => {
    if (c.length > 1) {
      // `\U00110000` is past the last code point (a syntax error in Python): U+FFFD rather than a throw.
      const n = parseInt(c.slice(1), 16);
      return n <= 0x10ffff ? String.fromCodePoint(n) : "\ufffd";
    }
    return SIMPLE_ESCAPES[c] ?? whole;
  });
}
