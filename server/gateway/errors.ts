/**
 * Answers in Bedrock's own error shape (status, `x-amzn-ErrorType`, JSON `message`), so every SDK
 * raises the typed exception and applies its own retry rules: a budget refusal is a 400
 * ServiceQuotaExceededException that no SDK retries; rate limits stay 429 ThrottlingException.
 */
import { randomUUID } from "node:crypto";

export type BedrockErrorType =
  | "ServiceQuotaExceededException"
  | "ThrottlingException"
  | "ValidationException"
  | "AccessDeniedException"
  | "InternalServerException"
  | "ServiceUnavailableException"
  | "ResourceNotFoundException"
  | "UnknownOperationException"
  | "RequestTimeoutException";

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export function bedrockError(status: number, type: BedrockErrorType, message: string, extra: Record<string, string> = {}): ErrorAnswer {
  const body = Buffer.from(JSON.stringify({ message }));
  return {
    status,
    headers: {
      "content-type": "application/json",
      "content-length": String(body.byteLength),
      "x-amzn-errortype": type,
      "x-amzn-requestid": randomUUID(),
      date: new Date().toUTCString(),
      ...(status >= 400 && status < 500 && status !== 429 ? { "x-should-retry": "false" } : {}),
      ...extra,
    },
    body,
  };
}

export const refusal = (message: string) => bedrockError(400, "ServiceQuotaExceededException", message);
/** Over a caller's rate limit: 429, which every SDK retries, after `retryAfterSeconds` (Retry-After). */
export const throttled = (message: string, retryAfterSeconds: number) => bedrockError(429, "ThrottlingException", message, { "retry-after": String(retryAfterSeconds) });
export const validation = (message: string, status = 400) => bedrockError(status, "ValidationException", message);
export const accessDenied = (message: string) => bedrockError(403, "AccessDeniedException", message);
export const upstreamUnreachable = (message: string) => bedrockError(502, "ServiceUnavailableException", message);
/** The gateway is holding all the request bytes it may: retryable (SDKs retry 503), after a second. */
export const overloaded = (message: string) => bedrockError(503, "ServiceUnavailableException", message, { "retry-after": "1" });
export const requestTimeout = (message: string) => bedrockError(408, "RequestTimeoutException", message);
/**
 * The ledger cannot record calls (a full or read-only disk): a call that cannot be recorded is not
 * forwarded. Retryable (SDKs retry 503), since the condition clears once the user fixes the disk.
 */
export const cannotRecord = (reason: string) => bedrockError(503, "ServiceUnavailableException", `Bedrock Budget cannot record calls: ${reason}`);
/**
 * A cap or quota added live could not be counted from the journal, so its total is partial: calls
 * are refused until the gateway restarts and counts it again. Retryable (503): a restart clears it.
 */
export const uncounted = (reason: string) => bedrockError(503, "ServiceUnavailableException", `Bedrock Budget refused this call: ${uncountedMessage(reason)}`);

/** Why every call is refused after a failed count, as the refusal, the status and the log say it. */
export function uncountedMessage(reason: string): string {
  return `${reason}. Calls are refused until the gateway restarts (the command "Bedrock Budget: Restart Gateway", or restart bedrock-budget serve), which counts the journal again.`;
}
