/**
 * The system's IANA time zone, for when the settings name none. ICU names no zone when `TZ` is not
 * a zone name (`TZ=:/etc/localtime`, a POSIX rule such as `UTC+3`); dates still follow that
 * zone, but the windows' label, the ledger's checkpoints and the team's keys need its name, and
 * read "undefined" without one.
 */
import { realpathSync } from "node:fs";
import { localParts } from "../budget/windows";
import { isTimeZone } from "./schema";

export interface SystemZoneFacts {
  /** What ICU resolved (`Intl.DateTimeFormat().resolvedOptions().timeZone`); undefined when it named none. */
  resolved: string | undefined;
  /** The `TZ` environment variable. */
  tz: string | undefined;
  /** Minutes behind UTC at an instant in the zone dates follow (`Date#getTimezoneOffset`). */
  offsetAt(at: Date): number;
  /** The file a path ends at, symbolic links followed. */
  realPath(file: string): string;
}

const processFacts = (): SystemZoneFacts => ({
  resolved: Intl.DateTimeFormat().resolvedOptions().timeZone as string | undefined,
  tz: process.env.TZ,
  offsetAt: (at) => at.getTimezoneOffset(),
  realPath: (file) => realpathSync(file),
});

/** `std offset` with no daylight rule: `UTC+3`, `<+0530>-5`, `GMT0`. */
const POSIX_FIXED = /^(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{1,}>)([+-]?)(\d{1,2})(?::([0-5]\d))?$/;

/** The system zone's IANA name; throws naming `TZ` and the setting to use when it has none. */
export function systemTimeZone(facts?: SystemZoneFacts): string {
  const f = facts ?? processFacts();
  const name = f.resolved || nameFromTz(f);
  if (!name) {
    throw new Error(
      `the system time zone has no IANA name (TZ=${JSON.stringify(f.tz ?? "")}), so cap windows cannot be named: set "bedrockBudget.timeZone" in the settings (or "timeZone" in the config file) to one such as "Europe/Paris", or TZ to a zone name`,
    );
  }
  return name;
}

function nameFromTz(f: SystemZoneFacts): string | undefined {
  const tz = f.tz?.trim() ?? "";
  const candidate = tz.startsWith(":") || tz === "" ? zoneOfFile(f, tz.slice(1) || "/etc/localtime") : fixedOffsetZone(tz);
  // Only a name whose offsets are the ones dates follow: a wrong name would move every window.
  return candidate && isTimeZone(candidate) && sameOffsets(candidate, f) ? candidate : undefined;
}

/** `/usr/share/zoneinfo/Europe/Paris` (through links, as /etc/localtime is one) → `Europe/Paris`. */
function zoneOfFile(f: SystemZoneFacts, file: string): string | undefined {
  try {
    return /\/zoneinfo\/(.+)$/.exec(f.realPath(file))?.[1];
  } catch {
    return undefined;
  }
}

/** A POSIX fixed offset's Etc zone (their signs agree: `UTC+3` and `Etc/GMT+3` are both UTC−3); none for part hours. */
function fixedOffsetZone(tz: string): string | undefined {
  const m = POSIX_FIXED.exec(tz);
  if (!m || (m[3] !== undefined && m[3] !== "00")) return undefined;
  const hours = Number(m[2]);
  if (hours === 0) return "Etc/GMT";
  return `Etc/GMT${m[1] === "-" ? "-" : "+"}${hours}`;
}

/** The candidate's offsets match the system's at instants across a year (both sides of any summer time). */
function sameOffsets(zone: string, f: SystemZoneFacts): boolean {
  const year = new Date().getUTCFullYear();
  return [0, 3, 6, 9].every((month) => {
    const at = new Date(Date.UTC(year, month, 15, 12));
    return offsetMinutesIn(zone, at) === -f.offsetAt(at);
  });
}

/** Minutes ahead of UTC in `zone` at `at` (a whole minute), from its wall clock there. */
function offsetMinutesIn(zone: string, at: Date): number {
  const p = localParts(at, zone);
  return (Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute) - at.getTime()) / 60_000;
}
