/** Bedrock event-stream frames for usage tests, encoded then decoded by smithy's codec exactly as the gateway sees them arrive. */
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

const codec = new EventStreamCodec(toUtf8, fromUtf8);

export const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

export function frame(headers: Record<string, string>, body: Uint8Array) {
  const h: Record<string, { type: "string"; value: string }> = {};
  for (const [k, v] of Object.entries(headers)) h[k] = { type: "string", value: v };
  return codec.decode(codec.encode({ headers: h, body }));
}

export const event = (eventType: string, body: unknown) => frame({ ":message-type": "event", ":event-type": eventType }, enc(body));

/** An InvokeModelWithResponseStream `chunk` carrying the model's own JSON, base64 as Bedrock sends it. */
export const chunk = (model: unknown) => event("chunk", { bytes: Buffer.from(JSON.stringify(model)).toString("base64") });
