/** The call log: newest first, filterable by model and outcome, paged from the gateway's /calls. */
import type { CallRecord, CallsResponse, Outcome } from "../server/protocol";
import type { DataSource } from "./dataSource";
import { clear, h } from "./dom";
import { callUnderModel } from "../server/shared/guardrailModel";
import { callTime, count, modelLabel, usdPrecise } from "./format";

export const OUTCOMES: Outcome[] = ["ok", "refused", "cut", "upstream-error", "upstream-failed", "client-aborted", "interrupted", "throttled", "quota-exceeded"];
const PAGE = 50;

export function outcomeText(c: CallRecord): string {
  switch (c.outcome) {
    case "ok": return "ok";
    case "refused": return c.refusedBy ? `refused by ${c.refusedBy}` : "refused";
    case "cut": return "cut mid-stream";
    case "upstream-error": return `upstream error${c.status ? ` ${c.status}` : ""}`;
    case "upstream-failed": return "upstream failed";
    case "client-aborted": return "client aborted";
    case "interrupted": return "interrupted";
    case "throttled": return "throttled (rate limit)";
    case "quota-exceeded": return "over its request quota";
  }
}

const outcomeClass = (o: Outcome) => (o === "ok" ? "ok" : o === "refused" || o === "cut" || o === "throttled" || o === "quota-exceeded" ? "warn" : "err");

export class CallLog {
  readonly element: HTMLElement;
  private readonly body = h("tbody");
  private readonly more = h("button", { class: "secondary", type: "button" }, "Load older calls");
  private readonly empty = h("p", { class: "muted empty" }, "No calls yet.");
  private readonly modelSelect = h("select", { "aria-label": "Filter by model", id: "filter-model" });
  private readonly outcomeSelect = h("select", { "aria-label": "Filter by outcome", id: "filter-outcome" });
  private next: string | undefined;
  private generation = 0;
  private readonly ids = new Set<string>();
  private readonly knownModels = new Set<string>();
  timeZone = "UTC";

  constructor(private readonly source: DataSource, public model: string, public outcome: string, private readonly onFilter: () => void) {
    this.outcomeSelect.append(h("option", { value: "" }, "All outcomes"), ...OUTCOMES.map((o) => h("option", { value: o }, o)));
    this.outcomeSelect.value = outcome;
    this.modelSelect.addEventListener("change", () => this.setFilter(this.modelSelect.value, this.outcome));
    this.outcomeSelect.addEventListener("change", () => this.setFilter(this.model, this.outcomeSelect.value));
    this.more.addEventListener("click", () => void this.load(false));
    this.addModels(model ? [model] : []);
    this.element = h("section", { class: "card", id: "calls" },
      h("div", { class: "card-head" },
        h("h2", {}, "Calls"),
        h("div", { class: "filters" }, this.modelSelect, this.outcomeSelect)),
      h("div", { class: "table-wrap" },
        h("table", { class: "calls" },
          h("thead", {}, h("tr", {}, ...["Time", "Tool", "Model", "Tokens in → out", "Cost", "Outcome"].map((t, i) => h("th", { class: i >= 3 && i <= 4 ? "num" : undefined, scope: "col" }, t)))),
          this.body)),
      this.empty,
      h("div", { class: "more" }, this.more));
  }

  setFilter(model: string, outcome: string): void {
    this.model = model;
    this.outcome = outcome;
    this.addModels(model ? [model] : []);
    this.modelSelect.value = model;
    this.outcomeSelect.value = outcome;
    this.onFilter();
    void this.load(true);
  }

  /** Model ids offered in the filter (from the series and the calls seen). */
  addModels(ids: string[]): void {
    let changed = false;
    for (const id of ids) if (id && !id.startsWith("(") && !this.knownModels.has(id)) (this.knownModels.add(id), (changed = true));
    if (!changed && this.modelSelect.options.length > 0) return;
    clear(this.modelSelect);
    this.modelSelect.append(h("option", { value: "" }, "All models"), ...[...this.knownModels].sort().map((id) => h("option", { value: id }, modelLabel(id))));
    this.modelSelect.value = this.model;
  }

  async load(reset: boolean): Promise<void> {
    const generation = reset ? ++this.generation : this.generation;
    const page = await this.source.get<CallsResponse>("calls", this.pageQuery(reset ? undefined : this.next));
    if (generation !== this.generation) return; // filters changed meanwhile
    if (reset) {
      clear(this.body);
      this.ids.clear();
    }
    for (const c of page.calls) this.body.append(this.row(c, false));
    this.addModels(page.calls.map((c) => c.baseModelId));
    this.next = page.next;
    this.refreshChrome();
  }

  /**
   * The live stream (re)opened: calls that settled while it was closed were never pushed. The
   * newest page brings them in on top; when none of it is shown yet, more may be missing than a
   * page holds, so the log starts over rather than show a gap.
   */
  async catchUp(): Promise<void> {
    const generation = this.generation;
    const page = await this.source.get<CallsResponse>("calls", this.pageQuery(undefined));
    if (generation !== this.generation) return; // a reload started meanwhile: it shows them
    if (page.calls.length > 0 && !page.calls.some((c) => this.ids.has(c.id))) return this.load(true);
    // Newest first: each missing call goes right below the newer one before it in the page, or on top.
    let above: Element | null = null;
    for (const c of page.calls) {
      let row = this.ids.has(c.id) ? this.body.querySelector(`tr[data-id="${CSS.escape(c.id)}"]`) : null;
      if (!row) {
        row = this.row(c, true);
        if (above) above.after(row);
        else this.body.prepend(row);
      }
      above = row;
    }
    this.addModels(page.calls.map((c) => c.baseModelId));
    this.refreshChrome();
  }

  /** One page of calls under the filters, the newest or those before `before`. */
  private pageQuery(before: string | undefined): Record<string, string> {
    const query: Record<string, string> = { limit: String(PAGE) };
    if (this.model) query.model = this.model;
    if (this.outcome) query.outcome = this.outcome;
    if (before) query.before = before;
    return query;
  }

  /** A call settled just now: on top, if it passes the filters. */
  live(c: CallRecord): void {
    this.addModels([c.baseModelId]);
    if (this.ids.has(c.id)) return;
    if (this.model && !callUnderModel(c, this.model)) return;
    if (this.outcome && c.outcome !== this.outcome) return;
    this.body.prepend(this.row(c, true));
    this.refreshChrome();
  }

  private refreshChrome(): void {
    this.more.hidden = !this.next;
    this.empty.hidden = this.body.childElementCount > 0;
  }

  private row(c: CallRecord, fresh: boolean): HTMLTableRowElement {
    this.ids.add(c.id);
    const u = c.usage;
    const input = u.inputTokens + u.cacheReadInputTokens + u.cacheWrite5mInputTokens + u.cacheWrite1hInputTokens;
    const cost = Number(c.costPicos) / 1e12;
    const title = [c.modelId, c.operation, c.message, Object.entries(c.tags).map(([k, v]) => `${k}=${v}`).join(" ")].filter(Boolean).join(" · ");
    return h("tr", { class: fresh ? "fresh" : undefined, "data-id": c.id, "data-outcome": c.outcome },
      h("td", { class: "time", title: c.at }, callTime(c.at, this.timeZone)),
      h("td", {}, c.tool),
      h("td", { class: "model", title }, modelLabel(c.modelId)),
      h("td", { class: "num" }, `${count(input)} → ${count(u.outputTokens)}${c.usageEstimated ? " *" : ""}`),
      h("td", { class: "num cost" }, usdPrecise(cost)),
      h("td", {}, h("span", { class: `badge ${outcomeClass(c.outcome)}`, title: c.message ?? "" }, outcomeText(c))));
  }
}
