/**
 * The try-it simulator (`serve --simulate`): a loopback HTTP server that stands where Bedrock
 * would, so the gateway meters, caps and records simulated calls by exactly the path real ones take.
 * It never calls AWS; the gateway in front of it has already checked and signed each request.
 */
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { EstimateError, tierInBody } from "../metering/estimate";
import { checkRequestBody, isConverse, type JsonObject } from "../metering/requestBody";
import type { MeteredOperation } from "../metering/types";
import { readAll } from "../gateway/relay";
import { isStreaming, routeOf } from "../gateway/routes";
import { appliedTierFromHeaders } from "../metering/usage";
import { anthropicBody, anthropicStreamFrames, converseBody, countTokensInput, invokeTierHeaders, converseStreamFrames, isAnthropicMessages, simulatedReply } from "./replies";

/** A little latency, so a dashboard shows calls in flight and a stream arrives in pieces. */
export interface SimulatorTiming {
  firstByteMs: number;
  betweenFramesMs: number;
}

export const DEFAULT_TIMING: SimulatorTiming = { firstByteMs: 150, betweenFramesMs: 40 };

/** Marks every answer of a simulated gateway (and of the simulator behind it). */
export const SIMULATED_HEADER = "x-bedrock-budget-simulated";

export interface Simulator {
  /** Where the gateway forwards: http://127.0.0.1:<port>. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startSimulator(timing: SimulatorTiming = DEFAULT_TIMING): Promise<Simulator> {
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    open.add(res);
    res.once("close", () => open.delete(res));
    void answer(req, res, timing).catch((err) => {
      if (!res.headersSent) sendError(res, 500, "InternalServerException", `the Bedrock Budget simulator failed: ${(err as Error).message}`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse, timing: SimulatorTiming): Promise<void> {
  const body = await readAll(req); // the gateway's request, already bounded by its inbound limits
  const route = routeOf(req.method ?? "GET", req.url ?? "/");
  if (route.kind !== "model") {
    return sendError(res, 400, "ValidationException", "the Bedrock Budget simulator answers Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream and CountTokens; run without --simulate for other operations");
  }
  let json: JsonObject;
  try {
    json = checkRequestBody(route.operation, body);
  } catch (err) {
    if (err instanceof EstimateError) return sendError(res, 400, "ValidationException", err.message);
    throw err;
  }
  if (route.operation === "CountTokens") {
    return sendJson(res, { inputTokens: countTokensInput(json) });
  }
  const operation: MeteredOperation = route.operation as MeteredOperation;
  if ((operation === "InvokeModel" || operation === "InvokeModelWithResponseStream") && !isAnthropicMessages(json)) {
    return sendError(res, 400, "ValidationException",
      `the Bedrock Budget simulator answers ${operation} only in the Anthropic Messages format (anthropic_version and messages); use Converse or ConverseStream for ${route.modelId}, or run without --simulate`);
  }
  // Served at the tier asked for (Converse: in the body; InvokeModel: in the request headers), and said so in the answer.
  const tier = isConverse(operation) ? tierInBody(operation, json) : appliedTierFromHeaders(req.headers);
  const started = Date.now();
  const reply = simulatedReply(operation, json);
  await delay(timing.firstByteMs);
  const latencyMs = Math.max(1, Date.now() - started);
  const id = `msg_sim_${randomBytes(12).toString("hex")}`;

  if (isStreaming(operation)) {
    const frames = operation === "ConverseStream" ? converseStreamFrames(reply, latencyMs, tier) : anthropicStreamFrames(reply, route.modelId, id, latencyMs);
    res.writeHead(200, {
      ...baseHeaders("application/vnd.amazon.eventstream"),
      ...(operation === "InvokeModelWithResponseStream" ? { "x-amzn-bedrock-content-type": "application/json", ...invokeTierHeaders(tier) } : {}),
    });
    res.flushHeaders();
    for (const [i, frame] of frames.entries()) {
      if (res.destroyed) return; // the gateway cut the stream (a cap) or the caller left
      if (i > 0) await delay(timing.betweenFramesMs);
      await write(res, frame);
    }
    res.end();
    return;
  }
  if (operation === "Converse") return sendJson(res, converseBody(reply, route.modelId, latencyMs, tier));
  sendJson(res, anthropicBody(reply, route.modelId, id), {
    ...invokeTierHeaders(tier),
    "x-amzn-bedrock-input-token-count": String(reply.inputTokens),
    "x-amzn-bedrock-output-token-count": String(reply.outputTokens),
    "x-amzn-bedrock-invocation-latency": String(latencyMs),
  });
}

function baseHeaders(contentType: string): Record<string, string> {
  return { "x-amzn-requestid": randomUUID(), "content-type": contentType, [SIMULATED_HEADER]: "true" };
}

function sendJson(res: http.ServerResponse, json: unknown, extra: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(json));
  res.writeHead(200, { ...baseHeaders("application/json"), ...extra, "content-length": String(payload.length) });
  res.end(payload);
}

function sendError(res: http.ServerResponse, status: number, type: string, message: string): void {
  const payload = Buffer.from(JSON.stringify({ message }));
  res.writeHead(status, { ...baseHeaders("application/json"), "x-amzn-errortype": type, "content-length": String(payload.length) });
  res.end(payload);
}

function write(res: http.ServerResponse, data: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("close", done);
      resolve();
    };
    res.once("close", done);
    res.write(data, done);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
