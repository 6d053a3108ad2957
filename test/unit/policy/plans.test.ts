import assert from "node:assert/strict";
import { validated } from "../../../server/config/load";
import { capsInForce, rateLimitFor, tierOf } from "../../../server/policy/plans";

describe("policy/plans: tiers, callers and the caps in force", () => {
  const config = validated(
    {
      caps: [{ id: "team-month", window: "month", limitUsd: 1000 }],
      rateLimit: { requestsPerSecond: 5, burst: 10, requestsPerDay: 1000 },
      tiers: {
        professional: { rateLimit: { requestsPerSecond: 20 }, caps: [{ id: "agent-month", window: "month", limitUsd: 50 }] },
        basic: {},
      },
      callers: { "agent-001": "professional", AKIAIOSFODNN7EXAMPLE: "basic", alice: "professional" },
    },
    "test",
  );

  it("a caller's tier: its access key id first, then its profile, then the user", () => {
    assert.equal(tierOf(config, { caller: "AKIAIOSFODNN7EXAMPLE", callerProfile: "agent-001", user: "alice" }), "basic");
    assert.equal(tierOf(config, { caller: "AKIAOTHER0000000000", callerProfile: "agent-001", user: "bob" }), "professional");
    assert.equal(tierOf(config, { caller: "AKIAOTHER0000000000", user: "alice" }), "professional");
    assert.equal(tierOf(config, { caller: "AKIAOTHER0000000000", user: "bob" }), undefined);
  });

  it("a tier's rateLimit fields replace the top-level ones; unset fields are inherited", () => {
    assert.deepEqual(rateLimitFor(config, "professional"), { requestsPerSecond: 20, burst: 10, requestsPerDay: 1000 });
    assert.deepEqual(rateLimitFor(config, "basic"), { requestsPerSecond: 5, burst: 10, requestsPerDay: 1000 });
    assert.deepEqual(rateLimitFor(config, undefined), { requestsPerSecond: 5, burst: 10, requestsPerDay: 1000 });
    assert.equal(rateLimitFor(validated({}, "test"), undefined), undefined, "no plan: nothing limits");
  });

  it("each tier cap becomes one wall per caller of the tier, scoped to that caller", () => {
    const caps = capsInForce(config);
    assert.deepEqual(
      caps.map((c) => [c.id, c.callers]),
      [
        ["team-month", undefined],
        ["agent-month@agent-001", ["agent-001"]],
        ["agent-month@alice", ["alice"]],
      ],
    );
    assert.ok(caps.every((c) => c.window === "month"));
  });
});
