/** Small helpers over tree-sitter nodes shared by both finders. */
import type { SyntaxNode } from "./parsers";
import type { Position, Range } from "./types";

/**
 * Node index → LSP position. web-tree-sitter reports `startIndex` in UTF-16 code units of the JS
 * string (what LSP wants), but `column` in bytes, so columns are derived from indexes instead.
 */
export class LineIndex {
  private readonly starts: number[] = [0];
  constructor(text: string) {
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }
  position(index: number, row: number): Position {
    return { line: row, character: index - (this.starts[row] ?? 0) };
  }
  range(node: SyntaxNode): Range {
    return this.rangeOf(node.startIndex, node.endIndex);
  }
  /** The range of [start, end) (rows counted by "\n", as tree-sitter counts them). */
  rangeOf(start: number, end: number): Range {
    return { start: this.position(start, this.rowOf(start)), end: this.position(end, this.rowOf(end)) };
  }
  private rowOf(index: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** A call the finder located: its extent, and its node when it was read from the tree in this run. */
export interface Located {
  start: number;
  end: number;
  node?: SyntaxNode;
}

/** The node of `type`s spanning exactly [start, end): a call located in an earlier run, read again. */
export function nodeSpanning(root: SyntaxNode, start: number, end: number, types: ReadonlySet<string>): SyntaxNode | undefined {
  for (let n: SyntaxNode | null | undefined = nodeAt(root, start, end); n && n.startIndex === start && n.endIndex === end; n = n.parent) {
    if (types.has(n.type)) return n;
  }
  return undefined;
}

export function namedChildren(node: SyntaxNode): SyntaxNode[] {
  return node.namedChildren.filter((c): c is SyntaxNode => c !== null);
}

export function field(node: SyntaxNode, name: string): SyntaxNode | undefined {
  return node.childForFieldName(name) ?? undefined;
}

/**
 * Start indexes of `word` as a whole identifier in `text`. Used only to propose where to look: each
 * hit is handed to the syntax tree (`nodeAt`), which decides what it is. Visiting every node of a
 * large file through the wasm boundary costs more than the parse itself, so this keeps finding
 * proportional to the candidates instead of to the file.
 */
export function occurrences(text: string, words: Iterable<string>): number[] {
  const list = [...words];
  return list.length === 0 ? [] : occurrencesOf(text, wholeWords(list));
}

/** A global pattern matching any of `words` as a whole identifier. */
function wholeWords(words: readonly string[]): RegExp {
  const alternatives = words.map((w) => w.replace(/[$.*+?^(){}[\]|\\]/g, "\\$&"));
  return new RegExp(`(?<![\\w$])(?:${alternatives.join("|")})(?![\\w$])`, "g");
}

/** The smallest node spanning [start, end) (UTF-16 indexes, as node.startIndex). */
export function nodeAt(root: SyntaxNode, start: number, end: number): SyntaxNode | undefined {
  return root.descendantForIndex(start, end) ?? undefined;
}

/** True when `child` is the node in `parent`'s field `name`. */
export function isField(parent: SyntaxNode | null | undefined, name: string, child: SyntaxNode): boolean {
  const f = parent?.childForFieldName(name);
  return !!f && f.id === child.id;
}

/**
 * The occurrences of one name in a file, each read from the tree (`classify`) at most once and only
 * when asked for: a lookup reads the occurrences inside the scopes around its reference, so a name
 * used in every function of a large file costs what its own function holds, not the whole file.
 * The text is searched only over the extents asked for, until one asks for (nearly) all of it.
 */
export class NameOccurrences<T> {
  private hits: number[] | undefined;
  private readonly pattern: RegExp;
  /** Searching part of the text finds what searching all of it finds there: true when matches cannot overlap (ASCII name characters). */
  private readonly partial: boolean;
  /** Read occurrences by index; null: binds nothing. */
  private readonly read = new Map<number, T | null>();

  constructor(private readonly text: string, name: string, private readonly classify: (at: number) => T | null) {
    this.pattern = wholeWords([name]);
    this.partial = /^[\w$]+$/.test(name);
  }

  /** What the occurrences starting in [start, end) bind, in document order. */
  within(start: number, end: number): T[] {
    const out: T[] = [];
    const take = (at: number) => {
      let r = this.read.get(at);
      if (r === undefined) this.read.set(at, (r = this.classify(at)));
      if (r !== null) out.push(r);
    };
    if (!this.hits && this.partial && end - start < this.text.length / 4) {
      this.pattern.lastIndex = start;
      for (let m = this.pattern.exec(this.text); m && m.index < end; m = this.pattern.exec(this.text)) take(m.index);
      return out;
    }
    this.hits ??= occurrencesOf(this.text, this.pattern);
    for (let i = lowerBound(this.hits, start); i < this.hits.length && this.hits[i]! < end; i++) take(this.hits[i]!);
    return out;
  }
}

function occurrencesOf(text: string, pattern: RegExp): number[] {
  const hits: number[] = [];
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) hits.push(m.index);
  return hits;
}

/** The first index of sorted `xs` whose value is ≥ `x`. */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
