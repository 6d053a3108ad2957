/**
 * The facade the gateway uses: the journal (truth, durable) plus derived state (rollups, recent
 * calls). On open it replays the journal tail: a reserve with no settle means the process died
 * mid-call, so it is settled as "interrupted" at its worst case — Bedrock may have charged.
 * Lines that are not valid entries are moved aside (quarantined), never trusted, never dropped.
 */
import { createHash } from "node:crypto";
import { callsOfMonth } from "./report";
import { localDateKey } from "../budget/windows";
import { isPicosText, type Picos } from "../metering/money";
import { ZERO_USAGE, type Operation } from "../metering/types";
import { Journal, journalMonth, type BadLine, type Durability, type JournalPosition } from "./journal";
import { checkEntry } from "./schema";
import { callUnderModel } from "../shared/guardrailModel";
import { repairLedgerModes } from "./privateFiles";
import { GatewaySecret } from "./secret";
import { addToRollups, StateStore, type Rollups, type StateData } from "./state";
import type { CallRecord, Outcome, ReserveEntry } from "./types";

export interface LedgerOptions {
  now?: () => Date;
  /** Zone of the rollups' day keys and of report months; defaults to UTC. */
  timeZone?: string;
  /** Settled calls kept in memory for recentCalls (older pages read the journal). */
  recentLimit?: number;
  stateDebounceMs?: number;
  /** What an append waits for (journal.ts); "machine" when unset. */
  durability?: Durability;
}

export interface RecentCallsQuery {
  limit: number;
  before?: string; // id of the last call of the previous page
  model?: string; // requested or base model id
  outcome?: Outcome;
}

const DAY = 86_400_000;

/**
 * Something derived from settled calls that is kept in the checkpoint beside the rollups (the cap
 * totals): it sees every settle in journal order, and its snapshot is taken at the same instant as
 * the journal offsets the checkpoint names, so on the next open it plus the journal past those
 * offsets is what a full replay would give.
 */
export interface CheckpointPart {
  settled(record: CallRecord): void;
  snapshot(): unknown;
}

export class Ledger {
  private readonly open = new Map<string, ReserveEntry>();
  /** Newest last, in journal order. */
  private recent: CallRecord[] = [];
  /** True while `recent` holds every settled call in the journal (no paging into files needed). */
  private recentComplete = true;
  /**
   * While open replays the journal: its newest settled calls, in a ring of recentLimit slots. A
   * replayed call is dropped as soon as recentLimit newer ones are read (not up to twice as many),
   * and no list is copied per trim, so fewer replayed records live long enough to reach V8's old
   * generation, which does not shrink once a replay without a checkpoint has grown it.
   */
  private replayRing: { calls: CallRecord[]; next: number; count: number } | undefined;
  /**
   * Settlements the journal could not take (a full or read-only disk), by call id: written before
   * the next append and at close; their reservations stay open meanwhile. `writing` keeps one
   * record from being appended twice by concurrent retries.
   */
  private readonly unwritten = new Map<string, { record: CallRecord; written: (record: CallRecord) => void; writing: boolean }>();
  /** Each month file's prefix whose lines are all applied (rollups, open, parts): what a checkpoint covers. */
  private covered = new Map<string, { end: number; line: string }>();
  /** Open reservations whose line is inside `covered` (a checkpoint names them). */
  private readonly reservedCovered = new Set<string>();
  /** False until open's replay has set `covered`: a snapshot taken before names no checkpoint. */
  private checkpointReady = false;
  private readonly parts = new Map<string, CheckpointPart>();
  private readonly settleWatchers: ((record: CallRecord) => void)[] = [];
  /** The parts of the checkpoint this open started from (none: the journal was replayed whole). */
  private restoredParts: Record<string, unknown> = {};
  /** Where open's replay started in each month file when it started from a checkpoint. */
  private tailOffsets: ReadonlyMap<string, number> | undefined;
  /** Zone changes, one after the other (setTimeZone). */
  private rezoned: Promise<boolean> = Promise.resolve(false);
  /** While setTimeZone reads the journal: the new zone's rollups, and the calls settled meanwhile (counted in them live). */
  private rezoning: { timeZone: string; days: Rollups; live: Set<string> } | undefined;
  /** Settle lines being appended: perhaps in the journal already, not applied yet (they count when applied). */
  private readonly appending = new Set<string>();

  private constructor(
    readonly journal: Journal,
    private state: StateStore,
    private readonly now: () => Date,
    private zone: string,
    private readonly recentLimit: number,
    /** The per-user secret of this ledger folder (server/ledger/secret.ts). */
    readonly secret: GatewaySecret,
  ) {}

  static async open(dir: string, opts: LedgerOptions = {}): Promise<Ledger> {
    await repairLedgerModes(dir);
    const now = opts.now ?? (() => new Date());
    const timeZone = opts.timeZone ?? "UTC";
    const secret = await GatewaySecret.load(dir);
    const journal = await Journal.open(dir, opts.durability ? { durability: opts.durability } : {});
    let ledger: Ledger | undefined;
    const state = await StateStore.open(dir, {
      timeZone,
      ...(opts.stateDebounceMs !== undefined ? { debounceMs: opts.stateDebounceMs } : {}),
      stamp: (data) => ledger?.stamp(data),
    });
    ledger = new Ledger(journal, state, now, timeZone, opts.recentLimit ?? 1000, secret);
    await ledger.replay();
    return ledger;
  }

  /** Journaled (durability: journal.ts) before it resolves; the caller forwards the call only after. */
  async reserve(entry: ReserveEntry): Promise<void> {
    void this.retryUnwritten(); // queued first: shares the journal's next batch with this entry
    this.open.set(entry.id, entry); // before the write, so a state snapshot taken meanwhile scans far enough back
    let pos: JournalPosition;
    try {
      pos = await this.journal.append(entry);
    } catch (err) {
      this.open.delete(entry.id);
      throw err;
    }
    if (this.open.has(entry.id)) this.reservedCovered.add(entry.id);
    this.cover(pos);
  }

  /**
   * A running call's reservation grew (a stream that outgrew its worst case): journaled as another
   * reserve line of the call, so that a crash charges the larger amount (a replay keeps a call's
   * last reserve line). Nothing once its settle is under way or done: a reserve line after the
   * settle would reopen the call and charge it again on the next start.
   */
  async raiseReservation(id: string, worstCasePicos: bigint): Promise<void> {
    const open = this.open.get(id);
    if (!open || this.appending.has(id) || BigInt(open.worstCasePicos) >= worstCasePicos) return;
    const raised: ReserveEntry = { ...open, worstCasePicos: String(worstCasePicos) };
    this.open.set(id, raised);
    let pos: JournalPosition;
    try {
      pos = await this.journal.append(raised);
    } catch (err) {
      if (this.open.get(id) === raised) this.open.set(id, open); // the journal still holds the last amount written
      throw err;
    }
    this.cover(pos);
  }

  /**
   * Whether `id`'s settle line is being journaled: it may be in the file already (under "machine",
   * written and awaiting its fdatasync), and the checkpoint parts hear of it once it is done. A
   * reader of the journal meanwhile skips it, or counts it twice.
   */
  isBeingJournaled(id: string): boolean {
    return this.appending.has(id);
  }

  /** Journaled (durability: journal.ts) before it resolves; then rollups and recent calls include it. */
  async settle(record: CallRecord): Promise<void> {
    void this.retryUnwritten();
    this.appending.add(record.id);
    let pos: JournalPosition;
    try {
      pos = await this.journal.append(record);
    } finally {
      this.appending.delete(record.id); // in the turn it is applied (below) or left unwritten
    }
    this.settled(record);
    this.cover(pos);
  }

  /**
   * Settles a call that holds a journaled reservation. When the journal cannot take the record
   * now, it is kept and written as soon as the journal can (before the next append, or at close),
   * then `written` runs; the reservation stays open until then, and the error is rethrown. A
   * gateway that dies first charges the call its worst case on the next start (see replay).
   * `written` must not throw (it runs in a retry nobody awaits).
   */
  async settleReserved(record: CallRecord, written: (record: CallRecord) => void): Promise<void> {
    try {
      await this.settle(record);
    } catch (err) {
      if (!this.unwritten.has(record.id)) this.unwritten.set(record.id, { record, written, writing: false });
      throw err;
    }
  }

  /** Settlements waiting for the journal to be writable again. */
  unwrittenSettlements(): number {
    return this.unwritten.size;
  }

  /**
   * Settled calls with `at` >= since, oldest first: the engine's start-up replay. Pass
   * `at: new Date(record.startedAt)` to recordSpent so a call that settled after a window rolled
   * is charged to the window it reserved in, as the live engine does.
   */
  settledSince(since: Date): AsyncIterable<CallRecord> {
    return this.settledSinceOffsets(since, new Map()); // no offsets: every file from its start
  }

  /**
   * Settled calls with `at` >= since that are past the checkpoint open started from, oldest first
   * (every one when there was none): with a CheckpointPart's restored snapshot, what a full replay gives.
   */
  settledSinceCheckpoint(since: Date): AsyncIterable<CallRecord> {
    const offsets = this.tailOffsets;
    return this.settledSinceOffsets(since, offsets ?? new Map());
  }

  /**
   * Where each month file's applied lines end now, with the last one's text: every line before
   * these positions is written and applied. A reader that keeps them can later read only past them
   * (settledSinceOffsets), once lineEndingAt shows each file still holds that line there.
   */
  appliedEnds(): Map<string, { end: number; line: string }> {
    return new Map(this.covered);
  }

  /** The line of `month`'s journal file that ends at byte `end`, if the file still has one there. */
  lineEndingAt(month: string, end: number): Promise<string | undefined> {
    return this.journal.lineEndingAt(month, end);
  }

  /** Settled calls with `at` >= since in the lines past `offsets` (a month file it does not name: all of it), oldest first. */
  async *settledSinceOffsets(since: Date, offsets: ReadonlyMap<string, number>): AsyncIterable<CallRecord> {
    for await (const batch of this.journal.readBatches({ since, settlesOnly: true, offsets })) for (const e of batch) if (e.type === "settle") yield e;
  }

  /** Whether open started from a checkpoint; false when it replayed the journal whole (settledSinceCheckpoint then reads it all). */
  get fromCheckpoint(): boolean {
    return this.tailOffsets !== undefined;
  }

  /** The snapshot `name` took in the checkpoint this open started from; undefined when open replayed the journal whole. */
  checkpointPart(name: string): unknown {
    return this.restoredParts[name];
  }

  /**
   * Keeps `part` in every checkpoint from now on. Its snapshot must be exact for the journal as
   * applied so far (register it before any call is recorded after open).
   */
  addCheckpointPart(name: string, part: CheckpointPart): void {
    this.parts.set(name, part);
    this.state.markDirty();
  }

  /** Tells `watch` of each settle as it is applied, in the turn the checkpoint parts count it. */
  onSettled(watch: (record: CallRecord) => void): void {
    this.settleWatchers.push(watch);
  }

  /** Alias of settledSince. */
  history(since: Date): AsyncIterable<CallRecord> {
    return this.settledSince(since);
  }

  /** Settled calls newest first; pass `next` back as `before` for the following page. */
  async recentCalls(q: RecentCallsQuery): Promise<{ calls: CallRecord[]; next?: string }> {
    const out: CallRecord[] = [];
    const matches = (c: CallRecord) => (q.model === undefined || callUnderModel(c, q.model)) && (q.outcome === undefined || c.outcome === q.outcome);
    let started = q.before === undefined;
    const take = (c: CallRecord): boolean => {
      if (!started) {
        started = c.id === q.before;
        return false;
      }
      if (matches(c)) out.push(c);
      return out.length > q.limit; // one extra tells whether there is a next page
    };
    let done = false;
    for (let i = this.recent.length - 1; i >= 0 && !done; i--) done = take(this.recent[i]!);
    if (!done && !this.recentComplete) {
      // Continue in the journal, past the oldest call held in memory, or past `before` when memory
      // does not hold it. Its month is found without parsing the journal (an unknown id reads no
      // entry and answers an empty page); months newer than it are not read, and of each month
      // read only the page's newest calls are kept, so memory stays at a page.
      const cut = started ? this.recent[0]?.id : q.before;
      const months = await this.journal.months();
      let from = months.length - 1;
      if (cut !== undefined) {
        const month = await this.journal.monthOfSettle(cut);
        from = month === undefined ? -1 : months.indexOf(month);
        started = true; // the calls older than the cut are taken (take's own lookup is done)
      }
      for (let m = from; m >= 0 && !done; m--) {
        const need = q.limit + 1 - out.length;
        const ring: CallRecord[] = [];
        let next = 0;
        const keep = (c: CallRecord) => {
          if (ring.length < need) ring.push(c);
          else ring[next] = c;
          next = (next + 1) % need;
        };
        const newestFirst = () => [...ring.slice(next), ...ring.slice(0, next)].reverse();
        // In the cut's month only the calls before it count (before its newest copy, as paging backwards would find it).
        let beforeCut: CallRecord[] | undefined;
        for await (const e of this.journal.readMonth(months[m]!, undefined, 0, true)) {
          if (e.type !== "settle") continue;
          if (m === from && e.id === cut) beforeCut = newestFirst();
          if (matches(e)) keep(e);
        }
        for (const c of m === from && cut !== undefined ? (beforeCut ?? []) : newestFirst()) {
          out.push(c);
          if (out.length > q.limit) {
            done = true;
            break;
          }
        }
      }
    }
    const calls = out.slice(0, q.limit);
    return out.length > q.limit ? { calls, next: calls[calls.length - 1]!.id } : { calls };
  }

  /** Daily rollups by base model (day keys in the ledger's time zone). Do not mutate. */
  rollups(): Readonly<Rollups> {
    return this.state.data.days;
  }

  /** Forwarded calls and their cost on `now`'s day in the ledger's time zone, in all and per base model. */
  todayTotals(now: Date): { calls: number; costPicos: Picos; byModel: Record<string, { calls: number; costPicos: Picos }> } {
    let calls = 0;
    let costPicos = 0n;
    const byModel: Record<string, { calls: number; costPicos: Picos }> = {};
    for (const [model, r] of Object.entries(this.state.data.days[localDateKey(now, this.timeZone)] ?? {})) {
      calls += r.calls;
      costPicos += BigInt(r.costPicos);
      byModel[model] = { calls: r.calls, costPicos: BigInt(r.costPicos) };
    }
    return { calls, costPicos, byModel };
  }

  /** Zone of the rollups' day keys and of report months. */
  get timeZone(): string {
    return this.zone;
  }

  /**
   * Moves the rollups' day keys (today's totals) and report months to another zone while the
   * ledger is open, as an open in that zone would: the journal is read whole into the new zone's
   * days while calls settled meanwhile go to both (each counted once), then the new days replace
   * the old in one turn, so today's totals are never partial. Until then the old zone's stand.
   * Resolves to whether the zone changed.
   */
  setTimeZone(timeZone: string): Promise<boolean> {
    const next = this.rezoned.catch(() => false).then(() => this.rezone(timeZone));
    this.rezoned = next;
    return next;
  }

  private async rezone(timeZone: string): Promise<boolean> {
    if (timeZone === this.zone) return false;
    const r = (this.rezoning = { timeZone, days: {}, live: new Set<string>() });
    try {
      // Lines that are not valid entries were set aside on open; one torn since is left to the next open.
      for await (const e of this.journal.read({ settlesOnly: true, onBad: () => undefined })) {
        // Settled since the reading began, or about to be: applying it counts it (in these days, or in the days they become).
        if (e.type !== "settle" || r.live.has(e.id) || this.appending.has(e.id)) continue;
        addToRollups(r.days, localDateKey(new Date(e.at), timeZone), e);
      }
    } finally {
      this.rezoning = undefined;
    }
    this.zone = timeZone;
    this.state.replaceDays(timeZone, r.days);
    this.state.markDirty();
    return true;
  }

  /** Settled calls whose settlement falls in `month` ("YYYY-MM", ledger's time zone), in journal order. */
  async report(month: string): Promise<CallRecord[]> {
    return callsOfMonth(this.journal, month, this.timeZone);
  }


  /** Reservations journaled but not yet settled. */
  openReservations(): ReserveEntry[] {
    return [...this.open.values()];
  }

  async close(): Promise<void> {
    await this.rezoned.catch(() => undefined); // a zone change reading the journal ends first
    await this.retryUnwritten(); // still failing: the reserve lines charge them at the worst case on the next start
    await this.journal.close();
    // state.json is a cache: when it cannot be written (a full disk) the next open replays the journal from the older snapshot.
    await this.state.close().catch(() => undefined);
  }

  private settled(record: CallRecord): void {
    this.open.delete(record.id);
    this.reservedCovered.delete(record.id);
    this.apply(record);
    for (const part of this.parts.values()) part.settled(record);
    for (const watch of this.settleWatchers) watch(record);
    this.state.markDirty();
  }

  /** Journal lines are applied in file order, so the applied prefix of a file ends at the latest line applied. */
  private cover(pos: JournalPosition): void {
    this.covered.set(pos.month, { end: pos.end, line: pos.line });
  }

  /** Appends the settlements the journal refused before; resolves once each was tried. */
  private async retryUnwritten(): Promise<void> {
    if (this.unwritten.size === 0) return; // the usual case, on every reserve and settle
    const tries: Promise<void>[] = [];
    for (const u of this.unwritten.values()) {
      if (u.writing) continue;
      u.writing = true;
      this.appending.add(u.record.id);
      tries.push(
        this.journal.append(u.record).then(
          (pos) => {
            this.appending.delete(u.record.id);
            this.unwritten.delete(u.record.id);
            this.settled(u.record);
            this.cover(pos);
            u.written(u.record);
          },
          () => {
            this.appending.delete(u.record.id);
            u.writing = false; // still not writable: kept for the next try
          },
        ),
      );
    }
    await Promise.all(tries);
  }

  private apply(record: CallRecord): void {
    this.state.addCall(localDateKey(new Date(record.at), this.timeZone), record);
    const r = this.rezoning;
    // Settled while a zone change reads the journal: counted in the new zone's days too (the reading leaves it out).
    if (r) {
      r.live.add(record.id);
      addToRollups(r.days, localDateKey(new Date(record.at), r.timeZone), record);
    }
    this.remember(record);
  }

  /** Keeps a call in the recent list, a cache in front of the journal (recentCalls reads on past its oldest call). */
  private remember(record: CallRecord): void {
    const ring = this.replayRing;
    if (ring) {
      // Stryker disable next-line all: the recent list is a cache in front of the journal (see above).
      if (ring.calls.length < this.recentLimit) ring.calls.push(record);
      else ring.calls[ring.next] = record;
      ring.next = (ring.next + 1) % this.recentLimit;
      ring.count++;
      return;
    }
    this.recent.push(record);
    if (this.recent.length > this.recentLimit * 2) {
      // Trim in bulk so pushes stay amortised O(1).
      this.recent = this.recent.slice(-this.recentLimit);
      this.recentComplete = false;
    }
  }

  private stamp(data: StateData): void {
    const now = this.now();
    data.savedAt = now.toISOString();
    let from = journalMonth(now);
    for (const r of this.open.values()) {
      const m = journalMonth(r.at);
      if (m < from) from = m;
    }
    data.openReservesFrom = from;
    if (!this.checkpointReady) {
      delete data.checkpoint;
      return;
    }
    data.checkpoint = {
      months: Object.fromEntries(this.covered),
      open: [...this.open.values()].filter((r) => this.reservedCovered.has(r.id)),
      parts: Object.fromEntries([...this.parts].map(([name, part]) => [name, part.snapshot()])),
    };
  }

  /**
   * The checkpoint state.json names, when every month file it covers still holds, at its offset,
   * the line it recorded (not cut short, replaced or rotated) and its open reservations are valid;
   * else undefined: the journal is replayed as without one.
   */
  private async usableCheckpoint(): Promise<{ offsets: Map<string, number>; open: ReserveEntry[]; parts: Record<string, unknown> } | undefined> {
    const cp = this.state.data.checkpoint;
    if (!cp) return undefined;
    const open: ReserveEntry[] = [];
    for (const r of cp.open) {
      const checked = checkEntry(r);
      if (!checked.ok || checked.entry.type !== "reserve") return undefined;
      open.push(checked.entry);
    }
    const offsets = new Map<string, number>();
    for (const [month, { end, line }] of Object.entries(cp.months)) {
      if (!(await this.journal.endsWith(month, end, line))) return undefined;
      offsets.set(month, end);
    }
    // A month file it does not name, older than one it does (an archived month put back): a
    // reserve there may be settled in lines the checkpoint covers, and read alone would be charged again.
    const named = [...offsets.keys()];
    // Stryker disable next-line EqualityOperator: m is not named, so no named month equals it.
    if ((await this.journal.months()).some((m) => !offsets.has(m) && named.some((n) => n > m))) return undefined;
    return { offsets, open, parts: cp.parts };
  }

  /**
   * Reads the journal from where state.json's snapshot may be behind (everything when state.json
   * was unusable): re-applies rollups of days the snapshot may have missed, fills recent calls, and
   * settles orphaned reserves as interrupted.
   */
  private async replay(): Promise<void> {
    const savedAt = Date.parse(this.state.data.savedAt);
    // Stryker disable next-line ConditionalExpression,LogicalOperator: a state not loaded "ok" is fresh, without a savedAt, and one loaded "ok" always has one, so either test alone decides; both say why.
    let usable = this.state.loaded === "ok" && Number.isFinite(savedAt);
    const checkpoint = usable ? await this.usableCheckpoint() : undefined;
    // A checkpoint the journal no longer matches (cut short, replaced): its rollups may count lines that are gone.
    if (!checkpoint && this.state.data.checkpoint) usable = false;
    // Stryker disable next-line all: the ring only fills the recent calls' cache (see remember); with recentLimit 0 there is none to fill.
    this.replayRing = this.recentLimit > 0 ? { calls: [], next: 0, count: 0 } : undefined;
    const read = checkpoint ? await this.replayTail(checkpoint) : await this.replayFrom(usable, savedAt);
    this.endReplayRing();
    const { unknown, salvaged } = await this.salvageBad(read);
    const orphans = [...this.open.values()].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    for (const r of orphans) await this.settle(interrupted(r, this.now(), salvaged.get(r.id)));
    // Only now, with what they are charged journaled: a start that dies before finds the bad lines
    // again, and the settles of their ids (salvageBad) say they are counted.
    await this.moveAside(read, unknown);
    // Stryker disable all: the recent list is a cache in front of the journal (see remember); how much of it is kept changes memory only.
    if (this.recent.length > this.recentLimit) {
      this.recent = this.recent.slice(-this.recentLimit);
      this.recentComplete = false;
    }
    // Stryker restore all
    // Nothing appends while opening: the whole journal is applied now, and every orphan is settled,
    // so no reservation is open at the offsets.
    this.covered = await this.journal.ends();
    this.checkpointReady = true;
    await this.state.flush(); // persists a rebuild and moves savedAt forward
  }

  /** Moves the replay's ring, oldest first, to the front of the recent list. */
  private endReplayRing(): void {
    const ring = this.replayRing;
    if (!ring) return;
    this.replayRing = undefined;
    // Oldest first: the slots from `next` on were written before those ahead of it (none while the ring is not full).
    // Stryker disable next-line all: a cache in front of the journal (see remember), cut to its newest recentLimit calls by open() right after.
    const calls = [...ring.calls.slice(ring.next), ...ring.calls.slice(0, ring.next)];
    this.recent = [...calls, ...this.recent];
    // Stryker disable next-line all: the recent list is a cache in front of the journal (see remember).
    if (ring.count > ring.calls.length) this.recentComplete = false;
  }

  /** From a checkpoint: its rollups and open reservations are exact up to its offsets; only the lines past them are applied. */
  private async replayTail(checkpoint: { offsets: Map<string, number>; open: ReserveEntry[]; parts: Record<string, unknown> }): Promise<ReplayRead> {
    for (const r of checkpoint.open) this.open.set(r.id, r);
    this.restoredParts = checkpoint.parts;
    this.tailOffsets = checkpoint.offsets;
    this.recentComplete = false; // earlier calls are before the offsets
    const bad: BadLine[] = [];
    for await (const e of this.journal.read({ offsets: checkpoint.offsets, onBad: (b) => bad.push(b) })) {
      if (e.type === "reserve") {
        this.open.set(e.id, e);
        continue;
      }
      this.open.delete(e.id);
      this.apply(e);
    }
    return { bad, offsets: checkpoint.offsets };
  }

  /** Without a usable checkpoint: from where the snapshot of savedAt may be behind, or everything. */
  private async replayFrom(usable: boolean, savedAt: number): Promise<ReplayRead> {
    let fromMonth: string | undefined;
    let cutoffDay = "";
    if (usable) {
      // Settles are journaled within moments of their `at`; a day's margin covers the debounce and clock skew.
      cutoffDay = localDateKey(new Date(savedAt - DAY), this.timeZone);
      const scanFrom = journalMonth(new Date(savedAt - 2 * DAY));
      // Stryker disable next-line EqualityOperator: of two equal months either is the earlier.
      fromMonth = this.state.data.openReservesFrom < scanFrom ? this.state.data.openReservesFrom : scanFrom;
      this.state.dropDaysFrom(cutoffDay);
      this.recentComplete = false; // earlier calls may be in months not scanned
    } else {
      this.state.data.days = {};
    }
    const bad: BadLine[] = [];
    for await (const e of this.journal.read({ fromMonth, onBad: (b) => bad.push(b) })) {
      if (e.type === "reserve") {
        this.open.set(e.id, e);
        continue;
      }
      this.open.delete(e.id);
      if (localDateKey(new Date(e.at), this.timeZone) < cutoffDay) {
        // Stryker disable next-line all: the recent list is a cache in front of the journal (see remember).
        this.remember(e); // already in the snapshot's rollups
        continue;
      }
      this.apply(e);
    }
    // Stryker disable next-line all: fromMonth only narrows salvageBad's lookup of settles (see there).
    return { bad, ...(fromMonth !== undefined ? { fromMonth } : {}) };
  }

  /**
   * Accounts for the invalid lines open read, before they are moved aside, so that spend is never
   * lower than if they had been read: a bad line is accounted for when its reservation is open
   * (charged its worst case as interrupted), when a valid settle of its call exists, or when an
   * amount can be read from it (then it becomes an open reservation of that amount, charged as
   * interrupted). Returns the lines whose amount is unknown (they go to the `.bad-unknown-amount`
   * side file, which the status reports loudly) and the open reservations made from bad lines,
   * with what their interrupted settle carries beyond a reservation.
   */
  private async salvageBad(read: ReplayRead): Promise<{ unknown: Set<string>; salvaged: Map<string, { answeredBy?: string }> }> {
    const unknown = new Set<string>();
    const salvaged = new Map<string, { answeredBy?: string }>();
    // Stryker disable next-line ConditionalExpression,EqualityOperator: with no bad line every step below does nothing; this only skips them.
    if (read.bad.length === 0) return { unknown, salvaged };
    const seen = new Map<string, number>();
    const lines = read.bad.map((b) => {
      const found = salvage(b.text);
      const copyOf = `${b.month}\n${b.text}`;
      const nth = seen.get(copyOf) ?? 0;
      // Stryker disable next-line ArithmeticOperator: any step gives each copy of a text its own number.
      seen.set(copyOf, nth + 1);
      // A line naming no id is given one from its month, text and which copy of that text it is:
      // the same on the next start while the line is still there, so its settle is found (below).
      const key = found.id ?? `quarantined-${createHash("sha256").update(`${b.month}\n${nth}\n${b.text}`).digest("hex").slice(0, 32)}`;
      return { ...b, ...found, key };
    });
    // Which calls a valid settle already counts (before or after the bad line, or journaled for it
    // by a start that died before moving it aside). A reserve line of the call would have made it
    // open, so only settles are read, and only in the months replayed.
    // Stryker disable all: narrowing this lookup only saves reads (a call that is open is not looked up below; a valid reserve of a call not open has a valid settle); widening it finds the same settles.
    const uncounted = new Set(lines.filter((b) => !this.open.has(b.key)).map((b) => b.key));
    if (uncounted.size > 0) {
      for await (const e of this.journal.read(read.fromMonth === undefined ? { settlesOnly: true } : { fromMonth: read.fromMonth, settlesOnly: true })) uncounted.delete(e.id);
    }
    // Stryker restore all
    for (const b of lines) {
      const open = this.open.get(b.key);
      if (open) {
        // Its reservation is open (journaled, or made from another invalid line of the same call):
        // charged as interrupted, at the larger of the amounts.
        // Stryker disable next-line EqualityOperator: raising to an equal amount changes nothing.
        if (b.amount !== undefined && b.amount > BigInt(open.worstCasePicos)) this.open.set(open.id, { ...open, worstCasePicos: String(b.amount) });
        continue;
      }
      if (!uncounted.has(b.key)) continue;
      if (b.amount === undefined) {
        unknown.add(b.text);
        continue;
      }
      this.open.set(b.key, {
        type: "reserve",
        id: b.key,
        at: b.at ?? this.now().toISOString(),
        user: b.user ?? "(unreadable)",
        tool: b.tool ?? "(unreadable)",
        operation: b.operation ?? "InvokeModel",
        modelId: b.modelId ?? "(unreadable)",
        ...(b.baseModelId ? { baseModelId: b.baseModelId } : {}),
        worstCasePicos: String(b.amount),
        // Stryker disable next-line ArrayDeclaration: an interrupted call's record never reads its reservation's cap ids.
        capIds: [],
        // Who made it and its tags: it counts against the caller- and tag-scoped caps it did.
        ...(b.caller ? { caller: b.caller } : {}),
        ...(b.callerProfile ? { callerProfile: b.callerProfile } : {}),
        ...(b.tags ? { tags: b.tags } : {}),
      });
      salvaged.set(b.key, b.answeredBy ? { answeredBy: b.answeredBy } : {});
    }
    return { unknown, salvaged };
  }

  /**
   * Moves the invalid lines open read aside, leaving each checkpointed month's lines before the
   * checkpoint's offset as they are (their rollups are in the checkpoint; its offsets stay true).
   */
  private async moveAside(read: ReplayRead, unknown: Set<string>): Promise<void> {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: with no bad line there is no month to rewrite.
    if (read.bad.length === 0) return;
    await this.journal.releaseFiles(); // the orphans' settles were just appended
    for (const month of [...new Set(read.bad.map((b) => b.month))]) {
      await this.journal.quarantineMonth(month, (text) => (unknown.has(text) ? "bad-unknown-amount" : "bad"), read.offsets?.get(month) ?? 0);
    }
  }
}

/** What open's replay read: its invalid lines, and where it started (a checkpoint's offsets, or a first month). */
interface ReplayRead {
  bad: BadLine[];
  fromMonth?: string;
  offsets?: ReadonlyMap<string, number>;
}

const OPERATIONS: Operation[] = ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "CountTokens", "ApplyGuardrail"];

/** What can still be read from an invalid line: its id, the largest amount it names, and labels. */
interface Salvage {
  id?: string;
  amount?: bigint;
  at?: string;
  user?: string;
  tool?: string;
  operation?: Operation;
  modelId?: string;
  baseModelId?: string;
  answeredBy?: string;
  caller?: string;
  callerProfile?: string;
  tags?: Record<string, string>;
}

function salvage(text: string): Salvage {
  let value: unknown;
  // Stryker disable next-line BlockStatement: an empty catch leaves `value` undefined, which the next check turns away all the same.
  try { value = JSON.parse(text); } catch { return {}; }
  // Stryker disable next-line ConditionalExpression: a number or string has none of the fields read below either.
  if (!value || typeof value !== "object" || Array.isArray(value)) return {};
  const v = value as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === "string" ? x : undefined); // an empty one is dropped below, as falsy
  const picos = (x: unknown): bigint | undefined =>
    isPicosText(x) ? BigInt(x) : typeof x === "number" && Number.isSafeInteger(x) && x >= 0 ? BigInt(x) : undefined;
  const amounts = [picos(v.costPicos), picos(v.worstCasePicos)].filter((a): a is bigint => a !== undefined);
  const at = [v.startedAt, v.at].find((t) => typeof t === "string" && Number.isFinite(Date.parse(t))) as string | undefined;
  return {
    ...(str(v.id) ? { id: str(v.id) } : {}),
    // Stryker disable next-line EqualityOperator: of two equal amounts either is the larger.
    ...(amounts.length ? { amount: amounts.reduce((a, b) => (a > b ? a : b)) } : {}),
    ...(at ? { at: new Date(at).toISOString() } : {}),
    ...(str(v.user) ? { user: str(v.user) } : {}),
    ...(str(v.tool) ? { tool: str(v.tool) } : {}),
    ...(OPERATIONS.includes(v.operation as Operation) ? { operation: v.operation as Operation } : {}),
    ...(str(v.modelId) ? { modelId: str(v.modelId) } : {}),
    ...(str(v.baseModelId) ? { baseModelId: str(v.baseModelId) } : {}),
    ...(str(v.answeredBy) ? { answeredBy: str(v.answeredBy) } : {}),
    ...(str(v.caller) ? { caller: str(v.caller) } : {}),
    ...(str(v.callerProfile) ? { callerProfile: str(v.callerProfile) } : {}),
    ...salvageTags(v.tags),
  };
}

/** The tags of an invalid line whose values are strings (a tag-scoped cap matches on them). */
function salvageTags(tags: unknown): { tags?: Record<string, string> } {
  if (!tags || typeof tags !== "object" || Array.isArray(tags)) return {};
  const kept = Object.entries(tags).filter((e): e is [string, string] => typeof e[1] === "string");
  return kept.length ? { tags: Object.fromEntries(kept) } : {};
}

/** `salvaged`: what a quarantined line's call carries beyond its reservation (undefined for a reservation the journal holds). */
function interrupted(r: ReserveEntry, now: Date, salvaged: { answeredBy?: string } | undefined): CallRecord {
  return {
    type: "settle",
    id: r.id,
    at: now.toISOString(),
    startedAt: r.at,
    user: r.user,
    tool: r.tool,
    operation: r.operation,
    modelId: r.modelId,
    baseModelId: r.baseModelId ?? r.modelId,
    usage: { ...ZERO_USAGE },
    usageEstimated: true,
    costPicos: r.worstCasePicos,
    worstCasePicos: r.worstCasePicos,
    outcome: "interrupted",
    status: 0, // no response is known to have reached the caller
    latencyMs: 0,
    tags: r.tags ?? {},
    ...(r.caller !== undefined ? { caller: r.caller } : {}),
    ...(r.callerProfile !== undefined ? { callerProfile: r.callerProfile } : {}),
    ...(salvaged?.answeredBy !== undefined ? { answeredBy: salvaged.answeredBy } : {}),
    message: salvaged
      ? "its journal line was invalid and was moved aside; charged the largest amount it named"
      : "the gateway stopped before this call settled; charged its worst case",
  };
}
