/**
 * Syntax trees kept per open document, so a change reparses incrementally (ParsedText). The finders'
 * memory of the previous run is kept too, so sites the edit cannot have changed are not read again (reuse.ts).
 */
import { findInTree, languageSpec } from "./index";
import type { SyntaxNode, SyntaxTree } from "./parsers";
import { editBetween, ParsedText } from "./parsedText";
import { wordsIn, type EditView, type FinderMemo, type Span } from "./reuse";
import type { CallSite } from "./types";

export { editBetween } from "./parsedText";

interface Kept {
  languageId: string;
  parsed: ParsedText;
  memo: FinderMemo;
  sites: CallSite[];
}

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
    let parsed: ParsedText;
    let edit: EditView | undefined;
    if (before && before.languageId === languageId) {
      parsed = before.parsed;
      const was = parsed.text;
      if (was === text) return before.sites;
      const e = editBetween(was, text);
      // Any edit, brackets and quotes too: one that moves statements from one scope to another (a `{`, an
      // un-indented line) changes their syntax, so they are in the changed ranges and read again.
      const words = new Set<string>();
      wordsIn(was.slice(...statementAround(parsed.tree.rootNode, was, e.startIndex, e.oldEndIndex)), words);
      let previous: SyntaxTree;
      try {
        previous = parsed.update(text, e);
      } catch (err) {
        this.forget(uri);
        throw err;
      }
      try {
        const tree = parsed.tree;
        const changed: Span[] = [[e.startIndex, e.newEndIndex], ...previous.getChangedRanges(tree).map((r): Span => [r.startIndex, r.endIndex])];
        const windows = changed.map(([start, end]) => statementAround(tree.rootNode, text, start, end));
        for (const w of windows) wordsIn(text.slice(...w), words);
        edit = { start: e.startIndex, oldEnd: e.oldEndIndex, newEnd: e.newEndIndex, changed, words, windows };
      } finally {
        previous.delete(); // wasm memory: not reclaimed by the JS garbage collector
      }
    } else {
      this.forget(uri);
      parsed = new ParsedText(spec.grammar, text);
    }
    const memo: FinderMemo = { fileKey: "", sites: new Map(), calls: new Map() };
    let sites: CallSite[];
    try {
      sites = findInTree(spec, parsed.tree, text, { ...(edit && before && { previous: before.memo, edit }), memo });
    } catch (err) {
      // The kept facts are of an older version than the tree: the next edit would reuse them as this one's.
      this.forget(uri);
      if (parsed !== before?.parsed) parsed.delete(); // a fresh tree, never kept: wasm memory
      throw err;
    }
    this.kept.set(uri, { languageId, parsed, memo, sites });
    return sites;
  }

  /** Drops the document's tree (closed, or no longer a language we read). */
  forget(uri: string): void {
    this.kept.get(uri)?.parsed.delete();
    this.kept.delete(uri);
  }

  /** Drops every tree. */
  clear(): void {
    for (const uri of [...this.kept.keys()]) this.forget(uri);
  }
}

/**
 * The extent of the statements holding [start, end) and the characters either side of it: the one
 * statement around it, or, when it spans several statements of one body (a line un-indented in
 * Python ends a block: the rest of it becomes top-level statements), from the first to the last of them.
 */
function statementAround(root: SyntaxNode, text: string, start: number, end: number): Span {
  const from = Math.max(0, start - 1);
  const to = Math.min(text.length, end + 1);
  let node = root.descendantForIndex(from, to) ?? root;
  if (STATEMENT_PARENTS.has(node.type)) return [statementOf(node, from)?.startIndex ?? from, statementOf(node, Math.max(from, to - 1))?.endIndex ?? to];
  for (let parent = node.parent; parent && !STATEMENT_PARENTS.has(parent.type); parent = node.parent) node = parent;
  return node.parent ? [node.startIndex, node.endIndex] : [0, text.length];
}

/** The statement of `body` holding the character at `index`; undefined between statements. */
function statementOf(body: SyntaxNode, index: number): SyntaxNode | undefined {
  let node = body.descendantForIndex(index, index);
  while (node && node.parent && node.parent.id !== body.id) node = node.parent;
  return node && node.id !== body.id && node.parent ? node : undefined;
}

