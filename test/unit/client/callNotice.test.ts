/** The editor notice for one settled call: refusals, cuts, and what a cap action (warn, downgrade, clamp) did. */
import assert from "node:assert/strict";
import { callNotice } from "../../../client/callNotice";
import type { CallRecord } from "../../../server/protocol";

describe("call notices", () => {
  const settled = (r: Partial<CallRecord>): CallRecord => ({
    type: "settle", id: "c1", at: "2026-11-22T10:00:00.000Z", startedAt: "2026-11-22T10:00:00.000Z", user: "u", tool: "aws-sdk-js", operation: "Converse",
    modelId: "m", baseModelId: "m", usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
    usageEstimated: false, costPicos: "1", worstCasePicos: "1", outcome: "ok", status: 200, latencyMs: 1, tags: {}, ...r,
  });

  it("a call a warn cap let through shows a warning naming the cap, saying the call could take it past its limit (decided on its worst case)", () => {
    const n = callNotice(settled({ actions: [{ capId: "soft-daily", action: "warn", detail: "past its limit" }] }));
    assert.equal(n?.level, "warning");
    assert.match(n!.message, /a call to m that could take cap "soft-daily" past the limit was let through \(action warn\)/);
    assert.equal(n!.quietKey, "warn:soft-daily", "one toast per cap a minute");
  });

  it("says which model answered a downgraded call, and what a clamp lowered", () => {
    const down = callNotice(settled({ answeredBy: "haiku", actions: [{ capId: "d", action: "downgrade", detail: "m -> haiku" }] }));
    assert.equal(down?.level, "info");
    assert.match(down!.message, /cap "d" sent it to haiku/);
    const clamp = callNotice(settled({ actions: [{ capId: "c", action: "clamp", detail: "maxTokens=4096->100" }] }));
    assert.match(clamp!.message, /cap "c" lowered its output limit \(maxTokens=4096->100\)/);
  });

  it("a call the whole gateway refused (no cap named) says its reason and offers no cap setting to open", () => {
    const n = callNotice(settled({ outcome: "refused", message: "Bedrock Budget refuses Bedrock calls until this setting is fixed: caps[0].limitUsd" }));
    assert.equal(n?.level, "error");
    assert.match(n?.message ?? "", /caps\[0\]\.limitUsd/);
    assert.equal(n?.capSetting, undefined, "no cap refused it: 'Open Cap Setting' would open the wrong thing");
    assert.notEqual(n?.quietKey, callNotice(settled({ outcome: "refused", refusedBy: "a cap" }))?.quietKey, "quieted apart from a cap's refusals");
    assert.equal(callNotice(settled({ outcome: "refused", refusedBy: "daily" }))?.capSetting, true);
  });

  it("refusals and cuts as before; a plain call says nothing", () => {
    assert.equal(callNotice(settled({ outcome: "refused", refusedBy: "daily", message: "refused!" }))?.level, "error");
    assert.equal(callNotice(settled({ outcome: "cut" }))?.level, "warning");
    assert.equal(callNotice(settled({})), undefined);
  });

  it("a quota refusal shows an error with the gateway's message, one per caller a minute; a throttled call (the SDK retries it) none", () => {
    const message = 'Bedrock Budget refused this call: caller AKIA…MPLE (tier "pro") has used its quota of 1000 requests per day (requestsPerDay); the quota resets at 2026-11-23 00:00 UTC.';
    const n = callNotice(settled({ outcome: "quota-exceeded", status: 400, caller: "AKIAEXAMPLE", message }));
    assert.equal(n?.level, "error");
    assert.equal(n!.message, message);
    assert.equal(n!.quietKey, "quota-exceeded:AKIAEXAMPLE");
    assert.equal(callNotice(settled({ outcome: "throttled", status: 429, caller: "AKIAEXAMPLE", message: "throttled" })), undefined);
  });
});
