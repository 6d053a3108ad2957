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
