/** What the editor says about one settled call (refused, cut, changed by a cap action), if anything. Pure, tested alone. */
import type { CallRecord } from "../server/protocol";
import { notificationText } from "./notificationText";

/** What the editor says about one settled call, if anything. `quietKey`: at most one toast per key a minute (a runaway loop). */
export interface CallNotice {
  level: "error" | "warning" | "info";
  message: string;
  quietKey?: string;
  /** Offer to open the cap setting (a refusal). */
  capSetting?: boolean;
}

/**
 * Refused, quota-refused and cut calls, and the caps' actions on a call that went through (warn,
 * downgrade, clamp). A throttled call gets no toast: the SDKs retry a 429 after its Retry-After, so
 * it usually succeeds a second later, and a burst would raise a toast per retry for nothing the user
 * must act on (the call log and the metrics show throttles). A quota refusal is final (not retried
 * until the quota resets): it is said, at most once a minute per caller.
 */
export function callNotice(record: CallRecord): CallNotice | undefined {
  const notice = noticeOf(record);
  // Cap names, model globs and refusal messages can come from a team's shared files.
  return notice && { ...notice, message: notificationText(notice.message) };
}

function noticeOf(record: CallRecord): CallNotice | undefined {
  if (record.outcome === "refused") {
    // No cap named: the whole gateway refused it (invalid settings, unknown team caps, an uncounted
    // ledger); its message says why, and no cap setting is the thing to open.
    if (record.refusedBy === undefined) return { level: "error", message: record.message ?? "Bedrock Budget refused a call.", quietKey: "refused:gateway" };
    return { level: "error", message: record.message ?? `Bedrock Budget refused a call: cap "${record.refusedBy}".`, quietKey: `refused:${record.refusedBy}`, capSetting: true };
  }
  if (record.outcome === "quota-exceeded") {
    return { level: "error", message: record.message ?? "Bedrock Budget refused a call: its caller has used its request quota (rateLimit).", quietKey: `quota-exceeded:${record.caller ?? "unknown caller"}` };
  }
  if (record.outcome === "throttled") return undefined;
  if (record.outcome === "cut") return { level: "warning", message: record.message ?? "Bedrock Budget stopped a stream at its cap." };
  const actions = record.actions ?? [];
  const warned = actions.filter((a) => a.action === "warn").map((a) => a.capId);
  if (warned.length > 0) {
    const caps = warned.map((id) => `"${id}"`).join(", ");
    return {
      level: "warning",
      // Decided on the worst case: the call could take the cap past its limit, not that it is past.
      message: `Bedrock Budget: a call to ${record.answeredBy ?? record.modelId} that could take ${warned.length === 1 ? "cap" : "caps"} ${caps} past the limit was let through (action warn) and counted.`,
      quietKey: `warn:${warned.join(",")}`,
    };
  }
  const shaped = actions.filter((a) => a.action === "downgrade" || a.action === "clamp");
  if (shaped.length > 0) {
    const said = shaped.map((a) => (a.action === "downgrade" ? `cap "${a.capId}" sent it to ${record.answeredBy ?? "a cheaper model"}` : `cap "${a.capId}" lowered its output limit (${a.detail})`));
    return { level: "info", message: `Bedrock Budget: a call to ${record.modelId} was changed to fit: ${said.join("; ")}.`, quietKey: `shaped:${shaped.map((a) => a.capId).join(",")}` };
  }
  return undefined;
}
