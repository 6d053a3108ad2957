import type { Outcome } from "../protocol";

/** Outcomes of calls stopped at the gateway (a cap, a rate limit, a quota): they never reached Bedrock and cost nothing. */
const STOPPED_AT_GATEWAY: ReadonlySet<Outcome> = new Set<Outcome>(["refused", "throttled", "quota-exceeded"]);

export function stoppedAtGateway(outcome: Outcome): boolean {
  return STOPPED_AT_GATEWAY.has(outcome);
}
