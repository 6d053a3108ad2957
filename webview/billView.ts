/**
 * The price table's origin and age (flagged past 60 days), and the reconciliation card: the
 * ledger beside what AWS billed per day and model, fetched only when asked (each Cost Explorer
 * request is billed by AWS).
 */
import type { PriceTableDto, ReconcileResponse, StatusResponse } from "../server/protocol";
import { usdText } from "../server/shared/whatIfLabel";
import type { DataSource } from "./dataSource";
import { clear, h } from "./dom";

export function priceTableText(p: PriceTableDto): string {
  const from = p.source === "AWS Price List" ? `AWS Price List ${p.date}${p.region ? ` (${p.region})` : ""}` : `built-in table checked ${p.date}`;
  const kept = p.source === "AWS Price List" && p.builtInRows > 0 ? `, ${p.builtInRows} row(s) at the built-in figure` : "";
  const stale = p.stale ? ` — older than 60 days: run \`bedrock-budget prices update\`` : "";
  return `Prices: ${from}${kept}, ${p.ageDays} day(s) old${stale}`;
}

/** A line under the header; `stale` styles it as a warning. */
export function renderPriceTable(el: HTMLElement, p: PriceTableDto | undefined): void {
  el.hidden = !p;
  if (!p) return;
  el.textContent = priceTableText(p);
  el.classList.toggle("stale", p.stale);
  el.dataset.stale = String(p.stale);
}

const money = (exact: string, signed = false) => `${signed && !exact.startsWith("-") && /[1-9]/.test(exact) ? "+" : ""}${usdText(exact, 2)}`;
const pct = (p: number | null) => (p === null ? "n/a" : `${p > 0 ? "+" : ""}${p.toFixed(1)}%`);

export const SIMULATED_NO_BILL = "Simulated: these calls were answered by the built-in simulator and billed nothing, so there is no AWS bill to compare them with; Cost Explorer is not asked.";

export function reconcileCard(source: DataSource): HTMLElement {
  const month = h("input", { type: "month", id: "reconcile-month", value: new Date().toISOString().slice(0, 7), "aria-label": "Month" });
  const out = h("div", { class: "reconcile-out", "aria-live": "polite" });
  const load = async () => {
    clear(out);
    out.append(h("p", { class: "muted" }, "Reading the bill from Cost Explorer…"));
    try {
      // Simulate mode: nothing was billed, and asking Cost Explorer would send the placeholder
      // credentials to AWS and set the simulated ledger beside a real bill.
      if ((await source.get<StatusResponse>("status")).simulated === true) {
        clear(out);
        out.append(h("p", { class: "muted", id: "reconcile-simulated" }, SIMULATED_NO_BILL));
        return;
      }
      const r = await source.get<ReconcileResponse>("reconcile", { month: month.value });
      clear(out);
      const rows = r.lines.map((l) =>
        h("tr", {}, h("td", {}, l.date), h("td", {}, l.model), h("td", { class: "num" }, money(l.ledgerExact)), h("td", { class: "num" }, money(l.billExact)), h("td", { class: "num" }, money(l.driftExact, true)), h("td", { class: "num" }, pct(l.driftPercent))),
      );
      out.append(
        h("table", { class: "reconcile" },
          h("thead", {}, h("tr", {}, ...["Day (UTC)", "Model", "Ledger", "Bill", "Drift", "Drift %"].map((t) => h("th", {}, t)))),
          h("tbody", {}, ...rows),
          h("tfoot", {}, h("tr", {}, h("td", {}, "Total"), h("td", {}, r.month), h("td", { class: "num" }, money(r.total.ledgerExact)), h("td", { class: "num" }, money(r.total.billExact)), h("td", { class: "num" }, money(r.total.driftExact, true)), h("td", { class: "num" }, pct(r.total.driftPercent))))),
        h("p", { class: "muted" }, "Drift = bill − ledger: calls made outside the gateway show up here. The bill lags about a day."),
      );
    } catch (err) {
      clear(out);
      out.append(h("p", { class: "error" }, (err as Error).message));
    }
  };
  return h("section", { class: "card", id: "reconcile" },
    h("h2", {}, "Ledger vs AWS bill"),
    h("div", { class: "controls" }, month, h("button", { type: "button", id: "reconcile-load", onclick: () => void load() }, "Compare with the bill")),
    out);
}
