/**
 * Team caps over a shared folder (`teamLedger` = a path): `<dir>/<team>/team.json` (the lead's),
 * `<dir>/<team>/spend/<member>@<machine>-<id>.json` (one per gateway, written only by it).
 *
 * The team caps are kept in a BudgetEngine of their own: this machine's spend is booked live (so
 * its own concurrent calls can never squeeze past a cap), the others' spend and open reservations
 * are fed in from their files. Reservations are shared: an admission (one at a time per machine)
 * re-reads the peers' files that changed (a stat per peer), reserves, publishes the reservation in
 * this machine's file, then re-reads the peers again and checks once more (write-then-verify), so
 * of two machines that race, the later one sees the earlier (or both see each other and both
 * refuse). What is left of the overshoot is what a stream grows past its reservation.
 *
 * Anyone who can write the folder can put anything there: only regular files within a size limit
 * are read (regularFile.ts); a refused team.json keeps the last good one in force, a refused or
 * invalid spend file keeps that peer's last good figures.
 */
import { cappedModelId, replaySettled, type SettledCall } from "../budget/replay";
import type { CallSubject } from "../budget/capMatch";
import { watch, type FSWatcher } from "node:fs";
import { mkdir, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { BudgetEngine, refusalMessage, type Refusal } from "../budget/engine";
import type { CapConfig } from "../config/schema";
import type { Logger } from "../log";
import type { Picos } from "../metering/money";
import { readRegularFile, SPEND_FILE_MAX_BYTES, TEAM_FILE_MAX_BYTES } from "./regularFile";
import { addSpend, newestPerWriter, othersSpend, parseSpendFile, pruneSpend, spendFileName, toSpendFile, type SpendFile, type SpendTotals } from "./spendFile";
import { TeamCaps, unreachableMessage, type History, type TeamCapStatus, type TeamEngine, type TeamReserveRequest, type TeamReserveResult } from "./teamEngine";

export interface FolderStoreOptions {
  dir: string;
  team: string;
  member: string;
  machine: string;
  writer: string;
  history: History;
  log: Logger;
  now: () => Date;
  unavailable: "block" | "personalOnly";
  /** Poll interval (reads everyone's files and team.json; the fallback when no watch events come). */
  syncMs?: number;
  /** Delay between a settle and writing the own spend file (settles arriving meanwhile share the write). */
  writeDelayMs?: number;
}

/** How close to a read (or after it) a file's mtime makes it read again: coarse mtimes and clock skew of network shares. */
const RACY_MS = 2000;

/** A replay of fresh caps: their totals, and which calls it counted or were settled live meanwhile. */
interface Replay {
  fresh: ReadonlySet<string>;
  totals: SpendTotals;
  counted: Set<string>;
  live: Set<string>;
  /** What calls settled on the fresh caps meanwhile (in `totals` too): published even if the replay fails. */
  settledLive: SpendTotals;
}

export class FolderTeamEngine implements TeamEngine {
  readonly source = "folder" as const;
  private readonly caps = new TeamCaps();
  private readonly engine = new BudgetEngine([], "UTC");
  private readonly own: SpendTotals = new Map();
  /** Others' spend already fed into the engine, per `${capId}|${windowStart}`. */
  private applied = new Map<string, Picos>();
  private files: SpendFile[] = [];
  /** Each peer's last valid spend file, by file name: a refused or invalid one keeps these figures. */
  private readonly lastGood = new Map<string, SpendFile>();
  /**
   * Each peer file's identity when last read and understood (inode, mtime, size), and when that
   * read began (this machine's clock): an unchanged file is not read again (see readSpendFiles).
   */
  private readonly seen = new Map<string, { sig: string; readAt: number }>();
  /** What was last logged about each refused file, so a refusal is logged once, not every poll. */
  private readonly refusals = new Map<string, string>();
  private readonly held = new Set<string>();
  private lastRead: Date | undefined;
  private reachable = true;
  private unreachableWhy: string | undefined;
  private dirty = true;
  /**
   * Whether `own` holds all this machine knows of its spend: false until the first setCaps has
   * replayed the journal into it and the figures of the own file found at start (caps not in force
   * now, e.g. team.json invalid at a restart) are merged in. Until then the own file is not
   * written, so peers never see this machine's spend drop to what a half-built `own` says.
   */
  private ownComplete = false;
  /**
   * Why team calls are refused for good: a journal replay into fresh caps failed, so their figures
   * lack some of this machine's spend (the engine holds what was read before the failure). Only a
   * restart, which counts them again from the start, clears it.
   */
  private uncounted: string | undefined;
  /** The journal replay of fresh caps under way (setCaps): their figures, built apart from `own`. */
  private replay: Replay | undefined;
  private ownSeeded = false;
  /** This gateway's spend files under a former name (another host or user name), removed after the next write. */
  private formerOwn: string[] = [];
  private teamText: string | undefined;
  private teamRefusal: string | undefined;
  private teamRead = false;
  private readonly listeners: ((text: string | undefined) => void)[] = [];
  private readonly teamDir: string;
  private readonly spendDir: string;
  private readonly ownFile: string;
  private poll: NodeJS.Timeout | undefined;
  private writeTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private watchers: FSWatcher[] = [];
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly syncMs: number;
  private readonly writeDelayMs: number;

  private constructor(private readonly o: FolderStoreOptions) {
    this.teamDir = path.join(o.dir, o.team);
    this.spendDir = path.join(this.teamDir, "spend");
    this.ownFile = path.join(this.spendDir, spendFileName(o.member, o.machine, o.writer));
    this.syncMs = o.syncMs ?? 1000;
    this.writeDelayMs = o.writeDelayMs ?? 50;
  }

  /**
   * Opens the folder and reads it once. The team's folder `<dir>/<team>` must exist (the lead
   * creates it): a missing one is an unmounted share (or an empty mount point), not a new team,
   * so it is never created here; only its `spend` subfolder is.
   */
  static async open(o: FolderStoreOptions): Promise<FolderTeamEngine> {
    const store = new FolderTeamEngine(o);
    await store.sync();
    store.poll = setInterval(() => store.requestSync(0), store.syncMs);
    store.poll.unref();
    store.startWatching();
    return store;
  }

  /**
   * Runs in turn with the admissions and the syncs (on `syncing`): no call is admitted, and the own
   * file is not written, while the fresh caps' figures are being counted from the journal.
   */
  setCaps(caps: CapConfig[], timeZone: string): Promise<void> {
    const step = this.syncing.then(() => this.applyCaps(caps, timeZone));
    this.syncing = step.catch(() => undefined);
    return step;
  }

  private async applyCaps(caps: CapConfig[], timeZone: string): Promise<void> {
    const zoneChanged = timeZone !== this.caps.timeZone;
    const { fresh } = this.caps.set(caps, timeZone);
    // The calls running now count when they settle, so the replay leaves them out. Their holds move
    // onto the fresh caps (BudgetEngine.setCaps), a new zone's windows too: they stay on the wall.
    this.engine.setCaps(caps, timeZone);
    const running = this.engine.heldCallIds();
    const freshSet = new Set(zoneChanged ? this.caps.all().map((c) => c.id) : fresh);
    for (const key of [...this.applied.keys()]) if (freshSet.has(key.split("|")[0]!) || !this.caps.get(key.split("|")[0]!)) this.applied.delete(key);
    if (freshSet.size > 0) {
      const now = this.o.now();
      const since = this.caps.all().filter((c) => freshSet.has(c.id)).map((c) => this.previousStart(c.id, now)!).reduce((a, b) => (a < b ? a : b));
      // The fresh caps' figures are built apart and swapped in once complete.
      const replay: Replay = { fresh: freshSet, totals: new Map(), counted: new Set(), live: new Set(), settledLive: new Map() };
      this.replay = replay;
      try {
        await replaySettled(
          this.o.history(since),
          (call) => {
            if (running.has(call.id) || replay.live.has(call.id)) return [];
            const ids = this.caps.applicable(call).filter((id) => freshSet.has(id));
            if (ids.length > 0) replay.counted.add(call.id);
            return ids;
          },
          ({ amount, at, capIds }) => {
            for (const id of capIds) {
              this.engine.recordExternalSpent(id, at, amount);
              addSpend(replay.totals, id, this.caps.bounds(this.caps.get(id)!, at).start, amount);
            }
          },
        );
      } catch (err) {
        this.uncounted = `counting team caps ${[...freshSet].map((id) => `"${id}"`).join(", ")} from this machine's journal failed (${(err as Error).message}), so their figures may lack some of its spend: team calls are refused until the gateway restarts (Bedrock Budget: Restart Gateway) with a readable ledger`;
        // The partial count is dropped, but not the calls settled meanwhile: journaled here, peers must count them.
        for (const [id, windows] of replay.settledLive) for (const [start, amount] of windows) addSpend(this.own, id, new Date(start), amount);
        this.dirty = true;
        this.requestWrite();
        throw err;
      } finally {
        this.replay = undefined;
      }
      for (const id of freshSet) this.own.delete(id);
      for (const [id, windows] of replay.totals) this.own.set(id, windows);
      this.dirty = true;
    }
    this.ownComplete = true;
    this.applyOthers();
    this.requestWrite();
  }

  applicable(subject: CallSubject): string[] {
    return this.caps.applicable(subject);
  }

  async reserve(req: TeamReserveRequest): Promise<TeamReserveResult> {
    if (!this.reachable) return this.unavailable(req.capIds);
    // Admissions take turns with each other and with the syncs: each publishes before the next looks.
    let result: TeamReserveResult = this.unavailable(req.capIds);
    this.syncing = this.syncing.then(async () => {
      result = await this.admit(req);
    });
    await this.syncing;
    return result;
  }

  /** Reserve, publish, re-read the peers, check again: see the file's header. */
  private async admit(req: TeamReserveRequest): Promise<TeamReserveResult> {
    // The whole subject (caller, profile, user, tags): team caps scoped by callers or tags match on it.
    const { capIds: _capIds, ...request } = req;
    const reserve = () => this.engine.reserve(request);
    const refused = (refusal: Refusal): TeamReserveResult => ({ ok: false, capId: refusal.capId, refusal, message: refusalMessage(refusal, this.caps.timeZone) });
    // In turn: a reservation asked while a replay ran sees its failure.
    if (this.uncounted) return { ok: false, capId: req.capIds[0]!, message: `Bedrock Budget refused this call: ${this.uncounted}.` };
    try {
      await this.readSpendFiles();
      this.applyOthers();
      const first = reserve();
      if (!first.ok) return refused(first.refusal);
      this.held.add(req.callId);
      await this.writeOwn();
      await this.readSpendFiles();
      this.applyOthers();
      // Check again with whatever the peers published meanwhile (they see this reservation from now on).
      this.engine.release(req.callId);
      const again = reserve();
      if (again.ok) return { ok: true, capIds: again.capIds };
      this.held.delete(req.callId);
      this.dirty = true;
      this.requestWrite();
      return refused(again.refusal);
    } catch (err) {
      if (this.held.delete(req.callId)) this.engine.release(req.callId);
      this.dirty = true;
      this.setReachable(false, this.folderError(err));
      return this.unavailable(req.capIds);
    }
  }

  private unavailable(capIds: string[]): TeamReserveResult {
    if (this.o.unavailable === "personalOnly") return { ok: true, capIds, unchecked: true };
    const why = this.unreachableReason();
    return { ok: false, capId: capIds[0]!, message: `${unreachableMessage(this.o.dir, capIds)}${why ? ` Why: ${why}.` : ""}` };
  }

  async extend(callId: string, extra: Picos, now: Date): Promise<{ ok: true } | { ok: false; message: string }> {
    if (!this.held.has(callId)) return { ok: true };
    const r = this.engine.extend(callId, extra, now);
    if (!r.ok) return { ok: false, message: refusalMessage(r.refusal, this.caps.timeZone) };
    this.dirty = true; // the grown reservation is published with the next write
    this.requestWrite();
    return { ok: true };
  }

  async settle(record: SettledCall): Promise<void> {
    const amount = BigInt(record.costPicos);
    const at = new Date(record.startedAt);
    // A downgraded call counts against the model that answered it.
    const subject = record.answeredBy === undefined ? record : { ...record, modelId: cappedModelId(record) };
    const replay = this.replay;
    // A settle during a fresh caps' replay, of a call not held here (no team cap applied when it
    // started): counted once on the fresh caps, by the replay (which read its line) or here.
    const skip = replay && !this.held.has(record.id) && replay.counted.has(record.id) ? replay.fresh : undefined;
    if (replay && !this.held.has(record.id)) replay.live.add(record.id);
    const capIds = this.caps.applicable(subject).filter((id) => !skip?.has(id));
    if (this.held.delete(record.id)) this.engine.settle(record.id, amount, this.o.now());
    else if (amount > 0n) for (const id of capIds) this.engine.recordExternalSpent(id, at, amount);
    if (amount <= 0n) return;
    for (const id of capIds) {
      const start = this.caps.bounds(this.caps.get(id)!, at).start;
      if (replay?.fresh.has(id)) {
        addSpend(replay.totals, id, start, amount);
        addSpend(replay.settledLive, id, start, amount);
      } else addSpend(this.own, id, start, amount);
    }
    this.dirty = true;
    this.requestWrite();
  }

  async release(callId: string): Promise<void> {
    if (!this.held.delete(callId)) return;
    this.engine.release(callId);
    this.dirty = true;
    this.requestWrite();
  }

  status(now: Date): TeamCapStatus[] {
    const asOf = (this.lastRead ?? new Date(0)).toISOString();
    const stale = !this.reachable || !this.lastRead || now.getTime() - this.lastRead.getTime() > 3 * this.syncMs + 2000;
    return this.engine.status(now).map((s) => ({ ...s, team: { source: "folder", asOf, stale } }));
  }

  teamFileText(): string | undefined {
    return this.teamText;
  }

  teamFileRefusal(): string | undefined {
    return this.teamRefusal;
  }

  teamFileRead(): boolean {
    return this.teamRead;
  }

  onTeamFile(listener: (text: string | undefined) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
    clearTimeout(this.writeTimer);
    clearTimeout(this.syncTimer);
    for (const w of this.watchers) w.close();
    await this.syncing;
    if (this.dirty) await this.writeOwn().catch(() => undefined);
  }

  /** Reads everything now (tests and the gateway after a settle burst). */
  syncNow(): Promise<void> {
    return this.sync();
  }

  private previousStart(id: string, now: Date): Date | undefined {
    const cap = this.caps.get(id);
    if (!cap) return undefined;
    const current = this.caps.bounds(cap, now);
    return this.caps.bounds(cap, new Date(current.start.getTime() - 1)).start;
  }

  private requestWrite(): void {
    if (this.writeTimer || this.closed) return;
    this.writeTimer = setTimeout(() => {
      this.writeTimer = undefined;
      this.requestSync(0);
    }, this.writeDelayMs);
    this.writeTimer.unref();
  }

  private requestSync(delayMs: number): void {
    if (this.syncTimer || this.closed) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      void this.sync();
    }, delayMs);
    this.syncTimer.unref();
  }

  /** One round: write the own file if it changed, then read team.json and everyone's files. Serialised. */
  private sync(): Promise<void> {
    this.syncing = this.syncing.then(async () => {
      if (this.closed) return;
      try {
        await this.checkTeamDir();
        if (this.dirty) await this.writeOwn();
        await this.readTeamFile();
        await this.readSpendFiles();
        this.lastRead = this.o.now();
        this.setReachable(true);
        this.applyOthers();
      } catch (err) {
        this.setReachable(false, this.folderError(err));
      }
    });
    return this.syncing;
  }

  /**
   * Throws, saying what to do, unless the team's folder is there: a share not mounted (or an empty
   * mount point) has no `<dir>/<team>`, and reading it as "no team.json" would drop team.json's caps.
   * Creates `spend/` inside an existing team folder (one the lead made with only team.json).
   */
  private async checkTeamDir(): Promise<void> {
    const st = await stat(this.teamDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw new Error(`team ledger folder ${this.teamDir}: ${err.message}`);
      return undefined;
    });
    if (!st?.isDirectory()) {
      throw new Error(
        `team ledger folder ${this.teamDir} ${st ? "is not a folder" : "does not exist"}: mount the team share at ${this.o.dir} ` +
          `(an unmounted share or an empty mount point has no team folder), or, to start a new team, create the folder ${this.teamDir}`,
      );
    }
    await mkdir(this.spendDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw new Error(`team ledger folder ${this.spendDir}: ${err.message}`);
    });
  }

  private async writeOwn(): Promise<void> {
    if (!this.ownComplete) return; // dirty stays: the first write follows the first setCaps
    if (!this.ownSeeded) await this.seedOwn();
    const now = this.o.now();
    pruneSpend(this.own, (id) => this.previousStart(id, now));
    this.dirty = false;
    const reserved: SpendTotals = new Map();
    for (const s of this.engine.status(now)) if (s.reservedPicos > 0n) addSpend(reserved, s.id, s.windowStart, s.reservedPicos);
    const file = toSpendFile({ writer: this.o.writer, member: this.o.member, machine: this.o.machine }, this.own, now, reserved);
    const tmp = `${this.ownFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(file, null, 1));
      await rename(tmp, this.ownFile);
    } catch (err) {
      this.dirty = true;
      throw err;
    }
    await this.removeFormerOwn();
  }

  /**
   * Keeps the figures of the own file a previous run wrote for caps not in force now (the journal
   * replay counted those that are): peers keep counting that spend while team.json is invalid or
   * a cap is out of this member's settings. Its reservations are not kept: those calls are gone.
   * The own file may be under another name (the host or user name changed since): the newest file
   * this writer id wrote is the one kept, and the others are removed once the own file is written.
   * An I/O error throws (the write waits and the store is unreachable); a refused or invalid file
   * has no figures to keep.
   */
  private async seedOwn(): Promise<void> {
    const mine: { full: string; file: SpendFile }[] = [];
    for (const name of (await readdir(this.spendDir)).filter((n) => n.endsWith(".json"))) {
      const full = path.join(this.spendDir, name);
      const read = await readRegularFile(full, SPEND_FILE_MAX_BYTES);
      if (read.kind === "absent") continue;
      const parsed = read.kind === "text" ? parseSpendFile(read.text) : { ok: false as const, error: read.why };
      if (parsed.ok && parsed.file.writer === this.o.writer) mine.push({ full, file: parsed.file });
      else if (full === this.ownFile) {
        const why = parsed.ok ? `written by ${parsed.file.writer}, not this gateway` : parsed.error;
        this.o.log.warn(`team ledger: ${this.ownFile}: ${why}; this gateway's spend file is written afresh from its journal`);
      }
    }
    this.ownSeeded = true;
    this.formerOwn = mine.filter((m) => m.full !== this.ownFile).map((m) => m.full);
    const [seed] = newestPerWriter(mine.map((m) => m.file));
    if (!seed) return;
    for (const [id, windows] of Object.entries(seed.caps)) {
      if (this.caps.get(id) || this.own.has(id)) continue;
      for (const [start, amount] of Object.entries(windows)) addSpend(this.own, id, new Date(start), BigInt(amount));
    }
  }

  /** Removes this gateway's files under a former name, once the own file holds their figures. */
  private async removeFormerOwn(): Promise<void> {
    for (const full of this.formerOwn.splice(0)) {
      try {
        await unlink(full);
        this.o.log.info(`team ledger: removed ${full}, this gateway's spend file under a former host or user name`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.o.log.warn(`team ledger: cannot remove ${full}, this gateway's spend file under a former name (${(err as Error).message}); peers count only its newest file`);
      }
    }
  }

  private async readTeamFile(): Promise<void> {
    const file = path.join(this.teamDir, "team.json");
    const read = await readRegularFile(file, TEAM_FILE_MAX_BYTES);
    // An absent team.json counts only if the team folder is still there (not unmounted meanwhile).
    if (read.kind === "absent") await this.checkTeamDir();
    this.teamRead = true;
    if (read.kind === "refused") {
      this.teamRefusal = read.why;
      return this.refuse(file, `${read.why}; the last good team.json stays in force`, "error");
    }
    this.teamRefusal = undefined;
    this.refusals.delete(file);
    const text = read.kind === "text" ? read.text : undefined;
    if (text === this.teamText) return;
    this.teamText = text;
    for (const l of this.listeners) l(text);
  }

  private async readSpendFiles(): Promise<void> {
    const names = (await readdir(this.spendDir)).filter((n) => n.endsWith(".json"));
    const present = new Set<string>();
    await Promise.all(
      names.map(async (name) => {
        const full = path.join(this.spendDir, name);
        if (full === this.ownFile) return;
        present.add(name);
        const readAt = Date.now();
        const st = await stat(full).catch(() => undefined);
        const sig = st ? `${st.ino}:${st.mtimeMs}:${st.size}` : undefined;
        // Unchanged since last read, and written well before that read began. A rewrite with the same
        // signature is possible (an inode reused by write-then-rename, the same size, an mtime in
        // whole seconds on a network share, or a server's clock ahead): a file whose mtime is within
        // RACY_MS of the last read, or later, is read again (git's "racy clean" rule).
        const last = this.seen.get(name);
        if (sig !== undefined && last?.sig === sig && st!.mtimeMs < last.readAt - RACY_MS) return;
        const keeps = this.lastGood.has(name) ? "its last good figures still count" : "skipped";
        let read: Awaited<ReturnType<typeof readRegularFile>>;
        try {
          read = await readRegularFile(full, SPEND_FILE_MAX_BYTES);
        } catch (err) {
          // An I/O error says nothing of the file: read it again next round. With no earlier good
          // copy, that member's spend is unknown, so the team's figure is too.
          if (this.lastGood.has(name)) return this.refuse(full, `${(err as Error).message}; ${keeps}, and it is read again at the next sync`, "warn");
          throw new Error(`team ledger folder ${this.o.dir}: cannot read ${full} (${(err as Error).message}), so that member's spend is unknown; it is read again at the next sync`);
        }
        if (read.kind === "absent") return void present.delete(name); // renamed away meanwhile: next round
        if (read.kind === "refused") return this.refuse(full, `${read.why}; ${keeps}`, "warn");
        const parsed = parseSpendFile(read.text);
        if (!parsed.ok) return this.refuse(full, `${parsed.error}; ${keeps}`, "warn");
        if (sig !== undefined) this.seen.set(name, { sig, readAt }); // only a file read and understood is not read again
        this.refusals.delete(full);
        this.lastGood.set(name, parsed.file);
      }),
    );
    for (const name of [...this.lastGood.keys()]) if (!present.has(name)) this.lastGood.delete(name);
    for (const name of [...this.seen.keys()]) if (!present.has(name)) this.seen.delete(name);
    for (const full of [...this.refusals.keys()]) if (path.dirname(full) === this.spendDir && !present.has(path.basename(full))) this.refusals.delete(full);
    this.files = [...this.lastGood.values()];
  }

  /** Logs why a file of the team folder is not read, once per file and reason. */
  private refuse(file: string, why: string, level: "error" | "warn"): void {
    if (this.refusals.get(file) === why) return;
    this.refusals.set(file, why);
    this.o.log[level](`team ledger: not reading ${file}: ${why}`);
  }

  /** Feeds the change in the others' spend (current windows) into the engine. */
  private applyOthers(): void {
    const now = this.o.now();
    const current = new Set<string>();
    for (const cap of this.caps.all()) {
      const start = this.caps.bounds(cap, now).start;
      const key = `${cap.id}|${start.toISOString()}`;
      current.add(key);
      const others = othersSpend(this.files, this.o.writer, cap.id, start, true);
      const delta = others - (this.applied.get(key) ?? 0n);
      if (delta !== 0n) {
        this.engine.recordExternalSpent(cap.id, start, delta);
        this.applied.set(key, others);
      }
    }
    for (const key of [...this.applied.keys()]) if (!current.has(key)) this.applied.delete(key);
  }

  /** An error of the folder as the log and the refusals say it (naming the folder once). */
  private folderError(err: unknown): string {
    const why = (err as Error).message;
    return why.startsWith("team ledger folder ") ? why : `team ledger folder ${this.o.dir}: ${why}`;
  }

  /** Why the folder is unreachable now (undefined while it is reachable). */
  unreachableReason(): string | undefined {
    return this.reachable ? undefined : this.unreachableWhy;
  }

  private setReachable(ok: boolean, why?: string): void {
    if (!ok) this.unreachableWhy = why;
    if (ok === this.reachable) return;
    this.reachable = ok;
    if (ok) this.o.log.info(`team ledger folder ${this.o.dir} is reachable again`);
    else this.o.log.warn(`${why ?? "team ledger folder unreachable"}; team caps follow teamUnavailable: "${this.o.unavailable}"`);
  }

  private startWatching(): void {
    const onEvent = () => this.requestSync(20);
    for (const dir of [this.teamDir, this.spendDir]) {
      try {
        const w = watch(dir, { persistent: false }, onEvent);
        w.on("error", () => undefined); // the poll carries on
        this.watchers.push(w);
      } catch {
        // Network drives often cannot be watched: the poll is the fallback.
      }
    }
  }
}
