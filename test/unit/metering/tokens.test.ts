/**
 * Text token counts: long runs without a space (base64, padding pasted as text) are counted in
 * slices, so a body's count takes time in proportion to its length (the tokenizer's merges are
 * quadratic in a piece's length: 80K "a"s took seconds, blocking the gateway), and never lower.
 */
import assert from "node:assert/strict";
import { countTokens } from "gpt-tokenizer/encoding/cl100k_base";
import { countRawTokens, MAX_RUN_COUNTED_WHOLE } from "../../../server/metering/tokens";

const whole = (text: string) => countTokens(text, { disallowedSpecial: new Set() });

/** Base64 of pseudo-random bytes (a fixed seed): a long run the tokenizer splits unevenly. */
function base64Run(bytes: number): string {
  const out = Buffer.alloc(bytes);
  let x = 12345;
  for (let i = 0; i < bytes; i++) out[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return out.toString("base64");
}

describe("metering/tokens: long runs", () => {
  it("a run longer than the limit is counted slice by slice, and the count is never below the whole run's", () => {
    const run = base64Run(3000); // 4,000 characters, no space
    let sliced = 0;
    for (let i = 0; i < run.length; i += MAX_RUN_COUNTED_WHOLE) sliced += whole(run.slice(i, i + MAX_RUN_COUNTED_WHOLE));
    const text = `Describe this: ${run} thanks`;
    assert.equal(countRawTokens(text), whole("Describe this: ") + sliced + whole(" thanks"), "the run was counted in one piece");
    assert.ok(countRawTokens(text) >= whole(text));
  });

  it("prose, and runs up to the limit, count as the tokenizer counts them whole", () => {
    const prose = "The quick brown fox jumps over the lazy dog. ".repeat(200);
    assert.equal(countRawTokens(prose), whole(prose));
    const atLimit = `x ${"ab".repeat(MAX_RUN_COUNTED_WHOLE / 2)} y`;
    assert.equal(countRawTokens(atLimit), whole(atLimit));
  });

  it("a cut never splits a surrogate pair (a split pair counts fewer tokens than the character)", () => {
    // "xy" then 60 "🧑‍💻" (5 UTF-16 units each): the cut at 128 falls between the halves of a 🧑 unless moved past it.
    const run = `xy${"🧑‍💻".repeat(60)}`;
    assert.equal(countRawTokens(run), whole(run.slice(0, 129)) + whole(run.slice(129, 257)) + whole(run.slice(257)));
    assert.ok(countRawTokens(run) >= whole(run));
  });
});
