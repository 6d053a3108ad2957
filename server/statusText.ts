/** The status as text for a terminal (CLI `status`). Pure. */
import { withPrintableStrings } from "./terminalText";
import { teamFreshness, usd, usedPercent, WINDOW_WORD } from "./shared/statusFormat";
import type { JournalHealthDto, PriceTableDto, StatusResponse } from "./protocol";

export function formatStatus(reply: StatusResponse, now: Date = new Date()): string {
  // Its strings came over the network, and cap names and globs from a team's shared files.
  const status = withPrintableStrings(reply);
  const lines = [`Bedrock Budget at ${status.endpoint} (user ${status.user}, ${status.timeZone})`];
  if (status.simulated) lines.push("SIMULATED: answers come from the built-in simulator, not AWS; nothing is spent");
  if (status.blocked) lines.push(`BLOCKED: ${status.blocked}`); // its text says that every call is refused, why, and how to fix it
  lines.push(`today: ${status.today.calls} calls, ${usd(status.today.costUsd)}; ${status.inFlight} in flight`);
  if (status.caps.length === 0) lines.push("no caps set: calls are metered but never refused");
  for (const cap of status.caps) {
    const fresh = teamFreshness(cap, now);
    const pct = usedPercent(cap);
    lines.push(
      `${cap.id} (${cap.scope}${cap.model ? `, ${cap.model}` : ""}): ${usd(cap.spentUsd)} / ${usd(cap.limitUsd)} ${WINDOW_WORD[cap.window]}` +
        `${cap.reservedUsd > 0 ? `, ${usd(cap.reservedUsd)} reserved` : ""} (${pct}%), resets ${cap.resetsAt}${fresh ? `; ${fresh}` : ""}`,
    );
  }
  lines.push(...journalLines(status.journal));
  if (status.prices) lines.push(priceTableLine(status.prices));
  return `${lines.join("\n")}\n`;
}

/** What the quarantine holds, loudly when an amount is unknown; nothing when the journal is clean. */
export function journalLines(journal: JournalHealthDto | undefined): string[] {
  if (!journal || journal.quarantinedLines === 0) return [];
  const n = journal.quarantinedLines;
  const lines = [`journal: ${n} invalid line${n === 1 ? "" : "s"} moved aside on start, kept in ${journal.quarantineFiles.join(", ")}; what they could have cost is charged`];
  if (journal.unknownAmountLines > 0) {
    const u = journal.unknownAmountLines;
    lines.push(`WARNING: ${u} of them name${u === 1 ? "s" : ""} no amount that can be read: spend may be higher than shown; inspect the .bad-unknown-amount file${journal.quarantineFiles.length === 1 ? "" : "s"}`);
  }
  return lines;
}

/** Where the prices come from and how old they are; loud past 60 days. */
export function priceTableLine(p: PriceTableDto): string {
  const from = p.source === "AWS Price List" ? `AWS Price List ${p.date}${p.region ? ` (${p.region})` : ""}, ${p.builtInRows} row(s) at the built-in figure` : `built-in table checked ${p.date}`;
  const line = `prices: ${from}; ${p.ageDays} day(s) old`;
  return p.stale ? `WARNING: ${line}: older than 60 days, refresh with: bedrock-budget prices update` : line;
}
