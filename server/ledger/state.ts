/**
 * Small derived state in `<dir>/state.json` (lowdb): daily rollups plus what the ledger needs to
 * reconcile them with the journal on open. It is a cache — the journal is the truth — so writes are
 * debounced, and a missing, corrupt or outdated file is simply rebuilt.
 */
import { constants as fsConstants } from "node:fs";
import { access, open, readFile, rename } from "node:fs/promises";
import path from "node:path";
import { Low, type Adapter } from "lowdb";
import { z } from "zod";
import { FILE_MODE, syncDir } from "./privateFiles";
import type { CallRecord } from "./types";
import { stoppedAtGateway } from "./outcomes";
import { PICOS_TEXT } from "../metering/money";

export const STATE_VERSION = 1;

/**
 * How fast state.json may be rewritten while calls flow, in bytes per second: a big snapshot (a
 * month of dashboard slots over many callers and tags reaches megabytes) is rewritten less often,
 * so the disk is not written megabytes every 2 s and the event loop is not held encoding them.
 * The cost is a longer journal tail to apply at the next start (the time since the last write).
 */
export const STATE_WRITE_BYTES_PER_S = 256 * 1024;

/** The wait before the next write of state.json: the debounce, or longer for a big file (STATE_WRITE_BYTES_PER_S). */
export function stateWriteDelayMs(debounceMs: number, lastWriteBytes: number): number {
  return Math.max(debounceMs, Math.ceil((lastWriteBytes * 1000) / STATE_WRITE_BYTES_PER_S));
}

export interface DayRollup {
  calls: number; // forwarded calls
  refused: number; // calls stopped at the gateway: refused by a cap, throttled, over a quota
  costPicos: string;
  inputTokens: number;
  outputTokens: number;
}

/** { "YYYY-MM-DD" (local day of settlement): { baseModelId: DayRollup } } */
export type Rollups = Record<string, Record<string, DayRollup>>;

const rollupSchema = z.object({
  calls: z.number().int().nonnegative(),
  refused: z.number().int().nonnegative(),
  costPicos: z.string().regex(PICOS_TEXT),
  inputTokens: z.number().nonnegative(),
  outputTokens: z.number().nonnegative(),
});

const stateSchema = z.object({
  version: z.literal(STATE_VERSION),
  timeZone: z.string(),
  /** When the snapshot was taken; journal entries from about then on are re-applied on open. */
  savedAt: z.string(),
  /** UTC month of the oldest reserve still open at savedAt (else savedAt's month): where the orphan scan starts. */
  openReservesFrom: z.string().regex(/^\d{4}-\d{2}$/),
  days: z.record(z.string(), z.record(z.string(), rollupSchema)),
  /**
   * What the snapshot covers exactly (absent: it is only "as of savedAt", see Ledger.replay): each
   * month file up to `end` bytes, whose last line there is `line`; the reservations open at that
   * point; and the parts other components keep beside it (cap totals), each as its owner wrote it.
   */
  checkpoint: z
    .object({
      months: z.record(z.string().regex(/^\d{4}-\d{2}$/), z.object({ end: z.number().int().nonnegative(), line: z.string() })),
      open: z.array(z.unknown()),
      parts: z.record(z.string(), z.unknown()),
    })
    .optional(),
});

export type StateData = z.infer<typeof stateSchema>;

export type LoadResult = "ok" | "missing" | "corrupt" | "outdated";

export class StateStore {
  /** Completed writes of state.json, for tests. */
  writes = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly db: Low<StateData>,
    readonly file: string,
    readonly loaded: LoadResult,
    private readonly debounceMs: number,
    /** Called just before each write to fill savedAt and openReservesFrom. */
    private readonly stamp: (data: StateData) => void,
    /** Length of the text last read or written (JSON is ASCII but for names and tags: about its bytes). */
    private readonly size: { chars: number },
  ) {}

  static async open(
    dir: string,
    opts: { timeZone: string; debounceMs?: number; stamp: (data: StateData) => void },
  ): Promise<StateStore> {
    const file = path.join(dir, "state.json");
    const fresh = (): StateData => ({ version: STATE_VERSION, timeZone: opts.timeZone, savedAt: "", openReservesFrom: "0000-00", days: {} });
    // lowdb's JSONFile, written durably (DurableJsonFile), with the size of the text last read or written noted: it paces the next write.
    const size = { chars: 0 };
    const adapter = new DurableJsonFile<StateData>(file, {
      parse: (text) => {
        size.chars = text.length;
        return JSON.parse(text) as StateData;
      },
      stringify: (data) => {
        const text = JSON.stringify(data, null, 2);
        size.chars = text.length;
        return text;
      },
    });
    const db = new Low<StateData>(adapter, fresh());
    let loaded: LoadResult = "missing";
    if (await exists(file)) {
      try {
        await db.read();
        const parsed = stateSchema.safeParse(db.data);
        if (parsed.success) {
          loaded = parsed.data.timeZone === opts.timeZone ? "ok" : "outdated"; // day keys depend on the zone
          db.data = parsed.data;
        } else {
          loaded = (db.data as { version?: unknown } | null)?.version === STATE_VERSION ? "corrupt" : "outdated";
        }
      } catch {
        loaded = "corrupt"; // unparsable JSON, e.g. a disk that lost the rename
      }
    }
    if (loaded === "corrupt") await rename(file, `${file}.bad`).catch(() => undefined); // kept for inspection
    if (loaded !== "ok") db.data = fresh(); // the ledger rebuilds it from the journal
    return new StateStore(db, file, loaded, opts.debounceMs ?? 2000, opts.stamp, size);
  }

  get data(): StateData {
    return this.db.data;
  }

  addCall(day: string, record: CallRecord): void {
    addToRollups(this.db.data.days, day, record);
  }

  /** Replaces the rollups with `days`, whose keys are local days in `timeZone` (a live change of zone). */
  replaceDays(timeZone: string, days: Rollups): void {
    this.db.data.timeZone = timeZone;
    this.db.data.days = days;
  }

  /** Drops rollups of days on or after `day` (they are about to be recomputed from the journal). */
  dropDaysFrom(day: string): void {
    for (const key of Object.keys(this.db.data.days)) if (key >= day) delete this.db.data.days[key];
  }

  /** Schedules a write; many changes within the debounce interval (longer for a big file: stateWriteDelayMs) cost one write. */
  markDirty(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => undefined); // a cache: the next flush or a rebuild covers a failure
    }, stateWriteDelayMs(this.debounceMs, this.size.chars));
    this.timer.unref();
  }

  /** Writes now (after any write in progress). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing
      .catch(() => undefined)
      .then(async () => {
        this.stamp(this.db.data);
        await this.db.write();
        this.writes++;
      });
    return this.writing;
  }

  close(): Promise<void> {
    return this.flush();
  }
}

/** Counts a settled call into the rollups of `day`. */
export function addToRollups(days: Rollups, day: string, record: CallRecord): void {
  const models = (days[day] ??= {});
  const r = (models[record.baseModelId] ??= { calls: 0, refused: 0, costPicos: "0", inputTokens: 0, outputTokens: 0 });
  if (stoppedAtGateway(record.outcome)) r.refused++;
  else r.calls++;
  r.costPicos = String(BigInt(r.costPicos) + BigInt(record.costPicos));
  r.inputTokens += record.usage.inputTokens;
  r.outputTokens += record.usage.outputTokens;
}

/**
 * A JSON file replaced whole and durably: the text goes to a private temp file that is fsynced
 * before it is renamed over the file, and the folder is fsynced after. lowdb's own writer only
 * renames an unsynced file, so a power cut could leave state.json empty or zeroed (a slow full
 * replay at the next start) or lose the rename.
 */
class DurableJsonFile<T> implements Adapter<T> {
  private readonly temp: string;

  constructor(
    private readonly file: string,
    private readonly codec: { parse: (text: string) => T; stringify: (data: T) => string },
  ) {
    this.temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  }

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    return this.codec.parse(text);
  }

  async write(data: T): Promise<void> {
    const text = this.codec.stringify(data);
    // O_NOFOLLOW (POSIX; 0 elsewhere): a link left at the temp name is not written through.
    const fh = await open(this.temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | (fsConstants.O_NOFOLLOW ?? 0), FILE_MODE);
    try {
      // A temp file left by an older version may have the umask's mode: the file is private before it is named state.json.
      if (process.platform !== "win32") await fh.chmod(FILE_MODE);
      await fh.writeFile(text, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await renameRetrying(this.temp, this.file);
    await syncDir(path.dirname(this.file));
  }
}

/** rename, tried again for a second on failure as lowdb's writer does (Windows refuses while another process has the file open). */
async function renameRetrying(from: string, to: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (err) {
      if (attempt >= 10) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
