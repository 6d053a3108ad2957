/**
 * A fake Amazon Bedrock Runtime upstream for gateway tests.
 *
 * It speaks the real wire protocol over HTTP/1.1 (paths, usage headers, event-stream framing,
 * error shapes) and verifies SigV4 with @smithy/signature-v4 — the AWS SDK for JavaScript's own
 * signer, independent of the `aws4` package the gateway signs with — so a re-signing bug in the
 * gateway shows up as a 403 here instead of being hidden by a shared library.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual, type Hash, type Hmac } from "node:crypto";
import * as http from "node:http";
import { crc32 } from "node:zlib";
import type { AddressInfo } from "node:net";
import { HttpRequest } from "@smithy/protocol-http";
import { getCanonicalHeaders, SignatureV4 } from "@smithy/signature-v4";
import type { Checksum, SourceData } from "@smithy/types";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

export interface FakeCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface FakeHit {
  method: string;
  /** Raw request target as received (still percent-encoded, query included). */
  path: string;
  /** InvokeModel | InvokeModelWithResponseStream | Converse | ConverseStream | CountTokens | ApplyGuardrail | Unknown */
  operation: string;
  /** Decoded model id ("" for ApplyGuardrail and unknown routes). */
  modelId: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  signatureValid: boolean;
  /** Which TCP connection carried it (1, 2, … in order of arrival): shows kept-alive reuse. */
  connection: number;
  /** How long its connection sat idle since the previous answer on it ended; undefined on a new connection. */
  idleMs: number | undefined;
}

export type Behavior =
  | {
      kind: "ok";
      usage?: Partial<{ input: number; output: number; cacheRead: number; cacheWrite: number }>;
      /** Number of text deltas in a stream (default 3). */
      chunks?: number;
      chunkDelayMs?: number;
      /** Default true for InvokeModel. */
      usageInHeaders?: boolean;
      serviceTier?: string;
      /** Answered only once this settles (calls held in flight); the test decides when. */
      after?: Promise<unknown>;
    }
  | {
      kind: "error";
      status: number;
      type: string;
      message: string;
      /** Answered only once this settles (a slow upstream error); the test decides when. */
      after?: Promise<unknown>;
    }
  | { kind: "stream-exception"; afterChunks: number; exceptionType: string; message: string }
  /** `after`: the connection is cut only once this settles (the test decides when). */
  | { kind: "drop"; afterChunks?: number; after?: Promise<unknown> }
  | { kind: "hang" }
  /**
   * Streams only: `afterChunks` good frames, then one bad frame, then the response stays open (it
   * never ends): only the gateway closing the connection ends it. On a unary operation it is a fake bug (500).
   * `bad-prefix` is no frame at all but bytes whose length prefix no frame can have, so it breaks
   * none and may follow every good frame, the final usage included (trailing garbage).
   * `oneWrite`: the good frames and the bad bytes leave in one write, so a reader gets them together.
   */
  | { kind: "corrupt-frame"; afterChunks: number; corruption: Corruption; oneWrite?: boolean }
  /** `afterChunks` good frames, then half of the next, then the socket is destroyed (unary: half the body). */
  | { kind: "cut-mid-frame"; afterChunks: number }
  /** Any operation: this status (default 200), content type (default application/json) and body (UTF-8), nothing else. */
  | { kind: "bad-body"; body: string; status?: number; contentType?: string };

export type Corruption = "prelude-crc" | "message-crc" | "length" | "garbage" | "bad-prefix";

type FaultBehavior = Extract<Behavior, { kind: "corrupt-frame" | "cut-mid-frame" | "bad-body" }>;

type OkBehavior = Extract<Behavior, { kind: "ok" }>;

interface Usage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

/** One event-stream frame, already encoded. */
type Frame = Uint8Array;
/** Derived from the codec so no undeclared @smithy/types import is needed. */
type MessageHeaders = Parameters<EventStreamCodec["encode"]>[0]["headers"];

const SIG_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/** AWS accepts requests whose x-amz-date is within 15 minutes of its clock. */
const MAX_SKEW_MS = 15 * 60 * 1000;

const MODEL_ROUTE = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream|converse|converse-stream|count-tokens)$/;
const GUARDRAIL_ROUTE = /^\/guardrail\/([^/]+)\/version\/([^/]+)\/apply$/;
/** The control plane's GetInferenceProfile (same signing service, `bedrock`). */
const INFERENCE_PROFILE_ROUTE = /^\/inference-profiles\/([^/]+)$/;

/** What GET /inference-profiles/{id} answers for one profile: its models, or an error. */
/** `asked`: called when the lookup arrives; `after`: answered only once it settles (a slow control plane the test controls). */
export type InferenceProfileAnswer = { models: string[]; asked?: () => void; after?: Promise<unknown> } | { status: number; type: string; message: string };

const OPERATION_BY_SUFFIX: Record<string, string> = {
  invoke: "InvokeModel",
  "invoke-with-response-stream": "InvokeModelWithResponseStream",
  converse: "Converse",
  "converse-stream": "ConverseStream",
  "count-tokens": "CountTokens",
};

const codec = new EventStreamCodec(toUtf8, fromUtf8);

export class FakeBedrock {
  readonly url: string;
  readonly hits: FakeHit[] = [];

  private behavior: ((hit: FakeHit) => Behavior | undefined) | undefined;
  /** Control plane: inference profiles by ARN (or id); unknown ones answer 404 ResourceNotFoundException. */
  readonly inferenceProfiles = new Map<string, InferenceProfileAnswer>();
  /** Responses held open by "hang" (and streams in flight), ended by close(). */
  private readonly open = new Set<http.ServerResponse>();
  private closed = false;
  /** One per hit (same index): how its response ended, once its connection closed. */
  private readonly endings: Promise<ResponseEnd>[] = [];
  /** Indexes of the hits a fault kind answered. */
  private readonly faultHits: number[] = [];

  private constructor(
    private readonly server: http.Server,
    private readonly credentials: FakeCredentials,
    private readonly region: string,
    /** Other principals AWS knows (several callers, each signing with its own key). */
    private readonly moreCredentials: readonly FakeCredentials[] = [],
  ) {
    const addr = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${addr.port}`;
  }

  /** Per connection: its number and when the last answer on it ended. */
  private readonly connections = new WeakMap<object, { id: number; lastEnd?: number }>();
  private connectionCount = 0;

  static async start(opts: {
    credentials: FakeCredentials;
    region?: string;
    host?: "127.0.0.1";
    moreCredentials?: FakeCredentials[];
    /** How long an idle connection is kept (announced in Keep-Alive: timeout=…, as Node's server does); default 5 s. */
    keepAliveTimeoutMs?: number;
  }): Promise<FakeBedrock> {
    // keepAliveTimeout small so stray idle sockets never keep mocha alive; close() kills them anyway.
    const server = http.createServer({ keepAliveTimeout: opts.keepAliveTimeoutMs ?? 5000 });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, opts.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const fake = new FakeBedrock(server, opts.credentials, opts.region ?? "us-east-1", opts.moreCredentials);
    server.on("request", (req, res) => {
      fake.handle(req, res).catch((err: unknown) => {
        // A bug in the fake itself: make it loud rather than a silent hang.
        if (!res.headersSent) {
          sendError(res, 500, "InternalServerException", `fake bedrock bug: ${String(err)}`);
        } else {
          res.destroy();
        }
      });
    });
    return fake;
  }

  behave(fn: (hit: FakeHit) => Behavior | undefined): void {
    this.behavior = fn;
  }

  /** Answers every call with `usage`, but only once the test calls `answer()`; `reached` resolves when the first call arrives. */
  holdCalls(usage: OkBehavior["usage"]): { reached: Promise<void>; answer: () => void } {
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    this.behave(() => {
      arrived();
      return { kind: "ok", usage, after: answered };
    });
    return { reached, answer };
  }

  reset(): void {
    this.hits.length = 0;
    this.endings.length = 0;
    this.faultHits.length = 0;
    this.behavior = undefined;
  }

  private faultHost(): FaultHost {
    const fake = this;
    return {
      hold: (res) => {
        this.open.add(res);
        this.faultHits.push(this.hits.length - 1);
        res.once("close", () => this.open.delete(res));
      },
      get closed() {
        return fake.closed;
      },
    };
  }

  /** Resolves once every response sent by a fault kind has closed (a corrupt frame's is closed only by the gateway). */
  async faultResponsesClosed(): Promise<void> {
    await Promise.all(this.faultHits.map((i) => this.endings[i]));
  }

  /**
   * How hit `index`'s response ended, once its connection closed: "finished" (the fake wrote it
   * all), "client-hung-up" (the client closed the connection first: what a gateway must do to
   * stop Bedrock generating), or "fake-cut" (a fault kind or close() cut it).
   */
  responseEnded(index: number): Promise<ResponseEnd> {
    const ending = this.endings[index];
    if (!ending) throw new Error(`the fake has no hit ${index} (it has ${this.hits.length})`);
    return ending;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const res of this.open) {
      cutByFake.add(res);
      res.destroy();
    }
    this.open.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const rawPath = req.url ?? "/";
    const pathOnly = rawPath.split("?")[0] ?? "/";
    const headers = flattenHeaders(req);

    let operation = "Unknown";
    let modelId = "";
    const m = req.method === "POST" ? MODEL_ROUTE.exec(pathOnly) : null;
    const g = req.method === "POST" ? GUARDRAIL_ROUTE.exec(pathOnly) : null;
    if (m) {
      operation = OPERATION_BY_SUFFIX[m[2] ?? ""] ?? "Unknown";
      modelId = safeDecode(m[1] ?? "");
    } else if (g) {
      operation = "ApplyGuardrail";
    }
    const ip = req.method === "GET" ? INFERENCE_PROFILE_ROUTE.exec(pathOnly) : null;
    if (ip) {
      operation = "GetInferenceProfile";
      modelId = safeDecode(ip[1] ?? "");
    }

    let connection = this.connections.get(req.socket);
    if (!connection) this.connections.set(req.socket, (connection = { id: ++this.connectionCount }));
    const idleMs = connection.lastEnd === undefined ? undefined : performance.now() - connection.lastEnd;
    const answered = connection;
    res.once("finish", () => (answered.lastEnd = performance.now()));

    const auth = await this.authenticate(req, rawPath, body);
    const hit: FakeHit = {
      method: req.method ?? "",
      path: rawPath,
      operation,
      modelId,
      headers,
      body,
      signatureValid: auth.ok,
      connection: connection.id,
      idleMs,
    };
    this.hits.push(hit);
    this.endings.push(
      new Promise<ResponseEnd>((resolve) =>
        res.once("close", () => resolve(res.writableFinished ? "finished" : cutByFake.has(res) || this.closed ? "fake-cut" : "client-hung-up")),
      ),
    );

    if (!auth.ok) {
      sendError(res, 403, auth.type, auth.message);
      return;
    }
    if (operation === "Unknown") {
      sendError(res, 404, "UnknownOperationException", "");
      return;
    }
    if (operation === "GetInferenceProfile") return this.answerInferenceProfile(res, modelId);

    const behavior: Behavior = this.behavior?.(hit) ?? { kind: "ok" };
    const streaming = operation === "InvokeModelWithResponseStream" || operation === "ConverseStream";
    if (isFault(behavior)) return sendFault(req, res, behavior, { operation, modelId, body, streaming }, this.faultHost());

    switch (behavior.kind) {
      case "error":
        if (behavior.after) await behavior.after;
        sendError(res, behavior.status, behavior.type, behavior.message);
        return;
      case "hang":
        this.open.add(res);
        res.on("close", () => this.open.delete(res));
        return;
      case "drop":
        if (behavior.after) await behavior.after;
        if (behavior.afterChunks === undefined) {
          cutConnection(req, res);
          return;
        }
        break;
      case "stream-exception":
        if (!streaming) {
          // A non-stream operation has no frames to interrupt: answer with the equivalent HTTP error.
          const type = behavior.exceptionType.charAt(0).toUpperCase() + behavior.exceptionType.slice(1);
          sendError(res, statusForException(type), type, behavior.message);
          return;
        }
        break;
      case "ok":
        if (behavior.after) await behavior.after;
        break;
    }

    const ok: OkBehavior = behavior.kind === "ok" ? behavior : { kind: "ok" };
    const usage = resolveUsage(ok.usage, body, operation);
    const started = Date.now();

    if (streaming) {
      const frames =
        operation === "ConverseStream"
          ? converseStreamFrames(usage, ok, started, body)
          : invokeStreamFrames(modelId, usage, ok, started, invokeGuardrail(headers, body, Array.from({ length: Math.max(0, ok.chunks ?? 3) }, (_, i) => deltaText(i)).join("")));
      const respHeaders: Record<string, string> = {
        ...baseHeaders("application/vnd.amazon.eventstream"),
      };
      if (operation === "InvokeModelWithResponseStream") {
        respHeaders["X-Amzn-Bedrock-Content-Type"] = "application/json";
        if (ok.serviceTier) respHeaders["X-Amzn-Bedrock-Service-Tier"] = ok.serviceTier;
      }
      await this.writeStream(req, res, respHeaders, frames, behavior, ok.chunkDelayMs ?? 0);
      return;
    }

    const { contentType, payload, extraHeaders } = this.unaryResponse(operation, modelId, usage, ok, body, started, headers);
    const respHeaders = { ...baseHeaders(contentType), ...extraHeaders, "Content-Length": String(payload.length) };
    if (behavior.kind === "drop") {
      // Non-stream "mid-stream" drop: headers and part of the body, then a dead socket.
      res.writeHead(200, respHeaders);
      await writeAsync(res, payload.subarray(0, Math.floor(payload.length / 2)));
      cutConnection(req, res);
      return;
    }
    res.writeHead(200, respHeaders);
    res.end(payload);
  }

  private async writeStream(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    headers: Record<string, string>,
    frames: Frame[],
    behavior: Behavior,
    delayMs: number,
  ): Promise<void> {
    this.open.add(res);
    let gone = false;
    res.on("close", () => {
      gone = true;
      this.open.delete(res);
    });
    res.writeHead(200, headers);
    res.flushHeaders();

    const stopAfter =
      behavior.kind === "drop" || behavior.kind === "stream-exception" ? Math.min(behavior.afterChunks ?? 0, frames.length) : frames.length;
    for (let i = 0; i < stopAfter; i++) {
      if (i > 0 && delayMs > 0) await sleep(delayMs);
      if (gone || this.closed) return;
      // One write per frame, awaited, so each reaches the socket before the next (no whole-stream buffering).
      await writeAsync(res, frames[i] as Frame);
    }
    if (gone || this.closed) return;
    if (behavior.kind === "drop") {
      cutConnection(req, res);
      return;
    }
    if (behavior.kind === "stream-exception") {
      if (delayMs > 0 && stopAfter > 0) await sleep(delayMs);
      if (gone || this.closed) return;
      await writeAsync(
        res,
        encodeFrame(
          {
            ":message-type": { type: "string", value: "exception" },
            ":exception-type": { type: "string", value: behavior.exceptionType },
            ":content-type": { type: "string", value: "application/json" },
          },
          { message: behavior.message },
        ),
      );
    }
    res.end();
  }


  private unaryResponse(
    operation: string,
    modelId: string,
    usage: Usage,
    ok: OkBehavior,
    body: Buffer,
    started: number,
    requestHeaders: Record<string, string> = {},
  ): { contentType: string; payload: Buffer; extraHeaders: Record<string, string> } {
    const extraHeaders: Record<string, string> = {};
    const latency = Math.max(1, Date.now() - started);
    let json: unknown;
    switch (operation) {
      case "InvokeModel": {
        json = invokeModelBody(modelId, usage);
        const guardrail = invokeGuardrail(requestHeaders, body, replyText(usage.output));
        if (guardrail) Object.assign(json as Record<string, unknown>, guardrail);
        if (ok.usageInHeaders !== false) {
          extraHeaders["X-Amzn-Bedrock-Input-Token-Count"] = String(usage.input);
          extraHeaders["X-Amzn-Bedrock-Output-Token-Count"] = String(usage.output);
          if (usage.cacheRead) extraHeaders["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = String(usage.cacheRead);
          if (usage.cacheWrite) extraHeaders["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = String(usage.cacheWrite);
        }
        // Latency is not usage: always sent, like the real service.
        extraHeaders["X-Amzn-Bedrock-Invocation-Latency"] = String(latency);
        if (ok.serviceTier) extraHeaders["X-Amzn-Bedrock-Service-Tier"] = ok.serviceTier;
        break;
      }
      case "Converse": {
        const reply = replyText(usage.output);
        const trace = converseGuardrailTrace(body, reply);
        json = {
          output: { message: { role: "assistant", content: [{ text: reply }] } },
          stopReason: "end_turn",
          usage: converseUsage(usage),
          metrics: { latencyMs: latency },
          ...(ok.serviceTier ? { serviceTier: { type: ok.serviceTier } } : {}),
          ...(trace ? { trace: { guardrail: trace } } : {}),
        };
        break;
      }
      case "CountTokens":
        json = { inputTokens: usage.input };
        break;
      case "ApplyGuardrail":
        json = {
          usage: {
            topicPolicyUnits: 1,
            contentPolicyUnits: 1,
            wordPolicyUnits: 1,
            sensitiveInformationPolicyUnits: 1,
            sensitiveInformationPolicyFreeUnits: 0,
            contextualGroundingPolicyUnits: 0,
          },
          action: "NONE",
          outputs: [],
          assessments: [],
        };
        break;
      default:
        throw new Error(`no unary response for ${operation} (body ${body.length} bytes)`);
    }
    return { contentType: "application/json", payload: Buffer.from(JSON.stringify(json)), extraHeaders };
  }

  /** GetInferenceProfile's answer shape (API_GetInferenceProfile): the profile and the model ARNs behind it. */
  private async answerInferenceProfile(res: http.ServerResponse, id: string): Promise<void> {
    const answer = this.inferenceProfiles.get(id);
    if (!answer) return sendError(res, 404, "ResourceNotFoundException", `Inference profile ${id} not found`);
    if ("status" in answer) return sendError(res, answer.status, answer.type, answer.message);
    answer.asked?.();
    if (answer.after) await answer.after;
    const payload = Buffer.from(JSON.stringify({
      inferenceProfileArn: id,
      inferenceProfileId: id.split("/").pop(),
      inferenceProfileName: "fake-profile",
      models: answer.models.map((modelArn) => ({ modelArn })),
      status: "ACTIVE",
      type: "APPLICATION",
      createdAt: "2026-01-01T00:00:00Z",
      updatedAt: "2026-01-01T00:00:00Z",
    }));
    res.writeHead(200, { ...baseHeaders("application/json"), "Content-Length": String(payload.length) });
    res.end(payload);
  }

  // ---------------------------------------------------------------------------------------
  // Authentication

  private async authenticate(
    req: http.IncomingMessage,
    rawPath: string,
    body: Buffer,
  ): Promise<{ ok: true } | { ok: false; type: string; message: string }> {
    const authz = req.headers.authorization;
    if (!authz) return { ok: false, type: "MissingAuthenticationTokenException", message: "Missing Authentication Token" };

    if (/^Bearer /i.test(authz)) {
      const token = authz.slice(7).trim();
      return constantTimeEqual(token, `bearer-${this.credentials.accessKeyId}`)
        ? { ok: true }
        : { ok: false, type: "AccessDeniedException", message: "Invalid API Key format: Must start with pre-defined prefix" };
    }

    const reason = await this.sigV4Problem(req, rawPath, body, authz);
    if (reason === undefined) return { ok: true };
    // Always lead with AWS's sentence (tests may match it); the reason helps whoever debugs the gateway.
    return { ok: false, type: "InvalidSignatureException", message: reason === "" ? SIG_MISMATCH : `${SIG_MISMATCH} (${reason})` };
  }

  /** undefined when valid; "" for a plain signature mismatch; otherwise why the request was refused. */
  private async sigV4Problem(req: http.IncomingMessage, rawPath: string, body: Buffer, authz: string): Promise<string | undefined> {
    const parsed = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(authz.trim());
    if (!parsed) return "malformed Authorization header";
    const [, credential = "", signedHeadersStr = "", signature = ""] = parsed;

    const scope = credential.split("/");
    if (scope.length !== 5) return "malformed credential scope";
    const [akid, date, region, service, terminator] = scope as [string, string, string, string, string];
    const credentials = [this.credentials, ...this.moreCredentials].find((c) => c.accessKeyId === akid);
    if (!credentials) return "unknown access key";
    if (region !== this.region) return `credential should be scoped to region ${this.region}, not ${region}`;
    if (service !== "bedrock") return `credential should be scoped to service bedrock, not ${service}`;
    if (terminator !== "aws4_request") return "credential scope must end in aws4_request";

    const amzDate = headerValue(req, "x-amz-date");
    if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) return "missing or malformed x-amz-date";
    if (!amzDate.startsWith(date)) return "credential date does not match x-amz-date";
    const when = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
    if (Math.abs(Date.now() - when) > MAX_SKEW_MS) return "signature expired or not yet valid (x-amz-date outside 15 minutes)";

    const signedNames = signedHeadersStr.split(";");
    const sorted = [...signedNames].sort();
    if (signedNames.some((n, i) => n !== n.toLowerCase() || n !== sorted[i]) || new Set(signedNames).size !== signedNames.length) {
      return "SignedHeaders must be lower-case, sorted and unique";
    }
    // The fake speaks HTTP/1.1, so the signer must have covered `host` (not `:authority`).
    if (!signedNames.includes("host")) return "host is not signed";
    if (!signedNames.includes("x-amz-date")) return "x-amz-date is not signed";

    const contentSha = headerValue(req, "x-amz-content-sha256");
    if (contentSha !== undefined && contentSha.toLowerCase() !== createHash("sha256").update(body).digest("hex")) {
      return "x-amz-content-sha256 does not match the body";
    }

    const token = headerValue(req, "x-amz-security-token");
    if (credentials.sessionToken !== undefined) {
      if (token === undefined || !constantTimeEqual(token, credentials.sessionToken)) return "missing or wrong x-amz-security-token";
      if (!signedNames.includes("x-amz-security-token")) return "x-amz-security-token is not signed";
    } else if (token !== undefined) {
      return "x-amz-security-token sent for long-term credentials";
    }

    // Rebuild only the signed headers, values exactly as received.
    const signedHeaders: Record<string, string> = {};
    for (const name of signedNames) {
      const v = headerValue(req, name);
      if (v === undefined) return `signed header ${name} is missing`;
      signedHeaders[name] = v;
    }

    const expected = await smithySigV4({ method: req.method ?? "POST", rawPath, headers: signedHeaders, body, region, amzDate }, credentials);
    return constantTimeEqual(expected.signature, signature) ? undefined : "";
  }
}

// -----------------------------------------------------------------------------------------
// Fault kinds: bytes a real upstream (or something in between) could send that are not Bedrock's

function isFault(behavior: Behavior): behavior is FaultBehavior {
  return behavior.kind === "corrupt-frame" || behavior.kind === "cut-mid-frame" || behavior.kind === "bad-body";
}

/** The request whose answer a fault kind shapes. */
interface FaultRequest {
  operation: string;
  modelId: string;
  body: Buffer;
  streaming: boolean;
}

/** A copy of a good frame, broken the named way (both CRCs recomputed where the fault is elsewhere). */
export function corruptFrame(good: Uint8Array, corruption: Corruption): Buffer {
  const frame = Buffer.from(good);
  switch (corruption) {
    case "bad-prefix":
      // A length prefix of 3: shorter than any frame's 16-byte prelude and checksum.
      return Buffer.from([0, 0, 0, 3, 0xba, 0xd0]);
    case "prelude-crc":
      frame[8] = frame[8]! ^ 0xff;
      return frame;
    case "message-crc":
      frame[frame.length - 1] = frame[frame.length - 1]! ^ 0xff;
      return frame;
    case "length": {
      // More header bytes than the frame holds, with CRCs that match: only the lengths are wrong.
      frame.writeUInt32BE(frame.length - 16 + 1, 4);
      frame.writeUInt32BE(crc32(frame.subarray(0, 8)), 8);
      frame.writeUInt32BE(crc32(frame.subarray(0, frame.length - 4)), frame.length - 4);
      return frame;
    }
    case "garbage": {
      // Not a frame at all, behind a plausible length prefix (as a proxy's error page spliced in could be).
      const text = Buffer.from("<html><body><h1>502 Bad Gateway</h1></body></html>");
      const out = Buffer.alloc(4 + text.length);
      out.writeUInt32BE(out.length, 0);
      text.copy(out, 4);
      return out;
    }
  }
}

/** How a response ended: see FakeBedrock.responseEnded. */
export type ResponseEnd = "finished" | "client-hung-up" | "fake-cut";

/** Responses whose connection the fake cut itself (a drop, a fault kind, close()). */
const cutByFake = new WeakSet<http.ServerResponse>();

function cutConnection(req: http.IncomingMessage, res: http.ServerResponse): void {
  cutByFake.add(res);
  req.socket.destroy();
}

/** What a fault answer needs of the fake: to hold its response open until close(), and whether it closed. */
interface FaultHost {
  hold(res: http.ServerResponse): void;
  readonly closed: boolean;
}

async function sendFault(req: http.IncomingMessage, res: http.ServerResponse, behavior: FaultBehavior, request: FaultRequest, host: FaultHost): Promise<void> {
  host.hold(res);
  if (behavior.kind === "bad-body") {
    const payload = Buffer.from(behavior.body, "utf8");
    res.writeHead(behavior.status ?? 200, { ...baseHeaders(behavior.contentType ?? "application/json"), "Content-Length": String(payload.length) });
    res.end(payload);
    return;
  }
  const usage = resolveUsage(undefined, request.body, request.operation);
  const started = Date.now();
  if (!request.streaming) {
    if (behavior.kind === "corrupt-frame") throw new Error(`corrupt-frame applies to streams, not ${request.operation}`);
    const payload = unaryPayload(request, usage, started);
    res.writeHead(200, { ...baseHeaders("application/json"), "Content-Length": String(payload.length) });
    await writeAsync(res, payload.subarray(0, Math.floor(payload.length / 2)));
    cutConnection(req, res);
    return;
  }
  const ok: OkBehavior = { kind: "ok" };
  const frames = request.operation === "ConverseStream" ? converseStreamFrames(usage, ok, started) : invokeStreamFrames(request.modelId, usage, ok, started);
  const headers: Record<string, string> = baseHeaders("application/vnd.amazon.eventstream");
  if (request.operation === "InvokeModelWithResponseStream") headers["X-Amzn-Bedrock-Content-Type"] = "application/json";
  res.writeHead(200, headers);
  res.flushHeaders();
  const breaksNoFrame = behavior.kind === "corrupt-frame" && behavior.corruption === "bad-prefix";
  const good = Math.min(behavior.afterChunks, breaksNoFrame ? frames.length : frames.length - 1);
  const next = (frames[good] ?? frames[0]) as Frame; // past the last frame only for bad-prefix, which ignores it
  if (behavior.kind === "corrupt-frame" && behavior.oneWrite) {
    await writeAsync(res, Buffer.concat([...frames.slice(0, good), corruptFrame(next, behavior.corruption)]));
    return; // the response stays open, as below
  }
  for (let i = 0; i < good; i++) {
    if (res.destroyed || host.closed) return;
    await writeAsync(res, frames[i] as Frame);
  }
  if (res.destroyed || host.closed) return;
  if (behavior.kind === "cut-mid-frame") {
    await writeAsync(res, next.subarray(0, Math.floor(next.length / 2)));
    cutConnection(req, res);
    return;
  }
  await writeAsync(res, corruptFrame(next, behavior.corruption));
  // The response stays open: whoever reads the stream must give up on it and close the connection.
}

/** The unary answer a fault kind cuts in half. */
function unaryPayload(request: FaultRequest, usage: Usage, started: number): Buffer {
  const latency = Math.max(1, Date.now() - started);
  const json =
    request.operation === "Converse"
      ? { output: { message: { role: "assistant", content: [{ text: replyText(usage.output) }] } }, stopReason: "end_turn", usage: converseUsage(usage), metrics: { latencyMs: latency } }
      : invokeModelBody(request.modelId, usage);
  return Buffer.from(JSON.stringify(json));
}

// -----------------------------------------------------------------------------------------
// SigV4 via @smithy/signature-v4 (the JS SDK's signer)

export interface SigInput {
  method: string;
  /** Path and query exactly as received, still percent-encoded. */
  rawPath: string;
  /** The signed headers only, values as received. */
  headers: Record<string, string>;
  body: Buffer;
  region: string;
  amzDate: string;
}

/** SHA-256 / HMAC-SHA256 in the shape the smithy signer takes (node:crypto; the tests' signers use it too). */
export class NodeSha256 implements Checksum {
  private h: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.h = this.make();
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.make();
  }
  private make(): Hash | Hmac {
    if (this.secret === undefined) return createHash("sha256");
    const key = typeof this.secret === "string" ? this.secret : ArrayBuffer.isView(this.secret) ? Buffer.from(this.secret.buffer, this.secret.byteOffset, this.secret.byteLength) : Buffer.from(this.secret);
    return createHmac("sha256", key);
  }
}

/** Exposes the canonical request smithy signs, for the self-test. */
class InspectableSigner extends SignatureV4 {
  canonicalRequestOf(request: HttpRequest, signed: Set<string>, payloadHash: string): string {
    return this.createCanonicalRequest(request, getCanonicalHeaders(request, undefined, signed), payloadHash);
  }
}

/**
 * The signature (and canonical request) the JS SDK's signer computes for the request as received:
 * only the signed headers, the raw path encoded once more as SigV4 wants (%3A → %253A). An
 * unsigned x-amz-content-sha256 is replaced by the body's own hash and kept out of the signature.
 */
export async function smithySigV4(input: SigInput, credentials: FakeCredentials): Promise<{ signature: string; canonicalRequest: string }> {
  const signed = new Set(Object.keys(input.headers));
  const bodyHash = input.headers["x-amz-content-sha256"] ?? createHash("sha256").update(input.body).digest("hex");
  const q = input.rawPath.indexOf("?");
  const query: Record<string, string | string[]> = {};
  if (q >= 0) {
    for (const pair of input.rawPath.slice(q + 1).split("&")) {
      if (!pair) continue;
      const eq = pair.indexOf("=");
      const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, "%20"));
      const existing = query[key];
      query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
  }
  const request = new HttpRequest({
    method: input.method,
    protocol: "http:",
    hostname: input.headers.host ?? "",
    path: q < 0 ? input.rawPath : input.rawPath.slice(0, q),
    query,
    headers: { ...input.headers, "x-amz-content-sha256": bodyHash },
    body: input.body,
  });
  const signer = new InspectableSigner({ credentials, region: input.region, service: "bedrock", sha256: NodeSha256, applyChecksum: false });
  const a = input.amzDate;
  const signingDate = new Date(Date.UTC(+a.slice(0, 4), +a.slice(4, 6) - 1, +a.slice(6, 8), +a.slice(9, 11), +a.slice(11, 13), +a.slice(13, 15)));
  const out = await signer.sign(request, { signingDate, signingRegion: input.region, signableHeaders: signed, unsignableHeaders: signed.has("x-amz-content-sha256") ? new Set() : new Set(["x-amz-content-sha256"]) });
  const signature = /Signature=([0-9a-f]{64})$/.exec(String(out.headers.authorization ?? ""))?.[1] ?? "";
  return { signature, canonicalRequest: signer.canonicalRequestOf(request, signed, bodyHash) };
}

function constantTimeEqual(a: string, b: string): boolean {
  // Hash both sides so lengths match and timingSafeEqual can be used on any input.
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** A header's value as received; repeats are joined with "," as SigV4 canonicalization does. */
function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if ((req.rawHeaders[i] as string).toLowerCase() === name) values.push(req.rawHeaders[i + 1] as string);
  }
  return values.length ? values.map((v) => v.trim()).join(",") : undefined;
}

function flattenHeaders(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

// -----------------------------------------------------------------------------------------
// Response bodies

type Family = "anthropic" | "nova" | "llama" | "other";

/** Strip an ARN down to its resource id and a cross-region profile prefix, then look at the provider. */
export function modelFamily(modelId: string): Family {
  let id = modelId;
  if (id.startsWith("arn:")) id = id.slice(id.lastIndexOf("/") + 1);
  id = id.replace(/^(us-gov|us|eu|apac|jp|au|global)\./, "");
  if (id.startsWith("anthropic.")) return "anthropic";
  if (id.startsWith("amazon.nova")) return "nova";
  if (id.startsWith("meta.llama")) return "llama";
  return "other";
}

function baseModel(modelId: string): string {
  let id = modelId;
  if (id.startsWith("arn:")) id = id.slice(id.lastIndexOf("/") + 1);
  return id.replace(/^(us-gov|us|eu|apac|jp|au|global)\./, "").replace(/^anthropic\./, "");
}

function replyText(outputTokens: number): string {
  return `Fake Bedrock reply (${outputTokens} tokens).`;
}

function deltaText(i: number): string {
  return `tok${i} `;
}

function anthropicUsage(u: Usage): Record<string, number> {
  return {
    input_tokens: u.input,
    output_tokens: u.output,
    cache_creation_input_tokens: u.cacheWrite,
    cache_read_input_tokens: u.cacheRead,
  };
}

function invokeModelBody(modelId: string, u: Usage): unknown {
  switch (modelFamily(modelId)) {
    case "nova":
      return {
        output: { message: { role: "assistant", content: [{ text: replyText(u.output) }] } },
        stopReason: "end_turn",
        usage: {
          inputTokens: u.input,
          outputTokens: u.output,
          totalTokens: u.input + u.output + u.cacheRead + u.cacheWrite,
          cacheReadInputTokenCount: u.cacheRead,
          cacheWriteInputTokenCount: u.cacheWrite,
        },
      };
    case "llama":
      return { generation: replyText(u.output), prompt_token_count: u.input, generation_token_count: u.output, stop_reason: "stop" };
    default:
      return {
        id: `msg_bdrk_${randomBytes(12).toString("hex")}`,
        type: "message",
        role: "assistant",
        model: baseModel(modelId),
        content: [{ type: "text", text: replyText(u.output) }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: anthropicUsage(u),
      };
  }
}

function converseUsage(u: Usage): Record<string, number> {
  return {
    inputTokens: u.input,
    outputTokens: u.output,
    totalTokens: u.input + u.output + u.cacheRead + u.cacheWrite,
    ...(u.cacheRead ? { cacheReadInputTokens: u.cacheRead } : {}),
    ...(u.cacheWrite ? { cacheWriteInputTokens: u.cacheWrite } : {}),
  };
}

function invocationMetrics(u: Usage, started: number, firstByte: number): Record<string, number> {
  return {
    inputTokenCount: u.input,
    outputTokenCount: u.output,
    invocationLatency: Math.max(1, Date.now() - started),
    firstByteLatency: Math.max(1, firstByte - started),
    ...(u.cacheRead ? { cacheReadInputTokenCount: u.cacheRead } : {}),
    ...(u.cacheWrite ? { cacheWriteInputTokenCount: u.cacheWrite } : {}),
  };
}

function padding(): string {
  // Real streams pad payloads with a random-length `p` so sizes don't leak content.
  const n = 1 + Math.floor(Math.random() * 24);
  return randomBytes(n).toString("base64url").slice(0, n);
}

function encodeFrame(headers: MessageHeaders, json: unknown): Frame {
  return codec.encode({ headers, body: fromUtf8(JSON.stringify(json)) });
}

function eventFrame(eventType: string, json: Record<string, unknown>): Frame {
  return encodeFrame(
    {
      ":event-type": { type: "string", value: eventType },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    { ...json, p: padding() },
  );
}


function chunkFrame(modelJson: unknown): Frame {
  return eventFrame("chunk", { bytes: Buffer.from(JSON.stringify(modelJson)).toString("base64") });
}

/**
 * InvokeModelWithResponseStream frames for the model's family. Metrics in the last chunk are
 * computed at build time (frames are built before writing), which is close enough for tests.
 */
/** `guardrail`: what the last chunk carries when the request names a guardrail (its action, and its trace when enabled). */
function invokeStreamFrames(modelId: string, u: Usage, ok: OkBehavior, started: number, guardrail?: Record<string, unknown>): Frame[] {
  const n = Math.max(0, ok.chunks ?? 3);
  const firstByte = Date.now();
  const frames: Frame[] = [];
  const family = modelFamily(modelId);
  if (family === "nova") {
    frames.push(chunkFrame({ messageStart: { role: "assistant" } }));
    for (let i = 0; i < n; i++) frames.push(chunkFrame({ contentBlockDelta: { delta: { text: deltaText(i) }, contentBlockIndex: 0 } }));
    frames.push(chunkFrame({ contentBlockStop: { contentBlockIndex: 0 } }));
    frames.push(chunkFrame({ messageStop: { stopReason: "end_turn" } }));
    frames.push(
      chunkFrame({
        metadata: {
          usage: {
            inputTokens: u.input,
            outputTokens: u.output,
            cacheReadInputTokenCount: u.cacheRead,
            cacheWriteInputTokenCount: u.cacheWrite,
          },
          metrics: {},
          trace: {},
        },
        "amazon-bedrock-invocationMetrics": invocationMetrics(u, started, firstByte),
      }),
    );
    return frames;
  }
  if (family === "llama") {
    const count = Math.max(1, n);
    for (let i = 0; i < count; i++) {
      const last = i === count - 1;
      // generation_token_count is cumulative; the prompt count only comes on the first chunk.
      const cumulative = last ? u.output : Math.min(u.output, Math.floor(((i + 1) * u.output) / count));
      frames.push(
        chunkFrame({
          generation: deltaText(i),
          prompt_token_count: i === 0 ? u.input : null,
          generation_token_count: cumulative,
          stop_reason: last ? "stop" : null,
          ...(last ? { "amazon-bedrock-invocationMetrics": invocationMetrics(u, started, firstByte) } : {}),
        }),
      );
    }
    return frames;
  }
  // Anthropic (and the default for unknown families).
  frames.push(
    chunkFrame({
      type: "message_start",
      message: {
        id: `msg_bdrk_${randomBytes(12).toString("hex")}`,
        type: "message",
        role: "assistant",
        model: baseModel(modelId),
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // Like the real service: output_tokens starts at 1 here and the final count comes in message_delta.
        usage: { ...anthropicUsage(u), output_tokens: 1 },
      },
    }),
  );
  frames.push(chunkFrame({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }));
  for (let i = 0; i < n; i++) frames.push(chunkFrame({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: deltaText(i) } }));
  frames.push(chunkFrame({ type: "content_block_stop", index: 0 }));
  frames.push(chunkFrame({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: u.output } }));
  frames.push(chunkFrame({ type: "message_stop", "amazon-bedrock-invocationMetrics": invocationMetrics(u, started, firstByte), ...guardrail }));
  return frames;
}

/** `body`: the request, whose guardrailConfig (trace enabled) makes the metadata event carry a guardrail trace. */
function converseStreamFrames(u: Usage, ok: OkBehavior, started: number, body?: Buffer): Frame[] {
  const n = Math.max(0, ok.chunks ?? 3);
  const frames: Frame[] = [eventFrame("messageStart", { role: "assistant" })];
  for (let i = 0; i < n; i++) frames.push(eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: deltaText(i) } }));
  frames.push(eventFrame("contentBlockStop", { contentBlockIndex: 0 }));
  frames.push(eventFrame("messageStop", { stopReason: "end_turn" }));
  const trace = body ? converseGuardrailTrace(body, Array.from({ length: n }, (_, i) => deltaText(i)).join("")) : undefined;
  frames.push(
    eventFrame("metadata", {
      usage: converseUsage(u),
      metrics: { latencyMs: Math.max(1, Date.now() - started) },
      ...(ok.serviceTier ? { serviceTier: { type: ok.serviceTier } } : {}),
      ...(trace ? { trace: { guardrail: trace } } : {}),
    }),
  );
  return frames;
}

/**
 * Converse's guardrail trace (GuardrailTraceAssessment) when the request attaches a guardrail with
 * `trace: "enabled"`: one input assessment and one output assessment under the guardrail's id, each
 * with its invocationMetrics.usage. Units as Bedrock counts them: each policy (content, topic, word,
 * sensitive information) one unit per 1,000 characters evaluated (guardContent blocks only when
 * the messages hold any, else every text block).
 */
function converseGuardrailTrace(body: Buffer, outputText: string): Record<string, unknown> | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isRecord(json) || !isRecord(json.guardrailConfig)) return undefined;
  const config = json.guardrailConfig;
  if (config.trace !== "enabled" && config.trace !== "enabled_full") return undefined;
  const id = String(config.guardrailIdentifier);
  const blocks: unknown[] = [];
  if (Array.isArray(json.messages)) for (const m of json.messages) if (isRecord(m) && Array.isArray(m.content)) blocks.push(...m.content);
  const guarded = blocks.filter((b) => isRecord(b) && isRecord(b.guardContent));
  let inputChars = 0;
  for (const b of guarded.length > 0 ? guarded : blocks) {
    if (!isRecord(b)) continue;
    if (typeof b.text === "string") inputChars += b.text.length;
    else if (isRecord(b.guardContent) && isRecord(b.guardContent.text) && typeof b.guardContent.text.text === "string") inputChars += b.guardContent.text.text.length;
  }
  return {
    modelOutput: [],
    inputAssessment: { [id]: guardrailAssessment(inputChars) },
    outputAssessments: { [id]: [guardrailAssessment(outputText.length)] },
  };
}

/** One guardrail assessment's invocation metrics: each of four policies one unit per 1,000 characters evaluated. */
function guardrailAssessment(chars: number): Record<string, unknown> {
  const units = Math.max(1, Math.ceil(chars / 1000));
  return {
    invocationMetrics: {
      guardrailProcessingLatency: 42,
      usage: {
        topicPolicyUnits: units,
        contentPolicyUnits: units,
        wordPolicyUnits: units,
        sensitiveInformationPolicyUnits: units,
        sensitiveInformationPolicyFreeUnits: 0,
        contextualGroundingPolicyUnits: 0,
      },
      guardrailCoverage: { textCharacters: { guarded: chars, total: chars } },
    },
  };
}

/**
 * What InvokeModel's answer (or its stream's last chunk) adds when the request names a guardrail in
 * X-Amzn-Bedrock-GuardrailIdentifier: `amazon-bedrock-guardrailAction`, and with X-Amzn-Bedrock-Trace
 * ENABLED its `amazon-bedrock-trace.guardrail` (input keyed by the guardrail id; outputs a list of
 * those), each assessment with its invocationMetrics.usage. The input evaluated: the messages' text.
 */
function invokeGuardrail(headers: Record<string, string>, body: Buffer, outputText: string): Record<string, unknown> | undefined {
  const id = headers["x-amzn-bedrock-guardrailidentifier"];
  if (!id) return undefined;
  const action = { "amazon-bedrock-guardrailAction": "NONE" };
  if (!/^enabled/i.test(headers["x-amzn-bedrock-trace"] ?? "")) return action;
  let inputChars = 0;
  try {
    const json: unknown = JSON.parse(body.toString("utf8"));
    const messages = isRecord(json) && Array.isArray(json.messages) ? json.messages : [];
    for (const m of messages) {
      if (!isRecord(m)) continue;
      if (typeof m.content === "string") inputChars += m.content.length;
      else if (Array.isArray(m.content)) for (const b of m.content) if (isRecord(b) && typeof b.text === "string") inputChars += b.text.length;
    }
  } catch {
    inputChars = body.length;
  }
  return { ...action, "amazon-bedrock-trace": { guardrail: { input: { [id]: guardrailAssessment(inputChars) }, outputs: [{ [id]: guardrailAssessment(outputText.length) }] } } };
}

// -----------------------------------------------------------------------------------------
// Usage defaults

/** Default: input = ceil(body bytes / 4), output = min(requested max tokens, 40); each at least 1. */
function resolveUsage(given: OkBehavior["usage"], body: Buffer, operation: string): Usage {
  const input = given?.input ?? Math.max(1, Math.ceil(body.length / 4));
  let output = given?.output;
  if (output === undefined) {
    const max = maxTokens(body);
    output = Math.max(1, Math.min(max ?? 40, 40));
  }
  if (operation === "CountTokens" || operation === "ApplyGuardrail") output = 0;
  return { input, output, cacheRead: given?.cacheRead ?? 0, cacheWrite: given?.cacheWrite ?? 0 };
}

function maxTokens(body: Buffer): number | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isRecord(json)) return undefined;
  const candidates: unknown[] = [
    json.max_tokens,
    isRecord(json.inferenceConfig) ? json.inferenceConfig.maxTokens : undefined,
    json.max_gen_len,
    json.max_new_tokens,
    isRecord(json.parameters) ? json.parameters.max_new_tokens : undefined,
  ];
  for (const c of candidates) if (typeof c === "number" && Number.isFinite(c)) return c;
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// -----------------------------------------------------------------------------------------
// HTTP helpers

function baseHeaders(contentType: string): Record<string, string> {
  return { "x-amzn-RequestId": randomUUID(), Date: new Date().toUTCString(), "Content-Type": contentType };
}

function sendError(res: http.ServerResponse, status: number, type: string, message: string): void {
  const payload = Buffer.from(JSON.stringify({ message }));
  res.writeHead(status, {
    ...baseHeaders("application/json"),
    "x-amzn-ErrorType": type,
    "Content-Length": String(payload.length),
  });
  res.end(payload);
}

function statusForException(type: string): number {
  const table: Record<string, number> = {
    ThrottlingException: 429,
    ValidationException: 400,
    ModelTimeoutException: 408,
    ModelStreamErrorException: 424,
    ServiceUnavailableException: 503,
    InternalServerException: 500,
  };
  return table[type] ?? 500;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

function writeAsync(res: http.ServerResponse, data: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    // Resolve on error or close too: a client that went away is noticed by the caller via res "close".
    const done = (): void => {
      res.off("close", done);
      resolve();
    };
    res.once("close", done);
    res.write(data, done);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
