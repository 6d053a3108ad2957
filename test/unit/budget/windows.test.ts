import assert from "node:assert/strict";
import { formatLocalDateTime, localDateKey, windowBounds, windowKey, type CapWindow } from "../../../server/budget/windows";

function bounds(window: CapWindow, tz: string, now: string): [string, string] {
  const b = windowBounds(window, tz, new Date(now));
  return [b.start.toISOString(), b.end.toISOString()];
}

const HOUR = 3_600_000;

describe("budget/windows", () => {
  describe("Europe/Paris", () => {
    const tz = "Europe/Paris";
    it("spring-forward day is 23 hours long", () => {
      // 2026-03-29: 02:00 CET -> 03:00 CEST
      assert.deepEqual(bounds("day", tz, "2026-03-29T10:00:00Z"), ["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
      const b = windowBounds("day", tz, new Date("2026-03-29T10:00:00Z"));
      assert.equal(b.end.getTime() - b.start.getTime(), 23 * HOUR);
    });
    it("fall-back day is 25 hours long", () => {
      // 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 local happens twice
      assert.deepEqual(bounds("day", tz, "2026-10-25T00:30:00Z"), ["2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z"]);
      assert.deepEqual(bounds("day", tz, "2026-10-25T01:30:00Z"), ["2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z"]);
    });
    it("the week across the DST change starts Monday and ends the next Monday", () => {
      // Sunday 2026-03-29 belongs to the week of Monday 2026-03-23
      assert.deepEqual(bounds("week", tz, "2026-03-29T21:59:59.999Z"), ["2026-03-22T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
      assert.deepEqual(bounds("week", tz, "2026-03-29T22:00:00.000Z"), ["2026-03-29T22:00:00.000Z", "2026-04-05T22:00:00.000Z"]);
    });
    it("year end: 00:30 on 1 January local is already the new day, week (a Friday) and month", () => {
      const now = "2026-12-31T23:30:00Z"; // 2027-01-01 00:30 CET
      assert.deepEqual(bounds("day", tz, now), ["2026-12-31T23:00:00.000Z", "2027-01-01T23:00:00.000Z"]);
      assert.deepEqual(bounds("month", tz, now), ["2026-12-31T23:00:00.000Z", "2027-01-31T23:00:00.000Z"]);
      assert.deepEqual(bounds("week", tz, now), ["2026-12-27T23:00:00.000Z", "2027-01-03T23:00:00.000Z"]);
      assert.equal(windowKey("month", tz, new Date(now)), "month:2027-01");
      assert.equal(windowKey("week", tz, new Date(now)), "week:2026-12-28");
    });
    it("month across DST: March 2026 starts in CET and ends in CEST", () => {
      assert.deepEqual(bounds("month", tz, "2026-03-15T12:00:00Z"), ["2026-02-28T23:00:00.000Z", "2026-03-31T22:00:00.000Z"]);
    });
  });

  describe("America/New_York", () => {
    const tz = "America/New_York";
    it("spring-forward day (2026-03-08) is 23 hours", () => {
      assert.deepEqual(bounds("day", tz, "2026-03-08T12:00:00Z"), ["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]);
    });
    it("November month starts in EDT and ends in EST", () => {
      assert.deepEqual(bounds("month", tz, "2026-11-01T12:00:00Z"), ["2026-11-01T04:00:00.000Z", "2026-12-01T05:00:00.000Z"]);
    });
    it("year end: 23:30 on 31 December local is still the old day, week and month", () => {
      const now = "2027-01-01T04:30:00Z"; // 2026-12-31 23:30 EST, a Thursday
      assert.deepEqual(bounds("day", tz, now), ["2026-12-31T05:00:00.000Z", "2027-01-01T05:00:00.000Z"]);
      assert.deepEqual(bounds("week", tz, now), ["2026-12-28T05:00:00.000Z", "2027-01-04T05:00:00.000Z"]);
      assert.deepEqual(bounds("month", tz, now), ["2026-12-01T05:00:00.000Z", "2027-01-01T05:00:00.000Z"]);
      assert.equal(localDateKey(new Date(now), tz), "2026-12-31");
    });
    it("February of a leap year ends after the 29th", () => {
      assert.deepEqual(bounds("month", tz, "2028-02-29T23:00:00Z"), ["2028-02-01T05:00:00.000Z", "2028-03-01T05:00:00.000Z"]);
      assert.deepEqual(bounds("month", tz, "2027-02-28T23:00:00Z"), ["2027-02-01T05:00:00.000Z", "2027-03-01T05:00:00.000Z"]);
    });
    it("a Sunday belongs to the week that started the Monday before", () => {
      assert.deepEqual(bounds("week", tz, "2026-11-01T16:00:00Z"), ["2026-10-26T04:00:00.000Z", "2026-11-02T05:00:00.000Z"]);
    });
  });

  it("a day's key changes at the local midnight to the millisecond, asked in a row (Paris after a DST change, Kathmandu at +05:45, Apia's skipped day)", () => {
    const cases: [string, string, string, string][] = [
      ["Europe/Paris", "2026-03-29T22:00:00.000Z", "2026-03-29", "2026-03-30"],
      ["Asia/Kathmandu", "2026-06-09T18:15:00.000Z", "2026-06-09", "2026-06-10"],
      ["Pacific/Apia", "2011-12-30T10:00:00.000Z", "2011-12-29", "2011-12-31"], // 30 December 2011 never happened there
    ];
    for (const [tz, midnight, before, after] of cases) {
      const t = Date.parse(midnight);
      for (const [at, want] of [[t - 1, before], [t, after], [t - 1, before], [t + 59_999, after], [t - 60_001, before]] as const) {
        assert.equal(localDateKey(at, tz), want, `${tz} at ${new Date(at).toISOString()}`);
        assert.equal(localDateKey(new Date(at), tz), want, `${tz} at ${new Date(at).toISOString()} (a Date)`);
      }
    }
  });

  it("boundaries are start-inclusive and end-exclusive", () => {
    const b = windowBounds("day", "Europe/Paris", new Date("2026-06-10T12:00:00Z"));
    assert.deepEqual(windowBounds("day", "Europe/Paris", b.start), b);
    assert.notDeepEqual(windowBounds("day", "Europe/Paris", b.end), b);
    assert.deepEqual(windowBounds("day", "Europe/Paris", new Date(b.end.getTime() - 1)), b);
  });

  it("a day whose midnight does not exist starts when the clock jumps (America/Santiago 2026-09-06)", () => {
    // Chile springs forward at 24:00: 2026-09-06 00:00 -04 never happens, the day starts at 01:00 -03.
    assert.deepEqual(bounds("day", "America/Santiago", "2026-09-06T15:00:00Z"), ["2026-09-06T04:00:00.000Z", "2026-09-07T03:00:00.000Z"]);
  });

  it("UTC and half-hour zones", () => {
    assert.deepEqual(bounds("month", "UTC", "2026-12-31T23:59:59.999Z"), ["2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"]);
    assert.deepEqual(bounds("day", "Asia/Kolkata", "2026-05-01T20:00:00Z"), ["2026-05-01T18:30:00.000Z", "2026-05-02T18:30:00.000Z"]);
  });

  it("formats local times for messages", () => {
    assert.equal(formatLocalDateTime(new Date("2026-11-22T23:00:00Z"), "Europe/Paris"), "2026-11-23 00:00");
  });
});
