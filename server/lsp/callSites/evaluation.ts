/** Steps both language scopes (pyValues.ts, tsValues.ts) take alike when they evaluate an expression. Pure. */
import type { SyntaxNode } from "./parsers";
import { namedChildren } from "./syntax";
import { unknown, type Value } from "./values";

/** Merges a spread (`...obj`, `**obj`) into `entries`; true when the object can no longer be known whole. */
export function mergeSpread(entries: Map<string, Value>, spread: Value): boolean {
  if (spread.kind !== "obj") return true;
  for (const [k, v] of spread.entries) entries.set(k, v);
  return spread.open;
}

/** Evaluates what `name` is bound to, unless it is already being evaluated (a = b; b = a ends here instead of recursing forever). */
export function resolveOnce(resolving: Set<number>, value: SyntaxNode, name: string, evaluate: (node: SyntaxNode) => Value): Value {
  if (resolving.has(value.id)) return unknown(`${name} refers to itself`);
  resolving.add(value.id);
  try {
    return evaluate(value);
  } finally {
    resolving.delete(value.id);
  }
}

/** A helper function's result: the expression of its one return statement, else unknown. */
export function onlyReturned(returns: SyntaxNode[], helper: string, evaluate: (node: SyntaxNode | undefined) => Value): Value {
  if (returns.length !== 1) return unknown(`result of ${helper}()`);
  return evaluate(namedChildren(returns[0]!)[0]);
}

/**
 * Helper functions' own return statements, found once per function node for one find (a scope lives
 * for one document version): every call that uses a helper reads the same answer, where each used
 * to walk the whole body again (a 20,000-line helper used by 400 calls: 400 walks).
 */
export class HelperReturns {
  private readonly known = new Map<number, SyntaxNode | null>();
  /** Bodies walked so far: one per helper, however many calls use it. */
  walks = 0;

  /** `nested`: node types whose returns are their own, not the enclosing function's. */
  constructor(private readonly nested: readonly string[]) {}

  /** The one `return` of the function itself; undefined when it has none or several (then its result is not known). */
  soleReturn(fn: SyntaxNode, body: SyntaxNode): SyntaxNode | undefined {
    let found = this.known.get(fn.id);
    if (found === undefined) {
      this.walks++;
      this.known.set(fn.id, (found = this.walk(body)));
    }
    return found ?? undefined;
  }

  private walk(body: SyntaxNode): SyntaxNode | null {
    let own: SyntaxNode | null = null;
    let nestedEnd = -1;
    // One native walk, in document order: a nested function comes before the returns inside it, so
    // those are skipped by extent, without climbing parents (each climb walks down from the root).
    for (const n of body.descendantsOfType(["return_statement", ...this.nested])) {
      if (n.startIndex < nestedEnd) continue;
      if (n.type !== "return_statement") nestedEnd = n.endIndex;
      else if (own) return null; // a second: only one is wanted
      else own = n;
    }
    return own;
  }
}
