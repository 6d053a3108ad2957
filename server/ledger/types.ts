/** What the journal holds, one JSON object a line. Money is a decimal string of pico-dollars. */
import type { Operation, TokenUsage } from "../metering/types";

export type Outcome =
  | "ok" // settled at the usage Bedrock reported
  | "refused" // a cap refused it; never forwarded
  | "upstream-error" // Bedrock answered with an error; nothing charged
  | "cut" // a stream stopped by the gateway at a cap; charged what was generated
  | "client-aborted" // the caller went away mid-call; charged what is known, else the worst case
  | "upstream-failed" // connection to Bedrock dropped mid-call, or its answer could not be read; charged conservatively
  | "interrupted"; // unsettled after a crash, or stopped by a shutdown past its deadline; charged the worst case

/** Written (and made durable) before a call is forwarded, so a crash cannot lose its cost. */
export interface ReserveEntry {
  type: "reserve";
  id: string;
  at: string; // ISO time
  user: string;
  tool: string;
  operation: Operation;
  modelId: string;
  /** The priced base model; lets a crash-interrupted call be rolled up and capped like a settled one. */
  baseModelId?: string;
  worstCasePicos: string;
  capIds: string[];
}

/** The settled call. Written before the caller sees the end of its response. */
export interface CallRecord {
  type: "settle";
  id: string;
  at: string; // ISO time of settlement
  startedAt: string;
  user: string;
  tool: string;
  operation: Operation;
  modelId: string; // as the caller named it
  baseModelId: string;
  usage: TokenUsage;
  /** True when usage was not reported by Bedrock and was estimated (cut, aborted, interrupted). */
  usageEstimated: boolean;
  costPicos: string;
  worstCasePicos: string;
  outcome: Outcome;
  status: number; // HTTP status the caller got
  refusedBy?: string; // cap id
  requestId?: string;
  latencyMs: number;
  tags: Record<string, string>;
  serviceTier?: string;
  message?: string; // short, secret-free description of an error
}

export type JournalEntry = ReserveEntry | CallRecord;
