/** The pure decision of what caps' actions do to a call: downgrade, clamp, warn or block. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decideCapActions, MIN_CLAMPED_OUTPUT_TOKENS, type CallWorstCase, type CapFigures } from "../../../server/policy/capActions";

const cap = (c: Partial<CapFigures> & Pick<CapFigures, "id" | "action">): CapFigures => ({ limitPicos: 1000n, spentPicos: 0n, reservedPicos: 0n, ...c });
/** 100 picos of input, 1 pico per output token, up to 400 tokens: a worst case of 500. */
const call = (c: Partial<CallWorstCase> = {}): CallWorstCase => {
  const base = { modelId: "opus", fixedPicos: 100n, outputRatePicos: 1n, maxOutputTokens: 400, ...c };
  return { worstCasePicos: base.fixedPicos + BigInt(base.maxOutputTokens) * base.outputRatePicos, ...base };
};

describe("policy/capActions", () => {
  it("lets a call through untouched when every cap admits its worst case", () => {
    assert.deepEqual(decideCapActions([cap({ id: "a", action: "block" }), cap({ id: "w", action: "warn" })], call()), { kind: "go", warned: [] });
  });

  it("blocks past a block cap's limit, naming it", () => {
    assert.deepEqual(decideCapActions([cap({ id: "a", action: "block", spentPicos: 501n })], call()), { kind: "block", capId: "a" });
  });

  it("warn: lets a call past the limit through, naming every warn cap it passes", () => {
    const d = decideCapActions([cap({ id: "w1", action: "warn", spentPicos: 900n }), cap({ id: "w2", action: "warn" })], call());
    assert.deepEqual(d, { kind: "go", warned: ["w1"] });
  });

  it("warn does not loosen another cap: a block cap past its limit still refuses", () => {
    const d = decideCapActions([cap({ id: "w", action: "warn", spentPicos: 900n }), cap({ id: "b", action: "block", reservedPicos: 600n })], call());
    assert.deepEqual(d, { kind: "block", capId: "b" });
  });

  it("downgrade: from downgradeAt of the limit, counting spent, reserved and the call's worst case", () => {
    const d = (spent: bigint, downgradeAt?: number) =>
      decideCapActions([cap({ id: "d", action: "downgrade", downgradeTo: "haiku", spentPicos: spent, ...(downgradeAt === undefined ? {} : { downgradeAt }) })], call());
    assert.deepEqual(d(299n), { kind: "go", warned: [] }, "299 + 500 < 800: below the default 0.8");
    assert.deepEqual(d(300n), { kind: "downgrade", capId: "d", to: "haiku" }, "300 + 500 = 800: at the threshold");
    assert.deepEqual(d(0n, 0.5), { kind: "downgrade", capId: "d", to: "haiku" });
    assert.deepEqual(d(0n, 0.51), { kind: "go", warned: [] });
  });

  it("downgrade happens once: a downgraded call is decided on the walls alone, and a downgrade cap past its limit blocks", () => {
    const caps = [cap({ id: "d", action: "downgrade", downgradeTo: "haiku", spentPicos: 700n })];
    assert.deepEqual(decideCapActions(caps, call({ modelId: "haiku", maxOutputTokens: 100 }), true), { kind: "go", warned: [] });
    assert.deepEqual(decideCapActions(caps, call({ modelId: "haiku" }), true), { kind: "block", capId: "d" });
    assert.deepEqual(decideCapActions(caps, call({ modelId: "haiku" }), false), { kind: "block", capId: "d" }, "already on the target model: nothing to downgrade to");
  });

  it("clamp: lowers the output limit to what is left, and the clamped worst case is what decides the other caps", () => {
    // 1000 - 600 spent - 100 input = 300 tokens fit.
    const caps = [cap({ id: "c", action: "clamp", spentPicos: 600n }), cap({ id: "b", action: "block", limitPicos: 450n })];
    assert.deepEqual(decideCapActions(caps, call()), { kind: "clamp", capId: "c", fromTokens: 400, toTokens: 300, warned: [] });
    const tighter = [cap({ id: "c", action: "clamp", spentPicos: 600n }), cap({ id: "b", action: "block", limitPicos: 350n })];
    assert.deepEqual(decideCapActions(tighter, call()), { kind: "block", capId: "b" });
  });

  it("clamp: the tightest clamp cap binds", () => {
    const caps = [cap({ id: "c1", action: "clamp", spentPicos: 600n }), cap({ id: "c2", action: "clamp", spentPicos: 800n })];
    assert.deepEqual(decideCapActions(caps, call()), { kind: "clamp", capId: "c2", fromTokens: 400, toTokens: 100, warned: [] });
  });

  it("clamp refuses when not even a minimal answer fits (the input alone, or no room for one output token)", () => {
    assert.equal(MIN_CLAMPED_OUTPUT_TOKENS, 1);
    const left = (n: bigint) => decideCapActions([cap({ id: "c", action: "clamp", spentPicos: 1000n - n })], call());
    assert.deepEqual(left(100n), { kind: "block", capId: "c", clampImpossible: true }, "room for the input, none for an output token");
    assert.deepEqual(left(50n), { kind: "block", capId: "c", clampImpossible: true });
    assert.deepEqual(left(101n), { kind: "clamp", capId: "c", fromTokens: 400, toTokens: 1, warned: [] });
  });

  it("clamp never admits a worst case past any cap's limit (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ action: fc.constantFrom("block" as const, "warn" as const, "clamp" as const), limit: fc.bigInt(1n, 10_000n), spent: fc.bigInt(0n, 10_000n) }), { minLength: 1, maxLength: 4 }),
        fc.bigInt(0n, 3_000n),
        fc.bigInt(0n, 50n),
        fc.integer({ min: 1, max: 5_000 }),
        (specs, fixed, rate, maxOut) => {
          const caps = specs.map((s, i) => cap({ id: `c${i}`, action: s.action, limitPicos: s.limit, spentPicos: s.spent }));
          const c = call({ fixedPicos: fixed, outputRatePicos: rate, maxOutputTokens: maxOut });
          const d = decideCapActions(caps, c);
          if (d.kind === "block" || d.kind === "downgrade") return;
          const tokens = d.kind === "clamp" ? d.toTokens : maxOut;
          assert.ok(tokens >= MIN_CLAMPED_OUTPUT_TOKENS && tokens <= maxOut);
          const worst = fixed + BigInt(tokens) * rate;
          for (const k of caps) if (k.action !== "warn") assert.ok(k.spentPicos + worst <= k.limitPicos, `${k.id} would pass its limit`);
        },
      ),
      { numRuns: 500 },
    );
  });
});
