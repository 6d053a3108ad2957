import assert from "node:assert/strict";
import { createLogger, repeatFilter } from "../../../server/log";

describe("repeated log messages", () => {
  const setup = () => {
    const lines: string[] = [];
    let t = Date.parse("2026-11-29T10:00:00.000Z");
    const say = repeatFilter(createLogger((level, line) => lines.push(`${level} ${line}`), "info"), 60_000, () => t);
    return { lines, say, advance: (ms: number) => (t += ms) };
  };

  it("says a message once a minute, then with how often it came since", () => {
    const { lines, say, advance } = setup();
    say("warn", "disk", "cannot record calls");
    for (let i = 0; i < 5; i++) {
      advance(10_000);
      say("warn", "disk", "cannot record calls");
    }
    assert.deepEqual(lines, ["warn cannot record calls"]);
    advance(10_000); // a minute after the first
    say("warn", "disk", "cannot record calls");
    assert.deepEqual(lines, ["warn cannot record calls", "warn cannot record calls (5 more time(s) since 2026-11-29T10:00:00.000Z)"]);
    advance(60_000);
    say("error", "disk", "cannot record calls");
    assert.equal(lines[2], "error cannot record calls", "nothing came in between: no count");
  });

  it("keeps each key apart", () => {
    const { lines, say } = setup();
    say("warn", "unpriced:a", "model a has no price row");
    say("warn", "unpriced:b", "model b has no price row");
    say("warn", "unpriced:a", "model a has no price row");
    assert.deepEqual(lines, ["warn model a has no price row", "warn model b has no price row"]);
  });

  it("stays bounded: after 1,000 keys it forgets them and says each again", () => {
    const { lines, say } = setup();
    for (let i = 0; i < 1_000; i++) say("warn", `k${i}`, `m${i}`);
    say("warn", "k0", "m0");
    assert.equal(lines.length, 1_000, "k0 is still remembered at 1,000 keys");
    say("warn", "k1000", "m1000"); // the 1,001st key: the memory starts over
    say("warn", "k0", "m0");
    assert.deepEqual(lines.slice(-2), ["warn m1000", "warn m0"]);
  });
});
