/** What the finders report: one Bedrock call in a source file, with whatever is statically knowable about it. */
import type { AppliedTier, MeteredOperation } from "../../metering/types";

/** LSP positions: 0-based line, UTF-16 code unit offset in the line (what editors expect). */
export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type CallSiteLanguage = "typescript" | "javascript" | "python";
export type CallSiteApi = "aws-sdk-js-v3" | "boto3" | "anthropic-bedrock-sdk";

/** Plain JSON, as the gateway's body reader (measureBody) sees a request. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Plain data (JSON-serialisable), so it can ride in a code lens's `data` to the resolve step. */
export interface CallSite extends RequestFacts {
  range: Range;
  language: CallSiteLanguage;
  api: CallSiteApi;
  /** As written: "ConverseCommand", "invokeModel", "invoke_model", "messages.create", ... */
  operation: string;
  /** The Bedrock operation it amounts to (Anthropic SDK calls are InvokeModel with a Messages body). */
  meteredOperation: MeteredOperation;
}

/** What a request reveals statically, wherever it was built. */
export interface RequestFacts {
  /** Resolved model id (may be a profile id or an ARN); undefined when not statically knowable. */
  modelId?: string;
  /** Resolved output limit; undefined when the request sets none or it is not knowable (see maxTokensUnknown). */
  maxTokens?: number;
  /** True when a limit may be set but its value (or the whole body) is not statically knowable. */
  maxTokensUnknown: boolean;
  /** The literal prompt and system text found (unknown pieces left out). */
  promptText?: string;
  /** Input tokens of the statically known part of the request, counted by the gateway's own body reader. */
  knownInputTokens: number;
  /** False when part of the prompt (a variable, a template substitution, an opaque body) is unknown. */
  promptComplete: boolean;
  usesPromptCache: boolean;
  /** The service tier and latency a Converse request asks for, when it names either (priced as the gateway prices them). */
  tier?: AppliedTier;
  /** What could not be known and what was done about it, for the hover. */
  assumptions: string[];
  /**
   * A guardrail the call attaches (Converse `guardrailConfig`, InvokeModel's `guardrailIdentifier`):
   * its id when known, and the text units of the input it evaluates (an unknown prompt's assumed size included).
   */
  guardrail?: { id?: string; inputUnits: number };
}
