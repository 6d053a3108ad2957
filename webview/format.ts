/** Display formatting (the gateway sends floats for display next to exact strings). */

/** What a figure that is no amount (NaN, infinite) shows instead of "$NaN" or "$∞". */
export const NO_AMOUNT = "n/a";

/**
 * `digits` significant digits in plain decimals: toPrecision and String() switch to exponent
 * notation below 1e-6 ("$2.5e-7"), which reads as a typo for a real one-token cost.
 */
function significant(abs: number, digits: number, keepZeros: boolean): string {
  return abs.toLocaleString("en-US", { maximumSignificantDigits: digits, ...(keepZeros ? { minimumSignificantDigits: digits } : {}), useGrouping: false });
}

export function usd(value: number): string {
  if (!Number.isFinite(value)) return NO_AMOUNT;
  const abs = Math.abs(value);
  const sign = value < 0 ? "-" : "";
  if (abs === 0) return "$0.00";
  if (abs < 0.01) return `${sign}$${significant(abs, 2, true)}`;
  if (abs >= 10_000) return `${sign}$${Math.round(abs).toLocaleString("en-US")}`;
  return `${sign}$${abs.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** Exact-ish cost of one call: enough digits to be non-zero. */
export function usdPrecise(value: number): string {
  if (!Number.isFinite(value)) return NO_AMOUNT;
  const abs = Math.abs(value);
  const sign = value < 0 ? "-" : ""; // a credit must not read as a charge
  if (abs === 0) return "$0";
  if (abs < 0.01) return `${sign}$${significant(abs, 3, false)}`;
  return `${sign}$${abs.toFixed(4).replace(/0{1,2}$/, "")}`;
}

export function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n.toLocaleString("en-US");
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function fmt(timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = timeZone + JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat("en-GB", { ...options, timeZone });
    } catch {
      f = new Intl.DateTimeFormat("en-GB", options);
    }
    formatters.set(key, f);
  }
  return f;
}

/** "14:05:09" today, "Mon 18 Nov 14:05" otherwise. */
export function callTime(iso: string, timeZone: string, now = new Date()): string {
  const d = new Date(iso);
  const day = fmt(timeZone, { year: "numeric", month: "2-digit", day: "2-digit" });
  if (day.format(d) === day.format(now)) return fmt(timeZone, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(d);
  return fmt(timeZone, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(d);
}

/** "2026-11-30": the local date in `timeZone` (file names; a UTC date is the day before east of UTC). */
export function localDate(iso: string, timeZone: string): string {
  const parts = fmt(timeZone, { year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date(iso));
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("year")}-${part("month")}-${part("day")}`;
}

/** "Tue 19 Nov, 00:00" */
export function dateTime(iso: string | number, timeZone: string): string {
  return fmt(timeZone, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
}

export function axisTime(ms: number, timeZone: string, window: "day" | "week" | "month"): string {
  if (window === "day") return fmt(timeZone, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(ms));
  if (window === "week") return fmt(timeZone, { weekday: "short", day: "numeric" }).format(new Date(ms));
  return fmt(timeZone, { day: "numeric", month: "short" }).format(new Date(ms));
}

/** "in 3 h 20 min", "in 2 days" */
export function relative(targetMs: number, nowMs: number): string {
  const min = Math.round((targetMs - nowMs) / 60_000);
  if (min <= 0) return "now";
  if (min < 60) return `in ${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `in ${h} h${min % 60 && h < 10 ? ` ${min % 60} min` : ""}`;
  return `in ${Math.round(h / 24)} days`;
}

/** Short model label: profile prefix and version suffix dropped ("anthropic.claude-sonnet-4-5-20250929-v1:0" → "claude-sonnet-4-5"). */
export function modelLabel(id: string): string {
  const base = id.replace(/^(global|us|eu|apac|us-gov|jp|au|ca)\./, "");
  const name = base.includes(".") ? base.slice(base.indexOf(".") + 1) : base;
  return name.replace(/-\d{8}(-v\d+(:\d+)?)?$/, "").replace(/-v\d+(:\d+)?$/, "").replace(/:\d+$/, "");
}
