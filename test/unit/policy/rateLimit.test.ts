import assert from "node:assert/strict";
import fc from "fast-check";
import { burstOf, planCaller, RateLimiter, retryAfterSeconds, takeToken, type BucketState } from "../../../server/policy/rateLimit";
import { QuotaTally } from "../../../server/policy/quotaCheckpoint";

describe("policy/rateLimit: the token bucket", () => {
  it("a new bucket starts full: burst requests pass at once, the next waits 1/rate", () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 3; i++) {
      const r = takeToken(state, 2, 3, 1000);
      assert.equal(r.ok, true, `request ${i + 1} of the burst`);
      state = r.state;
    }
    const fourth = takeToken(state, 2, 3, 1000);
    assert.equal(fourth.ok, false);
    assert.equal(!fourth.ok && fourth.retryAfterMs, 500);
    assert.equal(takeToken(fourth.state, 2, 3, 1500).ok, true, "after 1/rate a token is back");
  });

  it("burst defaults to one second of requests (at least one); Retry-After is whole seconds, rounded up, at least 1", () => {
    assert.equal(burstOf({ requestsPerSecond: 5 }), 5);
    assert.equal(burstOf({ requestsPerSecond: 0.2 }), 1);
    assert.equal(burstOf({ requestsPerSecond: 2.5 }), 3);
    assert.equal(burstOf({ requestsPerSecond: 5, burst: 10 }), 10);
    assert.equal(retryAfterSeconds(1), 1);
    assert.equal(retryAfterSeconds(1000), 1);
    assert.equal(retryAfterSeconds(1001), 2);
    assert.equal(retryAfterSeconds(0), 1);
  });

  it("property: over any time span, at most burst + rate × span requests pass", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.1, max: 50, noNaN: true }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 200 }),
        (rate, burst, gaps) => {
          let state: BucketState | undefined;
          let t = 0;
          let passed = 0;
          for (const gap of gaps) {
            t += gap;
            const r = takeToken(state, rate, burst, t);
            state = r.state;
            if (r.ok) passed++;
          }
          return passed <= burst + (rate * t) / 1000 + 1e-9;
        },
      ),
    );
  });

  it("property: a refused request passes when retried after its retryAfterMs", () => {
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 100, noNaN: true }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 100_000 }), (rate, burst, t0) => {
        let state: BucketState | undefined;
        let r = takeToken(state, rate, burst, t0);
        while (r.ok) {
          state = r.state;
          r = takeToken(state, rate, burst, t0);
        }
        return takeToken(r.state, rate, burst, t0 + r.retryAfterMs).ok;
      }),
    );
  });

  it("a clock stepping back refills nothing", () => {
    const first = takeToken(undefined, 1, 1, 10_000);
    assert.equal(takeToken(first.state, 1, 1, 5_000).ok, false);
  });
});

describe("policy/rateLimit: RateLimiter (per-caller buckets and quotas)", () => {
  const tz = "Europe/Paris";

  it("each caller has its own bucket", () => {
    const l = new RateLimiter();
    const now = new Date("2026-11-20T10:00:00Z");
    const limit = { requestsPerSecond: 1, burst: 1 };
    assert.equal(l.admit("AKIA1", limit, now, tz).ok, true);
    const d = l.admit("AKIA1", limit, now, tz);
    assert.deepEqual(d, { ok: false, kind: "throttled", retryAfterSeconds: 1, requestsPerSecond: 1, burst: 1 });
    assert.equal(l.admit("AKIA2", limit, now, tz).ok, true);
  });

  it("a day quota refuses the next request, naming when it resets (local midnight), and starts afresh the next local day", () => {
    const l = new RateLimiter();
    const limit = { requestsPerDay: 2 };
    const t = new Date("2026-11-20T22:30:00Z"); // 23:30 in Paris
    assert.equal(l.admit("k", limit, t, tz).ok, true);
    assert.equal(l.admit("k", limit, t, tz).ok, true);
    const refused = l.admit("k", limit, t, tz);
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.kind, "quota-exceeded");
    assert.equal(!refused.ok && refused.kind === "quota-exceeded" && refused.resetsAt.toISOString(), "2026-11-20T23:00:00.000Z");
    assert.equal(l.admit("k", limit, new Date("2026-11-20T23:00:00Z"), tz).ok, true, "a new day in Paris");
  });

  it("a month quota counts across days; a throttled request uses no quota", () => {
    const l = new RateLimiter();
    const limit = { requestsPerSecond: 1, burst: 1, requestsPerMonth: 2 };
    const t = new Date("2026-11-05T12:00:00Z");
    assert.equal(l.admit("k", limit, t, tz).ok, true);
    assert.equal(l.admit("k", limit, t, tz).ok, false, "throttled");
    assert.deepEqual(l.used("k", t, tz), { day: 1, month: 1 });
    const later = new Date("2026-11-06T12:00:00Z");
    assert.equal(l.admit("k", limit, later, tz).ok, true);
    const refused = l.admit("k", limit, new Date("2026-11-07T12:00:00Z"), tz);
    assert.equal(!refused.ok && refused.kind, "quota-exceeded");
    assert.equal(!refused.ok && refused.kind === "quota-exceeded" && refused.quota, "requestsPerMonth");
  });

  it("count() (journal replay) rebuilds the current day and month, ignoring older windows", () => {
    const l = new RateLimiter();
    l.count("k", new Date("2026-10-31T12:00:00Z"), tz);
    l.count("k", new Date("2026-11-01T12:00:00Z"), tz);
    l.count("k", new Date("2026-11-02T08:00:00Z"), tz);
    l.count("k", new Date("2026-11-02T09:00:00Z"), tz);
    assert.deepEqual(l.used("k", new Date("2026-11-02T10:00:00Z"), tz), { day: 2, month: 3 });
    const refused = l.admit("k", { requestsPerMonth: 3 }, new Date("2026-11-02T10:00:00Z"), tz);
    assert.equal(!refused.ok && refused.kind, "quota-exceeded");
  });
});

describe("usage plan keys", () => {
  it("a plan belongs to the credentials that verified the call, not to its access key; an API key is its own", () => {
    assert.equal(planCaller({ caller: "ASIAAAAAAAAAAAAAAAA1" }), planCaller({ caller: "ASIABBBBBBBBBBBBBBB2" }), "the gateway's own credentials, refreshed: one plan");
    assert.equal(planCaller({ caller: "ASIAAAAAAAAAAAAAAAA1", callerProfile: "ci" }), "profile:ci");
    assert.notEqual(planCaller({ caller: "AKIA1", callerProfile: "ci" }), planCaller({ caller: "AKIA1", callerProfile: "staging" }));
    assert.equal(planCaller({ caller: "apikey:0123456789abcdef" }), "apikey:0123456789abcdef");
  });

  it("a checkpoint's quota counts kept by the access key (before plans were keyed by credentials) are not restored: the journal is counted again", () => {
    const tally = new QuotaTally("UTC");
    tally.count(planCaller({ caller: "ASIAAAAAAAAAAAAAAAA1" }), new Date("2026-12-02T10:00:00Z"));
    const restored = QuotaTally.restore(JSON.parse(JSON.stringify(tally.snapshot())), "UTC");
    assert.deepEqual(restored?.counts(), tally.counts());
    const { keyedBy: _rule, ...older } = tally.snapshot();
    assert.equal(QuotaTally.restore(older, "UTC"), undefined);
  });
});
