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
  // An empty name (the parser's stand-in for a missing one: `import { X as } …` typed halfway) occurs
  // nowhere; its empty match would never advance the search.
  const list = [...words].filter((w) => w !== "");
  if (list.length === 0) return [];
  const re = wholeWords(list);
  const hits: number[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) hits.push(m.index);
  return hits;
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

/**
 * The extents [start, end) of `node` and of every node above it, innermost first, the root's as the
 * whole text. One walk down from the root: `node.parent` walks down from the root once per level.
 */
export function extentsAround(root: SyntaxNode, node: SyntaxNode, textLength: number): [number, number][] {
  const cursor = root.walk();
  try {
    const from = node.startIndex;
    const path: [number, number][] = [];
    let found = cursor.nodeId === node.id;
    while (!found && cursor.gotoFirstChildForIndex(from) && cursor.startIndex <= from) {
      path.push([cursor.startIndex, cursor.endIndex]);
      found = cursor.nodeId === node.id;
    }
    if (found) return [...path.reverse(), [0, textLength]];
  } finally {
    cursor.delete(); // wasm memory
  }
  // Not on the path down (not expected): climb instead.
  const out: [number, number][] = [];
  for (let n: SyntaxNode | null = node; n; n = n.parent) out.push(n.parent ? [n.startIndex, n.endIndex] : [0, textLength]);
  return out;
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
 * The text is searched only as far as asked: one stretch [lo, hi) that grows to cover each request.
 */
export class NameOccurrences<T> {
  private readonly pattern: RegExp;
  /** Start indexes of the name within [lo, hi), in order. */
  private hits: number[] = [];
  private lo = 0;
  private hi = 0;
  /** Read occurrences by index; null: binds nothing. */
  private readonly read = new Map<number, T | null>();

  constructor(private readonly text: string, name: string, private readonly classify: (at: number) => T | null) {
    this.pattern = wholeWords([name]);
    // Searching a stretch finds what searching all finds there only when matches cannot overlap (ASCII names).
    if (!/^[\w$]+$/.test(name)) this.cover(0, text.length);
  }

  /** What the occurrences starting in [start, end) bind, in document order. */
  within(start: number, end: number): T[] {
    this.cover(start, end);
    const out: T[] = [];
    for (let i = lowerBound(this.hits, start); i < this.hits.length && this.hits[i]! < end; i++) {
      const at = this.hits[i]!;
      let r = this.read.get(at);
      if (r === undefined) this.read.set(at, (r = this.classify(at)));
      if (r !== null) out.push(r);
    }
    return out;
  }

  private cover(start: number, end: number): void {
    if (this.lo === this.hi) {
      this.hits = this.search(start, end);
      [this.lo, this.hi] = [start, end];
      return;
    }
    if (start < this.lo) {
      this.hits = [...this.search(start, this.lo), ...this.hits];
      this.lo = start;
    }
    if (end > this.hi) {
      for (const at of this.search(this.hi, end)) this.hits.push(at);
      this.hi = end;
    }
  }

  /** Start indexes of matches starting in [from, to). */
  private search(from: number, to: number): number[] {
    const hits: number[] = [];
    this.pattern.lastIndex = from;
    // An empty name (a node the parser inserted for a missing one: `x = ` then nothing) occurs nowhere;
    // its empty match would never advance the search.
    for (let m = this.pattern.exec(this.text); m && m[0] !== "" && m.index < to; m = this.pattern.exec(this.text)) hits.push(m.index);
    return hits;
  }
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
