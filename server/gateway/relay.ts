/**
 * Relays Bedrock's answer to the caller unchanged (status, headers, body bytes) while reading the
 * real usage out of it. Buffered operations settle before the caller sees any byte; streams are
 * relayed frame by frame as they arrive and settle before the stream ends. Bytes that cannot be
 * read or relayed stop that call alone: it is settled conservatively and the caller gets an error
 * in Bedrock's shape; nothing here may throw out of an event callback.
 */
import http from "node:http";
import { fromUtf8 } from "@smithy/util-utf8";
import { appliedTierFromConverse, appliedTierFromHeaders, StreamUsageTracker, usageFromConverse, usageFromInvokeModel } from "../metering/usage";
import { bedrockError, type ErrorAnswer } from "./errors";
import type { AnyResponse } from "./listener";
import type { Picos } from "../metering/money";
import type { Outcome } from "../ledger/types";
import type { MeteredCall } from "./meteredCall";
import { decodeFrame, encodeFrame, FrameSplitter } from "./eventStreamFrames";
import { isObject } from "../shared/isObject";
import { converseAnswerChars, guardrailTraceOf } from "../metering/attachedGuardrail";
import { ZERO_USAGE } from "../metering/types";

/** Hop-by-hop headers may not be relayed (and HTTP/2 forbids them outright). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "proxy-authenticate", "http2-settings"]);

const EVENT_STREAM = /^application\/vnd\.amazon\.eventstream\s*(;|$)/i;

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
    const cut = () => reject(new Error("the upstream connection closed mid-response"));
    if (stream.destroyed && !stream.complete) return cut();
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
    stream.once("aborted", cut);
    stream.once("close", () => stream.complete || cut()); // a no-op once settled
  });
}

/**
 * Whether the caller's side is closed. HTTP/1.1 says so in `destroyed`, or, for a request pipelined
 * behind another, in its connection: one that answer closed (or the caller half-closed) can carry
 * no later answer, while the queued response itself is never destroyed. On Node 20 an HTTP/2
 * compatibility response has no `destroyed` at all, so its stream is asked.
 */
export function callerGone(res: AnyResponse): boolean {
  if (res.destroyed) return true;
  const connection = (res as { req?: { httpVersionMajor?: number; socket?: { destroyed: boolean; writable: boolean } | null } }).req;
  if (connection?.httpVersionMajor === 1 && connection.socket && (connection.socket.destroyed || !connection.socket.writable)) return true;
  const stream = (res as { stream?: { destroyed?: boolean; closed?: boolean } }).stream;
  return stream !== undefined && (stream.destroyed === true || stream.closed === true);
}

export function send(res: AnyResponse, status: number, headers: Record<string, string | string[]>, body: Buffer): void {
  if (res.headersSent || callerGone(res)) return;
  try {
    res.writeHead(status, { ...headers, "content-length": String(body.byteLength) });
  } catch (err) {
    // A status or header this protocol cannot carry (relayBuffered checks first; this is the last guard).
    if (res.headersSent) return void res.end();
    const fallback = unreadableAnswer(`its answer cannot be relayed (${(err as Error).message})`);
    res.writeHead(fallback.status, fallback.headers);
    return void res.end(fallback.body);
  }
  res.end(body);
}

/** Bedrock's answer could not be read or relayed; the call was settled at its worst case. */
export function unreadableAnswer(problem: string): ErrorAnswer {
  return bedrockError(502, "InternalServerException", `Bedrock Budget could not read Bedrock's answer, so it charged this call its worst case: ${problem}`);
}

/**
 * Why an upstream answer cannot be relayed as it is (a final status HTTP/2 can carry, valid headers), or undefined.
 * `headers`: relayHeaders(upstream), when the caller has them already.
 */
export function unrelayable(upstream: http.IncomingMessage, headers = relayHeaders(upstream)): string | undefined {
  const status = upstream.statusCode;
  if (status === undefined || !Number.isInteger(status) || status < 200 || status > 599) return `Bedrock answered with HTTP status ${status}`;
  for (const [name, value] of Object.entries(headers)) {
    try {
      http.validateHeaderName(name);
      for (const v of Array.isArray(value) ? value : [value]) http.validateHeaderValue(name, v);
    } catch {
      return `Bedrock sent a header that cannot be relayed (${JSON.stringify(name.slice(0, 60))})`;
    }
  }
  return undefined;
}

/** Stops a call whose answer cannot be relayed before any byte reached the caller. */
async function refuseAnswer(call: MeteredCall, upstream: http.IncomingMessage, res: AnyResponse, problem: string): Promise<void> {
  upstream.destroy();
  await call.settleAtWorstCase("upstream-failed", 502, `unreadable answer: ${problem}`);
  const answer = unreadableAnswer(problem);
  if (res.headersSent) {
    if (!callerGone(res)) res.end();
    return;
  }
  send(res, answer.status, answer.headers, answer.body);
}

/** InvokeModel and Converse: buffer, settle, then answer. */
export async function relayBuffered(call: MeteredCall, upstream: http.IncomingMessage, res: AnyResponse): Promise<void> {
  const headers = relayHeaders(upstream);
  const problem = unrelayable(upstream, headers);
  if (problem) return refuseAnswer(call, upstream, res, problem);
  const status = upstream.statusCode!;
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
    await call.settle({ outcome: "upstream-error", usage: { ...ZERO_USAGE }, usageEstimated: false, status, ...id, message: errorSummary(upstream, body) }, 0n);
  } else if (call.who.operation === "Converse") {
    // Converse's answer is Bedrock's own JSON: anything else is not a Converse answer.
    const json = parseJson(body);
    if (!isObject(json)) return refuseAnswer(call, upstream, res, `its Converse answer (HTTP ${status}, ${body.byteLength} bytes) is not a JSON object`);
    call.watchGuardrail(() => ({ trace: guardrailTraceOf(json), outputChars: converseAnswerChars(json) }));
    const usage = usageFromConverse(json);
    if (usage) await call.settle({ outcome: "ok", usage, usageEstimated: false, status, tier: appliedTierFromConverse(json), ...id });
    else await call.settleAtWorstCase("ok", status, "Bedrock reported no usage; charged the worst case");
  } else {
    // InvokeModel's body is the model's own bytes: relayed as they are, whatever they hold. Its
    // length bounds the text an attached guardrail evaluated on the output.
    call.watchGuardrail(() => ({ trace: guardrailTraceOf(parseJson(body)), outputChars: body.toString("utf8").length }));
    const usage = usageFromInvokeModel(upstream.headers, body);
    if (usage) await call.settle({ outcome: "ok", usage, usageEstimated: false, status, tier: appliedTierFromHeaders(upstream.headers), ...id });
    else await call.settleAtWorstCase("ok", status, "Bedrock reported no usage; charged the worst case");
  }
  send(res, status, headers, body);
}

/** Stream exceptions that, before any event, mean the model never ran (Bedrock's 429, 503 and 400 sent in the stream). */
const NOT_STARTED_EXCEPTIONS = new Set(["throttlingException", "serviceUnavailableException", "validationException"]);

/** The two streaming operations: relay whole frames as they come; cut at a cap. */
export function relayStream(call: MeteredCall, upstream: http.IncomingMessage, res: AnyResponse): Promise<void> {
  const contentType = headerValue(upstream, "content-type");
  const headers = relayHeaders(upstream);
  const problem = unrelayable(upstream, headers) ?? (EVENT_STREAM.test(contentType ?? "") ? undefined : `its stream came as ${contentType ? JSON.stringify(contentType.slice(0, 80)) : "no content type"}, not an event stream`);
  if (problem) return refuseAnswer(call, upstream, res, problem);
  const status = upstream.statusCode!;
  const requestId = headerValue(upstream, "x-amzn-requestid");
  const streamOp = call.who.operation === "ConverseStream" ? "ConverseStream" : "InvokeModelWithResponseStream";
  const tracker = new StreamUsageTracker(streamOp, call.estimate.inputTokens, call.estimate.maxOutputTokens);
  call.watchGuardrail(() => ({ trace: tracker.guardrailTrace(), outputChars: tracker.outputChars() }));
  const splitter = new FrameSplitter();
  const headerTier = appliedTierFromHeaders(upstream.headers);
  // ConverseStream reports the applied tier in its metadata event; it wins over the headers.
  const tier = () => ({ ...headerTier, ...tracker.appliedTier() });
  const id = requestId ? { requestId } : {};
  let upstreamException: string | undefined;
  /** Whether any event (not an exception) came: before one, Bedrock has generated nothing. */
  let sawEvent = false;
  let finished = false;
  /** Output tokens counted before the current frame: the frame's own growth is held again ahead. */
  let lastOutput = tracker.current().outputTokens;

  // Gone before the relay began (its close event already fired): stop Bedrock and settle now.
  if (callerGone(res)) {
    upstream.destroy();
    return call.settleAtWorstCase("client-aborted", 499, "the caller closed the stream before its answer was relayed").then(() => undefined);
  }

  try {
    res.writeHead(status, headers);
  } catch (err) {
    return refuseAnswer(call, upstream, res, `its headers cannot be relayed (${(err as Error).message})`);
  }

  return new Promise<void>((resolve, reject) => {
    let disposeStop: (() => void) | undefined;
    /** Settles once, then ends the caller's stream; never rejects (a failure rejects the relay). */
    const finish = async (settle: () => Promise<unknown>, tail?: Buffer): Promise<void> => {
      if (finished) return;
      finished = true;
      upstream.removeAllListeners("data");
      disposeStop?.();
      let failure: unknown;
      try {
        await settle();
      } catch (err) {
        failure = err;
      }
      try {
        if (!callerGone(res)) res.end(tail);
      } catch (err) {
        failure ??= err;
      }
      if (failure) reject(failure instanceof Error ? failure : new Error(String(failure)));
      else resolve();
    };

    /**
     * Settles a stream that did not end as it should. Once Bedrock's final usage is in it has
     * billed exactly that, and the caller has the whole answer: the real usage is charged and the
     * stream ends cleanly (an exception frame could make the caller retry and pay twice).
     * Otherwise the worst case, at least what was delivered, and `exception` (if any) is sent.
     */
    const stop = (outcome: Outcome, settleStatus: number, message: string, exception?: () => Buffer): Promise<void> => {
      const final = tracker.final();
      if (final) return finish(() => call.settle({ outcome, usage: final, usageEstimated: false, status: settleStatus, tier: tier(), ...id, message }), undefined);
      return finish(() => call.settleAtWorstCase(outcome, settleStatus, message, tracker.current(), tier()), exception?.());
    };

    /** Bytes that are not a readable event stream: this call alone stops, charged at least what was delivered. */
    const unreadable = (reason: string) => {
      void stop("upstream-failed", status, `Bedrock's stream could not be read: ${reason}`,
        () => exceptionFrame("internalServerException", `Bedrock Budget could not read Bedrock's stream, so it stopped this call and charged its worst case: ${reason}`));
      upstream.destroy();
    };

    upstream.on("data", (chunk: Buffer) => {
      if (finished) return;
      try {
        for (const frame of splitter.push(chunk)) {
          const message = decodeFrame(frame);
          const messageType = message.headers[":message-type"]?.value;
          if (messageType === "exception") upstreamException = String(message.headers[":exception-type"]?.value ?? "exception");
          else if (messageType === "event") sawEvent = true;
          tracker.onEvent(message);
          const usage = tracker.current();
          const frameTier = tier(); // once per frame: both costs below are at the same tier
          // An attached guardrail's worst case is held with it until the call settles.
          const running = call.runningCost(usage, frameTier);
          // The growth held again ahead is the output's: input a stream reports at once (its first
          // event) is no sign of more to come, and holding it twice could cut a stream that fits.
          const before = usage.outputTokens > lastOutput ? call.runningCost({ ...usage, outputTokens: lastOutput }, frameTier) : running;
          const finalUsage = tracker.final() !== undefined;
          const growth = call.grow(heldBeforeRelaying(running, before, call.estimate.worstCasePicos, finalUsage));
          lastOutput = usage.outputTokens;
          // Once the final usage is in, Bedrock has generated (and billed) everything: cutting
          // would stop nothing, so the last frames are relayed and settlement books the real cost.
          if (!growth.ok && !finalUsage) {
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
        if (splitter.fault) unreadable(splitter.fault.message);
      } catch (err) {
        unreadable((err as Error).message);
      }
    });

    upstream.once("end", () => {
      if (splitter.leftover > 0) return unreadable(`the stream ended inside a frame (${splitter.leftover} bytes left over)`);
      const final = tracker.final();
      if (final) {
        void finish(() => call.settle({ outcome: upstreamException ? "upstream-error" : "ok", usage: final, usageEstimated: false, status, tier: tier(), ...id }), undefined);
      } else if (upstreamException && !sawEvent && NOT_STARTED_EXCEPTIONS.has(upstreamException)) {
        // Throttled, unavailable or invalid before any event: nothing was generated, so nothing is
        // billed, as for the same error sent as a status (the SDK retries a throttle, each attempt $0).
        void finish(() => call.settle({ outcome: "upstream-error", usage: { ...ZERO_USAGE }, usageEstimated: false, status, ...id, message: `${upstreamException} before any output: not billed` }, 0n), undefined);
      } else if (upstreamException) {
        // Bedrock bills what a failed stream generated; the running figure is the best known.
        void finish(() => call.settle({ outcome: "upstream-error", usage: tracker.current(), usageEstimated: true, status, tier: tier(), ...id, message: upstreamException }), undefined);
      } else {
        void finish(() => call.settleAtWorstCase("ok", status, "the stream ended without usage metrics; charged the worst case", tracker.current(), tier()), undefined);
      }
    });

    const dropped = () => {
      if (finished || upstream.complete) return;
      void stop("upstream-failed", status, "the connection to Bedrock dropped mid-stream",
        () => exceptionFrame("internalServerException", "Bedrock Budget lost the connection to Bedrock mid-stream"));
    };
    upstream.once("aborted", dropped);
    upstream.on("error", dropped);
    upstream.once("close", dropped);
    if (upstream.destroyed) dropped(); // closed before these listeners were attached

    // The gateway is shutting down: settle at what was delivered at least, then cut both sides.
    disposeStop = call.scope?.onStop((reason) => {
      const done = stop("interrupted", status, reason.message,
        () => exceptionFrame("internalServerException", `Bedrock Budget stopped this stream: ${reason.message}`));
      upstream.destroy();
      return done;
    });

    res.once("close", () => {
      if (finished) return;
      // The caller went away: stop generating, and charge conservatively unless Bedrock's figure is in.
      void stop("client-aborted", 499, "the caller closed the stream");
      upstream.destroy();
    });
  });
}

/**
 * What a stream must hold before a frame is relayed. One frame ahead (the running cost plus the
 * frame's growth again: `before` is the running cost without the frame's output), so a stream
 * outgrowing its estimate is cut before the frame that would cross a cap; but while it is within
 * its worst case no more than that worst case, which was reserved at admission (Bedrock stops at
 * max tokens), and nothing ahead once the final usage has arrived (nothing more is generated): a
 * stream that fits is never cut at its end.
 */
export function heldBeforeRelaying(running: Picos, before: Picos, worstCase: Picos, finalUsage: boolean): Picos {
  if (finalUsage) return running;
  const ahead = running + (running - before);
  return running <= worstCase && ahead > worstCase ? worstCase : ahead;
}

/** An in-stream exception the SDKs raise as a typed error; a started stream is never retried. */
export function exceptionFrame(type: string, message: string): Buffer {
  return encodeFrame({
    headers: {
      ":message-type": { type: "string", value: "exception" },
      ":exception-type": { type: "string", value: type },
      ":content-type": { type: "string", value: "application/json" },
    },
    body: fromUtf8(JSON.stringify({ message })),
  });
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
