/** Monthly cost calculator over the gateway's price table (GET /prices): no prices in the page. */
import type { DashboardViewState, PriceDto } from "../server/protocol";
import { h } from "./dom";
import { usd, usdPrecise } from "./format";

export type CalculatorState = DashboardViewState["calculator"];
export const DAYS_PER_MONTH = 30;

export const DEFAULT_CALCULATOR: CalculatorState = {
  users: 10,
  conversationsPerDay: 20,
  tokensPerConversation: 4000,
  inputShare: 75,
  modelId: "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
};

export interface Estimate {
  perConversation: number;
  perUserPerMonth: number;
  perMonth: number;
}

/** Pure: USD for the given assumptions and rates (USD per 1M tokens). */
export function estimate(s: CalculatorState, price: Pick<PriceDto, "inputPer1M" | "outputPer1M">): Estimate {
  const share = Math.min(Math.max(s.inputShare, 0), 100) / 100;
  const perConversation = (s.tokensPerConversation * (share * price.inputPer1M + (1 - share) * price.outputPer1M)) / 1e6;
  const perUserPerMonth = perConversation * s.conversationsPerDay * DAYS_PER_MONTH;
  return { perConversation, perUserPerMonth, perMonth: perUserPerMonth * s.users };
}

export function calculatorView(prices: PriceDto[], initial: CalculatorState, onChange: (s: CalculatorState) => void): HTMLElement {
  const state: CalculatorState = { ...initial };
  if (!prices.some((p) => p.modelId === state.modelId) && prices[0]) state.modelId = prices[0].modelId;
  const out = { conv: h("output"), user: h("output"), month: h("output"), rates: h("p", { class: "muted small" }) };
  const num = (key: "users" | "conversationsPerDay" | "tokensPerConversation", label: string, step: number) =>
    h("label", { class: "field" }, h("span", {}, label),
      h("input", { type: "number", min: 0, step, value: state[key], "data-calc": key, oninput: (e: Event) => {
        const v = Number((e.target as HTMLInputElement).value);
        if (Number.isFinite(v) && v >= 0) {
          state[key] = v;
          update();
        }
      } }));
  const shareValue = h("span", { class: "share-value" });
  const share = h("label", { class: "field" }, h("span", {}, "Input / output split"),
    h("div", { class: "range-row" },
      h("input", { type: "range", min: 0, max: 100, step: 5, value: state.inputShare, "data-calc": "inputShare", "aria-label": "input share in percent", oninput: (e: Event) => {
        state.inputShare = Number((e.target as HTMLInputElement).value);
        update();
      } }), shareValue));
  const select = h("select", { "data-calc": "modelId", onchange: (e: Event) => {
    state.modelId = (e.target as HTMLSelectElement).value;
    update();
  } });
  const byProvider = new Map<string, PriceDto[]>();
  for (const p of prices) byProvider.set(p.provider, [...(byProvider.get(p.provider) ?? []), p]);
  for (const [provider, rows] of byProvider) {
    const group = h("optgroup", { label: provider });
    for (const p of rows) group.append(h("option", { value: p.modelId, selected: p.modelId === state.modelId }, p.displayName));
    select.append(group);
  }
  function update(): void {
    const price = prices.find((p) => p.modelId === state.modelId);
    shareValue.textContent = `${state.inputShare}% in · ${100 - state.inputShare}% out`;
    if (!price) return;
    const e = estimate(state, price);
    out.conv.textContent = usdPrecise(e.perConversation);
    out.user.textContent = usd(e.perUserPerMonth);
    out.month.textContent = usd(e.perMonth);
    out.rates.textContent = `${price.displayName}: $${price.inputPer1M} input, $${price.outputPer1M} output per 1M tokens (the gateway's price table${price.note ? `, ${price.note}` : ""}); ${DAYS_PER_MONTH} days a month.`;
    onChange({ ...state });
  }
  const view = h("div", { class: "calculator" },
    h("div", { class: "calc-inputs" },
      h("label", { class: "field wide" }, h("span", {}, "Model"), select),
      num("users", "Users", 1),
      num("conversationsPerDay", "Conversations / user / day", 1),
      num("tokensPerConversation", "Tokens / conversation", 100),
      share),
    h("div", { class: "calc-results" },
      h("div", { class: "result" }, h("span", { class: "muted" }, "per conversation"), out.conv),
      h("div", { class: "result" }, h("span", { class: "muted" }, "per user / month"), out.user),
      h("div", { class: "result big" }, h("span", { class: "muted" }, "per month"), out.month)),
    out.rates);
  update();
  return view;
}
