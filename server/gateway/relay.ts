/**
 * Relays Bedrock's answer to the caller unchanged (status, headers, body bytes) while reading the
 * real usage out of it. Buffered operations settle before the caller sees any byte; streams are
 * relayed frame by frame as they arrive and settle before the stream ends.
 */
import type http from "node:http";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { appliedTierFromConverse, appliedTierFromHeaders, StreamUsageTracker, usageFromConverse, usageFromInvokeModel } from "../metering/usage";
import type { AnyResponse } from "./listener";
import type { MeteredCall } from "./meteredCall";
import { FrameSplitter } from "./eventStreamFrames";

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** Hop-by-hop headers may not be relayed (and HTTP/2 forbids them outright). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "proxy-authenticate"]);

export function relayHeaders(upstream: http.IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export function readAll(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.once("error", reject);
    stream.once("aborted", () => reject(new Error("the upstream connection closed mid-response")));
  });
}

export function send(res: AnyResponse, status: number, headers: Record<string, string | string[]>, body: Buffer): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...headers, "content-length": String(body.byteLength) });
  res.end(body);
}

/** InvokeModel and Converse: buffer, settle, then answer. */
export async function relayBuffered(call: MeteredCall, upstream: http.IncomingMessage, res: AnyResponse): Promise<void> {
  const status = upstream.statusCode ?? 502;
  const headers = relayHeaders(upstream);
  const requestId = headerValue(upstream, "x-amzn-requestid");
  const id = requestId ? { requestId } : {};
  let body: Buffer;
  try {
    body = await readAll(upstream);
  } catch (err) {
    await call.settleAtWorstCase("upstream-failed", 502, (err as Error).message);
    throw err;
  }
  if (status >= 400) {
    await call.settle({ outcome: "upstream-error", usage: call.worstCaseUsage(), usageEstimated: false, status, ...id, message: errorSummary(upstream, body) }, 0n);
  } else {
    const json = call.who.operation === "Converse" ? parseJson(body) : undefined;
    const usage = call.who.operation === "Converse" ? usageFromConverse(json) : usageFromInvokeModel(upstream.headers, body);
    const tier = call.who.operation === "Converse" ? appliedTierFromConverse(json) : appliedTierFromHeaders(upstream.headers);
    if (usage) await call.settle({ outcome: "ok", usage, usageEstimated: false, status, tier, ...id });
    else await call.settleAtWorstCase("ok", status, "Bedrock reported no usage; charged the worst case");
  }
  send(res, status, headers, body);
}

/** The two streaming operations: relay whole frames as they come; cut at a cap. */
export function relayStream(call: MeteredCall, upstream: http.IncomingMessage, res: AnyResponse): Promise<void> {
  const status = upstream.statusCode ?? 502;
  const requestId = headerValue(upstream, "x-amzn-requestid");
  const streamOp = call.who.operation === "ConverseStream" ? "ConverseStream" : "InvokeModelWithResponseStream";
  const tracker = new StreamUsageTracker(streamOp, call.estimate.inputTokens);
  const splitter = new FrameSplitter();
  const headerTier = appliedTierFromHeaders(upstream.headers);
  // ConverseStream reports the applied tier in its metadata event; it wins over the headers.
  const tier = () => ({ ...headerTier, ...tracker.appliedTier() });
  const id = requestId ? { requestId } : {};
  let upstreamException: string | undefined;
  let finished = false;
  let lastRunning = call.costOf(tracker.current(), tier());

  res.writeHead(status, relayHeaders(upstream));

  return new Promise<void>((resolve) => {
    const finish = async (settle: () => Promise<unknown>, tail?: Buffer) => {
      if (finished) return;
      finished = true;
      upstream.removeAllListeners("data");
      await settle();
      if (!res.destroyed) res.end(tail);
      resolve();
    };

    upstream.on("data", (chunk: Buffer) => {
      if (finished) return;
      let frames: Buffer[];
      try {
        frames = splitter.push(chunk);
      } catch (err) {
        void finish(() => call.settleAtWorstCase("upstream-failed", status, (err as Error).message), exceptionFrame("internalServerException", `Bedrock Budget could not read the stream: ${(err as Error).message}`));
        upstream.destroy();
        return;
      }
      for (const frame of frames) {
        const message = codec.decode(frame);
        const messageType = message.headers[":message-type"]?.value;
        if (messageType === "exception") upstreamException = String(message.headers[":exception-type"]?.value ?? "exception");
        tracker.onEvent(message);
        const running = call.costOf(tracker.current(), tier());
        // Reserve one frame ahead, so a stream is cut before the frame that would cross its cap.
        const growth = call.grow(running + (running - lastRunning));
        lastRunning = running;
        if (!growth.ok) {
          const covered = call.grow(running).ok;
          if (covered) res.write(frame);
          const text = `Bedrock Budget stopped this stream at its cap. ${growth.message}`;
          void finish(() => call.settle({ outcome: "cut", usage: tracker.current(), usageEstimated: true, status, tier: tier(), ...id, message: text }),
            exceptionFrame("modelStreamErrorException", text));
          upstream.destroy();
          return;
        }
        if (!res.write(frame)) {
          upstream.pause();
          res.once("drain", () => upstream.resume());
        }
      }
    });

    upstream.once("end", () => {
      const final = tracker.final();
      if (final) {
        void finish(() => call.settle({ outcome: upstreamException ? "upstream-error" : "ok", usage: final, usageEstimated: false, status, tier: tier(), ...id }), undefined);
      } else if (upstreamException) {
        // Bedrock bills what a failed stream generated; the running figure is the best known.
        void finish(() => call.settle({ outcome: "upstream-error", usage: tracker.current(), usageEstimated: true, status, tier: tier(), ...id, message: upstreamException }), undefined);
      } else {
        void finish(() => call.settleAtWorstCase("ok", status, "the stream ended without usage metrics; charged the worst case", tracker.current()), undefined);
      }
    });

    const dropped = () => {
      if (finished || upstream.complete) return;
      void finish(() => call.settleAtWorstCase("upstream-failed", status, "the connection to Bedrock dropped mid-stream", tracker.current()),
        exceptionFrame("internalServerException", "Bedrock Budget lost the connection to Bedrock mid-stream"));
    };
    upstream.once("aborted", dropped);
    upstream.once("error", dropped);
    upstream.once("close", dropped);

    res.once("close", () => {
      if (finished) return;
      // The caller went away: stop generating, and charge conservatively (Bedrock's figure is lost).
      void finish(() => call.settleAtWorstCase("client-aborted", 499, "the caller closed the stream", tracker.current()), undefined);
      upstream.destroy();
    });
  });
}

/** An in-stream exception the SDKs raise as a typed error; a started stream is never retried. */
export function exceptionFrame(type: string, message: string): Buffer {
  return Buffer.from(
    codec.encode({
      headers: {
        ":message-type": { type: "string", value: "exception" },
        ":exception-type": { type: "string", value: type },
        ":content-type": { type: "string", value: "application/json" },
      },
      body: fromUtf8(JSON.stringify({ message })),
    }),
  );
}

function headerValue(msg: http.IncomingMessage, name: string): string | undefined {
  const v = msg.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

function errorSummary(upstream: http.IncomingMessage, body: Buffer): string {
  const type = headerValue(upstream, "x-amzn-errortype")?.split(":")[0] ?? `HTTP ${upstream.statusCode}`;
  const json = parseJson(body) as { message?: unknown; Message?: unknown } | undefined;
  const message = typeof json?.message === "string" ? json.message : typeof json?.Message === "string" ? json.Message : "";
  return `${type}${message ? `: ${message}` : ""}`.slice(0, 300);
}
