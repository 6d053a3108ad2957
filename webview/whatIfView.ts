/**
 * The what-if card: "had these caps been in force" — a month of the journal replayed against the
 * caps in force now, fetched when asked (it reads a month of the journal).
 */
import type { WhatIfResponse } from "../server/protocol";
import type { DataSource } from "./dataSource";
import { clear, h } from "./dom";

const money = (exact: string) => {
  const [whole, frac = ""] = exact.split(".");
  return `$${whole}.${frac.padEnd(2, "0")}`;
};
const calls = (n: number) => `${n} call${n === 1 ? "" : "s"}`;

/** The month input starts empty: the gateway then replays this month in its configured time zone (not the browser's). */
export function whatIfCard(source: DataSource): HTMLElement {
  const input = h("input", { type: "month", id: "whatif-month", "aria-label": "Month" });
  const out = h("div", { class: "whatif-out", "aria-live": "polite" });
  const load = async () => {
    clear(out);
    out.append(h("p", { class: "muted" }, "Replaying the month…"));
    try {
      const r = await source.get<WhatIfResponse>("whatif", input.value ? { month: input.value } : {});
      input.value = r.month;
      clear(out);
      out.append(
        h("table", { class: "whatif" },
          h("tbody", {},
            h("tr", {}, h("th", {}, "Calls replayed"), h("td", { class: "num", id: "whatif-replayed" }, String(r.replayed))),
            h("tr", {}, h("th", {}, "Actual cost"), h("td", { class: "num", id: "whatif-actual" }, money(r.actualUsd))),
            h("tr", {}, h("th", {}, "Would have been refused"), h("td", { class: "num", id: "whatif-stopped" }, `${calls(r.stopped.calls)}, ${money(r.stopped.savedUsd)} saved`)),
            ...r.stopped.groups.map((g) => h("tr", { class: "whatif-group" }, h("th", {}, `  ${g.outcome} by cap ${g.by}`), h("td", { class: "num" }, `${calls(g.calls)}, ${money(g.savedUsd)}`))),
            h("tr", {}, h("th", {}, "Would have cost"), h("td", { class: "num", id: "whatif-cost" }, money(r.wouldCostUsd))))),
        h("p", { class: "muted" },
          `${r.month} (${r.timeZone}). Replayed: ${r.policies.join(", ")}. Not replayed: ${r.notReplayedPolicies}.` +
            (r.notReplayed ? ` ${calls(r.notReplayed)} refused or throttled for real were not replayed (what they would have cost is unknown).` : "")),
      );
    } catch (err) {
      clear(out);
      out.append(h("p", { class: "error" }, (err as Error).message));
    }
  };
  return h("section", { class: "card", id: "whatif" },
    h("h2", {}, "Had these caps been in force"),
    h("div", { class: "controls" }, input, h("button", { type: "button", id: "whatif-load", onclick: () => void load() }, "Replay the month")),
    out);
}
