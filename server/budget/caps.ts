/**
 * Every cap a call must pass, personal and team, behind one object: this machine's engine and the
 * team's shared store (a folder or Redis) implement one store interface, and `Caps` reserves on
 * all of them or none, grows, settles and releases a call's hold, reports each figure with its
 * source and freshness, and replays the journal into the local engine.
 */
import type { Picos } from "../metering/money";
import type { CallSubject } from "./capMatch";
import { refusalMessage, type BudgetEngine, type CapStatus, type Refusal } from "./engine";
import { readOne, type SettledReader } from "./historyPass";
import { replayedSpend, type SettledCall } from "./replay";

/** Where a cap's figures live: this machine's engine, or a team store. */
export type CapSource = "local" | "folder" | "redis";

export interface Freshness {
  source: Exclude<CapSource, "local">;
  /** When the figures were last read from the shared store (ISO). */
  asOf: string;
  /** True when the store could not be read recently (the figures may be behind). */
  stale: boolean;
}

/** A cap's figures now; `team` says where a shared figure came from and how fresh it is (local figures are live). */
export interface CapFigure extends CapStatus {
  team?: Freshness;
}

/** A reservation on one store: the call's subject (which caps apply) and its amount. */
export interface StoreReserveRequest extends CallSubject {
  callId: string;
  /** The caps of this store that apply (see CapStore.applicable). */
  capIds: string[];
  amount: Picos;
  now: Date;
}

export type StoreReserveResult =
  | { ok: true; capIds: string[]; /** Admitted without the store (teamUnavailable: personalOnly). */ unchecked?: boolean }
  | { ok: false; message: string; capId: string; refusal?: Refusal };

export type GrowResult = { ok: true } | { ok: false; message: string };

/** One place caps are kept. Calls on a store never throw except `reserve` (a store that cannot answer). */
export interface CapStore {
  readonly source: CapSource;
  /** Ids of this store's caps that apply to a call. */
  applicable(subject: CallSubject): string[];
  /** Reserves `amount` on `capIds` in the windows containing `now`, or refuses. */
  reserve(req: StoreReserveRequest): Promise<StoreReserveResult>;
  /** A stream outgrew its reservation. */
  extend(callId: string, extra: Picos, now: Date): Promise<GrowResult>;
  /** The call was journaled as settled: book it (also a call this store does not hold). */
  settle(record: SettledCall): Promise<void>;
  /** Drops a hold without charging. */
  release(callId: string): Promise<void>;
  status(now: Date): CapFigure[];
}

/** The personal caps: this machine's BudgetEngine, synchronous, so a reserve is atomic on it. */
export class LocalCapStore implements CapStore {
  readonly source = "local" as const;

  constructor(readonly engine: BudgetEngine, private readonly timeZone: () => string, readonly now: () => Date) {}

  applicable(subject: CallSubject): string[] {
    return this.engine.applicableCaps(subject);
  }

  reserve(req: StoreReserveRequest): Promise<StoreReserveResult> {
    return Promise.resolve(this.reserveNow(req));
  }

  /** The synchronous reserve: checked and booked in one turn of the event loop. */
  reserveNow(req: Omit<StoreReserveRequest, "capIds">): StoreReserveResult {
    const { capIds: _ignored, ...request } = req as StoreReserveRequest;
    const r = this.engine.reserve(request);
    return r.ok ? r : { ok: false, capId: r.refusal.capId, refusal: r.refusal, message: refusalMessage(r.refusal, this.timeZone()) };
  }

  extend(callId: string, extra: Picos, now: Date): Promise<GrowResult> {
    return Promise.resolve(this.extendNow(callId, extra, now));
  }

  extendNow(callId: string, extra: Picos, now: Date): GrowResult {
    const r = this.engine.extend(callId, extra, now);
    return r.ok ? { ok: true } : { ok: false, message: refusalMessage(r.refusal, this.timeZone()) };
  }

  async settle(record: SettledCall): Promise<void> {
    this.engine.settle(record.id, BigInt(record.costPicos), this.now());
  }

  async release(callId: string): Promise<void> {
    this.engine.release(callId);
  }

  status(now: Date): CapFigure[] {
    return this.engine.status(now);
  }
}

/** A call's hold: which team store holds it (none when admitted unchecked or no team cap applies). */
export interface CapHold {
  capIds: string[];
  team?: CapStore;
}

export class Caps {
  constructor(
    readonly local: LocalCapStore,
    /** The team store (absent without a team ledger); swapped when the team ledger changes. */
    public team?: CapStore,
  ) {}

  /** Ids of every cap (personal, then team) that applies to a call. */
  applicable(subject: CallSubject): string[] {
    return [...this.local.applicable(subject), ...(this.team ? this.team.applicable(subject) : [])];
  }

  /**
   * Reserves `amount` on every cap that applies: the personal caps first (sync, atomic), then the
   * team caps (async, shared). All or nothing: a refusal by either (or a store that throws)
   * releases the other.
   */
  async reserve(req: Omit<StoreReserveRequest, "capIds">): Promise<({ ok: true } & CapHold) | { ok: false; message: string; capId: string }> {
    const local = this.local.reserveNow(req);
    if (!local.ok) return local;
    const team = this.team;
    // Stryker disable next-line ArrayDeclaration: without a team store the next line returns before reading it.
    const teamCaps = team ? team.applicable(req) : [];
    if (!team || teamCaps.length === 0) return { ok: true, capIds: local.capIds };
    let t: StoreReserveResult;
    try {
      t = await team.reserve({ ...req, capIds: teamCaps });
    } catch (err) {
      this.local.engine.release(req.callId);
      throw err;
    }
    if (!t.ok) {
      this.local.engine.release(req.callId);
      return t;
    }
    return { ok: true, capIds: [...local.capIds, ...teamCaps], ...(t.unchecked ? {} : { team }) };
  }

  /**
   * Grows a hold: decided now on the personal caps; the team store answers asynchronously, and
   * `onTeamRefusal` hears if it refuses (the caller cuts the stream at its next frame).
   */
  grow(callId: string, hold: CapHold, extra: Picos, now: Date, onTeamRefusal: (message: string) => void): GrowResult {
    const r = this.local.extendNow(callId, extra, now);
    if (!r.ok) return r;
    if (hold.team) void hold.team.extend(callId, extra, now).then((t) => {
      if (!t.ok) onTeamRefusal(t.message);
    });
    return r;
  }

  /** Books a journaled call everywhere: the local hold, and the team store (also calls admitted unchecked). */
  settle(record: SettledCall, hold?: CapHold): void {
    void this.local.settle(record);
    // Held on a store since replaced (teamLedger, team or teamUnavailable edited while it ran): that
    // store is closed, and the one in force replayed the journal before this call's line, so the
    // call is booked there (stores count calls they do not hold) and the old hold dropped.
    if (hold?.team && hold.team !== this.team) void hold.team.release(record.id);
    // Never throws; a call the team store cannot book now is replayed from the journal when it is back.
    void this.team?.settle(record);
  }

  /** Drops a hold without charging (the call was never forwarded). */
  release(callId: string, hold?: CapHold): void {
    this.local.engine.release(callId);
    if (hold?.team) void hold.team.release(callId);
  }

  /** Every cap's figures: personal first, then team (each with its source and freshness). */
  status(now: Date): CapFigure[] {
    return [...this.local.status(now), ...(this.team ? this.team.status(now) : [])];
  }

  /**
   * Counts the journal's settled calls of the current windows against the personal caps, charged
   * to the window each call reserved in (as live). `only` limits it to caps that are new; `counted`
   * names calls it leaves out (they count live: see BudgetEngine.setCaps).
   * Team stores replay on their own (they know what the shared store already holds).
   */
  async replay(journal: (since: Date) => AsyncIterable<SettledCall>, only?: ReadonlySet<string>, counted?: ReadonlySet<string>): Promise<void> {
    const reader = this.replayReader(only, counted);
    if (reader) await readOne(journal, reader);
  }

  /** The replay as a reader of open's one pass over the journal (historyPass); none when no cap is to be counted. */
  replayReader(only?: ReadonlySet<string>, counted?: ReadonlySet<string>): SettledReader | undefined {
    const engine = this.local.engine;
    const starts = engine
      .status(this.local.now())
      .filter((s) => !only || only.has(s.id))
      .map((s) => s.windowStart);
    // Stryker disable next-line EqualityOperator: of two equal dates either is the earliest.
    const since = starts.reduce<Date | undefined>((a, b) => (a && a < b ? a : b), undefined);
    if (!since) return undefined;
    const applicable = (call: SettledCall) => engine.applicableCaps(call).filter((id) => !only || only.has(id));
    return {
      since,
      settled: (call) => {
        if (counted?.has(call.id)) return;
        const spend = replayedSpend(call, applicable);
        if (spend) for (const id of spend.capIds) engine.recordExternalSpent(id, spend.at, spend.amount);
      },
    };
  }
}
