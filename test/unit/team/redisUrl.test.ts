import assert from "node:assert/strict";
import { parseConfig } from "../../../server/config/schema";
import { toMicros } from "../../../server/team/redisStore";
import { isRedisUrl, parseRedisUrl, teamKeyPrefix } from "../../../server/team/redisUrl";
import { redactUrl } from "../../../server/team/teamEngine";

describe("team: redis URLs", () => {
  it("reads a single server, TLS, ACL user and password, database", () => {
    assert.deepEqual(parseRedisUrl("redis://127.0.0.1:6380"), { kind: "single", nodes: [{ host: "127.0.0.1", port: 6380 }], tls: false });
    assert.deepEqual(parseRedisUrl("rediss://bb-user:s%40cret@redis.example.com/2"), {
      kind: "single", nodes: [{ host: "redis.example.com", port: 6379 }], tls: true, username: "bb-user", password: "s@cret", db: 2,
    });
    assert.deepEqual(parseRedisUrl("redis://:pw@[::1]:7000"), { kind: "single", nodes: [{ host: "::1", port: 7000 }], tls: false, password: "pw" });
  });

  it("reads Sentinel and Cluster seed lists", () => {
    const s = parseRedisUrl("redis://u:p@s1:26379,s2:26380?sentinel=mymaster&sentinelPassword=sp");
    assert.equal(s.kind, "sentinel");
    assert.equal(s.sentinelName, "mymaster");
    assert.equal(s.sentinelPassword, "sp");
    assert.deepEqual(s.nodes, [{ host: "s1", port: 26379 }, { host: "s2", port: 26380 }]);
    const c = parseRedisUrl("rediss://n1:7000,n2:7001?cluster=true");
    assert.equal(c.kind, "cluster");
    assert.equal(c.tls, true);
  });

  it("refuses what it cannot connect to", () => {
    assert.throws(() => parseRedisUrl("redis://a:1,b:2"), /sentinel|cluster/);
    assert.throws(() => parseRedisUrl("redis://a:99999"), /bad port/);
    assert.throws(() => parseRedisUrl("http://a"), /not a redis URL/);
    assert.throws(() => parseRedisUrl("redis://a:1,b:2?cluster=true&sentinel=m"), /either/);
  });

  it("keeps one team's keys in one Cluster slot, hides passwords, and validates the setting", () => {
    assert.equal(teamKeyPrefix("acme"), "{bb:acme}");
    assert.equal(redactUrl("redis://user:secret@h:1"), "redis://user:***@h:1");
    assert.equal(redactUrl("rediss://secret@h:1"), "rediss://***@h:1");
    assert.ok(isRedisUrl("rediss://h") && !isRedisUrl("/mnt/team"));
    assert.ok(parseConfig({ teamLedger: "/mnt/share/team" }).ok);
    assert.ok(parseConfig({ teamLedger: "redis://h:6379", team: "acme", teamUnavailable: "personalOnly" }).ok);
    const bad = parseConfig({ teamLedger: "https://x", team: "a b", teamUnavailable: "maybe" });
    assert.ok(!bad.ok);
    assert.match(bad.errors.join("\n"), /^teamLedger: /m);
    assert.match(bad.errors.join("\n"), /^team: /m);
    assert.match(bad.errors.join("\n"), /^teamUnavailable: /m);
  });

  it("rounds amounts up to whole micro-dollars for Redis (exact below 2^53 for every cap the schema allows)", () => {
    assert.equal(toMicros(0n), 0n);
    assert.equal(toMicros(1n), 1n);
    assert.equal(toMicros(1_000_000n), 1n);
    assert.equal(toMicros(1_000_001n), 2n);
    assert.ok(Number(toMicros(1_000_000_000n * 1_000_000_000_000n)) < 2 ** 53);
  });
});
