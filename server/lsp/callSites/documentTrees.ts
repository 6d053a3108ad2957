/**
 * Syntax trees kept per open document, so a change reparses incrementally: the edit (what changed
 * between the previous text and this one) is applied to the old tree with `tree.edit()`, then
 * `parser.parse(text, oldTree)` reuses every subtree the edit did not touch.
 */
import TreeSitter = require("web-tree-sitter");
import { findInTree, languageSpec } from "./index";
import { parse, type SyntaxTree } from "./parsers";
import type { CallSite } from "./types";

interface Kept {
  languageId: string;
  text: string;
  tree: SyntaxTree;
}

export class DocumentTrees {
  private readonly kept = new Map<string, Kept>();

  /** Call sites of `text`, the document's current content; parsers must be initialised. */
  callSites(uri: string, languageId: string, text: string): CallSite[] {
    const spec = languageSpec(languageId);
    if (!spec) {
      this.forget(uri);
      return [];
    }
    const before = this.kept.get(uri);
    let tree: SyntaxTree;
    if (before && before.languageId === languageId) {
      if (before.text === text) {
        tree = before.tree;
      } else {
        before.tree.edit(new TreeSitter.Edit(editBetween(before.text, text)));
        tree = parse(spec.grammar, text, before.tree);
        before.tree.delete(); // wasm memory: not reclaimed by the JS garbage collector
      }
    } else {
      this.forget(uri);
      tree = parse(spec.grammar, text);
    }
    this.kept.set(uri, { languageId, text, tree });
    return findInTree(spec, tree, text);
  }

  /** Drops the document's tree (closed, or no longer a language we read). */
  forget(uri: string): void {
    this.kept.get(uri)?.tree.delete();
    this.kept.delete(uri);
  }

  /** Drops every tree. */
  clear(): void {
    for (const uri of [...this.kept.keys()]) this.forget(uri);
  }
}

interface Point {
  row: number;
  column: number;
}

/**
 * The one edit turning `before` into `after`: the span between their common prefix and common
 * suffix, in UTF-16 indexes and row/column points (the units web-tree-sitter uses for JS strings).
 * Several LSP content changes in one notification collapse into this one span, which is all the
 * parser needs to know what to reuse.
 */
export function editBetween(before: string, after: string): { startIndex: number; oldEndIndex: number; newEndIndex: number; startPosition: Point; oldEndPosition: Point; newEndPosition: Point } {
  const max = Math.min(before.length, after.length);
  let start = 0;
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let tail = 0;
  while (tail < max - start && before.charCodeAt(before.length - 1 - tail) === after.charCodeAt(after.length - 1 - tail)) tail++;
  const oldEnd = before.length - tail;
  const newEnd = after.length - tail;
  const startPosition = pointAt(before, start);
  return {
    startIndex: start,
    oldEndIndex: oldEnd,
    newEndIndex: newEnd,
    startPosition,
    oldEndPosition: advance(before, start, oldEnd, startPosition),
    newEndPosition: advance(after, start, newEnd, startPosition),
  };
}

function pointAt(text: string, index: number): Point {
  return advance(text, 0, index, { row: 0, column: 0 });
}

/** The point of `to` in `text`, given the point of `from`. */
function advance(text: string, from: number, to: number, at: Point): Point {
  let row = at.row;
  let lineStart = from - at.column;
  for (let i = text.indexOf("\n", from); i >= 0 && i < to; i = text.indexOf("\n", i + 1)) {
    row++;
    lineStart = i + 1;
  }
  return { row, column: to - lineStart };
}
