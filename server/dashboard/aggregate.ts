/**
 * The dashboard's in-memory aggregate of settled calls. Calls are bucketed by the UTC quarter-hour
 * their call started in (every IANA offset is a multiple of 15 minutes, so a quarter-hour never
 * straddles a local hour or day), which is also when the engine charged them to a cap window.
 * Built once from the journal, then fed one settled call at a time; a series request walks at
 * most a month of quarter-hours (~3,000 slots), never the calls themselves. Pure apart from the
 * `build` helper, which only reads an iterable of records. `snapshot`/`restore` give its sums as
 * JSON text (the ledger's checkpoint keeps it), so a start reads only the journal past it.
 * By model, a guardrail attached to a call counts apart, as the chargeback report and reconcile
 * keep it: its part of the cost under guardrail/<id> (the key its ApplyGuardrail calls have), the
 * rest under the model. Every other breakdown, and the caps, count the call's whole cost.
 */
import { z } from "zod";
import { capMatcher, type CallSubject } from "../budget/capMatch";
import { cappedModelId } from "../budget/replay";
import { localParts, windowBounds, type CapWindow } from "../budget/windows";
import { costByModel } from "../metering/attachedGuardrail";
import { isPicosText, picosToDecimalString, picosToUsd, type Picos } from "../metering/money";
import type { CallRecord, Outcome } from "../ledger/types";
import type {
  CapDto,
  CapSeries,
  DashboardSeriesResponse,
  SeriesGroup,
  SeriesGroupBy,
  SeriesPoint,
} from "../protocol";

export const SLOT_MS = 15 * 60_000;
const HOUR_MS = 3_600_000;
/** Groups drawn separately in a stacked chart; the rest are summed as "other". */
export const MAX_GROUPS = 8;
export const OTHER = "(other)";
export const UNTAGGED = "(untagged)";
const SEP = "\u0000";

const OUTCOMES: Outcome[] = ["ok", "refused", "upstream-error", "cut", "client-aborted", "upstream-failed", "interrupted", "throttled", "quota-exceeded"];

/** [key, pico-dollars as a decimal string] pairs of one breakdown of a quarter-hour. */
type SumsJson = [string, string][];
/**
 * The snapshot's version, raised when what a sum means changes: a checkpoint of another version
 * is not restored, so the aggregate is built again from the journal rather than mixing figures.
 * 2: by model, an attached guardrail's part counts under guardrail/<id> (1 kept it with its model).
 */
export const SNAPSHOT_VERSION = 2;

/**
 * The aggregate as JSON: each cap subject once (slots name it by index), each quarter-hour as
 * [key, calls, cost, input tokens, output tokens, outcomes, by model, by subject, by tool, by tag].
 */
export interface AggregateSnapshot {
  v: typeof SNAPSHOT_VERSION;
  added: number;
  subjects: CallSubject[];
  slots: [number, number, string, number, number, [Outcome, number][], SumsJson, [number, string][], SumsJson, SumsJson][];
}
const count = z.number().int().nonnegative();
/** Checked on restore like any file a user could have edited: a snapshot that does not match is not used. */
const headerSchema = z.object({
  v: z.literal(SNAPSHOT_VERSION),
  added: count,
  subjects: z.array(
    z.object({
      modelId: z.string(),
      baseModelId: z.string().optional(),
      caller: z.string().optional(),
      callerProfile: z.string().optional(),
      user: z.string().optional(),
      tags: z.record(z.string(), z.string()).optional(),
    }),
  ),
  // Checked one by one while restoring (a month holds ~3,000: a schema would copy each).
  slots: z.array(z.unknown()),
});
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
/** Sums of costs, so money as the journal writes it (no sign: a negative sum is an edited file's). */
const isPicos = (x: unknown): x is string => isPicosText(x);

interface Slot {
  calls: number;
  cost: Picos;
  inputTokens: number;
  outputTokens: number;
  outcomes: Map<Outcome, number>;
  /** `modelId \0 baseModelId` → cost: charts group by the base model. An attached guardrail's part is under `guardrail/<id> \0 guardrail/<id>`. */
  byModel: Map<string, Picos>;
  /** The call's cap subject (subjectKey: the model caps count it against, caller, user, tags) → cost: caps match it with the one capMatch rule. */
  bySubject: Map<string, Picos>;
  byTool: Map<string, Picos>;
  /** `key=value` → cost; a call with several tags counts under each. */
  byTag: Map<string, Picos>;
}

function emptySlot(): Slot {
  return { calls: 0, cost: 0n, inputTokens: 0, outputTokens: 0, outcomes: new Map(), byModel: new Map(), bySubject: new Map(), byTool: new Map(), byTag: new Map() };
}

function bump<K>(map: Map<K, Picos>, key: K, amount: Picos): void {
  map.set(key, (map.get(key) ?? 0n) + amount);
}

/** What the aggregate needs of a cap: its config and the engine's current figures. */
export type CapInput = CapDto;

export interface SeriesQuery {
  window: CapWindow;
  /** Which breakdowns to compute; all three when omitted. */
  groupBy?: SeriesGroupBy[];
  caps: CapInput[];
  timeZone: string;
  now: Date;
}

export class DashboardAggregate {
  private readonly slots = new Map<number, Slot>();
  /** Local hour start (ms) of each slot, per time zone: formatting a date is the costly part. */
  private readonly hourCache = new Map<string, Map<number, number>>();
  private added = 0;
  /** Every distinct cap subject seen, by its key (few: models × callers × tag sets). */
  private readonly subjects = new Map<string, CallSubject>();
  /** Each subject's place in a snapshot's list (kept: a quarter-hour's text names subjects by it). */
  private readonly subjectIndex = new Map<string, number>();
  private readonly subjectList: CallSubject[] = [];
  /** JSON text of the subject list and of each quarter-hour as last snapshotted (dropped when it changes): a snapshot re-encodes only what changed. */
  private subjectsText: string | undefined;
  private readonly slotTexts = new Map<number, string>();

  /** Calls folded in so far (all outcomes). */
  get size(): number {
    return this.added;
  }

  /** Folds one settled call in: O(tags). */
  add(record: CallRecord): void {
    const started = Date.parse(record.startedAt);
    const t = Number.isFinite(started) ? started : Date.parse(record.at);
    if (!Number.isFinite(t)) return;
    const key = Math.floor(t / SLOT_MS);
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = emptySlot()));
    const cost = BigInt(record.costPicos);
    slot.calls++;
    slot.cost += cost;
    slot.inputTokens += record.usage.inputTokens + record.usage.cacheReadInputTokens + record.usage.cacheWrite5mInputTokens + record.usage.cacheWrite1hInputTokens;
    slot.outputTokens += record.usage.outputTokens;
    slot.outcomes.set(record.outcome, (slot.outcomes.get(record.outcome) ?? 0) + 1);
    // As chargeback groups it: an attached guardrail's part under guardrail/<id>.
    const parts = costByModel(record);
    bump(slot.byModel, `${record.modelId}${SEP}${record.baseModelId}`, parts.model);
    if (parts.guardrail) bump(slot.byModel, `${parts.guardrail.key}${SEP}${parts.guardrail.key}`, parts.guardrail.cost);
    bump(slot.bySubject, this.subjectKey(record), cost);
    bump(slot.byTool, record.tool || "unknown", cost);
    const tags = Object.entries(record.tags ?? {});
    if (tags.length === 0) bump(slot.byTag, UNTAGGED, cost);
    else for (const [k, v] of tags) bump(slot.byTag, `${k}=${v}`, cost);
    this.added++;
    this.slotTexts.delete(key);
  }

  /**
   * Everything a cap can be scoped by, as one key: the model it is counted against (the one that
   * answered a downgraded call, as the engine counts it), caller, profile, user and tags.
   */
  private subjectKey(r: CallRecord): string {
    const subject: CallSubject = { modelId: cappedModelId(r), baseModelId: r.baseModelId, user: r.user, tags: r.tags ?? {} };
    if (r.caller !== undefined) subject.caller = r.caller;
    if (r.callerProfile !== undefined) subject.callerProfile = r.callerProfile;
    const key = keyOfSubject(subject);
    if (!this.subjects.has(key)) this.addSubject(key, subject);
    return key;
  }

  private addSubject(key: string, subject: CallSubject): void {
    this.subjects.set(key, subject);
    this.subjectIndex.set(key, this.subjectList.length);
    this.subjectList.push(subject);
    this.subjectsText = undefined;
  }

  /**
   * Its sums as JSON text (an AggregateSnapshot), for the ledger's checkpoint: `restore` of it
   * answers every series as this aggregate does. Taken every few seconds while calls flow, so only
   * the quarter-hours changed since the last one are encoded again.
   */
  snapshot(): string {
    this.subjectsText ??= JSON.stringify(this.subjectList);
    const slots: string[] = [];
    for (const [key, slot] of this.slots) {
      let text = this.slotTexts.get(key);
      if (text === undefined) this.slotTexts.set(key, (text = this.slotText(key, slot)));
      slots.push(text);
    }
    return `{"v":${SNAPSHOT_VERSION},"added":${this.added},"subjects":${this.subjectsText},"slots":[${slots.join(",")}]}`;
  }

  private slotText(key: number, slot: Slot): string {
    const sums = (map: Map<string, Picos>): [string, string][] => [...map].map(([k, v]) => [k, v.toString()]);
    const json: AggregateSnapshot["slots"][number] = [
      key,
      slot.calls,
      slot.cost.toString(),
      slot.inputTokens,
      slot.outputTokens,
      [...slot.outcomes],
      sums(slot.byModel),
      [...slot.bySubject].map(([k, v]) => [this.subjectIndex.get(k)!, v.toString()]),
      sums(slot.byTool),
      sums(slot.byTag),
    ];
    return JSON.stringify(json);
  }

  /** The aggregate a snapshot (its text, or that parsed) holds; undefined when `data` is not one (absent, another version, edited). */
  static restore(data: unknown): DashboardAggregate | undefined {
    const parsed = headerSchema.safeParse(typeof data === "string" ? parseJson(data) : data);
    if (!parsed.success) return undefined;
    const snap = parsed.data;
    const a = new DashboardAggregate();
    const keys = snap.subjects.map((subject) => {
      const key = keyOfSubject(subject);
      if (!a.subjects.has(key)) a.addSubject(key, subject);
      return key;
    });
    for (const raw of snap.slots) {
      const slot = restoreSlot(raw, keys);
      if (!slot) return undefined;
      a.slots.set(slot[0], slot[1]);
    }
    a.added = snap.added;
    return a;
  }

  /** Whether `text` is a snapshot an earlier version wrote (its sums meant something else): not restored, and no fault. */
  static isOlderVersion(text: string): boolean {
    const v = /^\{"v":(\d+),/.exec(text)?.[1];
    return v !== undefined && Number(v) < SNAPSHOT_VERSION;
  }

  /** Builds from records (the journal since `since`), oldest first. Returns the number folded in. */
  async build(records: AsyncIterable<CallRecord> | Iterable<CallRecord>): Promise<number> {
    let n = 0;
    for await (const r of records) {
      this.add(r);
      n++;
    }
    return n;
  }

  /** Forgets quarter-hours before `before` (older than any window the dashboard shows). */
  prune(before: Date): void {
    const limit = Math.floor(before.getTime() / SLOT_MS);
    for (const key of this.slots.keys()) if (key < limit) this.slots.delete(key);
    for (const key of this.slotTexts.keys()) if (key < limit) this.slotTexts.delete(key);
    for (const cache of this.hourCache.values()) for (const key of cache.keys()) if (key < limit) cache.delete(key);
    const limitMs = limit * SLOT_MS - 86_400_000;
    for (const cache of this.dayKeyCache.values()) for (const key of cache.keys()) if (key < limitMs) cache.delete(key);
  }

  /** Series of the current `window` (in `timeZone`) and each cap's cumulative spend in its own current window. */
  series(q: SeriesQuery): DashboardSeriesResponse {
    const { start, end } = windowBounds(q.window, q.timeZone, q.now);
    const bucket = q.window === "day" ? "hour" : "day";
    const buckets = this.bucketsOf(start, end, bucket, q.timeZone);
    const index = new Map(buckets.map((b, i) => [b.startMs, i]));
    const groupBy = q.groupBy ?? ["model", "tool", "tag"];
    const sums = { model: new Map<string, Picos[]>(), tool: new Map<string, Picos[]>(), tag: new Map<string, Picos[]>() };
    const totals = { calls: 0, cost: 0n, inputTokens: 0, outputTokens: 0, outcomes: Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number> };
    const add = (map: Map<string, Picos[]>, key: string, i: number, amount: Picos) => {
      let row = map.get(key);
      if (!row) map.set(key, (row = new Array<Picos>(buckets.length).fill(0n)));
      row[i]! += amount;
    };
    for (const [key, slot] of this.slotsIn(start.getTime(), end.getTime())) {
      const i = index.get(this.bucketStart(key, bucket, q.timeZone));
      if (i === undefined) continue;
      totals.calls += slot.calls;
      totals.cost += slot.cost;
      totals.inputTokens += slot.inputTokens;
      totals.outputTokens += slot.outputTokens;
      for (const [o, n] of slot.outcomes) totals.outcomes[o] += n;
      if (groupBy.includes("model")) for (const [k, v] of slot.byModel) add(sums.model, k.slice(k.indexOf(SEP) + 1), i, v);
      if (groupBy.includes("tool")) for (const [k, v] of slot.byTool) add(sums.tool, k, i, v);
      if (groupBy.includes("tag")) for (const [k, v] of slot.byTag) add(sums.tag, k, i, v);
    }
    const groups: Partial<Record<SeriesGroupBy, SeriesGroup[]>> = {};
    for (const g of groupBy) groups[g] = topGroups(sums[g]);
    return {
      window: q.window,
      timeZone: q.timeZone,
      from: start.toISOString(),
      to: end.toISOString(),
      now: q.now.toISOString(),
      bucket,
      buckets: buckets.map((b) => ({ start: new Date(b.startMs).toISOString(), label: b.label })),
      groups,
      totals: {
        calls: totals.calls,
        costUsd: picosToUsd(totals.cost),
        costExact: picosToDecimalString(totals.cost),
        inputTokens: totals.inputTokens,
        outputTokens: totals.outputTokens,
        outcomes: totals.outcomes,
      },
      caps: q.caps.map((cap) => this.capSeries(cap, q.now)),
    };
  }

  /** Cumulative spend of the calls a cap applies to, through its current window, with a projection to the limit. */
  capSeries(cap: CapInput, now: Date): CapSeries {
    const start = Date.parse(cap.windowStart);
    const end = Date.parse(cap.resetsAt);
    const nowMs = Math.min(Math.max(now.getTime(), start), end);
    const matches = capMatcher({ ...(cap.model !== undefined ? { model: cap.model } : {}), ...(cap.callers ? { callers: cap.callers } : {}), ...(cap.tags ? { tags: cap.tags } : {}) });
    const matchCache = new Map<string, boolean>();
    const applies = (k: string) => {
      let m = matchCache.get(k);
      if (m === undefined) matchCache.set(k, (m = matches(this.subjects.get(k)!)));
      return m;
    };
    // Step: a quarter-hour for a day, an hour for a week, three hours for a month.
    const step = cap.window === "day" ? SLOT_MS : cap.window === "week" ? HOUR_MS : 3 * HOUR_MS;
    const perStep = new Map<number, Picos>();
    const bySlot: [number, Picos][] = [];
    for (const [key, slot] of this.slotsIn(start, end)) {
      let amount = 0n;
      for (const [k, v] of slot.bySubject) if (v > 0n && applies(k)) amount += v;
      if (amount === 0n) continue;
      bySlot.push([key * SLOT_MS, amount]);
      const s = start + Math.floor((key * SLOT_MS - start) / step) * step;
      perStep.set(s, (perStep.get(s) ?? 0n) + amount);
    }
    const points: SeriesPoint[] = [{ t: new Date(start).toISOString(), usd: 0 }];
    let running = 0n;
    for (let s = start; s < nowMs; s += step) {
      running += perStep.get(s) ?? 0n;
      points.push({ t: new Date(Math.min(s + step, nowMs)).toISOString(), usd: picosToUsd(running) });
    }
    const spent = running;
    // The current rate: spend over the trailing lookback (clipped to the window start), per hour.
    const lookback = cap.window === "day" ? 3 * HOUR_MS : cap.window === "week" ? 24 * HOUR_MS : 7 * 24 * HOUR_MS;
    const from = Math.max(start, nowMs - lookback);
    let recent = 0n;
    for (const [t, amount] of bySlot) if (t + SLOT_MS > from) recent += amount;
    const hours = Math.max((nowMs - from) / HOUR_MS, 0.25);
    const ratePerHourUsd = picosToUsd(recent) / hours;
    const spentUsd = picosToUsd(spent);
    // A team cap's figure holds every member's spend; the chart and the rate are this machine's.
    // The projection starts from the team's figure, or it says the cap holds beside a full bar.
    const fromUsd = cap.scope === "team" ? Math.max(spentUsd, cap.spentUsd) : spentUsd;
    const remainingUsd = cap.limitUsd - fromUsd;
    let reachesAt: string | null = null;
    let projectionEnd = end;
    let projectedUsd = fromUsd + ratePerHourUsd * ((end - nowMs) / HOUR_MS);
    if (remainingUsd <= 0) {
      reachesAt = new Date(nowMs).toISOString();
      projectionEnd = nowMs;
      projectedUsd = fromUsd;
    } else if (ratePerHourUsd > 0) {
      const at = nowMs + (remainingUsd / ratePerHourUsd) * HOUR_MS;
      if (at < end) {
        reachesAt = new Date(at).toISOString();
        projectionEnd = at;
        projectedUsd = cap.limitUsd;
      }
    }
    return {
      id: cap.id,
      window: cap.window,
      ...(cap.model !== undefined ? { model: cap.model } : {}),
      scope: cap.scope,
      limitUsd: cap.limitUsd,
      spentUsd: cap.spentUsd,
      reservedUsd: cap.reservedUsd,
      chartedUsd: spentUsd,
      windowStart: cap.windowStart,
      resetsAt: cap.resetsAt,
      points,
      projection: {
        ratePerHourUsd,
        reachesAt,
        points: [
          { t: new Date(nowMs).toISOString(), usd: fromUsd },
          { t: new Date(projectionEnd).toISOString(), usd: projectedUsd },
        ],
      },
    };
  }

  private *slotsIn(startMs: number, endMs: number): Iterable<[number, Slot]> {
    const first = Math.floor(startMs / SLOT_MS);
    const last = Math.ceil(endMs / SLOT_MS);
    if (last - first < this.slots.size) {
      for (let k = first; k < last; k++) {
        const slot = this.slots.get(k);
        if (slot) yield [k, slot];
      }
    } else {
      for (const [k, slot] of this.slots) if (k >= first && k < last) yield [k, slot];
    }
  }

  /** Local hour (or day) start, as an instant, of the bucket a slot falls in. */
  private bucketStart(slotKey: number, bucket: "hour" | "day", timeZone: string): number {
    const hour = this.localHourStart(slotKey, timeZone);
    if (bucket === "hour") return hour;
    let keys = this.dayKeyCache.get(timeZone);
    if (!keys) this.dayKeyCache.set(timeZone, (keys = new Map()));
    let key = keys.get(hour);
    if (key === undefined) keys.set(hour, (key = localDayKey(hour, timeZone)));
    return this.dayStarts(timeZone).get(key) ?? hour;
  }

  private localHourStart(slotKey: number, timeZone: string): number {
    let cache = this.hourCache.get(timeZone);
    if (!cache) this.hourCache.set(timeZone, (cache = new Map()));
    let v = cache.get(slotKey);
    if (v === undefined) {
      const t = slotKey * SLOT_MS;
      const p = localParts(t, timeZone);
      v = t - p.minute * 60_000;
      cache.set(slotKey, v);
    }
    return v;
  }

  private readonly dayStartCache = new Map<string, Map<string, number>>();
  /** Local day key of each local hour start, per time zone. */
  private readonly dayKeyCache = new Map<string, Map<number, string>>();
  /** The last bucket list per zone and range (the same window is asked for again and again). */
  private readonly bucketCache = new Map<string, { startMs: number; label: string }[]>();
  private dayStarts(timeZone: string): Map<string, number> {
    let m = this.dayStartCache.get(timeZone);
    if (!m) this.dayStartCache.set(timeZone, (m = new Map()));
    return m;
  }

  /** Local hours or days from start to end, labelled for the chart's axis. */
  private bucketsOf(start: Date, end: Date, bucket: "hour" | "day", timeZone: string): { startMs: number; label: string }[] {
    const cacheKey = `${timeZone}|${start.getTime()}|${end.getTime()}|${bucket}`;
    const cached = this.bucketCache.get(cacheKey);
    if (cached) return cached;
    if (this.bucketCache.size > 16) this.bucketCache.clear();
    const out: { startMs: number; label: string }[] = [];
    this.bucketCache.set(cacheKey, out);
    if (bucket === "day") {
      let t = start;
      const days = this.dayStarts(timeZone);
      while (t < end) {
        const key = localDayKey(t.getTime(), timeZone);
        days.set(key, t.getTime());
        out.push({ startMs: t.getTime(), label: key.slice(5) });
        t = windowBounds("day", timeZone, t).end; // the next local midnight (23- and 25-hour days too)
      }
      return out;
    }
    for (let t = start.getTime(); t < end.getTime(); ) {
      const h = this.localHourStart(Math.floor(t / SLOT_MS), timeZone);
      if (out.length === 0 || out[out.length - 1]!.startMs !== h) {
        const p = localParts(h, timeZone);
        out.push({ startMs: h, label: `${String(p.hour).padStart(2, "0")}:00` });
      }
      t = h + HOUR_MS;
    }
    return out;
  }
}

/** The value of a JSON text; undefined when it is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One quarter-hour of a snapshot; undefined when it is not one (a wrong type, or a subject the snapshot does not hold). */
function restoreSlot(raw: unknown, subjectKeys: string[]): [number, Slot] | undefined {
  if (!Array.isArray(raw) || raw.length !== 10) return undefined;
  const [key, calls, cost, inputTokens, outputTokens, outcomes, byModel, bySubject, byTool, byTag] = raw as unknown[];
  if (!Number.isSafeInteger(key) || !isCount(calls) || !isPicos(cost) || !isCount(inputTokens) || !isCount(outputTokens)) return undefined;
  const outcomeMap = new Map<Outcome, number>();
  if (!Array.isArray(outcomes)) return undefined;
  for (const pair of outcomes as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || !OUTCOMES.includes(pair[0] as Outcome) || !isCount(pair[1])) return undefined;
    outcomeMap.set(pair[0] as Outcome, pair[1]);
  }
  const subjectMap = sumsOf(bySubject, (k) => (isCount(k) ? subjectKeys[k] : undefined));
  const modelMap = sumsOf(byModel, textKey);
  const toolMap = sumsOf(byTool, textKey);
  const tagMap = sumsOf(byTag, textKey);
  if (!subjectMap || !modelMap || !toolMap || !tagMap) return undefined;
  return [key as number, { calls, cost: BigInt(cost), inputTokens, outputTokens, outcomes: outcomeMap, byModel: modelMap, bySubject: subjectMap, byTool: toolMap, byTag: tagMap }];
}

const textKey = (k: unknown): string | undefined => (typeof k === "string" ? k : undefined);

/** A breakdown's [key, pico-dollars] pairs as a map (a key twice: summed); undefined when one is not such a pair. */
function sumsOf(raw: unknown, keyOf: (k: unknown) => string | undefined): Map<string, Picos> | undefined {
  if (!Array.isArray(raw)) return undefined;
  const out = new Map<string, Picos>();
  for (const pair of raw as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || !isPicos(pair[1])) return undefined;
    const k = keyOf(pair[0]);
    if (k === undefined) return undefined;
    out.set(k, (out.get(k) ?? 0n) + BigInt(pair[1]));
  }
  return out;
}

/** Everything a cap can be scoped by, as one map key (one per distinct subject). */
function keyOfSubject(s: CallSubject): string {
  return [s.modelId, s.baseModelId, s.caller ?? "", s.callerProfile ?? "", s.user, ...Object.entries(s.tags ?? {}).flat()].join(SEP);
}

function localDayKey(t: number, timeZone: string): string {
  const p = localParts(t, timeZone);
  return `${p.year}-${String(p.month).padStart(2, "0")}-${String(p.day).padStart(2, "0")}`;
}

/** The biggest groups by total, the rest folded into "other"; zero groups dropped. */
function topGroups(sums: Map<string, Picos[]>): SeriesGroup[] {
  const rows = [...sums.entries()]
    .map(([key, values]) => ({ key, values, total: values.reduce((a, b) => a + b, 0n) }))
    .filter((r) => r.total > 0n)
    .sort((a, b) => (b.total > a.total ? 1 : b.total < a.total ? -1 : a.key.localeCompare(b.key)));
  const kept = rows.slice(0, rows.length > MAX_GROUPS ? MAX_GROUPS - 1 : MAX_GROUPS);
  const rest = rows.slice(kept.length);
  const out = kept.map((r) => ({ key: r.key, totalUsd: picosToUsd(r.total), costUsd: r.values.map(picosToUsd) }));
  if (rest.length > 0) {
    const values = rest[0]!.values.map((_, i) => rest.reduce((a, r) => a + r.values[i]!, 0n));
    out.push({ key: OTHER, totalUsd: picosToUsd(values.reduce((a, b) => a + b, 0n)), costUsd: values.map(picosToUsd) });
  }
  return out;
}
