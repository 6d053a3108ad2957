/**
 * A call's settlement books it exactly once, even when a first attempt could not price it; a
 * stream whose caller left before the relay began is settled at once.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import http from "node:http";
import net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BudgetEngine } from "../../../server/budget/engine";
import { Caps, LocalCapStore, type CapHold } from "../../../server/budget/caps";
import { Ledger } from "../../../server/ledger/ledger";
import type { CallRecord } from "../../../server/ledger/types";
import type { GatewayContext } from "../../../server/gateway/context";
import { admit, MeteredCall } from "../../../server/gateway/meteredCall";
import { relayStream } from "../../../server/gateway/relay";
import type { AnyResponse } from "../../../server/http";
import { estimateParsed } from "../../../server/metering/estimate";
import { costOf, PriceBook } from "../../../server/metering/prices";
import { ZERO_USAGE, type AppliedTier } from "../../../server/metering/types";

const MODEL = "anthropic.claude-3-haiku-20240307-v1:0";

function meteredCall(operation: "InvokeModel" | "InvokeModelWithResponseStream" = "InvokeModel"): { call: MeteredCall; journaled: CallRecord[]; released: string[] } {
  const prices = new PriceBook();
  const journaled: CallRecord[] = [];
  const released: string[] = [];
  // Only what settlement uses of the gateway: prices, the ledger, the caps and the publisher.
  const ctx = {
    prices,
    now: () => new Date("2026-12-01T00:00:00Z"),
    user: "tester",
    caps: { settle: (r: CallRecord) => released.push(r.id) },
    ledger: { settleReserved: async (r: CallRecord) => void journaled.push(r) },
    publish: () => undefined,
    log: { info: () => undefined, error: () => undefined },
  } as unknown as GatewayContext;
  const estimate = estimateParsed(operation, MODEL, { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [] }, prices, undefined, { region: "us-east-1" });
  const who = { id: "c1", operation, modelId: MODEL, tool: "test", tags: {}, startedAt: new Date("2026-12-01T00:00:00Z") };
  return { call: new MeteredCall(ctx, who, estimate, { capIds: [] } as CapHold), journaled, released };
}

describe("MeteredCall.settle", () => {
  it("a settlement that cannot be priced leaves the call open, so a later one still books it", async () => {
    const { call, journaled, released } = meteredCall();
    await assert.rejects(call.settle({ outcome: "ok", usage: { ...ZERO_USAGE, inputTokens: 10.5 }, usageEstimated: false, status: 200 }), RangeError);
    assert.equal(journaled.length, 0);
    await call.settleAtWorstCase("ok", 200, "unreadable usage");
    assert.equal(journaled.length, 1, "journaled");
    assert.equal(journaled[0]!.costPicos, String(call.estimate.worstCasePicos));
    assert.deepEqual(released, ["c1"], "the hold was released");
    assert.equal(await call.settle({ outcome: "ok", usage: ZERO_USAGE, usageEstimated: false, status: 200 }), undefined, "and only once");
    assert.equal(journaled.length, 1);
  });
});

describe("MeteredCall.costOf: each frame at the rates it is given", () => {
  it("a tier, a long context or a new price book that comes mid-stream prices the frames after it at those rates", () => {
    const model = "anthropic.claude-sonnet-4-20250514-v1:0"; // has a long-context rate above 200K input
    const ctx = { prices: new PriceBook(), now: () => new Date("2026-12-01T00:00:00Z"), user: "tester" } as unknown as GatewayContext & { prices: PriceBook };
    const estimate = estimateParsed("InvokeModelWithResponseStream", model, { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [] }, ctx.prices, undefined, { region: "us-east-1" });
    const call = new MeteredCall(ctx, { id: "c1", operation: "InvokeModelWithResponseStream", modelId: model, tool: "test", tags: {}, startedAt: ctx.now() }, estimate, { capIds: [] } as CapHold);
    const usage = (inputTokens: number) => ({ ...ZERO_USAGE, inputTokens, outputTokens: 1_000 });
    const expected = (inputTokens: number, tier: AppliedTier = {}, book = ctx.prices) =>
      costOf(usage(inputTokens), new PriceBook(...(book === ctx.prices ? [] : [{ [model]: { inputPer1M: 100, outputPer1M: 200 } }])).rates(model, { ...tier, region: "us-east-1", inputTokens }));
    const frames: [number, AppliedTier | undefined][] = [
      [1_000, undefined],
      [1_000, { serviceTier: "priority" }],
      [1_000, undefined],
      [250_000, undefined], // past the long-context threshold
      [250_000, { serviceTier: "priority" }],
      [1_000, { serviceTier: "flex" }],
      [1_000, undefined],
    ];
    let previous: bigint | undefined;
    for (const [inputTokens, tier] of frames) {
      const cost = call.costOf(usage(inputTokens), tier);
      assert.equal(cost, expected(inputTokens, tier), `${inputTokens} input at ${JSON.stringify(tier ?? {})}`);
      assert.notEqual(cost, previous, `${inputTokens} input at ${JSON.stringify(tier ?? {})} is priced differently from the frame before`);
      previous = cost;
    }
    // Prices reloaded (a new book in the context): the next frame is priced by it.
    ctx.prices = new PriceBook({ [model]: { inputPer1M: 100, outputPer1M: 200 } });
    const reloaded = call.costOf(usage(1_000));
    assert.equal(reloaded, expected(1_000, {}, new PriceBook()));
    assert.notEqual(reloaded, previous);
  });
});

describe("MeteredCall.settleAtWorstCase", () => {
  it("prices what was seen at the tier that applied when it is more than the worst case", async () => {
    const { call, journaled } = meteredCall();
    const seen = { ...ZERO_USAGE, inputTokens: 1_000_000, outputTokens: 100 }; // far more input than estimated
    await call.settleAtWorstCase("upstream-failed", 200, "dropped", seen, { serviceTier: "priority" });
    assert.equal(journaled[0]!.costPicos, String((call.costOf(seen) * 17_500n) / 10_000n), "×1.75, not the standard rate");
  });

  it("a stream that reported more input than estimated and then failed: that input and the whole output allowance, not just the output delivered", async () => {
    const { call, journaled } = meteredCall("InvokeModelWithResponseStream");
    const seen = { ...ZERO_USAGE, inputTokens: 150_000, outputTokens: 10 }; // message_start's input, 10 tokens delivered
    await call.settleAtWorstCase("upstream-failed", 200, "dropped");
    const estimateOnly = BigInt(journaled[0]!.costPicos);
    const { call: failed, journaled: charged } = meteredCall("InvokeModelWithResponseStream");
    await failed.settleAtWorstCase("upstream-failed", 200, "dropped", seen);
    assert.equal(charged[0]!.costPicos, String(failed.costOf({ ...seen, outputTokens: 100 })), "150,000 in, the 100 max_tokens out");
    assert.ok(BigInt(charged[0]!.costPicos) > estimateOnly);
    assert.equal(charged[0]!.usage.outputTokens, 100);
  });
});

describe("MeteredCall.grow: a stream that outgrew its reservation", () => {
  const USD = 1_000_000_000_000n;
  const now = () => new Date("2026-12-02T10:00:00Z");
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-grow-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A real ledger and cap engine (a $10 day cap) and one admitted call reserving $2 (started at `startedAt`, admitted at `now`). */
  async function admitted(startedAt = now()) {
    const ledger = await Ledger.open(dir, { now, durability: "machine" });
    const engine = new BudgetEngine([{ id: "daily", scope: "personal", window: "day", limitUsd: 10 }], "UTC");
    const logged: string[] = [];
    const ctx = {
      caps: new Caps(new LocalCapStore(engine, () => "UTC", now)), ledger, now, user: "u", publish: () => undefined, prices: new PriceBook(),
      log: { info: () => undefined, warn: (m: string) => logged.push(m), error: (m: string) => logged.push(m) }, logRepeat: (_l: string, _k: string, m: string) => logged.push(m),
    } as unknown as GatewayContext;
    const prices = new PriceBook();
    const estimate = { ...estimateParsed("InvokeModelWithResponseStream", MODEL, { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [] }, prices, undefined, { region: "us-east-1" }), worstCasePicos: 2n * USD };
    const admission = await admit(ctx, { id: "S", operation: "InvokeModelWithResponseStream", modelId: MODEL, tool: "t", tags: {}, startedAt }, estimate);
    assert.ok(admission.ok);
    return { call: admission.call, ledger, engine, logged };
  }

  /** What a start after a crash (the ledger reopened, never closed) charges the call. */
  async function chargedAfterCrash(since = new Date("2026-12-02T00:00:00Z")): Promise<CallRecord[]> {
    const reopened = await Ledger.open(dir, { now, durability: "machine" });
    const charged: CallRecord[] = [];
    for await (const c of reopened.settledSince(since)) charged.push(c);
    await reopened.close();
    return charged;
  }

  it("is journaled, so a crash charges the grown hold, not the first worst case", async () => {
    const { call, engine, ledger } = await admitted();
    assert.deepEqual(call.grow(6n * USD), { ok: true });
    assert.equal(engine.status(now())[0]!.reservedPicos, 6n * USD, "held live");
    // The growth is written in the background, each write of the latest amount.
    assert.deepEqual(call.grow(7n * USD), { ok: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await ledger.journal.close(); // the crash: no settle
    const [interrupted] = await chargedAfterCrash();
    assert.equal(interrupted!.outcome, "interrupted");
    assert.equal(interrupted!.costPicos, String(7n * USD), "charged what was held when the gateway died");
    assert.equal(interrupted!.startedAt, now().toISOString());
  });

  it("a crash charges the call to the window the caps reserved it in: its start, though admitted after midnight", async () => {
    const { engine, ledger } = await admitted(new Date("2026-12-01T23:59:59Z")); // admitted at 10:00 on the 2nd (the ledger's clock)
    assert.equal(engine.status(new Date("2026-12-01T23:59:59Z"))[0]!.reservedPicos, 2n * USD, "held in the 1st's window");
    await ledger.journal.close(); // the crash
    const [interrupted] = await chargedAfterCrash(new Date("2026-12-01T00:00:00Z"));
    assert.equal(interrupted!.startedAt, "2026-12-01T23:59:59.000Z", "so a replay charges the 1st, not the 2nd it was never checked against");
  });

  it("a growth that comes once the settle is under way is not journaled after it: a restart charges nothing more", async () => {
    const { call, ledger } = await admitted();
    call.grow(6n * USD);
    const settling = call.settle({ outcome: "ok", usage: { ...ZERO_USAGE, inputTokens: 10, outputTokens: 10 }, usageEstimated: false, status: 200 });
    // A reserve line after the settle line would reopen the call on the next start (charged again).
    await ledger.raiseReservation("S", 9n * USD);
    await settling;
    await new Promise((resolve) => setTimeout(resolve, 100));
    await ledger.journal.close();
    const charged = await chargedAfterCrash();
    assert.deepEqual(charged.map((c) => c.outcome), ["ok"], "one settle, no interrupted charge");
  });
});

describe("relayStream with a caller already gone", function () {
  this.timeout(2_000); // without the check it waits for a close that already happened

  it("stops Bedrock and settles the call as client-aborted, writing nothing", async () => {
    const { call, journaled } = meteredCall("InvokeModelWithResponseStream");
    const upstream = new http.IncomingMessage(new net.Socket());
    upstream.statusCode = 200;
    upstream.headers = { "content-type": "application/vnd.amazon.eventstream" };
    const written: string[] = [];
    // A response whose close event fired while the call was being admitted.
    const res = Object.assign(new EventEmitter(), {
      headersSent: false,
      destroyed: true,
      writeHead: () => written.push("head"),
      setHeader: () => undefined,
      write: () => (written.push("frame"), false),
      end: () => written.push("end"),
    }) as AnyResponse;
    await relayStream(call, upstream, res);
    assert.equal(upstream.destroyed, true, "Bedrock's stream was stopped");
    assert.deepEqual(written, []);
    assert.equal(journaled.length, 1);
    assert.equal(journaled[0]!.outcome, "client-aborted");
    assert.equal(journaled[0]!.status, 499);
  });
});
