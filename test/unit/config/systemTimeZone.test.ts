import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { systemTimeZone, type SystemZoneFacts } from "../../../server/config/systemTimeZone";

const LOAD = path.resolve(__dirname, "../../../server/config/load.ts");

/** `timeZoneOf` with no timeZone setting, in a process whose TZ is `tz`: the zone name, or the error. */
function zoneUnder(tz: string): string {
  const script = `try { console.log(require(${JSON.stringify(LOAD)}).timeZoneOf({})) } catch (e) { console.log("error: " + e.message) }`;
  return execFileSync(process.execPath, ["--require", "tsx/cjs", "-e", script], { env: { ...process.env, TZ: tz }, encoding: "utf8" }).trim();
}

/** Facts of a system in a fixed offset, `minutesAhead` of UTC, whose ICU named no zone. */
const unnamed = (tz: string, minutesAhead: number, realPath: (f: string) => string = () => { throw new Error("ENOENT"); }): SystemZoneFacts => ({
  resolved: undefined,
  tz,
  offsetAt: () => -minutesAhead,
  realPath,
});

describe("config: the system time zone when the settings name none", () => {
  it("is ICU's name when it has one", () => {
    assert.equal(zoneUnder("Europe/Paris"), "Europe/Paris");
  });

  it("names a POSIX fixed offset (TZ=UTC+3 is three hours behind UTC) by its Etc zone, never \"undefined\"", () => {
    assert.equal(zoneUnder("UTC+3"), "Etc/GMT+3");
    assert.equal(zoneUnder("XYZ-11"), "Etc/GMT-11");
    assert.equal(systemTimeZone(unnamed("GMT0", 0)), "Etc/GMT");
  });

  it("names TZ=:<file> by the zone file it links to", () => {
    const facts = unnamed(":/etc/localtime", 60, (f) => (f === "/etc/localtime" ? "/usr/share/zoneinfo/Europe/Paris" : f));
    // Paris is UTC+1 in winter only: the offsets must match across the year, so this system (always +1) is refused…
    assert.throws(() => systemTimeZone(facts), /no IANA name \(TZ=":\/etc\/localtime"\)/);
    // …and one that follows Paris's summer time is named.
    const paris: SystemZoneFacts = { ...facts, offsetAt: (at) => (at.getUTCMonth() >= 3 && at.getUTCMonth() <= 9 ? -120 : -60) };
    assert.equal(systemTimeZone(paris), "Europe/Paris");
    assert.equal(systemTimeZone({ ...unnamed("", 0), realPath: () => "/usr/share/zoneinfo/Etc/UTC" }), "Etc/UTC", "no TZ: /etc/localtime");
  });

  it("refuses to guess, naming TZ and the setting, for a zone with no IANA name", () => {
    const error = zoneUnder(":/nonexistent");
    assert.match(error, /^error: the system time zone has no IANA name \(TZ=":\/nonexistent"\).*"bedrockBudget\.timeZone"/);
    assert.throws(() => systemTimeZone(unnamed("IST-5:30", 330)), /no IANA name/, "a part-hour offset has no Etc zone");
    assert.throws(() => systemTimeZone(unnamed(":/nowhere", 0)), /no IANA name/);
    assert.throws(() => systemTimeZone(unnamed("UTC+3", 0)), /no IANA name/, "a name whose offset is not the system's");
  });
});
