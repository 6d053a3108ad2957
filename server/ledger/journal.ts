/**
 * Append-only JSON-lines journal: `<dir>/journal/YYYY-MM.jsonl`, one file per UTC month of the
 * entry's `at`. With durability "machine" an append resolves only after its line is written and
 * fdatasync'ed; with "process" it resolves once the line is written (the page cache outlives a
 * killed process) and the file is fdatasync'ed in the background at most every 100 ms. Appends that
 * arrive while a batch is in flight are group-committed: one write (and one fdatasync) per file for
 * the whole batch, so the cost is shared and throughput grows with concurrency. A failed write
 * (a full or read-only disk) is cut back to the file's last durable length before anything else
 * is appended, so the journal recovers by itself once the disk does.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, writeSync } from "node:fs";
import { open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import path from "node:path";
import { FILE_MODE, privateDir, syncDir } from "./privateFiles";
import { checkEntry } from "./schema";
import type { JournalEntry } from "./types";

/**
 * What an append waits for before it resolves: "process" = the line written (survives the process
 * being killed; the file is synced within BACKGROUND_SYNC_MS), "machine" = the line fdatasync'ed
 * (survives the machine losing power).
 */
export type Durability = "process" | "machine";
/** Longest a written line waits for its fdatasync under durability "process". */
export const BACKGROUND_SYNC_MS = 100;

export interface JournalStats {
  appends: number; // lines written (and, under "machine", synced) before their append resolved
  writes: number; // write batches (one per file per group commit)
  syncs: number; // fdatasync calls for appends (on the append path or in the background)
  skippedLines: number; // torn, unparsable or invalid lines seen by read()
  repairedFiles: number; // files whose torn tail was moved aside on open
  linesRead: number; // complete lines read and parsed by read() / readMonth() (start-up from a checkpoint reads only its tail)
}

/**
 * Lines moved out of the journal because they were not valid entries: kept, never deleted, in
 * `<month>.jsonl.bad` when their money is accounted for (see Ledger.replay) and in
 * `<month>.jsonl.bad-unknown-amount` when it cannot be known. Counted from those files on open,
 * so the warning lasts until the user deals with them.
 */
export interface Quarantine {
  lines: number;
  unknownAmountLines: number;
  files: string[];
}

/** Where a quarantined line goes. */
export type QuarantineKind = "bad" | "bad-unknown-amount";
const QUARANTINE_RE = /^\d{4}-\d{2}\.jsonl\.(bad|bad-unknown-amount)$/;

/** A complete line that failed validation, as read. */
export interface BadLine {
  month: string;
  text: string;
  reason: string;
}

/**
 * Where an appended line ends: its month's file, the byte offset just past its newline, and the
 * line (without it) as a checkpoint names it (see checkpointLine).
 */
export interface JournalPosition {
  month: string;
  end: number;
  line: string;
}

interface Pending {
  month: string;
  line: string;
  resolve: (pos: JournalPosition) => void;
  reject: (err: unknown) => void;
}

/** A file open for appends and its length when its last line was made durable (whole lines only). */
interface OpenFile {
  fh: FileHandle;
  size: number;
}

/**
 * An append that could not be made durable. Nothing of it is left in the file (or will be cut back
 * before the next append), so the caller may treat the entry as not written. The message names
 * the disk problem and how to fix it.
 */
export class JournalWriteError extends Error {
  readonly code: string | undefined;
  constructor(readonly file: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(describeWriteFailure(code, file, cause), { cause });
    this.name = "JournalWriteError";
    this.code = code;
  }
}

function describeWriteFailure(code: string | undefined, file: string, cause: unknown): string {
  switch (code) {
    case "ENOSPC":
      return `the ledger's disk is full (ENOSPC writing ${file}); free space and the next call will go through`;
    case "EDQUOT":
      return `the ledger's disk quota is used up (EDQUOT writing ${file}); free space and the next call will go through`;
    case "EROFS":
      return `the ledger's disk is read-only (EROFS writing ${file}); make it writable and the next call will go through`;
    default:
      return `the ledger could not be written (${code ?? "error"} writing ${file}: ${(cause as Error)?.message ?? String(cause)}); the next call tries again`;
  }
}

const FILE_RE = /^(\d{4}-\d{2})\.jsonl$/;
const NL = 0x0a;

/** UTC month ("YYYY-MM") an entry is filed under. */
export function journalMonth(at: string | Date): string {
  const t = typeof at === "string" ? Date.parse(at) : at.getTime();
  if (!Number.isFinite(t)) throw new Error(`journal: bad entry time ${JSON.stringify(at)}`);
  // Nearly every entry falls in the month of the one before: reuse its name instead of formatting a date per append.
  if (t >= lastMonth.from && t < lastMonth.to) return lastMonth.name;
  const d = new Date(t);
  const name = d.toISOString().slice(0, 7);
  const start = (monthOffset: number) => new Date(0).setUTCFullYear(d.getUTCFullYear(), d.getUTCMonth() + monthOffset, 1); // not Date.UTC: it reads years 0-99 as 19xx
  lastMonth = { name, from: start(0), to: start(1) };
  return name;
}

let lastMonth = { name: "", from: 0, to: 0 };

/** What Journal.read reads: see there. */
export interface ReadOptions {
  since?: Date;
  fromMonth?: string;
  offsets?: ReadonlyMap<string, number>;
  onBad?: (bad: BadLine) => void;
  /** Only settle entries are wanted: reserve entries are left out, their lines mostly unparsed (see isReserveLine). */
  settlesOnly?: boolean;
}

/** A reader (report, whatif, reconcile) cannot read the ledger it was pointed at: never read as $0 spent. */
export class LedgerUnreadable extends Error {}

/**
 * A reader's ledger must be there and readable: a mistyped folder, or one owned by the user a
 * service runs as, would otherwise read as no calls. A ledger folder whose journal does not exist
 * yet has recorded nothing, which is true.
 */
async function checkReadable(journalDir: string): Promise<void> {
  const ledgerDir = path.dirname(journalDir);
  const code = await readdir(journalDir).then(() => undefined, (err: NodeJS.ErrnoException) => err.code ?? err.message);
  if (code === undefined) return;
  if (code === "ENOENT") {
    const ledger = await stat(ledgerDir).then((st) => (st.isDirectory() ? undefined : "not a folder"), (err: NodeJS.ErrnoException) => err.code ?? err.message);
    if (ledger === undefined) return;
    throw new LedgerUnreadable(`no ledger at ${ledgerDir} (${ledger === "ENOENT" ? "no such folder" : ledger}): check --ledger or ledgerDir`);
  }
  throw new LedgerUnreadable(`cannot read the journal in ${journalDir} (${code}): run this as the user the gateway runs as, or give this user read access to its ledger`);
}

export class Journal {
  readonly stats: JournalStats = { appends: 0, writes: 0, syncs: 0, skippedLines: 0, repairedFiles: 0, linesRead: 0 };
  readonly quarantine: Quarantine = { lines: 0, unknownAmountLines: 0, files: [] };
  private queue: Pending[] = [];
  private running = false;
  private idle: Promise<void> = Promise.resolve();
  private readonly handles = new Map<string, OpenFile>();
  /** Files a failed write may have left longer than their last durable length, and that length. */
  private readonly toCutBack = new Map<string, number>();
  private closed = false;
  /** Months written since their last fdatasync (durability "process" only). */
  private readonly dirty = new Set<string>();
  private syncTimer: NodeJS.Timeout | undefined;
  private backgroundSync: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly readOnly: boolean,
    readonly durability: Durability,
  ) {}

  /**
   * Opens (creating) `<dir>/journal` and repairs any file whose last line was torn by a crash.
   * `readOnly` (reports while a gateway may be writing) neither repairs nor appends: a line being
   * written right now looks torn and must not be moved aside.
   */
  static async open(dir: string, opts: { readOnly?: boolean; durability?: Durability } = {}): Promise<Journal> {
    const journal = new Journal(path.join(dir, "journal"), opts.readOnly ?? false, opts.durability ?? "machine");
    if (journal.readOnly) {
      await checkReadable(journal.dir);
      return journal;
    }
    await privateDir(journal.dir);
    for (const name of await readdir(journal.dir).catch(() => [] as string[])) {
      // A quarantine interrupted by a crash: the journal file itself was not replaced yet.
      if (name.endsWith(".quarantine-tmp")) await rm(path.join(journal.dir, name), { force: true });
    }
    for (const month of await journal.months()) {
      if (await repairTornTail(journal.file(month))) journal.stats.repairedFiles++;
    }
    await journal.countQuarantine();
    return journal;
  }

  /** Resolves (durability above) with where the entry's line ends: the ledger's checkpoint covers whole lines. */
  append(entry: JournalEntry): Promise<JournalPosition> {
    if (this.closed || this.readOnly) return Promise.reject(new Error(`journal: ${this.closed ? "closed" : "opened read-only"}`));
    let month: string;
    try {
      month = journalMonth(entry.at);
    } catch (err) {
      return Promise.reject(err);
    }
    const line = JSON.stringify(entry) + "\n";
    return new Promise<JournalPosition>((resolve, reject) => {
      this.queue.push({ month, line, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Start after this turn's I/O callbacks (setImmediate), not on the next microtask: the
        // calls whose requests or answers arrived together share one write() (a group commit);
        // a write per line cost the gateway ~25 µs of system time per call.
        this.idle = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.commitLoop());
      }
    });
  }

  /** Months present, oldest first. */
  async months(): Promise<string[]> {
    // No journal folder yet is no months; any other failure is not "nothing spent".
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [] as string[];
      throw err;
    });
    return names.flatMap((n) => FILE_RE.exec(n)?.[1] ?? []).sort();
  }

  /**
   * Entries of one month in file order. Torn, unparsable or invalid lines are skipped and counted;
   * `onBad` hears of each complete one (the ledger quarantines them).
   */
  async *readMonth(month: string, onBad?: (bad: BadLine) => void, fromOffset = 0, settlesOnly = false): AsyncIterable<JournalEntry> {
    for await (const batch of this.readMonthBatches(month, onBad, fromOffset, settlesOnly)) for (const entry of batch) yield entry;
  }

  /**
   * The newest month whose file holds a valid settle line of call `id`; undefined when none does.
   * Only lines that hold the id's JSON text are parsed, so looking up an id costs a read of the
   * files and little else (the call log's paging, which must not parse the journal to find a cursor).
   */
  async monthOfSettle(id: string): Promise<string | undefined> {
    const needle = Buffer.from(JSON.stringify(id), "utf8");
    const months = await this.months();
    for (let m = months.length - 1; m >= 0; m--) {
      for await (const batch of lineBatches(this.file(months[m]!))) {
        for (const line of batch) {
          if (line.indexOf(needle) < 0) continue;
          const parsed = parseLine(line);
          if (parsed.ok && parsed.entry.type === "settle" && parsed.entry.id === id) return months[m];
        }
      }
    }
    return undefined;
  }

  /**
   * readMonth's entries a batch of lines (BATCH_LINES) at a time: a replay of a million lines
   * awaits once per batch here, not once per line at every layer of nested generators.
   */
  private async *readMonthBatches(month: string, onBad: ((bad: BadLine) => void) | undefined, fromOffset: number, settlesOnly: boolean): AsyncGenerator<JournalEntry[]> {
    const source = lineBatches(this.file(month), fromOffset);
    try {
      for (;;) {
        const next = await source.next();
        if (next.done) {
          if (next.value) this.stats.skippedLines++; // an unterminated line is being written or was torn
          return;
        }
        const entries: JournalEntry[] = [];
        for (const line of next.value) {
          this.stats.linesRead++;
          if (settlesOnly && isReserveLine(line)) continue;
          const parsed = parseLine(line);
          if (parsed.ok) {
            if (!settlesOnly || parsed.entry.type === "settle") entries.push(parsed.entry);
          } else {
            this.stats.skippedLines++;
            onBad?.({ month, text: line.toString("utf8"), reason: parsed.reason });
          }
        }
        yield entries;
      }
    } finally {
      await source.return(false); // a reader that stops early closes the file
    }
  }

  /**
   * Moves the invalid lines of `month` from byte `fromOffset` on aside (to the side file `kindOf`
   * names for each), keeping every valid line in order and the bytes before `fromOffset` as they
   * are: a checkpoint's offsets into the file stay true. Only while nothing appends (the ledger
   * calls it while opening, after releaseFiles). The side files are written and synced before the
   * journal file is replaced, atomically: a crash in between leaves a line in both, never in neither.
   */
  async quarantineMonth(month: string, kindOf: (text: string) => QuarantineKind, fromOffset = 0): Promise<number> {
    if (this.readOnly || this.handles.size > 0 || this.running) throw new Error("journal: quarantine only while opening");
    const file = this.file(month);
    const tmp = `${file}.quarantine-tmp`;
    const aside: Record<QuarantineKind, Buffer[]> = { bad: [], "bad-unknown-amount": [] };
    // The bytes before fromOffset are kept as they are (a checkpoint's offsets point into them).
    if (fromOffset > 0) await pipeline(createReadStream(file, { end: fromOffset - 1 }), createWriteStream(tmp, { mode: FILE_MODE }));
    const out = await open(tmp, fromOffset > 0 ? "a" : "w", FILE_MODE);
    try {
      let pending: Buffer[] = [];
      let size = 0;
      const source = lines(file, fromOffset);
      for (;;) {
        const next = await source.next();
        if (next.done) {
          if (next.value) throw new Error(`journal: ${file} grew while its bad lines were moved aside`);
          break;
        }
        // Copied: lines() reuses its buffer for the next line.
        if (parseLine(next.value).ok) {
          pending.push(Buffer.from(next.value), NL_BUF);
          size += next.value.length + 1;
        } else if (next.value.toString("utf8").trim() !== "") {
          aside[kindOf(next.value.toString("utf8"))].push(Buffer.from(next.value), NL_BUF);
        }
        if (size >= 1 << 20) {
          await writeAll(out, Buffer.concat(pending));
          pending = [];
          size = 0;
        }
      }
      if (pending.length) await writeAll(out, Buffer.concat(pending));
      await out.datasync();
    } finally {
      await out.close();
    }
    let moved = 0;
    for (const kind of ["bad", "bad-unknown-amount"] as const) {
      if (!aside[kind].length) continue;
      await appendDurably(`${file}.${kind}`, Buffer.concat(aside[kind]));
      const n = aside[kind].length / 2;
      moved += n;
      this.quarantine.lines += n;
      if (kind === "bad-unknown-amount") this.quarantine.unknownAmountLines += n;
      if (!this.quarantine.files.includes(`${file}.${kind}`)) this.quarantine.files.push(`${file}.${kind}`);
    }
    await rename(tmp, file);
    await syncDir(this.dir);
    return moved;
  }

  /** Counts the lines of the quarantine files already there (from this or an earlier start). */
  private async countQuarantine(): Promise<void> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => QUARANTINE_RE.test(n)).sort();
    for (const name of names) {
      let n = 0;
      const source = lines(path.join(this.dir, name));
      for (;;) {
        const next = await source.next();
        if (next.done) {
          if (next.value) n++;
          break;
        }
        if (next.value.length) n++;
      }
      this.quarantine.lines += n;
      if (name.endsWith(".bad-unknown-amount")) this.quarantine.unknownAmountLines += n;
      this.quarantine.files.push(path.join(this.dir, name));
    }
  }

  /**
   * All entries, months in order. `since` skips entries before it; `fromMonth` skips whole earlier
   * files; `offsets` starts each month's file at that byte offset (a line start: a checkpoint's);
   * `settlesOnly` leaves reserve entries out (and their lines unparsed).
   */
  async *read(options: ReadOptions = {}): AsyncIterable<JournalEntry> {
    for await (const batch of this.readBatches(options)) for (const entry of batch) yield entry;
  }

  /** read's entries a batch at a time (never an empty batch): for replays of the whole journal. */
  async *readBatches(options: ReadOptions = {}): AsyncIterable<JournalEntry[]> {
    const since = options.since?.getTime();
    let from = options.fromMonth;
    if (since !== undefined) {
      const m = journalMonth(options.since!);
      if (from === undefined || m > from) from = m;
    }
    for (const month of await this.months()) {
      if (from !== undefined && month < from) continue;
      // Entries are filed by the UTC month of `at`: only since's own month holds any before it.
      const cut = since !== undefined && month === journalMonth(options.since!);
      for await (const batch of this.readMonthBatches(month, options.onBad, options.offsets?.get(month) ?? 0, options.settlesOnly === true)) {
        const kept = cut ? batch.filter((entry) => Date.parse(entry.at) >= since) : batch;
        if (kept.length > 0) yield kept;
      }
    }
  }

  /** Waits for queued appends, syncs what is not synced yet, then closes files. */
  async close(): Promise<void> {
    this.closed = true;
    await this.releaseFiles();
  }

  /**
   * Waits for queued appends, syncs what is not synced yet and closes the files, leaving the
   * journal open: the next append reopens its file. Lets the ledger's open quarantine lines after
   * it has journaled what they are charged.
   */
  async releaseFiles(): Promise<void> {
    await this.idle;
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    await this.backgroundSync;
    await this.syncDirty();
    for (const f of this.handles.values()) await f.fh.close();
    this.handles.clear();
  }

  /** Under "process": syncs the written files within BACKGROUND_SYNC_MS, one sync per file for all lines since. */
  private scheduleSync(): void {
    if (this.syncTimer || this.closed) return;
    this.syncTimer = setTimeout(() => {
      this.backgroundSync = this.backgroundSync.then(() => this.syncDirty()).finally(() => {
        this.syncTimer = undefined;
        if (this.dirty.size > 0) this.scheduleSync();
      });
    }, BACKGROUND_SYNC_MS);
    this.syncTimer.unref(); // close() syncs; a timer must not keep a finished process alive
  }

  /**
   * fdatasyncs every file written since its last sync. A failure is not reported to any call (their
   * lines are written and survive the process); the file stays dirty and the next sync tries again.
   */
  private async syncDirty(): Promise<void> {
    for (const month of [...this.dirty]) {
      const f = this.handles.get(month);
      this.dirty.delete(month);
      if (!f) continue; // closed after a failed write (synced by the cut-back) or synced when a newer month opened
      try {
        await f.fh.datasync();
        this.stats.syncs++;
      } catch {
        if (this.handles.get(month) === f) this.dirty.add(month);
      }
    }
  }

  private file(month: string): string {
    return path.join(this.dir, `${month}.jsonl`);
  }

  private async commitLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const byMonth = new Map<string, Pending[]>();
        for (const p of batch) {
          const group = byMonth.get(p.month);
          if (group) group.push(p);
          else byMonth.set(p.month, [p]);
        }
        // Each file succeeds or fails on its own: a line made durable is never reported as failed.
        for (const [month, group] of byMonth) {
          try {
            let end = await this.writeDurably(month, Buffer.from(group.map((p) => p.line).join(""), "utf8"));
            this.stats.appends += group.length;
            for (const p of group) {
              end += Buffer.byteLength(p.line, "utf8");
              p.resolve({ month, end, line: checkpointLine(p.line.slice(0, -1)) });
            }
          } catch (err) {
            const failure = new JournalWriteError(this.file(month), err);
            for (const p of group) p.reject(failure);
          }
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Appends `buf` to the month's file and (durability "machine") syncs it; on failure leaves (or
   * will leave) the file as it was. Returns the offset `buf` was written at.
   */
  private async writeDurably(month: string, buf: Buffer): Promise<number> {
    await this.cutBack(month);
    const f = await this.handle(month);
    try {
      // "process": a small append to the page cache, done in place; a round trip through libuv's
      // thread pool would cost the call more than the write itself. "machine": the sync dominates.
      if (this.durability === "process") writeAllNow(f.fh, buf);
      else await writeAll(f.fh, buf);
      this.stats.writes++;
      if (this.durability === "machine") {
        await f.fh.datasync();
        this.stats.syncs++;
      }
    } catch (err) {
      // Part of the batch may be in the file (a torn line, or lines not made durable): cut it back
      // to its last durable length now when possible (truncating needs no space), else before the
      // next append. Reopened afterwards, as a failed handle may stay failed.
      this.toCutBack.set(month, f.size);
      this.handles.delete(month);
      await f.fh.close().catch(() => undefined);
      await this.cutBack(month).catch(() => undefined);
      throw err;
    }
    const at = f.size;
    f.size += buf.length;
    if (this.durability === "process") {
      this.dirty.add(month);
      this.scheduleSync();
    }
    return at;
  }

  /**
   * Each month file's length and its last line (without the newline, as checkpointLine names it),
   * for a checkpoint taken while nothing appends (the ledger's open): the line lets a later open
   * tell the file is still the one the checkpoint covered. Every month file is named: one left out
   * would be read whole by the next open on top of totals that already count it. A file whose end
   * cannot be read gets a line no file ever ends in, so the next open replays the journal whole.
   */
  async ends(): Promise<Map<string, { end: number; line: string }>> {
    const out = new Map<string, { end: number; line: string }>();
    for (const month of await this.months()) {
      const file = this.file(month);
      const { size } = await stat(file);
      out.set(month, { end: size, line: (await lineBefore(file, size)) ?? NO_LINE });
    }
    return out;
  }

  /** True when `month`'s file holds `line` and its newline just before byte `end`: a checkpoint still applies to it. */
  async endsWith(month: string, end: number, line: string): Promise<boolean> {
    return (await this.lineEndingAt(month, end)) === line;
  }

  /** The line (without its newline, as checkpointLine names it) that ends at byte `end` of `month`'s file; undefined when none does or the file is shorter. */
  async lineEndingAt(month: string, end: number): Promise<string | undefined> {
    const file = this.file(month);
    const size = await stat(file).then((s) => s.size, () => -1);
    if (size < end) return undefined;
    return lineBefore(file, end);
  }

  /** Truncates a file a failed write left behind to its last durable length; throws while it cannot. */
  private async cutBack(month: string): Promise<void> {
    const size = this.toCutBack.get(month);
    if (size === undefined) return;
    const fh = await open(this.file(month), "r+");
    try {
      if ((await fh.stat()).size > size) await fh.truncate(size);
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.toCutBack.delete(month);
  }

  private async handle(month: string): Promise<OpenFile> {
    const cached = this.handles.get(month);
    if (cached) return cached;
    let fh: FileHandle;
    try {
      fh = await open(this.file(month), "ax", FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      fh = await open(this.file(month), "a");
    }
    let f: OpenFile;
    try {
      await syncDir(this.dir); // make a new file's directory entry durable too (also after a failed first try)
      f = { fh, size: (await fh.stat()).size };
    } catch (err) {
      await fh.close();
      throw err;
    }
    // Only the newest month is appended to in steady state; close older handles (synced first:
    // the background sync only reaches open files).
    for (const [m, old] of this.handles) {
      if (m < month) {
        this.handles.delete(m);
        if (this.dirty.delete(m)) await old.fh.datasync().then(() => void this.stats.syncs++, () => undefined);
        await old.fh.close();
      }
    }
    this.handles.set(month, f);
    return f;
  }
}

const NL_BUF = Buffer.from("\n");
const RESERVE_START = Buffer.from('{"type":"reserve",');
const TYPE_KEY = Buffer.from('"type"');

const BACKSLASH = 0x5c;

/**
 * A line the journal wrote for a reservation (JSON.stringify puts `type` first), which a reader of
 * settled calls can pass over unparsed. A line with a second "type" key (JSON.parse keeps the last)
 * is parsed like any other, and so is one with any escape, which may spell that key another way
 * ("typ\u0065"); so is a broken one, which such a reader skips either way.
 */
function isReserveLine(line: Buffer): boolean {
  return (
    line.length > RESERVE_START.length &&
    line.compare(RESERVE_START, 0, RESERVE_START.length, 0, RESERVE_START.length) === 0 &&
    line.indexOf(TYPE_KEY, RESERVE_START.length) < 0 &&
    line.indexOf(BACKSLASH, RESERVE_START.length) < 0
  );
}

/** A journal line checked against the entry schema: valid JSON is not enough (see schema.ts). */
function parseLine(line: Buffer): { ok: true; entry: JournalEntry } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(line.toString("utf8"));
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  return checkEntry(value);
}

/** Longest line a checkpoint keeps as its text; a longer one it names by its length and SHA-256 (checkpointLine). */
const MAX_CHECKPOINT_LINE = 1 << 20;
/** A checkpoint's line for a file whose end could not be read: no line is ever named so (lines hold no newline). */
const NO_LINE = "\n";

/** Names a long line by its byte length and digest; the leading newline keeps it from ever equalling a line's text. */
function longLine(bytes: number, sha256: string): string {
  return `\n${bytes} bytes sha256:${sha256}`;
}

/**
 * A line (without its newline) as a checkpoint names it: its text, or when longer than
 * MAX_CHECKPOINT_LINE bytes its length and SHA-256 (state.json stays small), as lineBefore reads it back.
 */
export function checkpointLine(line: string): string {
  if (line.length * 3 <= MAX_CHECKPOINT_LINE) return line; // a UTF-16 unit is at most 3 UTF-8 bytes: no count needed on the append path
  const bytes = Buffer.byteLength(line, "utf8");
  return bytes <= MAX_CHECKPOINT_LINE ? line : longLine(bytes, createHash("sha256").update(line, "utf8").digest("hex"));
}

/**
 * The line that ends (with its newline) at byte `end` of `file`, without the newline, as
 * checkpointLine names it; "" for `end` 0; undefined when byte end-1 is not a newline or the file
 * is unreadable.
 */
async function lineBefore(file: string, end: number): Promise<string | undefined> {
  if (end === 0) return "";
  let fh: FileHandle;
  try {
    fh = await open(file, "r");
  } catch {
    return undefined;
  }
  try {
    // Room for the longest line kept as text, its newline and the newline before it.
    const span = Math.min(end, MAX_CHECKPOINT_LINE + 2);
    const buf = Buffer.alloc(span);
    const { bytesRead } = await fh.read(buf, 0, span, end - span);
    if (bytesRead !== span || buf[span - 1] !== NL) return undefined;
    const from = end - span; // file offset of buf[0]
    const i = span >= 2 ? buf.lastIndexOf(NL, span - 2) : -1;
    const start = i >= 0 ? from + i + 1 : from === 0 ? 0 : await lineStart(fh, from);
    if (start === undefined) return undefined;
    const bytes = end - 1 - start;
    if (bytes <= MAX_CHECKPOINT_LINE) return buf.subarray(start - from, span - 1).toString("utf8");
    const hash = createHash("sha256");
    const chunk = Buffer.alloc(READ_CHUNK);
    for (let pos = start; pos < end - 1; ) {
      const { bytesRead: n } = await fh.read(chunk, 0, Math.min(chunk.length, end - 1 - pos), pos);
      if (n === 0) return undefined; // cut short meanwhile
      hash.update(chunk.subarray(0, n));
      pos += n;
    }
    return longLine(bytes, hash.digest("hex"));
  } finally {
    await fh.close();
  }
}

/** Where the line holding byte `before - 1` starts: just past the last newline before `before`, or 0. */
async function lineStart(fh: FileHandle, before: number): Promise<number | undefined> {
  const chunk = Buffer.alloc(READ_CHUNK);
  for (let end = before; end > 0; ) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await fh.read(chunk, 0, end - start, start);
    if (bytesRead !== end - start) return undefined; // cut short meanwhile
    const i = chunk.subarray(0, bytesRead).lastIndexOf(NL);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/** Bytes read from a journal file at a time (the buffer grows only for a longer line). */
const READ_CHUNK = 256 * 1024;
/** Lines per batch at most: the entries parsed from a batch live until it is consumed. */
const BATCH_LINES = 64;

/**
 * The complete lines of `file` from byte `start` (without their newline), up to BATCH_LINES at a
 * time, as views into one buffer reused for the whole file: a batch is valid only until the next
 * is asked for (copy a line to keep it). Reading a month's journal so allocates nothing per chunk
 * but the views, and memory stays bounded by the longest line. Returns whether an unterminated tail
 * followed.
 */
async function* lineBatches(file: string, start = 0): AsyncGenerator<Buffer[], boolean> {
  let fh: FileHandle;
  try {
    fh = await open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  try {
    let buf = Buffer.allocUnsafe(READ_CHUNK);
    let kept = 0; // bytes of an unfinished line at the front of buf
    let pos = start;
    for (;;) {
      if (kept === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, kept);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, kept, buf.length - kept, pos);
      if (bytesRead === 0) return kept > 0;
      pos += bytesRead;
      const data = buf.subarray(0, kept + bytesRead);
      let batch: Buffer[] = [];
      let from = 0;
      let nl: number;
      while ((nl = data.indexOf(NL, from)) >= 0) {
        batch.push(data.subarray(from, nl));
        from = nl + 1;
        if (batch.length === BATCH_LINES) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
      kept = data.length - from;
      buf.copy(buf, 0, from, data.length); // the unfinished line moves to the front
    }
  } finally {
    await fh.close();
  }
}

/** lineBatches one line at a time: a line is valid only until the next is asked for. */
async function* lines(file: string, start = 0): AsyncGenerator<Buffer, boolean> {
  const source = lineBatches(file, start);
  try {
    for (;;) {
      const next = await source.next();
      if (next.done) return next.value;
      for (const line of next.value) yield line;
    }
  } finally {
    await source.return(false);
  }
}

/** Appends `buf` to `file` (created 0600) and syncs it before resolving. */
async function appendDurably(file: string, buf: Buffer): Promise<void> {
  const side = await open(file, "a", FILE_MODE);
  try {
    await writeAll(side, buf);
    await side.sync();
  } finally {
    await side.close();
  }
}

function writeAllNow(fh: FileHandle, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fh.fd, buf, off, buf.length - off);
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

/**
 * If `file` does not end in a newline, moves the bytes after its last newline to `<file>.torn`
 * (appended, synced first so nothing is lost) and truncates them, so the next line starts fresh.
 */
async function repairTornTail(file: string): Promise<boolean> {
  const { size } = await stat(file);
  if (size === 0) return false;
  const fh = await open(file, "r+");
  try {
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    if (last[0] === NL) return false;
    // Find the last newline, scanning backwards in chunks.
    let keep = 0;
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0 && keep === 0; ) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await fh.read(chunk, 0, end - start, start);
      const i = chunk.subarray(0, bytesRead).lastIndexOf(NL);
      if (i >= 0) keep = start + i + 1;
      end = start;
    }
    const torn = Buffer.alloc(size - keep);
    await fh.read(torn, 0, torn.length, keep);
    await appendDurably(`${file}.torn`, Buffer.concat([torn, NL_BUF]));
    await fh.truncate(keep);
    await fh.sync();
    return true;
  } finally {
    await fh.close();
  }
}
