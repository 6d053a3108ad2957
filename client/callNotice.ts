/** What the editor says about one settled call (refused, cut, changed by a cap action), if anything. Pure, tested alone. */
import type { CallRecord } from "../server/protocol";

/** What the editor says about one settled call, if anything. `quietKey`: at most one toast per key a minute (a runaway loop). */
export interface CallNotice {
  level: "error" | "warning" | "info";
  message: string;
  quietKey?: string;
  /** Offer to open the cap setting (a refusal). */
  capSetting?: boolean;
}

/** Refused and cut calls, and the caps' actions on a call that went through (warn, downgrade, clamp). */
export function callNotice(record: CallRecord): CallNotice | undefined {
  if (record.outcome === "refused") {
    const cap = record.refusedBy ?? "a cap";
    return { level: "error", message: record.message ?? `Bedrock Budget refused a call: cap "${cap}".`, quietKey: `refused:${cap}`, capSetting: true };
  }
  if (record.outcome === "cut") return { level: "warning", message: record.message ?? "Bedrock Budget stopped a stream at its cap." };
  const actions = record.actions ?? [];
  const warned = actions.filter((a) => a.action === "warn").map((a) => a.capId);
  if (warned.length > 0) {
    const caps = warned.map((id) => `"${id}"`).join(", ");
    return {
      level: "warning",
      message: `Bedrock Budget: ${warned.length === 1 ? "cap" : "caps"} ${caps} ${warned.length === 1 ? "is" : "are"} past the limit; a call to ${record.answeredBy ?? record.modelId} was let through (action warn) and counted.`,
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
