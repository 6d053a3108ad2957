/**
 * What the README promises about a team ledger's Redis address: a bad value of a key that decides
 * money is invalid when the settings are read, naming the key (so the gateway refuses every call
 * and says why), never a start that dies on a stack trace or a reload that keeps the old settings.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../server/config/schema";
import { parseRedisUrl } from "../../../server/team/redisUrl";

describe("settings: teamLedger as a Redis URL", () => {
  it("refuses, naming teamLedger, a Redis address the team store could not connect with", () => {
    for (const [teamLedger, why] of [
      ["redis://h1:6379,h2:6379", /sentinel|cluster/],
      ["redis://h:99999", /bad port/],
      ["redis://h:1,g:2?cluster=true&sentinel=m", /either/],
      ["redis://:100%@h:6379", /%25/],
      ["redis://n1:7000,n2:7001/3?cluster=true", /database 0/],
    ] as const) {
      const result = parseConfig({ teamLedger, team: "acme" });
      assert.equal(result.ok, false, `${teamLedger} is invalid`);
      const errors = result.ok ? "" : result.errors.join("\n");
      assert.match(errors, /^teamLedger: /m, errors);
      assert.match(errors, why, errors);
      assert.doesNotMatch(errors, /100%/, "the password is not repeated");
    }
  });

  it("accepts the address forms the README lists", () => {
    for (const teamLedger of [
      "redis://127.0.0.1:6379",
      "redis://bb:s%40cret@redis.example.com:6380/2",
      "rediss://:pw@redis.example.com",
      "redis://h1:26379,h2:26379?sentinel=mymaster&sentinelPassword=sp",
      "redis://n1:7000,n2:7001?cluster=true",
    ]) {
      assert.ok(parseConfig({ teamLedger }).ok, teamLedger);
    }
  });

  it("reads a folder path as a folder even where it holds redis://, and names a URL without a host once", () => {
    assert.ok(parseConfig({ teamLedger: "/mnt/share/redis://a:1,b:2" }).ok);
    const noHost = parseConfig({ teamLedger: "redis:///0" });
    assert.deepEqual(noHost.ok ? [] : noHost.errors, ["teamLedger: a folder path, or a redis:// or rediss:// URL with a host"]);
  });

  it("says what is wrong with a bad %-escape in the user or password, without the password", () => {
    assert.throws(() => parseRedisUrl("redis://u:p%zz@h:1"), (err: Error) => /%25/.test(err.message) && !/p%zz/.test(err.message));
  });
});
