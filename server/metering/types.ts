/** Plain data shared by pricing, estimation and usage extraction. */
import type { TokenUsage } from "../protocol";
import type { Picos } from "./money";

/** Operations and token counts travel in each call record, so the contract (server/protocol.ts) owns them. */
export type { MeteredOperation, Operation, TokenUsage } from "../protocol";

export const ZERO_USAGE: TokenUsage = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadInputTokens: 0,
  cacheWrite5mInputTokens: 0,
  cacheWrite1hInputTokens: 0,
});

/** The tier and latency mode a response says were applied (they set the rate). */
export interface AppliedTier {
  serviceTier?: string; // "default" | "priority" | "flex" | "reserved" | ...
  latency?: string; // "standard" | "optimized"
  /** The model a prompt router chose (Converse `trace.promptRouter.invokedModelId`): the call is priced as that model. */
  invokedModelId?: string;
}

/** Per-token rates in pico-dollars for one model as it is being called. */
export interface Rates {
  /** The model id as the caller named it. */
  requestedModelId: string;
  /** The base model the price row is for (profile prefix / ARN stripped), or the requested id when unknown. */
  baseModelId: string;
  displayName: string;
  /** False when no row matched: priced at the most expensive known rate and flagged. */
  known: boolean;
  input: Picos;
  output: Picos;
  cacheRead: Picos;
  cacheWrite5m: Picos;
  cacheWrite1h: Picos;
  /** The model's maximum output tokens, used when a request sets none. */
  maxOutputTokens: number;
  /** Where the row came from ("built-in: <source>, read <date>" or "override: <glob>"). */
  source: string;
  /** Human-readable notes on what was applied (geo profile +10%, long context, unknown model, ...). */
  notes: string[];
  /** Provisioned throughput the user declared: what it costs per hour (billed by the hour, not per token). */
  hourlyUsd?: number;
}
