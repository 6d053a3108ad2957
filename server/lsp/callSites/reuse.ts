/**
 * Reusing a call site's request facts after an edit that cannot have changed them. Evaluating a
 * site (following names to their declarations, helpers to their returns) is what finding costs;
 * a keystroke changes one statement, so the sites elsewhere keep what they read. A finder records
 * per site what its evaluation read (`SiteDeps`); after the edit the facts are reused only when
 * none of it lies in the changed text. Positions are UTF-16 indexes, as node.startIndex.
 */
import type { MeteredOperation } from "../../metering/types";
import type { SyntaxNode } from "./parsers";
import { nodeSpanning, type Located } from "./syntax";
import type { CallSite, RequestFacts } from "./types";

/** [start, end) in the text. */
export type Span = readonly [number, number];

/** What evaluating one site read: node extents, and names looked up with the extent their lookup searched. */
export interface SiteDeps {
  reads: Span[];
  lookups: { name: string; within: Span }[];
}

/** What call a site is. */
export interface SiteMatch {
  api: CallSite["api"];
  operation: string;
  metered: MeteredOperation;
}

function sameMatch(a: SiteMatch, b: SiteMatch): boolean {
  return a.api === b.api && a.operation === b.operation && a.metered === b.metered;
}

/** How a finder reads one call from the tree: what call it is (undefined: none we price), and its request. */
export interface SiteReader {
  callTypes: ReadonlySet<string>;
  match(node: SyntaxNode): SiteMatch | undefined;
  /** Records what it reads in `deps`. */
  facts(node: SyntaxNode, match: SiteMatch, deps: SiteDeps): RequestFacts;
}

/**
 * A located call as a site: the previous run's when the edit cannot have changed it, else read from
 * the tree; undefined when it is no site. Recorded in `inc.memo` for the next run.
 */
export function siteOf(call: Located, root: SyntaxNode, reader: SiteReader, inc: Incremental | undefined, fileKey: string): Remembered | undefined {
  const { start, end } = call;
  let node = call.node;
  let match = node && reader.match(node);
  let kept: Remembered | undefined;
  if (node) {
    if (!match) return undefined;
    kept = reusable(inc, fileKey, start, end);
    if (kept && !sameMatch(kept.match, match)) kept = undefined;
  } else {
    // Located from the previous run and nothing it is made of changed: the same call, a site only if it was one.
    if (!previousSite(inc, fileKey, start, end)) return undefined;
    kept = reusable(inc, fileKey, start, end);
    if (!kept) {
      node = nodeSpanning(root, start, end, reader.callTypes);
      match = node && reader.match(node);
    }
  }
  if (!kept) {
    if (!node || !match) return undefined;
    const deps: SiteDeps = { reads: [[start, end]], lookups: [] };
    kept = { end, match, deps, facts: reader.facts(node, match, deps) };
  }
  if (inc) {
    const at = inc.memo.sites.get(start);
    if (at) at.push(kept);
    else inc.memo.sites.set(start, [kept]);
  }
  return kept;
}

/** One site of the previous run, keyed by its start. */
export interface Remembered {
  end: number;
  match: SiteMatch;
  facts: RequestFacts;
  deps: SiteDeps;
}

/**
 * A finder's memory of one run: what the whole file decides (imports, clients), each site's facts,
 * and for each place a name the finder looks for is written, the call it belongs to (null: none).
 */
export interface FinderMemo {
  fileKey: string;
  /** Keyed by start: calls in a chain (`a.b(…).c(…)`) share one. */
  sites: Map<number, Remembered[]>;
  calls: Map<number, Span | null>;
}

/** The one edit between the previous run and this one, and what it may have changed (in this text's indexes). */
export interface EditView {
  start: number;
  oldEnd: number;
  newEnd: number;
  /** The edited span and the ranges whose syntax changed. */
  changed: Span[];
  /** Every name written in the statements holding a change, before and after the edit. */
  words: Set<string>;
  /** Those statements (after the edit): a name written outside them is part of the same call as before, if any. */
  windows: Span[];
}

/** Passed to a finder: the previous run and the edit since (both absent: from scratch); `memo` is filled for the next run. */
export interface Incremental {
  previous?: FinderMemo;
  edit?: EditView;
  memo: FinderMemo;
}

/**
 * The previous run's memory of a site now at [start, end), moved to this text's indexes, when the
 * edit cannot have changed its facts: nothing it read was edited or changed its syntax, and no name
 * it looked up is written in a changed statement inside the extent its lookup searched.
 */
function reusable(inc: Incremental | undefined, fileKey: string, start: number, end: number): Remembered | undefined {
  const was = previousSite(inc, fileKey, start, end);
  const edit = inc?.edit;
  if (!was || !edit) return undefined;
  for (const span of was.deps.reads) if (touched(edit, span)) return undefined;
  for (const { name, within } of was.deps.lookups) if (edit.words.has(name) && touched(edit, within)) return undefined;
  const moved = ([a, b]: Span): Span => [shift(edit, a) ?? edit.newEnd, shift(edit, b) ?? edit.newEnd];
  return {
    end,
    match: was.match,
    facts: was.facts,
    deps: { reads: was.deps.reads.map(moved), lookups: was.deps.lookups.map(({ name, within }) => ({ name, within: moved(within) })) },
  };
}

/** The previous run's site at what is now [start, end), if there was one. */
function previousSite(inc: Incremental | undefined, fileKey: string, start: number, end: number): Remembered | undefined {
  const previous = inc?.previous;
  const edit = inc?.edit;
  if (!previous || !edit || previous.fileKey !== fileKey) return undefined;
  const old = toOld(edit, start);
  return old === undefined ? undefined : previous.sites.get(old)?.find((was) => shift(edit, was.end) === end);
}

/**
 * The call a name written at `at` belongs to, as the previous run read it, moved here: null when it
 * belonged to none; undefined when it must be read from the tree (in or next to a changed
 * statement, new, or part of a call the change reached).
 */
export function previousCall(inc: Incremental | undefined, fileKey: string, at: number, length: number): Span | null | undefined {
  const previous = inc?.previous;
  const edit = inc?.edit;
  if (!previous || !edit || previous.fileKey !== fileKey) return undefined;
  if (edit.windows.some(([s, e]) => at <= e && at + length >= s)) return undefined;
  const old = toOld(edit, at);
  const was = old === undefined ? undefined : previous.calls.get(old);
  if (was === undefined || was === null) return was;
  if (touched(edit, was)) return undefined;
  return [shift(edit, was[0])!, shift(edit, was[1])!];
}

/** Whether an extent of the previous text meets the edit or, moved by it, a range whose syntax changed (touching counts). */
function touched(edit: EditView, [a, b]: Span): boolean {
  if (a <= edit.oldEnd && b >= edit.start) return true;
  const a2 = shift(edit, a)!;
  const b2 = shift(edit, b)!;
  return edit.changed.some(([s, e]) => a2 <= e && b2 >= s);
}

/** An index of the previous text in this one; undefined inside the replaced span. */
function shift(edit: EditView, i: number): number | undefined {
  if (i <= edit.start) return i;
  if (i >= edit.oldEnd) return i + edit.newEnd - edit.oldEnd;
  return undefined;
}

/** An index of this text in the previous one; undefined inside the inserted span. */
function toOld(edit: EditView, i: number): number | undefined {
  if (i < edit.start) return i;
  if (i >= edit.newEnd) return i - edit.newEnd + edit.oldEnd;
  return undefined;
}

/** Identifiers written in `text` (a superset of the names a statement binds or uses). */
export function wordsIn(text: string, into: Set<string>): void {
  for (const m of text.matchAll(/[A-Za-z_$][\w$]*/g)) into.add(m[0]);
}
