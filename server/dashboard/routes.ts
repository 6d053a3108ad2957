/**
 * The dashboard's local API routes, next to the gateway's own (server/gateway/localApi.ts):
 * the page (strict CSP, per-response nonce), its bundled script and style, aggregated series,
 * the price rates for the cost calculator, a CSV export of a range, and the what-if of a month. GET only, loopback only
 * (the gateway checks the Host before anything reaches here). The page, the series (by tag, tool)
 * and the export show the user's calls: they need the token; the script, style and price table
 * are the same for everyone and stay open.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { localDateKey, windowBounds } from "../budget/windows";
import type { AwsCredentialIdentity } from "@smithy/types";
import type { Config } from "../config/schema";
import { authorized, forbidden, json, type AnyRequest, type AnyResponse, type Routes } from "../http";
import type { Ledger } from "../ledger/ledger";
import type { Logger } from "../log";
import type { PriceBook, PriceTable } from "../metering/prices";
import { csvHeader, csvRows, currentMonth, MONTH_PATTERN, parseRange, settledBetween } from "../ledger/report";
import { whatIfMonth } from "../policy/whatifRun";
import type { CallRecord } from "../ledger/types";
import { priceSource, priceTableDto, tableWithPriceFile, type PriceTableInfo } from "../metering/priceFile";
import { DASHBOARD_PATHS, type PriceDto, type PricesResponse, type ReconcileResponse, type DashboardSeriesLoading, type SeriesGroupBy, type SeriesWindow, type StatusResponse, type WhatIfResponse } from "../protocol";
import { MONTH_RE, reconcileDto, reconcileMonth } from "../billing/reconcileMonth";
import { ledgerDirOf } from "../config/load";
import { DashboardAggregate } from "./aggregate";
import { dashboardHtml, gatewayCsp, newNonce } from "../shared/dashboardPage";

const WINDOWS: SeriesWindow[] = ["day", "week", "month"];
const GROUPS: SeriesGroupBy[] = ["model", "tool", "tag"];
const DAY_MS = 86_400_000;
/** Largest export range: a year of calls. */
const MAX_EXPORT_MS = 366 * DAY_MS;

/** Where `npm run build` puts the page: next to the bundle (out/webview), or the repo's out/webview when running from source. */
export function webviewDir(): string | undefined {
  const candidates = [path.join(__dirname, "webview"), path.resolve(__dirname, "..", "..", "out", "webview")];
  return candidates.find((dir) => existsSync(path.join(dir, "dashboard.js")));
}

/** What the dashboard reads of the gateway's current context (the gateway passes it in; the dashboard does not import the gateway). */
export interface DashboardContext {
  config: Config;
  prices: PriceBook;
  credentials: () => Promise<AwsCredentialIdentity>;
  ledger: Ledger;
  log: Logger;
  timeZone: string;
  now: () => Date;
  /** Simulate mode: nothing is billed (the bill comparison is refused). */
  simulated?: boolean;
}

/** What the dashboard is given of the local API: the status and the price table in force (settled calls come from the ledger). */
export interface DashboardFeeds {
  status(): StatusResponse;
  priceTable(): { table: PriceTable; info: PriceTableInfo };
}

/** The dashboard's part of the ledger's checkpoint (Ledger.addCheckpointPart): the aggregate's sums. */
export const DASHBOARD_CHECKPOINT = "dashboard";

export class DashboardRoutes implements Routes {
  readonly name = "dashboard";
  /** Replaced once by the checkpoint's aggregate, when the build starts from one. */
  aggregate = new DashboardAggregate();
  /** Resolves when the aggregate holds the journal's history (calls settling meanwhile are queued, then folded in once). */
  readonly ready: Promise<void>;
  /** Milliseconds the start-up build took (for logs and tests). */
  buildMs = 0;
  /** Calls read from the journal by the start-up build so far (the rest came from the checkpoint). */
  readCalls = 0;
  /** False until the build is done: a series request meanwhile is answered "loading". */
  built = false;
  private startBuild: () => void = () => undefined;

  constructor(
    private readonly ctx: () => DashboardContext,
    private readonly status: DashboardFeeds["status"],
    private readonly priceTable: DashboardFeeds["priceTable"] = () => tableWithPriceFile(undefined),
  ) {
    const { ledger } = ctx();
    const restored = ledger.checkpointPart(DASHBOARD_CHECKPOINT);
    let queued: CallRecord[] | undefined = [];
    const queuedIds = new Set<string>();
    let unreadable = false;
    // Settled calls come from the ledger itself, in journal order, as its checkpoint needs (every
    // published call was settled there first). Registered now, before the gateway records any call.
    ledger.addCheckpointPart(DASHBOARD_CHECKPOINT, {
      settled: (record) => {
        if (!queued) return this.aggregate.add(record);
        queued.push(record);
        queuedIds.add(record.id);
      },
      // Until built (or when the journal could not be read whole), no snapshot: the next start reads the journal again.
      snapshot: () => {
        if (queued || unreadable) return null;
        const c = this.ctx();
        this.aggregate.prune(this.retainFrom(c.now(), c.timeZone)); // what any series request prunes first: bounds the snapshot too
        // As one JSON string: state.json is written indented, which would triple a month of slots.
        return this.aggregate.snapshot();
      },
    });
    // Built once the gateway listens: calls are admitted without it, and a series request meanwhile says "loading".
    this.ready = new Promise<void>((resolve) => (this.startBuild = resolve)).then(async () => {
      const started = performance.now();
      // Calls settled meanwhile may also be in the journal read: remember which (only those, not every id read).
      const inJournal = new Set<string>();
      const c = this.ctx();
      const since = this.retainFrom(c.now(), c.timeZone);
      const fromCheckpoint = typeof restored === "string" ? DashboardAggregate.restore(restored) : undefined;
      if (typeof restored === "string" && DashboardAggregate.isOlderVersion(restored)) {
        c.log.info("dashboard: the ledger's checkpoint holds an aggregate an earlier version wrote (its sums counted differently); building it from the journal");
      } else if (restored !== undefined && restored !== null && !fromCheckpoint) c.log.warn("dashboard: the ledger's checkpoint holds no usable aggregate; building it from the journal");
      try {
        // From the checkpoint: only the journal past it (what a full read would add to it).
        const records = fromCheckpoint ? ledger.settledSinceCheckpoint(since) : ledger.settledSince(since);
        if (fromCheckpoint) this.aggregate = fromCheckpoint;
        for await (const record of records) {
          // Written but not yet applied (its sync under way): `settled` above counts it once it is.
          if (ledger.isBeingJournaled(record.id)) continue;
          if (queuedIds.has(record.id)) inJournal.add(record.id);
          this.aggregate.add(record);
          this.readCalls++;
        }
      } catch (err) {
        unreadable = true; // what was read is shown, never kept in the checkpoint as if it were all
        this.ctx().log.error(`dashboard: reading the journal failed: ${(err as Error).message}`);
      }
      for (const record of queued!) if (!inJournal.has(record.id)) this.aggregate.add(record);
      queued = undefined;
      queuedIds.clear();
      this.built = true;
      this.buildMs = performance.now() - started;
      this.ctx().log.debug(`dashboard: ${this.aggregate.size} calls aggregated in ${this.buildMs.toFixed(0)} ms (${this.readCalls} read from the journal${fromCheckpoint ? " past the checkpoint" : ""})`);
    });
  }

  /** Starts building the aggregate from the journal (the gateway calls it once it listens). */
  afterListening(): void {
    this.startBuild();
  }

  static handles(rawPath: string): boolean {
    const p = rawPath.split("?")[0]!;
    return p === DASHBOARD_PATHS.page || p.startsWith(`${DASHBOARD_PATHS.page}/`) || p === DASHBOARD_PATHS.series || p === DASHBOARD_PATHS.prices || p === DASHBOARD_PATHS.exportCsv || p === DASHBOARD_PATHS.reconcile || p === DASHBOARD_PATHS.whatIf;
  }

  handles(rawPath: string): boolean {
    return DashboardRoutes.handles(rawPath);
  }

  async handle(req: AnyRequest, res: AnyResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET") return json(res, 405, { message: "the local API is read-only: use GET" });
    const open = url.pathname === DASHBOARD_PATHS.script || url.pathname === DASHBOARD_PATHS.style || url.pathname === DASHBOARD_PATHS.prices;
    if (!open && !authorized(req, url, this.ctx().ledger.secret)) return forbidden(res);
    switch (url.pathname) {
      case DASHBOARD_PATHS.page:
        return this.page(res);
      case DASHBOARD_PATHS.script:
        return this.asset(res, "dashboard.js", "text/javascript; charset=utf-8");
      case DASHBOARD_PATHS.style:
        return this.asset(res, "dashboard.css", "text/css; charset=utf-8");
      case DASHBOARD_PATHS.series:
        return this.series(url, res);
      case DASHBOARD_PATHS.prices:
        return json(res, 200, this.prices());
      case DASHBOARD_PATHS.exportCsv:
        return this.exportCsv(url, res);
      case DASHBOARD_PATHS.reconcile:
        return this.reconcile(url, res);
      case DASHBOARD_PATHS.whatIf:
        return this.whatIf(url, res);
      default:
        return json(res, 404, { message: `no such local API route: ${url.pathname}` });
    }
  }

  private page(res: AnyResponse): void {
    const nonce = newNonce();
    const csp = gatewayCsp(nonce);
    const html = Buffer.from(dashboardHtml({ nonce, csp, scriptUri: DASHBOARD_PATHS.script, styleUri: DASHBOARD_PATHS.style }));
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": String(html.byteLength),
      "content-security-policy": csp,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-store",
    });
    res.end(html);
  }

  private async asset(res: AnyResponse, name: string, type: string): Promise<void> {
    const dir = webviewDir();
    const body = dir ? await readFile(path.join(dir, name)).catch(() => undefined) : undefined;
    if (!body) return json(res, 404, { message: `${name} is not built: run npm run build` });
    res.writeHead(200, { "content-type": type, "content-length": String(body.byteLength), "x-content-type-options": "nosniff", "cache-control": "no-cache" });
    res.end(body);
  }

  private async series(url: URL, res: AnyResponse): Promise<void> {
    const window = (url.searchParams.get("window") ?? "day") as SeriesWindow;
    if (!WINDOWS.includes(window)) return json(res, 400, { message: `window must be one of ${WINDOWS.join(", ")}` });
    const groupText = url.searchParams.get("groupBy");
    const groupBy = groupText ? (groupText.split(",") as SeriesGroupBy[]) : undefined;
    if (groupBy?.some((g) => !GROUPS.includes(g))) return json(res, 400, { message: `groupBy must be a comma-separated list of ${GROUPS.join(", ")}` });
    const c = this.ctx();
    const now = c.now();
    if (!this.built) {
      // The aggregate is still being read from the journal (after a start): say so now rather than hold the request.
      const body: DashboardSeriesLoading = { loading: true, window, timeZone: c.timeZone, now: now.toISOString(), callsRead: this.readCalls, message: "the dashboard is reading this month's calls from the ledger" };
      return json(res, 200, body);
    }
    this.aggregate.prune(this.retainFrom(now, c.timeZone));
    return json(res, 200, this.aggregate.series({ window, ...(groupBy ? { groupBy } : {}), caps: this.status().caps, timeZone: c.timeZone, now }));
  }

  prices(): PricesResponse {
    const book = this.ctx().prices;
    const models: PriceDto[] = [];
    const dto = (modelId: string, displayName: string, provider: string, note?: string): PriceDto => {
      const r = book.rates(modelId);
      const per1M = (picos: bigint) => Number(picos) / 1e6;
      return { modelId, displayName, provider, inputPer1M: per1M(r.input), outputPer1M: per1M(r.output), cacheReadPer1M: per1M(r.cacheRead), ...(note ? { note } : {}), source: priceSource(r.source) };
    };
    const { table, info } = this.priceTable();
    for (const row of table.models) {
      if (row.regionalPremium) {
        models.push(dto(`global.${row.id}`, `${row.displayName} (global profile)`, row.provider));
        models.push(dto(row.id, `${row.displayName} (in-region / geographic)`, row.provider, "regional premium applied"));
      } else {
        models.push(dto(row.id, row.displayName, row.provider));
      }
    }
    return { models, table: priceTableDto(info, this.ctx().now()) };
  }

  /** The ledger beside the Cost Explorer bill for `?month=` (default: this UTC month), with the gateway's credentials. */
  private async reconcile(url: URL, res: AnyResponse): Promise<void> {
    const c = this.ctx();
    // Simulated: nothing was billed, and its placeholder credentials must never reach AWS.
    if (c.simulated) return json(res, 400, { message: "simulate mode: nothing was billed, so there is no bill to compare, and Cost Explorer is not asked" });
    const month = url.searchParams.get("month") ?? c.now().toISOString().slice(0, 7);
    if (!MONTH_RE.test(month)) return json(res, 400, { message: "month must be YYYY-MM" });
    try {
      const result = await reconcileMonth(month, { ledgerDir: ledgerDirOf(c.config) }, this.priceTable().table, c.prices, c.credentials, c.now());
      const body: ReconcileResponse = reconcileDto(result);
      return json(res, 200, body);
    } catch (err) {
      // No credentials, no Cost Explorer access, or no network: say so; the page shows it in place of the table.
      return json(res, 502, { message: `cannot read the bill from Cost Explorer: ${(err as Error).message}` });
    }
  }

  /** "Had these caps been in force": `?month=` (default: this month in the configured zone) replayed against the caps in force. */
  private async whatIf(url: URL, res: AnyResponse): Promise<void> {
    const c = this.ctx();
    const month = url.searchParams.get("month") ?? currentMonth(c.now(), c.timeZone);
    if (!MONTH_PATTERN.test(month)) return json(res, 400, { message: "month must be YYYY-MM" });
    const body: WhatIfResponse = await whatIfMonth(c.ledger.journal, c.config, month, c.timeZone, c.prices);
    return json(res, 200, body);
  }

  /**
   * The range's settled calls as CSV, byte for byte what `report --calls --format csv` prints for
   * it. Streamed a batch at a time, as the report prints: this process also admits every Bedrock
   * call, and a year of a busy ledger held whole (its calls, then one string) could take it out of
   * memory and hold calls up while it was built. Nothing is sent before the first batch is read:
   * a journal that cannot be read is a 500, not a cut file; an error later cuts the connection (the
   * gateway does so), so a download never ends looking complete.
   */
  private async exportCsv(url: URL, res: AnyResponse): Promise<void> {
    const c = this.ctx();
    const now = c.now();
    // As `report --from/--to` reads them: a date is a whole local day in the gateway's zone.
    const fromText = url.searchParams.get("from") ?? windowBounds("month", c.timeZone, now).start.toISOString();
    const range = parseRange(fromText, url.searchParams.get("to") ?? undefined, c.timeZone, now, "");
    if (typeof range === "string") return json(res, 400, { message: range });
    const { from, to } = range;
    if (to.getTime() - from.getTime() > MAX_EXPORT_MS) return json(res, 400, { message: "export at most a year at a time" });
    // Local dates, as the dashboard shows the range (east of UTC a UTC date is the day before); `to` is exclusive.
    const name = `bedrock-budget-${localDateKey(from, c.timeZone)}-to-${localDateKey(to.getTime() - 1, c.timeZone)}.csv`;
    let started = false;
    const head = () => {
      started = true;
      // No content-length: the size is known only once the last batch is read (chunked on HTTP/1.1).
      res.writeHead(200, { "content-type": "text/csv; charset=utf-8", "content-disposition": `attachment; filename="${name}"`, "cache-control": "no-store" });
    };
    // The client went away (download cancelled, page closed): stop reading the journal.
    let gone = false;
    const onClose = () => (gone = true);
    res.once("close", onClose);
    try {
      for await (const batch of settledBetween(c.ledger.journal, from, to)) {
        if (gone) return; // leaving the loop closes the journal file being read
        const text = started ? csvRows(batch) : csvHeader() + csvRows(batch);
        if (!started) head();
        if (!res.write(text)) await drained(res);
        // Let calls waiting to be admitted run between batches: batches cut from one file read arrive without leaving the microtask queue.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (gone) return;
      if (!started) {
        head();
        res.end(csvHeader());
      } else res.end();
    } finally {
      res.off("close", onClose);
    }
  }

  /** The oldest instant any shown window can reach back to (this week may start last month), less a day of margin. */
  private retainFrom(now: Date, timeZone: string): Date {
    const week = windowBounds("week", timeZone, now).start.getTime();
    const month = windowBounds("month", timeZone, now).start.getTime();
    return new Date(Math.min(week, month) - DAY_MS);
  }
}

/** Resolves once `res` can take more (its buffer drained), or it closed: a slow reader holds a batch, not the export. */
function drained(res: AnyResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed === true) return resolve(); // closed already: no event is coming (HTTP/2's response has no `destroyed`; its 'close' is awaited)
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Wires the dashboard to a running gateway's local API; its aggregate is fed by the gateway's ledger. */
export function attachDashboard(api: DashboardFeeds, ctx: () => DashboardContext): DashboardRoutes {
  return new DashboardRoutes(ctx, () => api.status(), () => api.priceTable());
}

