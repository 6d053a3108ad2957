/**
 * Team caps in Redis (`teamLedger` = redis:// or rediss://): a hard team wall. Admission runs ONE
 * Lua script that checks every applicable team cap and reserves on all of them, or refuses; a
 * settle books the real cost and drops the hold, carried by the next reservation's script (or
 * sent alone when none comes soon). Any number of gateways share one exact figure.
 *
 * Amounts in Redis are integer MICRO-dollars (1e-6 USD): Lua numbers are doubles, exact only up to
 * 2^53, and 2^53 micro-dollars is $9e9, above the largest cap the schema accepts ($1e9). Each
 * call's reservation and cost are rounded UP to a whole micro-dollar (the local journal keeps exact
 * pico-dollars), so Redis's total is Σ ceil(cost / 1e-6 USD) over the calls: never below the truth.
 *
 * Keys, all under one hash tag `{bb:<team>}` (one Cluster slot), per team cap and window start:
 *   {bb:T}:w:<cap>:<startMs>:spent     settled micro-dollars (INCRBY)
 *   …:reserved                          sum of live holds
 *   …:holds                             ZSET call id → lease expiry (Redis TIME, ms)
 *   …:amounts                           HASH call id → held micro-dollars; "lapsed:<call id>" → what a hold
 *                                       whose lease lapsed moved into spent, taken back by its settle
 *   …:applied                           SET of call ids already counted (settle is idempotent)
 *   {bb:T}:team.json                    optional team.json (SET by the lead), polled
 *   {bb:T}:replayed:<writer>            this gateway has re-contributed its journal since the store was last empty, and up to where (ReplayMark)
 * Every key expires 40 days after its window ends. A hold's lease (2 min, renewed while the call
 * runs) lapses when its gateway stops renewing it (crashed, asleep): the next reserve moves it into
 * spent (Bedrock may bill the call), and the call's settle, live or from the journal's replay once
 * that gateway runs again, replaces the charge with the real cost (or takes it back: a release).
 *
 * Unreachable store: ioredis with no offline queue, a 1 s connect and command timeout and no
 * retries per request, so a call learns within about a second; then teamUnavailable decides.
 * The journal stays the truth: on every (re)connect, and whenever the replay marker is missing
 * (a Redis restarted without persistence), this gateway replays its journal's settled calls of
 * the current windows through the settle script — idempotent by call id, so each counts once —
 * past the journal positions the marker records of its last replay (see replay).
 */
import { createHash } from "node:crypto";
import { capScopeFields } from "../budget/engine";
import type { CallSubject } from "../budget/capMatch";
import { cappedModelId, replaySettled, type SettledCall } from "../budget/replay";
import Redis, { Cluster, type RedisOptions } from "ioredis";
import { refusalMessage, type Refusal } from "../budget/engine";
import type { CapConfig } from "../config/schema";
import type { Logger } from "../log";
import { ceilDiv, type Picos } from "../metering/money";
import { TEAM_FILE_MAX_BYTES } from "./regularFile";
import { isObject } from "../shared/isObject";
import { parseRedisUrl, teamKeyPrefix } from "./redisUrl";
import { redactUrl, TeamCaps, unreachableMessage, type History, type TeamCap, type TeamCapStatus, type TeamEngine, type TeamReserveRequest, type TeamReserveResult } from "./teamEngine";

const PICOS_PER_MICRO = 1_000_000n;
const KEEP_AFTER_WINDOW_S = 40 * 86_400;

/**
 * Whether a figure key holds something INCRBY/DECRBY would reject (a teammate's INCRBYFLOAT, a
 * hand edit, another type): its cap's state is unknown. Checked before a script writes anything,
 * since Redis does not roll a script back when a later command fails. INCRBY's own rule: "0", or
 * an optional "-" and digits not starting with 0 (18 at most: within a 64-bit integer).
 */
const UNREADABLE_FUNCTION = `
local function unreadable(key)
  local v = redis.pcall('GET', key)
  if v == false then return false end
  if type(v) ~= 'string' then return true end
  local digits = string.match(v, '^%-?([1-9]%d*)$')
  return not (v == '0' or (digits ~= nil and #digits <= 18))
end
`;

/**
 * Reserve (or extend) on every applicable cap, or refuse, as a Lua function: KEYS[k+1 ..] 4 per cap
 * (spent, reserved, holds, amounts), n caps; ARGV[a+1 ..]: callId, amount, leaseMs, mode,
 * limit×n, expireAt×n. Mode "reserve", "extend" (grow a hold) or "place" (a running call's hold
 * into windows it is not in yet, unchecked: the call is already admitted). Returns {1} (reserved),
 * {0, cap, spent, reserved} (over the limit) or {2, cap, key} (that cap's key holds no integer:
 * refused, nothing written).
 */
const RESERVE_FUNCTION = `
local function reserve(k, n, a)
  for i = 1, n do
    for j = 3, 2, -1 do
      if unreadable(KEYS[k+i*4-j]) then return {2, i, KEYS[k+i*4-j]} end
    end
  end
  local callId = ARGV[a+1]
  local amount = tonumber(ARGV[a+2])
  local lease = tonumber(ARGV[a+3])
  local mode = ARGV[a+4]
  local t = redis.call('TIME')
  local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = 1, n do
    local spentKey, reservedKey, holdsKey, amountsKey = KEYS[k+i*4-3], KEYS[k+i*4-2], KEYS[k+i*4-1], KEYS[k+i*4]
    local expired = redis.call('ZRANGEBYSCORE', holdsKey, '-inf', nowMs)
    for _, id in ipairs(expired) do
      local held = redis.call('HGET', amountsKey, id)
      if held then
        redis.call('DECRBY', reservedKey, held)
        redis.call('HDEL', amountsKey, id)
        -- Its gateway stopped renewing (crashed, asleep, cut off) while Bedrock may bill the call:
        -- charged what it held until its settle, or its journal's replay, books the real cost.
        redis.call('INCRBY', spentKey, held)
        redis.call('HINCRBY', amountsKey, 'lapsed:' .. id, held)
      end
      redis.call('ZREM', holdsKey, id)
    end
  end
  if mode == 'reserve' and n > 0 and redis.call('HEXISTS', KEYS[k+4], callId) == 1 then
    return {1}
  end
  for i = 1, n do
    local spent = tonumber(redis.call('GET', KEYS[k+i*4-3]) or '0')
    local reserved = tonumber(redis.call('GET', KEYS[k+i*4-2]) or '0')
    if mode ~= 'place' and spent + reserved + amount > tonumber(ARGV[a+4+i]) then
      return {0, i, spent, reserved}
    end
  end
  for i = 1, n do
    -- A placement retried after a lost reply must not hold twice.
    if mode ~= 'place' or redis.call('HEXISTS', KEYS[k+i*4], callId) == 0 then
      redis.call('INCRBY', KEYS[k+i*4-2], amount)
      redis.call('HINCRBY', KEYS[k+i*4], callId, amount)
      redis.call('ZADD', KEYS[k+i*4-1], nowMs + lease, callId)
      for j = 0, 3 do redis.call('EXPIREAT', KEYS[k+i*4-j], ARGV[a+4+n+i]) end
    end
  end
  return {1}
end
`;

/**
 * Settle (amount = micro-dollars) or release (amount = "release") one call, as a Lua function:
 * KEYS[k+1 ..] 5 per cap window (spent, reserved, holds, amounts, applied), n windows; each
 * window's expireAt at ARGV[a+i]. Returns how many windows counted it (0 when already applied),
 * and the first key that holds no integer (false: none). Such a window is left untouched, not
 * marked applied, so a journal replay once the key is fixed still counts the call there.
 */
const SETTLE_FUNCTION = `
local function settle(k, n, callId, amount, a)
  local applied, bad = 0, false
  for i = 1, n do
    local spentKey, reservedKey, holdsKey, amountsKey, appliedKey = KEYS[k+i*5-4], KEYS[k+i*5-3], KEYS[k+i*5-2], KEYS[k+i*5-1], KEYS[k+i*5]
    local broken = (unreadable(spentKey) and spentKey) or (unreadable(reservedKey) and reservedKey)
    if broken then
      if amount ~= 'release' then bad = bad or broken end
    else
      local held = redis.call('HGET', amountsKey, callId)
      if held then
        redis.call('DECRBY', reservedKey, held)
        redis.call('HDEL', amountsKey, callId)
        redis.call('ZREM', holdsKey, callId)
      end
      -- A hold whose lease lapsed was charged as spent (reserve): the real cost replaces that charge.
      local lapsed = tonumber(redis.call('HGET', amountsKey, 'lapsed:' .. callId) or '0')
      if amount ~= 'release' and redis.call('SADD', appliedKey, callId) == 1 then
        redis.call('INCRBY', spentKey, tonumber(amount) - lapsed)
        applied = applied + 1
      elseif amount == 'release' and lapsed > 0 then
        redis.call('DECRBY', spentKey, lapsed)
      end
      if lapsed > 0 then redis.call('HDEL', amountsKey, 'lapsed:' .. callId) end
      for j = 0, 4 do redis.call('EXPIREAT', KEYS[k+i*5-j], ARGV[a+i]) end
    end
  end
  return applied, bad
end
`;

/** Reserve (or extend), or refuse. KEYS: 4 per cap (spent, reserved, holds, amounts). ARGV: callId, amount, leaseMs, mode, limit×n, expireAt×n. */
export const RESERVE_LUA = `${UNREADABLE_FUNCTION}${RESERVE_FUNCTION}
return reserve(0, #KEYS / 4, 0)
`;

/**
 * Settle (ARGV[2] = micro-dollars) or release (ARGV[2] = "release"). KEYS: 5 per cap (spent, reserved, holds, amounts, applied). ARGV: callId, amount|release, expireAt×n.
 * An error reply when a window's key holds no integer: the caller marks the call for the journal replay.
 */
export const SETTLE_LUA = `${UNREADABLE_FUNCTION}${SETTLE_FUNCTION}
local applied, bad = settle(0, #KEYS / 5, ARGV[1], ARGV[2], 2)
if bad then return redis.error_reply(bad .. ' holds no integer; the call was not counted there') end
return applied
`;

/**
 * Settles earlier calls, then reserves: one script call for both (a reservation carries the
 * settles queued since the last one). ARGV[1]: the number of settles; then per settle callId,
 * amount|release, its window count w, expireAt×w (its keys first in KEYS, 5 per window); then
 * the reservation's ARGV and KEYS as RESERVE_LUA's. The settles go first, so the reservation is
 * checked against their real cost rather than their holds. Returns RESERVE_LUA's reply; when a
 * settle met a key that holds no integer, padded to 4 items and that key added as the 5th (the
 * caller marks the settles for the journal replay; the reservation stands on its own caps).
 */
export const SETTLE_THEN_RESERVE_LUA = `${UNREADABLE_FUNCTION}${SETTLE_FUNCTION}${RESERVE_FUNCTION}
local k, a, bad = 0, 1, false
for _ = 1, tonumber(ARGV[1]) do
  local w = tonumber(ARGV[a+3])
  local _, b = settle(k, w, ARGV[a+1], ARGV[a+2], a + 3)
  bad = bad or b
  k = k + 5 * w
  a = a + 3 + w
end
local r = reserve(k, (#KEYS - k) / 4, a)
if bad then return {r[1], r[2] or 0, r[3] or 0, r[4] or 0, bad} end
return r
`;

/** Extends the leases of calls still running. KEYS: holds ZSETs; ARGV: leaseMs, then one call id per key. */
export const RENEW_LUA = `
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', nowMs + tonumber(ARGV[1]), ARGV[i + 1]) end
return #KEYS
`;

interface ScriptClient {
  bbReserve(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<(number | string)[]>;
  bbSettleReserve(numKeys: number, ...keysAndArgs: string[]): Promise<(number | string)[]>;
  bbSettle(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
  bbRenew(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
}

/** The same scripts queued on a pipeline (replies come from exec()). */
interface ScriptPipeline {
  bbSettle(numKeys: number, ...keysAndArgs: string[]): unknown;
}

interface Hold {
  windows: { cap: TeamCap; base: string; end: Date }[];
  /** Micro-dollars held in each window (the reservation plus its extensions). */
  micros: bigint;
}

interface QueuedSettle {
  callId: string;
  windows: Hold["windows"];
  /** Micro-dollars, or "release" (a call that cost nothing). */
  amount: string;
}

/** The settles queued since the last send: `sent` resolves once they are out (taken or not). */
interface SettleBatch {
  settles: QueuedSettle[];
  sent: Promise<void>;
  resolve: () => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * How long a settle queued while other calls run waits for a reservation to carry it before it is
 * sent alone. Far below the 1 s at which gateways read the team's figures; meanwhile the call's
 * hold, never below its cost, keeps its place.
 */
const SETTLE_WAIT_MS = 10;
/** The most settles one reservation carries; a longer queue is sent at once, in one pipeline. */
const MAX_CARRIED = 16;

/**
 * The local journal's positions (the Ledger), so that a replay resumes past the last one instead
 * of re-sending the current windows' calls on every (re)connect. A position, not a time: a settle
 * journaled late (after a full disk) carries an earlier `at` but lies past the mark.
 */
export interface ReplayJournal {
  /** Where each month file's applied lines end now, with the last one's text. */
  appliedEnds(): ReadonlyMap<string, { end: number; line: string }>;
  /** The line of `month`'s file that ends at byte `end`, if the file still has one there. */
  lineEndingAt(month: string, end: number): Promise<string | undefined>;
  /** Settled calls with `at` >= since past `offsets` (a month it does not name: all of it). */
  settledSinceOffsets(since: Date, offsets: ReadonlyMap<string, number>): AsyncIterable<SettledCall>;
}

/** What the replay marker holds: the team caps it replayed for, and where in each journal file it read to. */
interface ReplayMark {
  caps: string;
  months: Record<string, { end: number; sha: string }>;
}

export interface RedisStoreOptions {
  url: string;
  team: string;
  writer: string;
  history: History;
  /** Absent: every replay reads the current windows whole. */
  journal?: ReplayJournal;
  log: Logger;
  now: () => Date;
  unavailable: "block" | "personalOnly";
  leaseMs?: number;
  refreshMs?: number;
  /** SETTLE_WAIT_MS unless set (tests). */
  settleWaitMs?: number;
}

export function toMicros(picos: Picos): bigint {
  return ceilDiv(picos, PICOS_PER_MICRO);
}

export class RedisTeamEngine implements TeamEngine {
  readonly source = "redis" as const;
  private readonly caps = new TeamCaps();
  private readonly client: Redis | Cluster;
  private readonly prefix: string;
  private readonly holds = new Map<string, Hold>();
  /** Per cap, its current window's figures; undefined where the key holds no integer. */
  private readonly figures = new Map<string, { base: string; spent: bigint | undefined; reserved: bigint | undefined }>();
  /** The figure keys last found holding no integer (warned once per set). */
  private unreadableKeys = "";
  private lastRefresh: Date | undefined;
  private teamText: string | undefined;
  /** Why the last team.json read was refused (logged once per reason). */
  private teamRefusal: string | undefined;
  private teamRead = false;
  /** Bumped by setCaps: a reservation in flight across it may hold in windows no longer current. */
  private capsGeneration = 0;
  /** False from a window change until every running call's hold is in the new windows. */
  private holdsPlaced = true;
  private placing: Promise<boolean> | undefined;
  private readonly listeners: ((text: string | undefined) => void)[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private replaying: Promise<void> | undefined;
  private needsReplay = true;
  /**
   * True from each (re)connect, or a store found without this gateway's replay marker, until a
   * replay ends: until then the store's figures may lack this journal's calls (a Redis restarted
   * empty), so team reservations wait for the replay.
   */
  private rebuilding = true;
  /** Set on a reconnect: running calls' holds may be gone with a Redis restarted empty, and are put back in every window. */
  private holdsLost = false;
  /** Until setCaps, a replay would have no windows to send to and would record a marker for no caps. */
  private capsKnown = false;
  private readonly pending = new Set<Promise<void>>();
  private settleBatch: SettleBatch | undefined;
  private closed = false;
  private connected = false;
  private readonly leaseMs: number;
  private readonly refreshMs: number;
  private readonly settleWaitMs: number;
  readonly where: string;

  private constructor(private readonly o: RedisStoreOptions) {
    this.prefix = teamKeyPrefix(o.team);
    this.leaseMs = o.leaseMs ?? 120_000;
    this.refreshMs = o.refreshMs ?? 1000;
    this.settleWaitMs = o.settleWaitMs ?? SETTLE_WAIT_MS;
    this.where = redactUrl(o.url);
    this.client = connect(o.url);
    for (const [name, lua] of [["bbReserve", RESERVE_LUA], ["bbSettle", SETTLE_LUA], ["bbSettleReserve", SETTLE_THEN_RESERVE_LUA], ["bbRenew", RENEW_LUA]] as const) {
      this.client.defineCommand(name, { lua });
    }
    this.client.on("error", (err: Error) => o.log.debug(`team ledger ${this.where}: ${err.message}`));
    this.client.on("ready", () => {
      if (!this.connected) o.log.info(`team ledger ${this.where} connected`);
      this.connected = true;
      this.needsReplay = true; // whatever settled meanwhile, or a store that came back empty
      this.rebuilding = true;
      // A store that came back empty lost the running calls' holds too: put back before the next reservation.
      if (this.holds.size > 0) {
        this.holdsLost = true;
        this.holdsPlaced = false;
        this.capsGeneration++; // a placement under way started before this: it goes round again
      }
      void this.refresh();
    });
    this.client.on("close", () => {
      if (this.connected && !this.closed) o.log.warn(`team ledger ${this.where} unreachable; team caps follow teamUnavailable: "${o.unavailable}"`);
      this.connected = false;
    });
  }

  /** Connects (waiting up to ~2 s: a store that is down does not stop the gateway from starting). */
  static async open(o: RedisStoreOptions): Promise<RedisTeamEngine> {
    const store = new RedisTeamEngine(o);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      if (store.isReady()) return done();
      store.client.once("ready", done);
    });
    // team.json read before the first call: until it is, its caps are unknown (TeamRuntime.unusable).
    await store.refresh();
    store.refreshTimer = setInterval(() => void store.refresh(), store.refreshMs);
    store.refreshTimer.unref();
    store.renewTimer = setInterval(() => void store.renew(), Math.max(1000, Math.floor(store.leaseMs / 4)));
    store.renewTimer.unref();
    return store;
  }

  async setCaps(caps: CapConfig[], timeZone: string): Promise<void> {
    this.caps.set(caps, timeZone);
    this.capsKnown = true;
    this.capsGeneration++;
    this.needsReplay = true; // new caps: contribute this machine's journal to them
    // A new zone or window gives caps new windows (new keys): running calls' holds follow them there,
    // else reservations in the new windows are checked without them. Until then reserve() waits.
    this.holdsPlaced = false;
    await this.placeHolds();
    await this.refresh();
  }

  /**
   * Places every running call's hold in its caps' current windows it is not in yet (keeping the
   * old ones, which its settle or release clears). Shared while running; true once all are placed.
   */
  private placeHolds(): Promise<boolean> {
    if (this.holdsPlaced) return Promise.resolve(true);
    if (!this.placing) {
      const placing = (async () => {
        let placed = false;
        // Again if the windows changed meanwhile (a few rounds at most: setCaps follows team.json edits).
        for (let round = 0; round < 5 && !placed; round++) {
          const generation = this.capsGeneration;
          const everywhere = this.holdsLost;
          placed = true;
          for (const [callId, hold] of [...this.holds]) placed = (await this.placeHold(callId, hold, everywhere)) && placed;
          if (!placed) break;
          placed = generation === this.capsGeneration;
          if (placed && everywhere) this.holdsLost = false;
        }
        this.holdsPlaced = placed;
        return placed;
      })();
      // Cleared once done (not inside the function: with no hold it finishes before it is stored).
      const clear = () => {
        if (this.placing === placing) this.placing = undefined;
      };
      placing.then(clear, clear);
      this.placing = placing;
    }
    return this.placing;
  }

  /**
   * One hold into the current windows of its caps, and with `everywhere` back into the windows it
   * holds already (after a reconnect: a Redis restarted empty lost it; where the store still has
   * it, placing is a no-op); false when the store did not take it.
   */
  private async placeHold(callId: string, hold: Hold, everywhere = false): Promise<boolean> {
    const ids = [...new Set(hold.windows.map((w) => w.cap.id))];
    const fresh = this.windowsOf(ids, this.o.now()).filter((w) => !hold.windows.some((h) => h.base === w.base));
    const missing = everywhere ? [...hold.windows, ...fresh] : fresh;
    if (missing.length === 0) return true;
    if (!this.isReady()) return false;
    const keys = missing.flatMap((w) => [`${w.base}:spent`, `${w.base}:reserved`, `${w.base}:holds`, `${w.base}:amounts`]);
    const args = [callId, String(hold.micros), String(this.leaseMs), "place", ...missing.map((w) => String(w.cap.limit / PICOS_PER_MICRO)), ...missing.map((w) => String(expireAt(w.end)))];
    try {
      const r = await this.scripts().bbReserve(keys.length, ...keys, ...args);
      if (Number(r[0]) !== 1) throw new Error(`${String(r[2])} holds no integer`);
    } catch (err) {
      this.o.log.warn(`team ledger ${this.where}: could not place running call ${callId}'s hold ${everywhere ? "back after a reconnect" : "in its caps' new windows"} (${(err as Error).message}); team reservations wait until it is`);
      return false;
    }
    if (this.holds.get(callId) === hold) hold.windows.push(...fresh);
    else void this.dropHold(callId, missing); // it settled meanwhile
    return true;
  }

  applicable(subject: CallSubject): string[] {
    return this.caps.applicable(subject);
  }

  async reserve(req: TeamReserveRequest): Promise<TeamReserveResult> {
    if (!this.isReady()) return this.unavailable(req.capIds);
    // Checked against every running call's hold: refused while some could not be moved to new windows.
    if (!(await this.placeHolds())) {
      if (!this.isReady()) return this.unavailable(req.capIds);
      return { ok: false, capId: req.capIds[0]!, message: `Bedrock Budget refused this call: the team caps' windows changed (time zone or window), and the reservations of calls still running could not be moved to the new windows in the team ledger (${this.where}), so team cap ${req.capIds.map((id) => `"${id}"`).join(", ")} cannot be checked. See the gateway's log; retry in a moment.` };
    }
    // Reconnected (or the store lost this gateway's marker): its figures count this journal only once the replay is done.
    if (this.rebuilding) {
      await (this.replaying ?? this.refresh());
      if (this.rebuilding) {
        if (!this.isReady() || this.o.unavailable === "personalOnly") return this.unavailable(req.capIds);
        return { ok: false, capId: req.capIds[0]!, message: `Bedrock Budget refused this call: the team ledger (${this.where}) was reached again, and this machine's journal has not yet been counted into it (a Redis that restarted empty holds none of it), so team cap ${req.capIds.map((id) => `"${id}"`).join(", ")} cannot be checked. See the gateway's log; retry in a moment.` };
      }
    }
    const generation = this.capsGeneration;
    const windows = this.windowsOf(req.capIds, req.now);
    const amount = toMicros(req.amount);
    const keys = windows.flatMap((w) => [`${w.base}:spent`, `${w.base}:reserved`, `${w.base}:holds`, `${w.base}:amounts`]);
    const args = [req.callId, String(amount), String(this.leaseMs), "reserve", ...windows.map((w) => String(w.cap.limit / PICOS_PER_MICRO)), ...windows.map((w) => String(expireAt(w.end)))];
    // The settles queued since the last reservation ride in its script: one round trip for both.
    const carried = this.takeSettles();
    let result: (number | string)[];
    try {
      result = carried
        ? await this.scripts().bbSettleReserve(...settleThenReserveArgs(carried.settles, keys, args))
        : await this.scripts().bbReserve(keys.length, ...keys, ...args);
    } catch (err) {
      const why = (err as Error).message;
      this.o.log.warn(`team ledger ${this.where}: reserve failed: ${why}`);
      if (carried) this.settlesLost(carried.settles, why);
      void this.dropHold(req.callId, windows); // it may have run before the reply was lost
      return this.unavailable(req.capIds);
    } finally {
      carried?.resolve();
    }
    // A carried settle met a key that holds no integer: not counted there, so the replay must.
    if (carried && result.length > 4) this.settlesLost(carried.settles, `${String(result[4])} holds no integer`);
    if (Number(result[0]) === 1) {
      const hold: Hold = { windows, micros: amount };
      this.holds.set(req.callId, hold);
      // The windows changed while it was reserved: setCaps's placement did not see this hold.
      if (generation !== this.capsGeneration && !(await this.placeHold(req.callId, hold))) this.holdsPlaced = false;
      return { ok: true, capIds: req.capIds };
    }
    const w = windows[Number(result[1]) - 1]!;
    if (Number(result[0]) === 2) return { ok: false, capId: w.cap.id, message: this.unreadableMessage(w.cap.id, String(result[2])) };
    const refusal: Refusal = {
      capId: w.cap.id,
      scope: "team",
      window: w.cap.cap.window,
      limitPicos: w.cap.limit,
      spentPicos: BigInt(result[2]!) * PICOS_PER_MICRO,
      reservedPicos: BigInt(result[3]!) * PICOS_PER_MICRO,
      worstCasePicos: req.amount,
      resetsAt: w.end,
    };
    return { ok: false, capId: w.cap.id, refusal, message: refusalMessage(refusal, this.caps.timeZone) };
  }

  async extend(callId: string, extra: Picos, _now: Date): Promise<{ ok: true } | { ok: false; message: string }> {
    const hold = this.holds.get(callId);
    if (!hold) return { ok: true }; // unchecked calls stay unchecked; settle counts them
    if (!this.isReady()) return this.growthUnchecked(hold);
    const keys = hold.windows.flatMap((w) => [`${w.base}:spent`, `${w.base}:reserved`, `${w.base}:holds`, `${w.base}:amounts`]);
    const args = [callId, String(toMicros(extra)), String(this.leaseMs), "extend", ...hold.windows.map((w) => String(w.cap.limit / PICOS_PER_MICRO)), ...hold.windows.map((w) => String(expireAt(w.end)))];
    try {
      const r = await this.scripts().bbReserve(keys.length, ...keys, ...args);
      if (Number(r[0]) === 1) {
        hold.micros += toMicros(extra);
        return { ok: true };
      }
      const w = hold.windows[Number(r[1]) - 1]!;
      if (Number(r[0]) === 2) return { ok: false, message: this.unreadableMessage(w.cap.id, String(r[2])) };
      const refusal: Refusal = {
        capId: w.cap.id, scope: "team", window: w.cap.cap.window, limitPicos: w.cap.limit,
        spentPicos: BigInt(r[2]!) * PICOS_PER_MICRO, reservedPicos: BigInt(r[3]!) * PICOS_PER_MICRO, worstCasePicos: extra, resetsAt: w.end,
      };
      return { ok: false, message: refusalMessage(refusal, this.caps.timeZone) };
    } catch {
      return this.growthUnchecked(hold);
    }
  }

  /** A running call's growth the store could not check: stopped (teamUnavailable "block") as a new call would be, else it goes on under the personal caps. */
  private growthUnchecked(hold: Hold): { ok: true } | { ok: false; message: string } {
    const r = this.unavailable([...new Set(hold.windows.map((w) => w.cap.id))]);
    return r.ok ? { ok: true } : { ok: false, message: r.message };
  }

  /**
   * Books a journaled call, after the caller's answer, not on its path. While other calls run, more
   * reservations are coming: the settle is queued, and the next reservation carries it in its own
   * script call (SETTLE_THEN_RESERVE_LUA); one not carried within SETTLE_WAIT_MS, or a queue longer
   * than MAX_CARRIED, is sent alone. With no other call running it is sent after this turn's
   * answers: carried, its Redis work would land on the next caller's path instead of beside it.
   * Until it lands the call's hold, never below its cost, keeps its place.
   */
  settle(record: SettledCall): Promise<void> {
    const hold = this.holds.get(record.id);
    this.holds.delete(record.id);
    const applicable = this.windowsOf(this.caps.applicable(record.answeredBy === undefined ? record : { ...record, modelId: cappedModelId(record) }), new Date(record.startedAt));
    // Its held windows, and any team cap that came while it ran: the replay that counted that cap's
    // window read the journal before this call's line, so only this settle can count it there.
    const held = hold?.windows ?? [];
    const windows = [...held, ...applicable.filter((w) => !held.some((h) => h.base === w.base))];
    if (windows.length === 0) return Promise.resolve();
    const amount = BigInt(record.costPicos);
    const batch = this.settleBatch ?? this.openBatch(this.holds.size > 0);
    batch.settles.push({ callId: record.id, windows, amount: amount > 0n ? String(toMicros(amount)) : "release" });
    if (batch.settles.length === MAX_CARRIED + 1) {
      // Too many for a reservation to carry: out after this turn's answers, as one pipeline.
      clearTimeout(batch.timer);
      batch.timer = undefined;
      setImmediate(() => void this.sendSettles(batch));
    }
    return batch.sent;
  }

  /** `othersRunning`: wait for a reservation to carry the batch, else send it after this turn. */
  private openBatch(othersRunning: boolean): SettleBatch {
    let resolve!: () => void;
    const sent = new Promise<void>((r) => (resolve = r));
    const batch: SettleBatch = { settles: [], sent, resolve, timer: undefined };
    if (othersRunning) batch.timer = setTimeout(() => void this.sendSettles(batch), this.settleWaitMs);
    else setImmediate(() => void this.sendSettles(batch)); // a reservation in this turn may still take it
    this.settleBatch = batch;
    this.pending.add(sent);
    void sent.then(() => this.pending.delete(sent));
    return batch;
  }

  /** The queued settles for a reservation to carry, if few enough; the caller resolves them once its script is answered. */
  private takeSettles(): SettleBatch | undefined {
    const batch = this.settleBatch;
    if (!batch || batch.settles.length > MAX_CARRIED) return undefined;
    clearTimeout(batch.timer);
    this.settleBatch = undefined;
    return batch;
  }

  /** Sends a batch no reservation carried; settles the store did not take are replayed from the journal. */
  private async sendSettles(batch: SettleBatch): Promise<void> {
    if (this.settleBatch !== batch) return; // a reservation took it meanwhile
    clearTimeout(batch.timer);
    this.settleBatch = undefined;
    const queued = batch.settles;
    try {
      if (!this.isReady()) {
        this.needsReplay = true;
        return;
      }
      let lost: QueuedSettle[] = [];
      let why = "";
      try {
        if (queued.length === 1) {
          // Alone (one caller, no call since): the command itself, without a pipeline to build.
          await this.runSettle(queued[0]!.callId, queued[0]!.windows, queued[0]!.amount);
        } else {
          const pipeline = this.client.pipeline();
          for (const s of queued) (pipeline as unknown as ScriptPipeline).bbSettle(...settleArgs(s));
          const replies = (await pipeline.exec()) ?? [];
          lost = queued.filter((_, i) => !replies[i] || replies[i]![0]);
          why = replies.find(([err]) => err)?.[0]?.message ?? "no reply";
        }
      } catch (err) {
        lost = queued;
        why = (err as Error).message;
      }
      this.settlesLost(lost, why);
    } finally {
      batch.resolve();
    }
  }

  /** One line for the batch (an outage under load fails many at once); the journal replay books them. */
  private settlesLost(lost: QueuedSettle[], why: string): void {
    if (lost.length === 0) return;
    this.o.log.warn(`team ledger ${this.where}: settle of ${lost.length === 1 ? lost[0]!.callId : `${lost.length} calls (${lost[0]!.callId}, …)`} failed (${why}); replayed from the journal when the store answers`);
    this.needsReplay = true;
  }

  async release(callId: string): Promise<void> {
    const hold = this.holds.get(callId);
    this.holds.delete(callId);
    if (hold) await this.dropHold(callId, hold.windows);
  }

  status(now: Date): TeamCapStatus[] {
    const asOf = (this.lastRefresh ?? new Date(0)).toISOString();
    const stale = !this.isReady() || !this.lastRefresh || now.getTime() - this.lastRefresh.getTime() > 3 * this.refreshMs + 2000;
    return this.caps.all().map((cap) => {
      const b = this.caps.bounds(cap, now);
      const f = this.figures.get(cap.id);
      const current = f && f.base === this.base(cap, b.start);
      const s: TeamCapStatus = {
        id: cap.id,
        scope: "team",
        window: cap.cap.window,
        limitPicos: cap.limit,
        spentPicos: current ? (f.spent ?? 0n) * PICOS_PER_MICRO : 0n,
        reservedPicos: current ? (f.reserved ?? 0n) * PICOS_PER_MICRO : 0n,
        windowStart: b.start,
        resetsAt: b.end,
        // A figure that cannot be read is shown as not current, not as $0 spent.
        team: { source: "redis", asOf, stale: stale || (current === true && (f.spent === undefined || f.reserved === undefined)) },
      };
      Object.assign(s, capScopeFields(cap.cap));
      return s;
    });
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

  /** Reads the current figures (and team.json, and whether the store lost this gateway's replay). */
  async refresh(): Promise<void> {
    if (this.closed || !this.isReady()) return;
    const now = this.o.now();
    const caps = this.caps.all().map((cap) => ({ cap, base: this.base(cap, this.caps.bounds(cap, now).start) }));
    const teamKey = `${this.prefix}:team.json`;
    let unreadable: string[];
    try {
      const pipe = this.client.pipeline();
      // EXISTS: an empty value is a team.json (invalid), not its absence; STRLEN and GETRANGE answer alike for both.
      pipe.exists(teamKey);
      // The same bound as the folder's team.json: a huge value must not be pulled into memory on every poll.
      pipe.strlen(teamKey);
      pipe.getrange(teamKey, 0, TEAM_FILE_MAX_BYTES);
      pipe.exists(this.marker());
      for (const c of caps) pipe.get(`${c.base}:spent`).get(`${c.base}:reserved`);
      const replies = (await pipe.exec()) ?? [];
      const value = (i: number) => {
        const [err, v] = replies[i] ?? [new Error("no reply")];
        if (err) throw err;
        return v;
      };
      const exists = Number(value(0)) > 0;
      const length = Number(value(1));
      const text = exists ? (value(2) as string) : undefined;
      const markerExists = Number(value(3)) > 0;
      // team.json before the figures: a figure that cannot be read must not stop a team.json change.
      this.teamRead = true;
      if (length > TEAM_FILE_MAX_BYTES) {
        const why = `${length} bytes, over the ${TEAM_FILE_MAX_BYTES}-byte limit`;
        if (why !== this.teamRefusal) this.o.log.error(`team ledger ${this.where}: not reading ${teamKey}: ${why}; the last good team.json stays in force`);
        this.teamRefusal = why;
      } else {
        this.teamRefusal = undefined;
        if (text !== this.teamText) {
          this.teamText = text;
          for (const l of this.listeners) l(text);
        }
      }
      if (!markerExists) this.needsReplay = this.rebuilding = true;
      // Each figure on its own: one that holds no integer makes its cap's state unknown, not the others'.
      unreadable = [];
      caps.forEach((c, i) => {
        const [spent, reserved] = [figure(replies[4 + 2 * i]), figure(replies[5 + 2 * i])];
        if (spent === undefined) unreadable.push(`${c.base}:spent`);
        if (reserved === undefined) unreadable.push(`${c.base}:reserved`);
        this.figures.set(c.cap.id, { base: c.base, spent, reserved });
      });
      this.lastRefresh = this.o.now();
    } catch (err) {
      this.o.log.debug(`team ledger ${this.where}: refresh failed: ${(err as Error).message}`);
      return;
    }
    const keys = unreadable.join(", ");
    if (keys !== this.unreadableKeys && keys !== "") {
      this.o.log.warn(`team ledger ${this.where}: ${keys} ${unreadable.length === 1 ? "holds" : "hold"} no integer (the gateways write whole micro-dollars only); calls that need ${unreadable.length === 1 ? "that cap" : "those caps"} are refused until ${unreadable.length === 1 ? "it is" : "they are"} set to a whole number of micro-dollars`);
    }
    this.unreadableKeys = keys;
    // While a window's key holds no integer its settles fail, and a replay would only fail and retry
    // every poll: it waits until the key is fixed, then counts what was not counted meanwhile.
    if (this.needsReplay && this.capsKnown && keys === "") await this.replay();
  }

  /**
   * Re-contributes this gateway's journal (current windows) to the store; idempotent by call id.
   * It reads past the journal positions the last replay recorded in the marker when the marker is
   * for the same caps and every file still holds the line it recorded there; else the windows
   * whole. Every line before the positions it records was sent, by it or by an earlier replay.
   */
  replay(): Promise<void> {
    if (this.replaying) return this.replaying;
    this.replaying = (async () => {
      this.needsReplay = false;
      try {
        const now = this.o.now();
        const since = this.caps.earliestStart(now);
        const caps = capsKey(this.caps.all().map((c) => c.cap), this.caps.timeZone);
        const journal = this.o.journal;
        const upTo = journal?.appliedEnds(); // before reading: the read below goes at least this far
        const from = journal && since ? await this.resumeFrom(journal, caps) : undefined;
        let count = 0;
        if (since) {
          const current = new Map(this.caps.all().map((c) => [c.id, this.caps.bounds(c, now).start.getTime()]));
          let batch: Promise<unknown>[] = [];
          count = await replaySettled(
            from ? journal!.settledSinceOffsets(since, from) : this.o.history(since),
            // Only calls of each cap's current window: the store keeps nothing older.
            (call, at) => this.caps.applicable(call).filter((c) => this.caps.bounds(this.caps.get(c)!, at).start.getTime() === current.get(c)),
            ({ id, amount, at, capIds }) => {
              batch.push(this.runSettle(id, this.windowsOf(capIds, at), String(toMicros(amount))));
              if (batch.length < 200) return;
              const full = batch;
              batch = [];
              return Promise.all(full);
            },
          );
          await Promise.all(batch);
        }
        const mark: ReplayMark = { caps, months: Object.fromEntries([...(upTo ?? [])].map(([month, { end, line }]) => [month, { end, sha: sha256(line) }])) };
        await this.client.set(this.marker(), JSON.stringify(mark), "EX", KEEP_AFTER_WINDOW_S);
        // Rebuilt, unless something asked for another replay meanwhile (a reconnect, a lost settle).
        if (!this.needsReplay) this.rebuilding = false;
        this.o.log.info(`team ledger ${this.where}: journal replayed (${count} settled calls of the current windows${from ? ", past the last replay" : ""})`);
      } catch (err) {
        this.needsReplay = true;
        this.o.log.warn(`team ledger ${this.where}: journal replay failed (${(err as Error).message}); will retry`);
      } finally {
        this.replaying = undefined;
      }
    })();
    return this.replaying;
  }

  /** Where the last replay read to, if its marker is for these caps and the journal still holds what it read there. */
  private async resumeFrom(journal: ReplayJournal, caps: string): Promise<Map<string, number> | undefined> {
    const text = await this.client.get(this.marker());
    const mark = parseMark(text);
    if (!mark || mark.caps !== caps) return undefined;
    const from = new Map<string, number>();
    for (const [month, { end, sha }] of Object.entries(mark.months)) {
      const line = await journal.lineEndingAt(month, end);
      if (line === undefined || sha256(line) !== sha) return undefined; // rewritten or cut short: read the windows whole
      from.set(month, end);
    }
    return from;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.refreshTimer);
    clearInterval(this.renewTimer);
    if (this.settleBatch) void this.sendSettles(this.settleBatch); // no reservation will come to carry them
    await Promise.allSettled([...this.pending]);
    await this.replaying;
    await Promise.race([this.client.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.client.disconnect();
  }

  isReady(): boolean {
    return this.client.status === "ready";
  }

  /** Refusal text for a cap whose figure key holds no integer (whatever teamUnavailable says: the store answers, its figure cannot be trusted). */
  private unreadableMessage(capId: string, key: string): string {
    return (
      `Bedrock Budget refused this call: team cap "${capId}" cannot be checked, because the team ledger (${this.where}) ` +
      `holds a value that is not an integer at ${key} (the gateways write whole micro-dollars only). ` +
      `Set that key to a whole number of micro-dollars (round the figure up, e.g. with redis-cli SET); calls are admitted again at once.`
    );
  }

  private unavailable(capIds: string[]): TeamReserveResult {
    if (this.o.unavailable === "personalOnly") return { ok: true, capIds, unchecked: true };
    return { ok: false, capId: capIds[0]!, message: unreachableMessage(this.where, capIds) };
  }

  private windowsOf(capIds: string[], at: Date): Hold["windows"] {
    return capIds.flatMap((id) => {
      const cap = this.caps.get(id);
      if (!cap) return [];
      const b = this.caps.bounds(cap, at);
      return [{ cap, base: this.base(cap, b.start), end: b.end }];
    });
  }

  private base(cap: TeamCap, start: Date): string {
    return `${this.prefix}:w:${cap.id}:${start.getTime()}`;
  }

  private marker(): string {
    return `${this.prefix}:replayed:${this.o.writer}`;
  }

  private scripts(): ScriptClient {
    return this.client as unknown as ScriptClient;
  }

  private runSettle(callId: string, windows: Hold["windows"], amount: string): Promise<number> {
    return this.scripts().bbSettle(...settleArgs({ callId, windows, amount }));
  }

  private async dropHold(callId: string, windows: Hold["windows"]): Promise<void> {
    if (windows.length === 0 || !this.isReady()) return; // the lease will lapse
    await this.runSettle(callId, windows, "release").catch(() => undefined);
  }

  private async renew(): Promise<void> {
    if (this.holds.size === 0 || !this.isReady()) return;
    const keys: string[] = [];
    const ids: string[] = [];
    for (const [id, hold] of this.holds) for (const w of hold.windows) {
      keys.push(`${w.base}:holds`);
      ids.push(id);
    }
    await this.scripts().bbRenew(keys.length, ...keys, String(this.leaseMs), ...ids).catch(() => undefined);
  }
}

/** The settle script's key count, keys and arguments for one call (ARGV[2]: micro-dollars, or "release"). */
function settleArgs(s: QueuedSettle): [number, ...string[]] {
  const keys = s.windows.flatMap(settleKeys);
  return [keys.length, ...keys, s.callId, s.amount, ...s.windows.map((w) => String(expireAt(w.end)))];
}

/** SETTLE_THEN_RESERVE_LUA's key count, keys and arguments: the settles', then the reservation's. */
function settleThenReserveArgs(settles: QueuedSettle[], reserveKeys: string[], reserveArgs: string[]): [number, ...string[]] {
  const keys: string[] = [];
  const args = [String(settles.length)];
  for (const s of settles) {
    keys.push(...s.windows.flatMap(settleKeys));
    args.push(s.callId, s.amount, String(s.windows.length), ...s.windows.map((w) => String(expireAt(w.end))));
  }
  keys.push(...reserveKeys);
  return [keys.length, ...keys, ...args, ...reserveArgs];
}

function settleKeys(w: Hold["windows"][number]): string[] {
  return [`${w.base}:spent`, `${w.base}:reserved`, `${w.base}:holds`, `${w.base}:amounts`, `${w.base}:applied`];
}

/** Which team caps a replay was for: their settings and time zone decide which calls count in which windows. */
function capsKey(caps: CapConfig[], timeZone: string): string {
  return sha256(JSON.stringify({ timeZone, caps }));
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A replay marker's value, or undefined for one from an earlier version (a date) or anything unreadable. */
function parseMark(text: string | null): ReplayMark | undefined {
  if (text === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(value) || typeof value.caps !== "string" || !isObject(value.months)) return undefined;
  // The store is shared: a month names a file of this machine's journal only in its own form.
  for (const [month, m] of Object.entries(value.months)) {
    if (!/^\d{4}-\d{2}$/.test(month) || !isObject(m) || !Number.isSafeInteger(m.end) || (m.end as number) < 0 || typeof m.sha !== "string") return undefined;
  }
  return value as unknown as ReplayMark;
}

/** A figure key's value as INCRBY reads it (absent: 0), or undefined when it holds no integer or could not be read. */
function figure(reply: [Error | null, unknown] | undefined): bigint | undefined {
  if (!reply || reply[0]) return undefined;
  const v = reply[1];
  if (v === null || v === undefined) return 0n;
  return typeof v === "string" && /^(0|-?[1-9]\d{0,17})$/.test(v) ? BigInt(v) : undefined;
}

function expireAt(windowEnd: Date): number {
  return Math.floor(windowEnd.getTime() / 1000) + KEEP_AFTER_WINDOW_S;
}

/** A maintained client with reconnects; commands fail fast instead of queueing while offline. */
function connect(url: string): Redis | Cluster {
  const t = parseRedisUrl(url);
  const common: RedisOptions = {
    enableOfflineQueue: false,
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
  };
  if (t.kind === "cluster") {
    return new Cluster(t.nodes, {
      enableOfflineQueue: false,
      scaleReads: "master",
      slotsRefreshTimeout: 1000,
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      redisOptions: common,
      ...(t.tls ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) } : {}),
    });
  }
  if (t.kind === "sentinel") {
    return new Redis({
      ...common,
      sentinels: t.nodes,
      name: t.sentinelName!,
      ...(t.db !== undefined ? { db: t.db } : {}),
      ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
      ...(t.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
    });
  }
  return new Redis({ ...common, host: t.nodes[0]!.host, port: t.nodes[0]!.port, ...(t.db !== undefined ? { db: t.db } : {}) });
}
