/**
 * Syntax trees kept per open document, so a change reparses incrementally: the edit (what changed
 * between the previous text and this one) is applied to the old tree with `tree.edit()`, then
 * `parser.parse(text, oldTree)` reuses every subtree the edit did not touch. The finders' memory of
 * the previous run is kept too, so sites the edit cannot have changed are not read again (reuse.ts).
 */
import TreeSitter = require("web-tree-sitter");
import { findInTree, languageSpec } from "./index";
import { parse, type SyntaxNode, type SyntaxTree } from "./parsers";
import { wordsIn, type EditView, type FinderMemo, type Span } from "./reuse";
import type { CallSite } from "./types";

interface Kept {
  languageId: string;
  text: string;
  tree: SyntaxTree;
  memo: FinderMemo;
  sites: CallSite[];
}

/**
 * Edits whose replaced and inserted text are only name characters and blanks on one line (typing
 * inside a name, a literal, a comment) reuse unchanged sites; any other edit (brackets, quotes,
 * new lines, operators) re-reads every site: it may move whole statements from one scope to another.
 */
const REUSABLE_EDIT = /^[\w$ \t]*$/;

/** Parents whose children are statements: a change's statement is found by walking up to one of them. */
const STATEMENT_PARENTS = new Set(["program", "module", "statement_block", "block", "class_body"]);

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
    let edit: EditView | undefined;
    if (before && before.languageId === languageId) {
      if (before.text === text) return before.sites;
      const e = editBetween(before.text, text);
      const small = REUSABLE_EDIT.test(before.text.slice(e.startIndex, e.oldEndIndex)) && REUSABLE_EDIT.test(text.slice(e.startIndex, e.newEndIndex));
      const words = new Set<string>();
      if (small) wordsIn(before.text.slice(...statementAround(before.tree.rootNode, before.text, e.startIndex, e.oldEndIndex)), words);
      before.tree.edit(new TreeSitter.Edit(e));
      tree = parse(spec.grammar, text, before.tree);
      if (small) {
        const changed: Span[] = [[e.startIndex, e.newEndIndex], ...before.tree.getChangedRanges(tree).map((r): Span => [r.startIndex, r.endIndex])];
        const windows = changed.map(([start, end]) => statementAround(tree.rootNode, text, start, end));
        for (const w of windows) wordsIn(text.slice(...w), words);
        edit = { start: e.startIndex, oldEnd: e.oldEndIndex, newEnd: e.newEndIndex, changed, words, windows };
      }
      before.tree.delete(); // wasm memory: not reclaimed by the JS garbage collector
    } else {
      this.forget(uri);
      tree = parse(spec.grammar, text);
    }
    const memo: FinderMemo = { fileKey: "", sites: new Map(), calls: new Map() };
    const sites = findInTree(spec, tree, text, { ...(edit && before && { previous: before.memo, edit }), memo });
    this.kept.set(uri, { languageId, text, tree, memo, sites });
    return sites;
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

/** The extent of the statement holding [start, end) and the characters either side of it. */
function statementAround(root: SyntaxNode, text: string, start: number, end: number): Span {
  let node = root.descendantForIndex(Math.max(0, start - 1), Math.min(text.length, end + 1)) ?? root;
  for (let parent = node.parent; parent && !STATEMENT_PARENTS.has(parent.type); parent = node.parent) node = parent;
  return node.parent ? [node.startIndex, node.endIndex] : [0, text.length];
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
  // Whole blocks first (string comparison runs at memory speed), then character by character.
  let start = 0;
  while (start + BLOCK <= max && before.slice(start, start + BLOCK) === after.slice(start, start + BLOCK)) start += BLOCK;
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let tail = 0;
  while (tail + BLOCK <= max - start && before.slice(before.length - tail - BLOCK, before.length - tail) === after.slice(after.length - tail - BLOCK, after.length - tail)) tail += BLOCK;
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

const BLOCK = 256;

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
