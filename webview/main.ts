/**
 * The Bedrock Budget dashboard page. Runs the same in a VS Code webview (data relayed by the
 * extension host) and in a browser tab served by the gateway (fetch + EventSource).
 */
import "./dashboard.css";
import type { CallRecord, CapSeries, CapStatusDto, DashboardSeriesLoading, DashboardSeriesResponse, DashboardViewState, PricesResponse, SeriesWindow, StatusResponse } from "../server/protocol";
import { CallLog } from "./callLog";
import { calculatorView, DEFAULT_CALCULATOR, type CalculatorState } from "./calculator";
import { capChart, modelName, stackedChart, tagChart, type Chart } from "./charts";
import { createDataSource, type DataSource } from "./dataSource";
import { clear, h } from "./dom";
import { count, dateTime, localDate, relative, usd } from "./format";
import { onThemeChange, readTheme } from "./theme";
import { teamFreshness } from "../server/shared/statusFormat";
import { reconcileCard, renderPriceTable } from "./billView";
import { whatIfCard } from "./whatIfView";

const WINDOW_LABEL: Record<SeriesWindow, string> = { day: "Today", week: "This week", month: "This month" };
const WINDOW_WORD: Record<SeriesWindow, string> = { day: "daily", week: "weekly", month: "monthly" };
/** While the gateway is still reading the ledger after a start, the series is asked for again this often, */
const LOADING_RETRY_MS = 1000;
/** and at most this many times in a row (a quarter of an hour) before the page says so. */
const LOADING_TRIES = 900;

/** What stopped calls: refusals (a cap's, or the whole gateway's while blocked), cuts and the usage plan (rate limit, request quota). */
function refusedNote(o: DashboardSeriesResponse["totals"]["outcomes"]): string {
  const parts = [
    o.refused ? `${count(o.refused)} refused` : "",
    o.throttled ? `${count(o.throttled)} rate-limited` : "",
    o["quota-exceeded"] ? `${count(o["quota-exceeded"])} over quota` : "",
    o.cut ? `${count(o.cut)} cut mid-stream` : "",
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(" · ") : "by a cap or a usage plan";
}

class Dashboard {
  private state: DashboardViewState;
  private series: DashboardSeriesResponse | undefined;
  private status: StatusResponse | undefined;
  private charts: Chart[] = [];
  private capCharts: Chart[] = [];
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The wait before asking again while the series is loading: one at a time, whoever asks meanwhile. */
  private loadingRetry: Promise<void> | undefined;
  private loadingTries = 0;
  private readonly log: CallLog;
  private readonly el = {
    sub: h("span", { class: "sub" }),
    live: h("span", { class: "live", role: "status", title: "live updates" }, "connecting…"),
    windows: h("div", { class: "segmented", role: "group", "aria-label": "Range" }),
    caps: h("section", { class: "caps", "aria-label": "Caps" }),
    tiles: h("section", { class: "tiles", "aria-label": "Totals" }),
    byModel: h("canvas", { id: "chart-model", role: "img", "aria-label": "Spend by model" }),
    byTool: h("canvas", { id: "chart-tool", role: "img", "aria-label": "Spend by tool" }),
    byTag: h("canvas", { id: "chart-tag", role: "img", "aria-label": "Spend by tag" }),
    modelEmpty: h("p", { class: "muted chart-empty" }, "No spend in this range."),
    toolEmpty: h("p", { class: "muted chart-empty" }, "No spend in this range."),
    tagEmpty: h("p", { class: "muted chart-empty" }, "No spend in this range."),
    calc: h("div", {}),
    error: h("div", { class: "error-banner", role: "alert", hidden: true }),
    priceTable: h("p", { class: "price-table", id: "price-table", hidden: true }),
    simulated: h("div", { class: "simulated-banner", id: "simulated", role: "note", hidden: true },
      "Simulated: answers come from the built-in simulator (serve --simulate), not AWS. These figures are not real spend."),
  };

  constructor(private readonly source: DataSource) {
    const saved = source.loadState() ?? {};
    this.state = {
      window: saved.window ?? "day",
      filterModel: saved.filterModel ?? "",
      filterOutcome: saved.filterOutcome ?? "",
      calculator: { ...DEFAULT_CALCULATOR, ...(saved.calculator ?? {}) },
    };
    this.log = new CallLog(source, this.state.filterModel, this.state.filterOutcome, () => {
      this.state.filterModel = this.log.model;
      this.state.filterOutcome = this.log.outcome;
      this.save();
    });
  }

  async start(): Promise<void> {
    const app = document.getElementById("app")!;
    clear(app);
    document.body.dataset.host = this.source.kind;
    for (const w of ["day", "week", "month"] as const) {
      this.el.windows.append(h("button", { type: "button", "data-window": w, "aria-pressed": String(w === this.state.window), onclick: () => this.setWindow(w) }, WINDOW_LABEL[w]));
    }
    const chartCard = (title: string, id: string, canvas: HTMLCanvasElement, empty: HTMLElement, extra = "") =>
      h("section", { class: `card chart-card ${extra}`, id }, h("h2", {}, title), h("div", { class: "chart-box" }, canvas, empty));
    app.append(
      h("header", { class: "top" },
        h("div", { class: "title" }, h("h1", {}, "Bedrock Budget"), this.el.sub),
        h("div", { class: "controls" },
          this.el.windows,
          h("button", { type: "button", class: "secondary", id: "export", title: "Download the calls of the shown range as CSV", onclick: () => this.exportCsv() }, "Export CSV"),
          this.el.live)),
      this.el.simulated,
      this.el.error,
      this.el.priceTable,
      this.el.caps,
      this.el.tiles,
      h("div", { class: "grid2" },
        chartCard("Spend by model", "by-model", this.el.byModel, this.el.modelEmpty),
        chartCard("Spend by tool", "by-tool", this.el.byTool, this.el.toolEmpty)),
      h("div", { class: "grid2" },
        chartCard("Spend by tag", "by-tag", this.el.byTag, this.el.tagEmpty),
        h("section", { class: "card", id: "calculator" }, h("h2", {}, "Monthly cost calculator"), this.el.calc)),
      this.log.element,
      reconcileCard(this.source),
      whatIfCard(this.source),
    );
    app.removeAttribute("aria-busy");
    onThemeChange(() => this.redrawCharts());
    this.source.onFocus((model) => this.log.setFilter(model ?? "", this.log.outcome));
    this.source.subscribe(
      (e) => (e.event === "call" ? this.onCall(e.data) : this.onStatus(e.data)),
      (open) => {
        this.el.live.textContent = open ? "live" : "reconnecting…";
        this.el.live.classList.toggle("on", open);
        if (open) this.catchUp();
      },
    );
    await Promise.all([
      this.source.get<StatusResponse>("status").then((s) => this.onStatus(s)),
      this.refresh(),
      this.log.load(true),
      this.source.get<PricesResponse>("prices").then((p) => {
        this.el.calc.append(calculatorView(p.models, this.state.calculator, (c: CalculatorState) => {
          this.state.calculator = c;
          this.save();
        }));
      }),
    ]).catch((err) => this.showError(err));
    setInterval(() => void this.refresh().catch(() => undefined), 60_000); // moves "now" and the projection along
    document.body.dataset.ready = "true";
  }

  /** Nothing is pushed while the live stream is closed: what changed meanwhile is read once it opens. */
  private catchUp(): void {
    void Promise.all([
      this.source.get<StatusResponse>("status").then((s) => this.onStatus(s)),
      this.refresh(),
      this.log.catchUp(),
    ]).catch((err) => this.showError(err));
  }

  private save(): void {
    this.source.saveState(this.state);
  }

  private setWindow(w: SeriesWindow): void {
    this.state.window = w;
    this.save();
    for (const b of this.el.windows.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.window === w));
    void this.refresh().catch((err) => this.showError(err));
  }

  private showError(err: unknown): void {
    this.el.error.textContent = `Could not reach the Bedrock Budget gateway: ${(err as Error).message ?? err}`;
    this.el.error.hidden = false;
  }

  async refresh(): Promise<void> {
    const series = await this.source.get<DashboardSeriesResponse | DashboardSeriesLoading>("series", { window: this.state.window });
    if (series.window !== this.state.window) return;
    if ("loading" in series) return this.whileLoading(series);
    this.loadingTries = 0;
    delete document.body.dataset.seriesLoading;
    this.series = series;
    this.el.error.hidden = true;
    this.log.timeZone = series.timeZone;
    this.log.addModels((series.groups.model ?? []).map((g) => g.key));
    this.renderTiles(series);
    this.redrawCharts();
    document.body.dataset.seriesCalls = String(series.totals.calls);
  }

  /** The gateway is still reading its ledger (just started): says so, keeps the live parts going, and asks again. */
  private whileLoading(loading: DashboardSeriesLoading): Promise<void> {
    document.body.dataset.seriesLoading = "true";
    clear(this.el.tiles);
    this.el.tiles.append(
      h("div", { class: "tile", id: "loading", role: "status" },
        h("span", { class: "tile-label" }, "Loading"),
        h("span", { class: "tile-value" }, "…"),
        h("span", { class: "tile-note" }, `The gateway is reading this month's calls from its ledger (${count(loading.callsRead)} so far); the charts fill in when it is done.`)),
    );
    if (++this.loadingTries > LOADING_TRIES) return Promise.reject(new Error("the gateway is still reading its ledger; reload the page to try again"));
    this.loadingRetry ??= new Promise<void>((resolve) => setTimeout(resolve, LOADING_RETRY_MS)).then(() => {
      this.loadingRetry = undefined;
      return this.refresh();
    });
    return this.loadingRetry;
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh().catch((err) => this.showError(err)), 250);
  }

  private onCall(call: CallRecord): void {
    this.log.live(call);
    this.scheduleRefresh();
  }

  private onStatus(status: StatusResponse): void {
    this.status = status;
    this.el.sub.textContent = `${status.user} · ${status.timeZone} · ${status.endpoint}${status.simulated ? " · simulated" : ""}`;
    this.el.simulated.hidden = status.simulated !== true;
    renderPriceTable(this.el.priceTable, status.prices);
    this.renderCaps();
  }

  private renderTiles(s: DashboardSeriesResponse): void {
    const o = s.totals.outcomes;
    const problems = o["upstream-error"] + o["upstream-failed"] + o["client-aborted"] + o.interrupted;
    const tile = (label: string, value: string, id: string, note?: string) =>
      h("div", { class: "tile", id }, h("span", { class: "tile-label" }, label), h("span", { class: "tile-value" }, value), note ? h("span", { class: "tile-note" }, note) : null);
    clear(this.el.tiles);
    this.el.tiles.append(
      tile(`Spend · ${WINDOW_LABEL[s.window].toLowerCase()}`, usd(s.totals.costUsd), "total-cost", `${dateTime(s.from, s.timeZone)} – ${dateTime(s.to, s.timeZone)}`),
      tile("Calls", count(s.totals.calls), "total-calls", s.totals.calls > 0 ? `${usd(s.totals.costUsd / s.totals.calls)} average` : undefined),
      tile("Tokens", `${count(s.totals.inputTokens)} → ${count(s.totals.outputTokens)}`, "total-tokens", "input → output"),
      tile("Refused", count(o.refused + o.throttled + o["quota-exceeded"]), "total-refused", refusedNote(o)),
      tile("Errors", count(problems), "total-errors", "upstream, aborted, interrupted"),
    );
  }

  /** Cap cards: the bar from the live status, the chart from the series. */
  private renderCaps(): void {
    const caps = this.status?.caps ?? [];
    clear(this.el.caps);
    if (caps.length === 0) {
      this.el.caps.append(h("div", { class: "card no-caps" }, h("h2", {}, "No caps set"), h("p", { class: "muted" }, "Calls are metered but never refused. Add caps (day, week or month) to the gateway's configuration to see spend against them here.")));
      return;
    }
    const byId = new Map((this.series?.caps ?? []).map((c) => [c.id, c]));
    for (const cap of caps) this.el.caps.append(this.capCard(cap, byId.get(cap.id)));
    this.drawCapCharts();
  }

  private capCard(cap: CapStatusDto, series: CapSeries | undefined): HTMLElement {
    const used = cap.spentUsd + cap.reservedUsd;
    const pct = cap.limitUsd > 0 ? used / cap.limitUsd : 0;
    const level = pct >= 1 ? "error" : pct >= 0.8 ? "warning" : "normal";
    const spentW = Math.min(100, (cap.spentUsd / cap.limitUsd) * 100);
    const reservedW = Math.min(100 - spentW, (cap.reservedUsd / cap.limitUsd) * 100);
    const spent = h("div", { class: "bar-spent" });
    spent.style.width = `${spentW}%`;
    const reserved = h("div", { class: "bar-reserved" });
    reserved.style.width = `${reservedW}%`;
    const nowMs = Date.parse(this.series?.now ?? new Date().toISOString());
    const projection = series?.projection;
    let projText = "No spend yet at this window's rate.";
    if (projection && projection.ratePerHourUsd > 0) {
      projText = projection.reachesAt
        ? pct >= 1
          ? "The cap is reached: calls it covers are refused until the reset."
          : `At ${usd(projection.ratePerHourUsd)}/h the cap is reached ${dateTime(projection.reachesAt, this.series!.timeZone)} (${relative(Date.parse(projection.reachesAt), nowMs)}).`
        : `At ${usd(projection.ratePerHourUsd)}/h the cap holds until the reset (about ${usd(series!.projection.points[1]!.usd)} by then).`;
    } else if (pct >= 1) {
      projText = "The cap is reached: calls it covers are refused until the reset.";
    }
    const tz = this.series?.timeZone ?? this.status?.timeZone ?? "UTC";
    const fresh = teamFreshness(cap, new Date()); // the status's age, so now, not the series' time
    const canvas = h("canvas", { class: "cap-chart", "data-cap": cap.id, role: "img", "aria-label": `Cumulative spend against cap ${cap.id}` });
    return h("article", { class: `card cap ${level}`, "data-cap": cap.id, "data-level": level },
      h("div", { class: "cap-head" },
        h("h2", {}, cap.id),
        h("span", { class: "cap-scope" }, `${cap.scope} · ${WINDOW_WORD[cap.window]}${cap.model ? ` · ${cap.model}` : ""}${fresh ? ` · ${fresh}` : ""}`)),
      h("div", { class: "cap-figures" },
        h("span", { class: "cap-spent", "data-usd": cap.spentUsd }, usd(cap.spentUsd)),
        h("span", { class: "muted" }, " of "),
        h("span", { class: "cap-limit", "data-usd": cap.limitUsd }, usd(cap.limitUsd)),
        h("span", { class: "cap-pct" }, `${Math.round(pct * 100)}%`)),
      h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": cap.limitUsd, "aria-valuenow": used, "aria-label": `${cap.id}: ${usd(used)} of ${usd(cap.limitUsd)}` }, spent, reserved),
      h("div", { class: "cap-meta" },
        h("span", {}, "reserved ", h("b", { class: "cap-reserved", "data-usd": cap.reservedUsd }, usd(cap.reservedUsd))),
        h("span", { title: cap.resetsAt }, "resets ", h("b", { class: "cap-reset" }, `${dateTime(cap.resetsAt, tz)}`), ` (${relative(Date.parse(cap.resetsAt), nowMs)})`)),
      h("div", { class: "chart-box cap-box" }, canvas),
      h("p", { class: "projection muted" }, projText));
  }

  private drawCapCharts(): void {
    if (!this.series) return;
    const theme = readTheme();
    for (const c of this.capCharts) c.destroy();
    this.capCharts = [];
    for (const canvas of this.el.caps.querySelectorAll<HTMLCanvasElement>("canvas.cap-chart")) {
      const cap = this.series.caps.find((c) => c.id === canvas.dataset.cap);
      if (cap) this.capCharts.push(capChart(canvas, cap, theme, this.series.timeZone));
    }
  }

  private redrawCharts(): void {
    const s = this.series;
    if (!s) return;
    for (const c of this.charts) c.destroy();
    this.charts = [];
    const theme = readTheme();
    const show = (canvas: HTMLCanvasElement, empty: HTMLElement, has: boolean) => {
      canvas.hidden = !has;
      empty.hidden = has;
      return has;
    };
    const models = s.groups.model ?? [];
    const tools = s.groups.tool ?? [];
    const tags = s.groups.tag ?? [];
    if (show(this.el.byModel, this.el.modelEmpty, models.length > 0)) this.charts.push(stackedChart(this.el.byModel, s, models, theme, modelName, "model"));
    if (show(this.el.byTool, this.el.toolEmpty, tools.length > 0)) this.charts.push(stackedChart(this.el.byTool, s, tools, theme, (k) => k, "tool"));
    if (show(this.el.byTag, this.el.tagEmpty, tags.length > 0)) this.charts.push(tagChart(this.el.byTag, tags, theme));
    this.renderCaps();
  }

  private exportCsv(): void {
    const s = this.series;
    if (!s) return;
    const to = new Date(Math.min(Date.parse(s.to), Date.now() + 60_000)).toISOString();
    this.source.exportCsv(s.from, to, `bedrock-budget-${s.window}-${localDate(s.from, s.timeZone)}.csv`);
  }
}

const dashboard = new Dashboard(createDataSource());
void dashboard.start();
