/** How much a stream holds before relaying a frame: one frame ahead, bounded by its worst case while it fits. */
import assert from "node:assert/strict";
import { heldBeforeRelaying } from "../../../server/gateway/relay";

describe("stream relay: what is held before a frame is relayed", () => {
  const worst = 1_000n;

  it("holds one frame ahead while that stays within the worst case", () => {
    assert.equal(heldBeforeRelaying(400n, 300n, worst, false), 500n);
  });

  it("holds no more than the worst case while the stream is within it: a stream that fits is never cut", () => {
    // 950 so far and the last frame added 100: one more such frame would pass 1,000, but the
    // model stops at max tokens, which the worst case already covers.
    assert.equal(heldBeforeRelaying(950n, 850n, worst, false), worst);
    assert.equal(heldBeforeRelaying(worst, 900n, worst, false), worst);
  });

  it("holds one frame ahead again once the stream outgrew its worst case (more input than estimated)", () => {
    assert.equal(heldBeforeRelaying(1_100n, 1_050n, worst, false), 1_150n);
  });

  it("holds just the running cost once the final usage has arrived: nothing more is generated", () => {
    assert.equal(heldBeforeRelaying(1_400n, 600n, worst, true), 1_400n);
    assert.equal(heldBeforeRelaying(700n, 200n, worst, true), 700n);
  });
});
