/**
 * The what-if card: "had these caps been in force" — a month of the journal replayed against the
 * usage plans and caps (with their actions) in force now, fetched when asked (it reads a month of the journal).
 */
import type { WhatIfResponse } from "../server/protocol";
import { groupLabel, usdText } from "../server/shared/whatIfLabel";
import type { DataSource } from "./dataSource";
import { clear, h } from "./dom";

const money = (exact: string) => usdText(exact, 2);
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
      const rows = (groups: WhatIfResponse["stopped"]["groups"]) =>
        groups.map((g) => h("tr", { class: "whatif-group" }, h("th", {}, `  ${groupLabel(g)}`), h("td", { class: "num" }, `${calls(g.calls)}, ${money(g.savedUsd)}`)));
      out.append(
        h("table", { class: "whatif" },
          h("tbody", {},
            h("tr", {}, h("th", {}, "Calls replayed"), h("td", { class: "num", id: "whatif-replayed" }, String(r.replayed))),
            h("tr", {}, h("th", {}, "Actual cost"), h("td", { class: "num", id: "whatif-actual" }, money(r.actualUsd))),
            h("tr", {}, h("th", {}, "Would have been stopped"), h("td", { class: "num", id: "whatif-stopped" }, `${calls(r.stopped.calls)}, ${money(r.stopped.savedUsd)} saved`)),
            ...rows(r.stopped.groups),
            h("tr", {}, h("th", {}, "Throttled, warned, downgraded or clamped"), h("td", { class: "num", id: "whatif-changed" }, `${calls(r.changed.calls)}, ${money(r.changed.savedUsd)} saved`)),
            ...rows(r.changed.groups),
            h("tr", {}, h("th", {}, "Would have cost"), h("td", { class: "num", id: "whatif-cost" }, money(r.wouldCostUsd))),
            ...r.policies.map((p) => h("tr", { class: "whatif-policy" }, h("th", {}, p.name), h("td", { class: "num" }, `${p.stoppedCalls} stopped, ${p.changedCalls} changed, ${money(p.savedUsd)} saved`))))),
        h("p", { class: "muted" },
          `${r.month} (${r.timeZone}). Approximate: ${r.approximations.join("; ")}.` +
            (r.notReplayed ? ` ${calls(r.notReplayed)} refused or throttled for real were not replayed.` : "")),
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
