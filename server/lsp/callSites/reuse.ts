/**
 * Reusing a call site's request facts after an edit that cannot have changed them. Evaluating a
 * site (following names to their declarations, helpers to their returns) is what finding costs;
 * a keystroke changes one statement, so the sites elsewhere keep what they read. A finder records
 * per site what its evaluation read (`SiteDeps`); after the edit the facts are reused only when
 * none of it lies in the changed text. Pure: positions are UTF-16 indexes, as node.startIndex.
 */
import type { RequestFacts } from "./types";

/** [start, end) in the text. */
export type Span = readonly [number, number];

/** What evaluating one site read: node extents, and names looked up with the extent their lookup searched. */
export interface SiteDeps {
  reads: Span[];
  lookups: { name: string; within: Span }[];
}

/** One site of the previous run, keyed by its start. */
export interface Remembered {
  end: number;
  /** How the site was read (API and operation): facts are reused only for the same reading. */
  how: string;
  facts: RequestFacts;
  deps: SiteDeps;
}

/** A finder's memory of one run: what the whole file decides (imports, clients) and each site's facts. */
export interface FinderMemo {
  fileKey: string;
  sites: Map<number, Remembered>;
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
export function reusable(inc: Incremental | undefined, fileKey: string, how: string, start: number, end: number): Remembered | undefined {
  const previous = inc?.previous;
  const edit = inc?.edit;
  if (!previous || !edit || previous.fileKey !== fileKey) return undefined;
  const old = toOld(edit, start);
  if (old === undefined) return undefined;
  const was = previous.sites.get(old);
  if (!was || was.how !== how || shift(edit, was.end) !== end) return undefined;
  for (const span of was.deps.reads) if (touched(edit, span)) return undefined;
  for (const { name, within } of was.deps.lookups) if (edit.words.has(name) && touched(edit, within)) return undefined;
  const moved = ([a, b]: Span): Span => [shift(edit, a) ?? edit.newEnd, shift(edit, b) ?? edit.newEnd];
  return {
    end,
    how,
    facts: was.facts,
    deps: { reads: was.deps.reads.map(moved), lookups: was.deps.lookups.map(({ name, within }) => ({ name, within: moved(within) })) },
  };
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
