/** What the journal holds, one JSON object a line. Money is a decimal string of pico-dollars. */
import type { CallRecord } from "../protocol";
import type { Operation } from "../metering/types";

/** The journal's settled call and its outcomes are part of the contract (the editor and dashboard receive them). */
export type { CallRecord, Outcome } from "../protocol";

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
  /** Who made the call (CallRecord.caller), its verifying profile and its tags: a crash-interrupted call is capped like a settled one. */
  caller?: string;
  callerProfile?: string;
  tags?: Record<string, string>;
}

export type JournalEntry = ReserveEntry | CallRecord;
