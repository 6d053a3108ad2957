/**
 * The local HTTP API under /__bedrock-budget/v1: health (with its challenge proof), status, the
 * call log, live events. The call-level routes need the user's token (other local users can
 * reach loopback too); the aggregate status and health stay open.
 */
import { EventEmitter } from "node:events";
import { picosToDecimalString, picosToUsd } from "../metering/money";
import type { CallRecord, Outcome } from "../ledger/types";
import { API_PATHS, API_PREFIX, type BlockedCause, type CallsResponse, type CapActionTaken, type CapStatusDto, type HealthResponse, type StatusResponse } from "../protocol";
import { CHALLENGE_RE, type GatewaySecret } from "../ledger/secret";
import type { GatewayContext } from "./context";
import { authorized, forbidden, json, type AnyRequest, type AnyResponse, type Routes } from "../http";
import { version } from "../../package.json";
import { priceTableDto, tableWithPriceFile, type PriceTableInfo } from "../metering/priceFile";
import type { PriceTable } from "../metering/prices";
import type { CapFigure } from "../budget/caps";

const OUTCOMES: Outcome[] = ["ok", "refused", "upstream-error", "cut", "client-aborted", "upstream-failed", "interrupted", "throttled", "quota-exceeded"];

/** A cap's figures as /status (and the gateway's alert channels) show them. */
export function capStatusDto(c: CapFigure): CapStatusDto {
  return {
    id: c.id,
    scope: c.scope,
    window: c.window,
    ...(c.model ? { model: c.model } : {}),
    ...(c.callers ? { callers: c.callers } : {}),
    ...(c.tags ? { tags: c.tags } : {}),
    ...(c.action ? { action: c.action } : {}),
    limitUsd: picosToUsd(c.limitPicos),
    spentUsd: picosToUsd(c.spentPicos),
    reservedUsd: picosToUsd(c.reservedPicos),
    limitExact: picosToDecimalString(c.limitPicos),
    spentExact: picosToDecimalString(c.spentPicos),
    reservedExact: picosToDecimalString(c.reservedPicos),
    windowStart: c.windowStart.toISOString(),
    resetsAt: c.resetsAt.toISOString(),
    ...(c.team ? { team: c.team } : {}),
  };
}

/** Emitted on LocalApi.events for each cap action a settled call carries, after it is journaled. */
export const CAP_ACTION_EVENT = "capAction";
export interface CapActionEvent extends CapActionTaken {
  record: CallRecord;
}

export class LocalApi implements Routes {
  readonly name = "local API";
  readonly events = new EventEmitter();
  /** The open event streams, each with what stops its listeners. */
  private readonly streams = new Map<AnyResponse, () => void>();
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly ctx: () => GatewayContext,
    private readonly endpoint: () => string,
    private readonly inFlight: () => number,
    /** Why every Bedrock call is refused right now, and from what, if it is (RunningGateway.block). */
    private readonly blocked: () => BlockedCause | undefined = () => undefined,
    /** The price table in force and where it comes from (the ledger's price file, else built-in). */
    readonly priceTable: () => { table: PriceTable; info: PriceTableInfo } = () => tableWithPriceFile(undefined),
  ) {
    this.events.setMaxListeners(0);
  }

  /** The ledger's secret: proves this gateway to followers and derives the token. */
  get secret(): GatewaySecret {
    return this.ctx().ledger.secret;
  }

  /** The token the call-level routes need (for the editor's dashboard panel and tests). */
  token(): string {
    return this.secret.token();
  }

  static handles(rawPath: string): boolean {
    return rawPath === API_PREFIX || rawPath.startsWith(`${API_PREFIX}/`);
  }

  handles(rawPath: string): boolean {
    return LocalApi.handles(rawPath);
  }

  /** Settled calls in order, then the status after them, computed once however many streams listen. */
  publishAll(records: readonly CallRecord[]): void {
    for (const record of records) {
      this.events.emit("call", record);
      // The seam for alert channels: one event per cap action a settled call carries (warn, downgrade, clamp).
      for (const action of record.actions ?? []) this.events.emit(CAP_ACTION_EVENT, { ...action, record } satisfies CapActionEvent);
    }
    this.publishStatus();
  }

  /** Tells the event streams' listeners the status (after settled calls, or a change of what it shows). */
  publishStatus(): void {
    if (this.events.listenerCount("status") > 0) this.events.emit("status", this.status());
  }

  status(): StatusResponse {
    const ctx = this.ctx();
    const now = ctx.now();
    const caps = ctx.caps.status(now).map(capStatusDto);
    const today = ctx.ledger.todayTotals(now);
    const quarantine = ctx.ledger.journal.quarantine;
    return {
      user: ctx.user,
      endpoint: this.endpoint(),
      timeZone: ctx.timeZone,
      caps,
      today: { calls: today.calls, costUsd: picosToUsd(today.costPicos), costExact: picosToDecimalString(today.costPicos) },
      todayByModel: Object.fromEntries(
        Object.entries(today.byModel).map(([model, t]) => [model, { calls: t.calls, costUsd: picosToUsd(t.costPicos), costExact: picosToDecimalString(t.costPicos) }]),
      ),
      inFlight: this.inFlight(),
      ...blockedFields(this.blocked()),
      ...(ctx.simulated ? { simulated: true } : {}),
      journal: { quarantinedLines: quarantine.lines, unknownAmountLines: quarantine.unknownAmountLines, quarantineFiles: [...quarantine.files] },
      prices: priceTableDto(this.priceTable().info, now),
    };
  }

  async handle(req: AnyRequest, res: AnyResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET") return json(res, 405, { message: "the local API is read-only: use GET" });
    switch (url.pathname) {
      case API_PATHS.health: {
        const body: HealthResponse = { product: "bedrock-budget", apiVersion: 1, version, pid: process.pid, startedAt: this.startedAt };
        const challenge = url.searchParams.get("challenge");
        const port = this.endpoint() ? Number(new URL(this.endpoint()).port || 80) : 0;
        if (challenge !== null && CHALLENGE_RE.test(challenge) && port > 0) body.proof = this.secret.prove(challenge, port);
        return json(res, 200, body);
      }
      case API_PATHS.status:
        return json(res, 200, this.status());
      case API_PATHS.calls:
        if (!authorized(req, url, this.secret)) return forbidden(res);
        return this.calls(url, res);
      case API_PATHS.events:
        if (!authorized(req, url, this.secret)) return forbidden(res);
        return this.stream(res);
      default:
        return json(res, 404, { message: `no such local API route: ${url.pathname}` });
    }
  }

  private async calls(url: URL, res: AnyResponse): Promise<void> {
    const limitText = url.searchParams.get("limit");
    const limit = limitText === null ? 50 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return json(res, 400, { message: "limit must be a whole number from 1 to 1000" });
    const outcome = url.searchParams.get("outcome") ?? undefined;
    if (outcome !== undefined && !OUTCOMES.includes(outcome as Outcome)) {
      return json(res, 400, { message: `outcome must be one of ${OUTCOMES.join(", ")}` });
    }
    const page = await this.ctx().ledger.recentCalls({
      limit,
      ...(url.searchParams.get("before") ? { before: url.searchParams.get("before")! } : {}),
      ...(url.searchParams.get("model") ? { model: url.searchParams.get("model")! } : {}),
      ...(outcome ? { outcome: outcome as Outcome } : {}),
    });
    const body: CallsResponse = { calls: page.calls, ...(page.next ? { next: page.next } : {}) };
    return json(res, 200, body);
  }

  /** Server-sent events: the status at once, then every settled call and the status after it. */
  private stream(res: AnyResponse): void {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send("status", this.status());
    const onCall = (record: CallRecord) => send("call", record);
    const onStatus = (status: StatusResponse) => send("status", status);
    const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    heartbeat.unref();
    this.events.on("call", onCall);
    this.events.on("status", onStatus);
    const stop = () => {
      clearInterval(heartbeat);
      this.events.off("call", onCall);
      this.events.off("status", onStatus);
      this.streams.delete(res);
    };
    this.streams.set(res, stop);
    res.once("close", stop);
  }

  /**
   * On shutdown: an open event stream is not a call in flight, and its end tells followers to take over.
   * Its listeners stop first: calls still settling would otherwise write after the end (an uncaught error).
   */
  endStreams(): void {
    for (const [res, stop] of [...this.streams]) {
      stop();
      res.end();
    }
  }
}

function blockedFields(blocked: BlockedCause | undefined): Pick<StatusResponse, "blocked" | "blockedBy"> {
  return blocked === undefined ? {} : { blocked: blocked.reason, blockedBy: blocked.by };
}
