/** The try-it simulator's replies: usage from the gateway's own estimator, never past the request's max tokens. */
import assert from "node:assert/strict";
import { FrameSplitter, decodeFrame } from "../../../server/gateway/eventStreamFrames";
import { countRawTokens } from "../../../server/metering/tokens";
import { measureBody } from "../../../server/metering/requestBody";
import { appliedTierFromConverse } from "../../../server/metering/usage";
import { anthropicStreamFrames, converseStreamFrames, simulatedReply } from "../../../server/simulator/replies";
import { startSimulator } from "../../../server/simulator/server";

const converse = (text: string, maxTokens?: number) => ({
  messages: [{ role: "user", content: [{ text }] }],
  ...(maxTokens === undefined ? {} : { inferenceConfig: { maxTokens } }),
});

describe("simulator replies", () => {
  it("reports the input tokens the gateway's estimator gives the request", () => {
    const body = converse("Summarise the plot of Hamlet in three sentences, please.", 300);
    assert.equal(simulatedReply("Converse", body).inputTokens, measureBody("Converse", body).inputTokens);
  });

  it("counts the output tokens of the text it returns and never exceeds the request's max tokens", () => {
    for (const max of [1, 5, 17, 64, 4096]) {
      const reply = simulatedReply("Converse", converse("hi", max));
      assert.equal(reply.outputTokens, countRawTokens(reply.text));
      assert.ok(reply.outputTokens <= max, `max ${max}: ${reply.outputTokens} tokens`);
      assert.ok(reply.outputTokens > 0);
    }
    assert.equal(simulatedReply("Converse", converse("hi", 5)).stopReason, "max_tokens");
    assert.equal(simulatedReply("Converse", converse("hi", 4096)).stopReason, "end_turn");
  });

  it("streams real event-stream frames whose deltas add up to the reply and end with the usage", () => {
    const reply = simulatedReply("ConverseStream", converse("hello", 50));
    const check = (frames: Uint8Array[]) => {
      const splitter = new FrameSplitter();
      const whole = splitter.push(Buffer.concat(frames.map((f) => Buffer.from(f))));
      assert.equal(whole.length, frames.length);
      return whole.map((f) => decodeFrame(f));
    };
    const events = check(converseStreamFrames(reply, 10)).map((m) => JSON.parse(Buffer.from(m.body).toString()) as Record<string, any>);
    assert.equal(events.filter((e) => e.delta).map((e) => e.delta.text).join(""), reply.text);
    assert.deepEqual(events.at(-1)!.usage, { inputTokens: reply.inputTokens, outputTokens: reply.outputTokens, totalTokens: reply.inputTokens + reply.outputTokens });
    const chunks = check(anthropicStreamFrames(reply, "m", "id", 10)).map((m) => JSON.parse(Buffer.from(JSON.parse(Buffer.from(m.body).toString()).bytes, "base64").toString()) as Record<string, any>);
    assert.equal(chunks.find((c) => c.type === "message_delta")!.usage.output_tokens, reply.outputTokens);
    // A tier asked for is reported in the closing metadata event, where the gateway reads it to price the call.
    const tiered = check(converseStreamFrames(reply, 10, { serviceTier: "flex", latency: "optimized" })).map((m) => JSON.parse(Buffer.from(m.body).toString()) as Record<string, any>);
    assert.deepEqual(appliedTierFromConverse(tiered.at(-1)), { serviceTier: "flex", latency: "optimized" });
    assert.deepEqual(appliedTierFromConverse(events.at(-1)), {});
  });

  it("answers CountTokens with the tokens of the prompt it wraps (Converse or base64 InvokeModel), not 0", async () => {
    const sim = await startSimulator({ firstByteMs: 0, betweenFramesMs: 0 });
    try {
      const prompt = "Count me: the quick brown fox jumps over the lazy dog, again and again. ".repeat(20);
      const conv = converse(prompt);
      const invoke = { anthropic_version: "bedrock-2023-05-31", max_tokens: 10, messages: [{ role: "user", content: prompt }] };
      const ask = async (input: unknown) => {
        const res = await fetch(`${sim.url}/model/anthropic.claude-3-haiku-20240307-v1:0/count-tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ input }) });
        assert.equal(res.status, 200);
        return ((await res.json()) as { inputTokens: number }).inputTokens;
      };
      const fromConverse = await ask({ converse: conv });
      assert.equal(fromConverse, measureBody("Converse", conv).inputTokens);
      assert.ok(fromConverse > 100, `${fromConverse} tokens`);
      assert.equal(await ask({ invokeModel: { body: Buffer.from(JSON.stringify(invoke)).toString("base64") } }), measureBody("InvokeModel", invoke).inputTokens);
    } finally {
      await sim.close();
    }
  });
});
