// The team engines' shared pure part (TeamCaps): which team caps apply, which start from zero, and their windows.
import assert from "node:assert/strict";
import type { CapConfig } from "../../../server/config/schema";
import { redactUrl, TeamCaps, teamUsd, unreachableMessage } from "../../../server/team/teamEngine";

const day: CapConfig = { id: "team-day", scope: "team", window: "day", limitUsd: 12.5 };
const opusMonth: CapConfig = { id: "team-opus", scope: "team", window: "month", limitUsd: 500, model: "*opus*" };
const iso = (d: Date | undefined) => d?.toISOString();

describe("team: TeamCaps", () => {
  it("keeps each cap's limit in exact pico-dollars and finds caps by id", () => {
    const caps = new TeamCaps();
    caps.set([day, opusMonth], "Europe/Paris");
    assert.deepEqual(caps.all().map((c) => [c.id, c.limit]), [["team-day", 12_500_000_000_000n], ["team-opus", 500_000_000_000_000n]]);
    assert.equal(caps.get("team-opus")?.cap, opusMonth);
    assert.equal(caps.get("nope"), undefined);
    assert.equal(caps.timeZone, "Europe/Paris");
  });

  it("starts a cap from zero only when it is new or its window, model or time zone changed; a new limit keeps its totals", () => {
    const caps = new TeamCaps();
    assert.deepEqual(caps.set([day], "UTC").fresh, ["team-day"]); // new, in the default zone
    assert.deepEqual(caps.set([day, opusMonth], "UTC").fresh, ["team-opus"]);
    assert.deepEqual(caps.set([{ ...day, limitUsd: 99 }, opusMonth], "UTC").fresh, []);
    assert.deepEqual(caps.set([{ ...day, window: "week" }, opusMonth], "UTC").fresh, ["team-day"]);
    assert.deepEqual(caps.set([{ ...day, window: "week" }, { ...opusMonth, model: "*sonnet*" }], "UTC").fresh, ["team-opus"]);
    assert.deepEqual(caps.set([{ ...day, window: "week" }, { ...opusMonth, model: "*sonnet*" }], "Asia/Tokyo").fresh, ["team-day", "team-opus"]);
    assert.deepEqual(caps.set([{ ...day, window: "week" }, { ...opusMonth, model: "*sonnet*" }], "Asia/Tokyo").fresh, []);
  });

  it("applies a model cap by requested or base model id, case-insensitively and across the '/' of an ARN", () => {
    const caps = new TeamCaps();
    caps.set([day, opusMonth], "UTC");
    assert.deepEqual(caps.applicable("anthropic.claude-opus-4-1-20250805-v1:0"), ["team-day", "team-opus"]);
    assert.deepEqual(caps.applicable("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-OPUS-4"), ["team-day", "team-opus"]);
    assert.deepEqual(caps.applicable("amazon.nova-micro-v1:0"), ["team-day"]);
    assert.deepEqual(caps.applicable("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", "anthropic.claude-opus-4-v1"), ["team-day", "team-opus"]);
    assert.deepEqual(caps.applicable("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"), ["team-day"]);
  });

  it("gives each cap the window containing the instant, in the team's zone, moving forward and back", () => {
    const caps = new TeamCaps();
    caps.set([day, opusMonth], "Europe/Paris"); // UTC+1 in November
    const d = caps.get("team-day")!;
    const at = (t: string) => {
      const b = caps.bounds(d, new Date(t));
      return [b.start.toISOString(), b.end.toISOString()];
    };
    assert.deepEqual(at("2026-11-29T10:00:00Z"), ["2026-11-28T23:00:00.000Z", "2026-11-29T23:00:00.000Z"]);
    assert.deepEqual(at("2026-11-29T22:59:59.999Z"), ["2026-11-28T23:00:00.000Z", "2026-11-29T23:00:00.000Z"]);
    assert.deepEqual(at("2026-11-29T23:00:00Z"), ["2026-11-29T23:00:00.000Z", "2026-11-30T23:00:00.000Z"]);
    assert.deepEqual(at("2026-11-29T22:00:00Z"), ["2026-11-28T23:00:00.000Z", "2026-11-29T23:00:00.000Z"]); // back again
    assert.deepEqual(at("2026-11-28T22:59:59.999Z"), ["2026-11-27T23:00:00.000Z", "2026-11-28T23:00:00.000Z"]);
    const m = caps.bounds(caps.get("team-opus")!, new Date("2026-11-29T10:00:00Z"));
    assert.deepEqual([m.start.toISOString(), m.end.toISOString()], ["2026-10-31T23:00:00.000Z", "2026-11-30T23:00:00.000Z"]);
  });

  it("a new time zone moves the windows (no stale cached window)", () => {
    const caps = new TeamCaps();
    caps.set([day], "Europe/Paris");
    const now = new Date("2026-11-29T10:00:00Z");
    assert.equal(iso(caps.bounds(caps.get("team-day")!, now).start), "2026-11-28T23:00:00.000Z");
    caps.set([day], "America/New_York"); // UTC-5 in November
    assert.equal(iso(caps.bounds(caps.get("team-day")!, now).start), "2026-11-29T05:00:00.000Z");
  });

  it("a journal replay reads back to the earliest current window start of any cap", () => {
    const caps = new TeamCaps();
    const now = new Date("2026-11-29T10:00:00Z");
    assert.equal(caps.earliestStart(now), undefined); // no team caps: nothing to replay
    caps.set([day, opusMonth, { id: "team-week", scope: "team", window: "week", limitUsd: 50 }], "Europe/Paris");
    assert.equal(iso(caps.earliestStart(now)), "2026-10-31T23:00:00.000Z"); // 1 November, local midnight
    caps.set([day, { id: "team-week", scope: "team", window: "week", limitUsd: 50 }], "Europe/Paris");
    assert.equal(iso(caps.earliestStart(now)), "2026-11-22T23:00:00.000Z"); // Monday 23 November (the 29th is a Sunday)
    caps.set([{ id: "team-week", scope: "team", window: "week", limitUsd: 50 }, day], "Europe/Paris");
    assert.equal(iso(caps.earliestStart(now)), "2026-11-22T23:00:00.000Z"); // whatever the order
  });
});

describe("team: messages", () => {
  it("says which team caps cannot be checked and what still holds", () => {
    assert.equal(
      unreachableMessage("redis://***@10.0.0.5:6379", ["team-day", "team-opus"]),
      'Bedrock Budget refused this call: the team ledger (redis://***@10.0.0.5:6379) is unreachable, so team cap "team-day", "team-opus" cannot be checked (teamUnavailable: "block"). Personal caps are still enforced; retry when the team ledger is back.',
    );
  });

  it("shows team amounts in dollars", () => {
    assert.equal(teamUsd(12_500_000_000_000n), "$12.50");
    assert.equal(teamUsd(4_200_000_000n), "$0.0042");
  });

  it("hides a redis password (keeping the user name) and nothing else", () => {
    assert.equal(redactUrl("redis://bb-user:s3cret@redis.example.com:6379/2"), "redis://bb-user:***@redis.example.com:6379/2");
    assert.equal(redactUrl("rediss://s3cret@redis.example.com"), "rediss://***@redis.example.com");
    assert.equal(redactUrl("REDISS://u:p@h:1"), "REDISS://u:***@h:1");
    assert.equal(redactUrl("redis://redis.example.com:6379"), "redis://redis.example.com:6379");
    assert.equal(redactUrl("redis://h/0?x=a@b"), "redis://h/0?x=a@b"); // an @ after the host is not a password
    assert.equal(redactUrl("/srv/team@share/ledger"), "/srv/team@share/ledger"); // a folder
  });

  it("hides the password of a redis URL quoted inside a message, and of each one when there are several", () => {
    assert.equal(
      redactUrl("cannot reach redis://bb-user:s3cret@10.0.0.5:6379 (fallback rediss://t0ken@backup:6380)"),
      "cannot reach redis://bb-user:***@10.0.0.5:6379 (fallback rediss://***@backup:6380)",
    );
  });
});
