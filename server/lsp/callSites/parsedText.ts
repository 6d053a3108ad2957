/**
 * One document's text and syntax tree, reparsed incrementally on each change: the edit (what changed
 * between the previous text and this one) is applied to the old tree with `tree.edit()`, then
 * `parser.parse(text, oldTree)` reuses every subtree the edit did not touch.
 */
import TreeSitter = require("web-tree-sitter");
import { parse, type Grammar, type SyntaxTree } from "./parsers";

interface Version {
  text: string;
  tree: SyntaxTree;
}

/** The one edit between two texts, as `tree.edit()` takes it. */
export type TextEdit = ReturnType<typeof editBetween>;

export class ParsedText {
  /**
   * While `tree` has syntax errors: the last version without any, which the next change is parsed
   * from. A tree with an error is a poor base: after an un-indented line, Python's indentation scanner
   * ends in a different state in every later token, so nothing after the error is reused and undoing
   * it costs more than a whole parse. From the clean version the edit is as local as the typing since.
   */
  private clean: Version | undefined;

  private current: Version;

  constructor(private readonly grammar: Grammar, text: string) {
    this.current = { text, tree: parse(grammar, text) };
  }

  get text(): string {
    return this.current.text;
  }

  /** Owned here: valid until the next update() or delete(). */
  get tree(): SyntaxTree {
    return this.current.tree;
  }

  /**
   * Reparses for `text` (`edit`: editBetween(this.text, text)). Returns the previous tree edited to
   * match `text`, for `getChangedRanges`; the caller deletes it (wasm memory is not GC'd).
   */
  update(text: string, edit: TextEdit = editBetween(this.text, text)): SyntaxTree {
    const previous = this.tree;
    const clean = this.clean ?? (previous.rootNode.hasError ? undefined : { text: this.text, tree: previous.copy() });
    previous.edit(new TreeSitter.Edit(edit));
    const base = this.clean ? editedCopy(this.clean, text) : previous;
    let tree: SyntaxTree;
    try {
      tree = parse(this.grammar, text, base);
    } catch (err) {
      // The tree no longer matches the text: the owner drops this document (delete()) and parses afresh.
      if (clean !== this.clean) clean?.tree.delete();
      throw err;
    } finally {
      if (base !== previous) base.delete();
    }
    this.current = { text, tree };
    if (tree.rootNode.hasError) this.clean = clean;
    else {
      clean?.tree.delete();
      this.clean = undefined;
    }
    return previous;
  }

  delete(): void {
    this.tree.delete();
    this.clean?.tree.delete();
    this.clean = undefined;
  }
}

/** A copy of `version`'s tree edited to match `text` (the original stays as it was). */
function editedCopy(version: Version, text: string): SyntaxTree {
  const tree = version.tree.copy();
  tree.edit(new TreeSitter.Edit(editBetween(version.text, text)));
  return tree;
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
