/**
 * The contract between the background process and everything that shows its figures: the local
 * HTTP API (CLI, dashboard, other windows) and, later, custom LSP messages. Types only.
 */
import type { CallRecord, Outcome } from "./ledger/types";

export const API_PREFIX = "/__bedrock-budget/v1";
export const API_PATHS = {
  health: `${API_PREFIX}/health`,
  status: `${API_PREFIX}/status`,
  calls: `${API_PREFIX}/calls`,
  events: `${API_PREFIX}/events`,
} as const;

/** Identifies a compatible gateway already serving a port (so another window can reuse it). */
export interface HealthResponse {
  product: "bedrock-budget";
  apiVersion: 1;
  version: string;
  pid: number;
  startedAt: string;
}

export interface CapStatusDto {
  id: string;
  scope: "personal" | "team";
  window: "day" | "week" | "month";
  model?: string;
  limitUsd: number;
  spentUsd: number;
  reservedUsd: number;
  /** Exact figures as decimal strings of USD. */
  spentExact: string;
  reservedExact: string;
  windowStart: string;
  resetsAt: string;
}

export interface StatusResponse {
  user: string;
  endpoint: string;
  timeZone: string;
  caps: CapStatusDto[];
  today: { calls: number; costUsd: number };
  inFlight: number;
  configErrors: string[];
}

export interface CallsResponse {
  calls: CallRecord[];
  /** Cursor for the next (older) page, when there is one. */
  next?: string;
}

export interface CallsQuery {
  limit?: number;
  before?: string;
  model?: string;
  outcome?: Outcome;
}

/** Server-sent events on API_PATHS.events: `event: call` carries a CallRecord, `event: status` a StatusResponse. */
export type GatewayEvent = { event: "call"; data: CallRecord } | { event: "status"; data: StatusResponse };
