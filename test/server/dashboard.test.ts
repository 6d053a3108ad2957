/**
 * The dashboard in headless Chromium against a real gateway (fake Bedrock behind it) whose ledger
 * was seeded through the Ledger API: charts draw, cap bars and the call table match the ledger, a
 * live call appears without a reload, the CSV export matches, and the page renders (screenshots
 * in light, dark and forced-colours to test-results/dashboard/). Also the page in "VS Code mode":
 * a fake acquireVsCodeApi relaying through a Node-side host, with state restored after a reload.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import picomatch from "picomatch";
import { chromium, type Browser, type Page } from "playwright-core";
import { localDateKey, windowBounds } from "../../server/budget/windows";
import { CSV_COLUMNS } from "../../server/ledger/report";
import type { CallRecord } from "../../server/ledger/types";
import { picosToUsd, usdToPicos } from "../../server/metering/money";
import {
  API_PATHS,
  DASHBOARD_PATHS,
  TOKEN_HEADER,
  type CallsResponse,
  type DashboardSeriesLoading,
  type DashboardSeriesResponse,
  type HostToWebview,
  type StatusResponse,
  type WebviewToHost,
  type WhatIfResponse,
} from "../../server/protocol";
import { seedRecords, writeLedger } from "../support/dashboardSeed";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";
import { usd, usdPrecise } from "../../webview/format";

// The few browser globals the page-side callbacks use: this file type-checks without the DOM lib.
interface PageElement {
  getAttribute(name: string): string | null;
  textContent: string | null;
}
declare const document: { querySelectorAll(s: string): ArrayLike<PageElement> & Iterable<PageElement>; querySelector(s: string): PageElement | null; body: unknown };
declare const window: { postMessage(message: unknown, origin: string): void };
declare function getComputedStyle(el: unknown): { backgroundColor: string };
interface HTMLCanvasElement {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
interface HTMLSelectElement {
  value: string;
}

const CHROMIUM = "/usr/bin/chromium";
/** Not UTC: windows, buckets and labels follow the configured zone. */
const TZ = "America/New_York";
const REPO = path.resolve(__dirname, "..", "..");
const SHOTS = path.join(REPO, "test-results", "dashboard");
const LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

async function waitForChromium(ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!existsSync(CHROMIUM)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 2000));
  }
  return true;
}

/** Builds only the page when it is missing (npm test builds everything first). */
async function ensureBundle(): Promise<void> {
  if (existsSync(path.join(REPO, "out", "webview", "dashboard.js")) && existsSync(path.join(REPO, "out", "webview", "dashboard.css"))) return;
  const esbuild = await import("esbuild");
  await esbuild.build({ entryPoints: { dashboard: path.join(REPO, "webview", "main.ts") }, bundle: true, platform: "browser", target: "es2022", format: "iife", outdir: path.join(REPO, "out", "webview"), logLevel: "warning" });
}

/** The headers of a request that may read the user's calls (the token from the ledger's secret). */
const auth = (h: Harness) => ({ [TOKEN_HEADER]: h.gateway.api.token() });
/** The page's URL as VS Code or `bedrock-budget status` hands it out: with the token, as Jupyter does. */
const pageUrl = (h: Harness) => `${h.gateway.url}${DASHBOARD_PATHS.page}?token=${h.gateway.api.token()}`;

async function getJson<T>(h: Harness, p: string): Promise<T> {
  const res = await fetch(`${h.gateway.url}${p}`, { headers: auth(h) });
  assert.equal(res.status, 200, `${p} answered ${res.status}`);
  return (await res.json()) as T;
}

/** Pixels a canvas has drawn (alpha > 0). */
function drawnPixels(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (el) => {
    const c = el as HTMLCanvasElement;
    const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
    return n;
  });
}

/** Spend the ledger holds for a cap's current window (the charge time is the call's start, as the engine does). */
function expectedCapSpend(records: CallRecord[], window: "day" | "week" | "month", now: Date, model?: string): number {
  const { start, end } = windowBounds(window, TZ, now);
  const matches = model ? picomatch(model, { bash: true, nocase: true, dot: true }) : () => true;
  let sum = 0n;
  for (const r of records) {
    const t = Date.parse(r.startedAt);
    if (t >= start.getTime() && t < end.getTime() && (matches(r.modelId) || matches(r.baseModelId))) sum += BigInt(r.costPicos);
  }
  return picosToUsd(sum);
}

describe("dashboard: the page in headless Chromium against a seeded gateway", function () {
  this.timeout(120_000);
  let browser: Browser | undefined;
  let h: Harness;
  let ledgerDir: string;
  let records: CallRecord[];
  const now = new Date();
  const pageErrors: string[] = [];

  before(async function () {
    if (!(await waitForChromium(90_000))) {
      // CI installs Chromium before the first test: there a missing browser is a failure, not a skip.
      if (process.env.CI === "true") throw new Error(`${CHROMIUM} is not installed; .ci/run installs it (scripts/e2e-setup.sh) before the tests`);
      console.warn(`      ${CHROMIUM} is not installed: the browser tests are skipped`);
      return this.skip();
    }
    await ensureBundle();
    await mkdir(SHOTS, { recursive: true });
    ledgerDir = await mkdtemp(path.join(os.tmpdir(), "bb-dashboard-"));
    records = seedRecords({ now, timeZone: TZ, pastCalls: 420, todayCalls: 70 });
    await writeLedger(ledgerDir, records, TZ);
    // Caps sized from the seeded spend so the page shows each state: warning (≥ 80%), normal, and a model cap.
    const round = (n: number) => Math.max(0.5, Math.round(n * 100) / 100);
    const today = expectedCapSpend(records, "day", now);
    const month = expectedCapSpend(records, "month", now);
    const sonnetWeek = expectedCapSpend(records, "week", now, "*claude-sonnet*");
    h = await startHarness({
      ledgerDir,
      timeZone: TZ,
      caps: [
        { id: "daily", window: "day", limitUsd: round(today / 0.86) },
        { id: "monthly", window: "month", limitUsd: round(month / 0.42) },
        { id: "sonnet-week", window: "week", limitUsd: round(sonnetWeek / 0.63), model: "*claude-sonnet*" },
      ],
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  });

  after(async () => {
    await browser?.close();
    await h?.close();
    if (ledgerDir) await rm(ledgerDir, { recursive: true, force: true });
  });

  async function open(colorScheme: "light" | "dark", extra: { forcedColors?: "active" | "none" } = {}): Promise<Page> {
    const page = await browser!.newPage({ viewport: { width: 1360, height: 1000 }, deviceScaleFactor: 1, colorScheme, ...extra });
    page.on("console", (m) => {
      if (m.type() === "error" || /Content Security Policy|Refused to/.test(m.text())) pageErrors.push(m.text());
    });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(pageUrl(h));
    await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
    await page.waitForSelector("table.calls tbody tr");
    return page;
  }

  it("serves the page with a strict CSP, a nonce and no remote resources", async () => {
    const res = await fetch(pageUrl(h));
    assert.equal(res.status, 200);
    const csp = res.headers.get("content-security-policy")!;
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    assert.ok(nonce && nonce.length >= 16, csp);
    assert.equal(csp, `default-src 'none'; style-src 'self' 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src data:; connect-src 'self'`);
    const html = await res.text();
    assert.match(html, new RegExp(`<script nonce="${nonce}" src="${DASHBOARD_PATHS.script}"></script>`));
    assert.doesNotMatch(html, /https?:\/\//, "no remote resources");
    const again = await fetch(pageUrl(h));
    assert.notEqual(/'nonce-([^']+)'/.exec(again.headers.get("content-security-policy")!)?.[1], nonce, "a fresh nonce per response");
    assert.equal((await fetch(`${h.gateway.url}${DASHBOARD_PATHS.script}`)).headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal((await fetch(`${h.gateway.url}${DASHBOARD_PATHS.style}`)).status, 200);
    assert.equal((await fetch(`${h.gateway.url}${DASHBOARD_PATHS.page}/../../../package.json`, { headers: auth(h) })).status, 404);
  });

  it("draws the charts, and the cap bars, totals and call table match the ledger (light theme)", async () => {
    const page = await open("light");
    // Every chart canvas has drawn something.
    for (const sel of ["#chart-model", "#chart-tool", "#chart-tag", 'canvas.cap-chart[data-cap="daily"]', 'canvas.cap-chart[data-cap="monthly"]', 'canvas.cap-chart[data-cap="sonnet-week"]']) {
      const n = await drawnPixels(page, sel);
      assert.ok(n > 2000, `${sel} drew only ${n} pixels`);
    }
    // Cap bars: the figures equal the ledger's spend in each window.
    const status = await getJson<StatusResponse>(h, API_PATHS.status);
    const expected = { daily: expectedCapSpend(records, "day", now), monthly: expectedCapSpend(records, "month", now), "sonnet-week": expectedCapSpend(records, "week", now, "*claude-sonnet*") };
    for (const cap of status.caps) {
      const want = expected[cap.id as keyof typeof expected];
      assert.ok(Math.abs(cap.spentUsd - want) < 1e-9, `${cap.id}: engine ${cap.spentUsd} vs ledger ${want}`);
      const card = page.locator(`article.cap[data-cap="${cap.id}"]`);
      assert.equal(await card.locator(".cap-spent").textContent(), usd(want));
      assert.equal(await card.locator(".cap-limit").textContent(), usd(cap.limitUsd));
      assert.equal(await card.locator(".cap-reserved").textContent(), usd(0));
    }
    assert.equal(await page.locator('article.cap[data-cap="daily"]').getAttribute("data-level"), "warning", "86% of the daily cap is a warning");
    assert.equal(await page.locator('article.cap[data-cap="monthly"]').getAttribute("data-level"), "normal");
    // The cumulative series ends at the same spend.
    const series = await getJson<DashboardSeriesResponse>(h, `${DASHBOARD_PATHS.series}?window=day`);
    for (const c of series.caps) assert.ok(Math.abs(c.chartedUsd - expected[c.id as keyof typeof expected]) < 1e-9, c.id);
    // Totals for "today".
    const { start } = windowBounds("day", TZ, now);
    const todays = records.filter((r) => Date.parse(r.startedAt) >= start.getTime());
    assert.equal(await page.locator("#total-calls .tile-value").textContent(), String(todays.length));
    // Refused by a cap or by a usage plan (rate limit, quota): each is a call that did not run.
    const refusedToday = todays.filter((r) => r.outcome === "refused" || r.outcome === "throttled" || r.outcome === "quota-exceeded");
    assert.ok(todays.some((r) => r.outcome === "throttled"), "the seed has a throttled call today");
    assert.equal(await page.locator("#total-refused .tile-value").textContent(), String(refusedToday.length));
    // The call table: newest first, the gateway's /calls, row by row.
    const page1 = await getJson<CallsResponse>(h, `${API_PATHS.calls}?limit=50`);
    const ids = await page.locator("table.calls tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-id")));
    assert.deepEqual(ids, page1.calls.map((c) => c.id));
    assert.deepEqual(ids.slice(0, 5), [...records].reverse().slice(0, 5).map((r) => r.id), "newest first, as journaled");
    const first = records[records.length - 1]!;
    const cells = await page.locator("table.calls tbody tr").first().locator("td").allTextContents();
    assert.equal(cells[1], first.tool);
    assert.equal(cells[4], usdPrecise(Number(first.costPicos) / 1e12));
    assert.equal(cells[5], first.outcome === "ok" ? "ok" : cells[5]);
    await page.screenshot({ path: path.join(SHOTS, "dashboard-light.png"), fullPage: true });
    await page.screenshot({ path: path.join(SHOTS, "dashboard-light-top.png") });
    // Paging: the next page comes from the gateway via the cursor.
    await page.click(".more button");
    await page.waitForFunction(() => document.querySelectorAll("table.calls tbody tr").length === 100);
    assert.deepEqual(pageErrors, [], "no console errors or CSP violations");
    await page.close();
  });

  it("says \"loading\" while the gateway is still reading its ledger, with the cap bars and call log live, and fills in when it is done", async () => {
    const page = await browser!.newPage({ viewport: { width: 1360, height: 1000 }, deviceScaleFactor: 1 });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    // The series route as a gateway answers it right after a start, until `reading` is turned off.
    let reading = true;
    let asked = 0;
    await page.route(`**${DASHBOARD_PATHS.series}?**`, async (route) => {
      asked++;
      if (!reading) return route.continue();
      const window = new URL(route.request().url()).searchParams.get("window") ?? "day";
      const body: DashboardSeriesLoading = { loading: true, window: window as DashboardSeriesLoading["window"], timeZone: TZ, now: new Date().toISOString(), callsRead: 1234, message: "the dashboard is reading this month's calls from the ledger" };
      return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
    });
    await page.goto(pageUrl(h));
    await page.waitForSelector("body[data-series-loading=true] #loading", { timeout: 15_000 });
    assert.match((await page.locator("#loading").textContent()) ?? "", /reading this month's calls from its ledger \(1,234 so far\)/);
    // The rest of the page does not wait for it: cap bars from the status, the call log.
    await page.waitForSelector('article.cap[data-cap="daily"] .cap-spent');
    await page.waitForSelector("table.calls tbody tr");
    assert.equal(await page.locator("body").getAttribute("data-series-calls"), null, "no figures shown yet");
    const askedWhileReading = asked;
    assert.ok(askedWhileReading >= 1);
    reading = false;
    // Asked again by itself: the figures appear without a reload.
    const { start } = windowBounds("day", TZ, now);
    const todays = records.filter((r) => Date.parse(r.startedAt) >= start.getTime());
    await page.waitForSelector(`body[data-series-calls="${todays.length}"]`, { state: "attached", timeout: 15_000 });
    assert.equal(await page.locator("body").getAttribute("data-series-loading"), null);
    assert.equal(await page.locator("#total-calls .tile-value").textContent(), String(todays.length));
    assert.equal(await page.locator("#loading").count(), 0);
    assert.ok(asked > askedWhileReading);
    assert.deepEqual(pageErrors, [], "no console errors");
    await page.close();
  });

  it("filters the call log by outcome and by model", async () => {
    const page = await open("light");
    await page.selectOption("#filter-outcome", "refused");
    await page.waitForFunction(() => [...document.querySelectorAll("table.calls tbody tr")].every((r) => r.getAttribute("data-outcome") === "refused"));
    const refused = records.filter((r) => r.outcome === "refused").reverse().slice(0, 50).map((r) => r.id);
    await page.waitForFunction((n) => document.querySelectorAll("table.calls tbody tr").length === n, refused.length);
    assert.deepEqual(await page.locator("table.calls tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-id"))), refused);
    assert.match((await page.locator("table.calls tbody tr .badge").first().textContent())!, /^refused by daily$/);
    await page.selectOption("#filter-outcome", "");
    await page.selectOption("#filter-model", "amazon.nova-lite-v1:0");
    await page.waitForFunction(() => [...document.querySelectorAll("table.calls tbody tr td.model")].every((td) => td.textContent === "nova-lite"));
    await page.close();
  });

  it("offers the what-if on the caps in force: the card shows the month replayed, and its actual cost is the journal's", async () => {
    const r = await getJson<WhatIfResponse>(h, DASHBOARD_PATHS.whatIf);
    const monthOf = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit" });
    assert.equal(r.month, monthOf.format(now), "this month in the configured zone");
    const inMonth = records.filter((c) => monthOf.format(new Date(c.at)) === r.month);
    const forwarded = inMonth.filter((c) => c.outcome !== "refused" && c.outcome !== "throttled" && c.outcome !== "quota-exceeded");
    assert.equal(r.replayed, forwarded.length);
    assert.equal(r.notReplayed, inMonth.length - forwarded.length);
    assert.equal(usdToPicos(r.actualUsd), forwarded.reduce((sum, c) => sum + BigInt(c.costPicos), 0n), "actual cost = the journal's");
    assert.equal(usdToPicos(r.wouldCostUsd) + usdToPicos(r.stopped.savedUsd) + usdToPicos(r.changed.savedUsd), usdToPicos(r.actualUsd), "would cost + saved = actual, exactly");
    assert.deepEqual(r.policies.map((p) => p.name), ["rate limits and request quotas", "caps and their actions"]);

    const page = await open("light");
    await page.click("#whatif-load");
    await page.waitForSelector("#whatif-cost");
    const money = (exact: string) => `$${exact.split(".")[0]}.${(exact.split(".")[1] ?? "").padEnd(2, "0")}`;
    assert.equal(await page.textContent("#whatif-replayed"), String(r.replayed));
    assert.equal(await page.textContent("#whatif-actual"), money(r.actualUsd));
    assert.equal(await page.textContent("#whatif-cost"), money(r.wouldCostUsd));
    assert.match((await page.textContent("#whatif-stopped"))!, new RegExp(`^${r.stopped.calls} calls?, `));
    assert.match((await page.textContent("#whatif-changed"))!, new RegExp(`^${r.changed.calls} calls?, `));
    assert.match((await page.textContent("#whatif .muted"))!, /Approximate: a throttled call is counted, not stopped: the SDK retries it/);
    assert.equal(await page.inputValue("#whatif-month"), r.month);
    await page.close();
    assert.deepEqual(pageErrors, []);
  });

  it("opens the live stream again after the gateway refused it, and shows the calls that settled meanwhile", async () => {
    // An HTTP error ends a browser's EventSource for good (a gateway restarting answers 503 or
    // nothing); calls settled while it was closed were never pushed.
    let refusing = true;
    const page = await browser!.newPage({ viewport: { width: 1360, height: 1000 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.route(`**${API_PATHS.events}*`, (route) => (refusing ? route.fulfill({ status: 503, body: "restarting" }) : route.continue()));
    await page.goto(pageUrl(h));
    await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
    await page.waitForSelector("table.calls tbody tr");
    await page.waitForFunction(() => document.querySelector(".live")?.textContent === "reconnecting…", undefined, { timeout: 15_000 });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 5_000, output: 1_000 } }));
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("while closed", 2_000), contentType: "application/json" }));
    const [missed] = (await getJson<CallsResponse>(h, `${API_PATHS.calls}?limit=1`)).calls;
    records.push(missed!); // the later tests count it
    refusing = false;
    await page.waitForSelector(`table.calls tbody tr[data-id="${missed!.id}"]`, { timeout: 15_000 });
    assert.equal(await page.locator("table.calls tbody tr").first().getAttribute("data-id"), missed!.id, "on top");
    assert.equal(await page.locator(".live").textContent(), "live");
    const status = await getJson<StatusResponse>(h, API_PATHS.status);
    await page.waitForFunction((spent) => document.querySelector('article.cap[data-cap="daily"] .cap-spent')?.textContent === spent, usd(status.caps.find((c) => c.id === "daily")!.spentUsd), { timeout: 15_000 });
    await page.close();
    assert.deepEqual(pageErrors, []);
  });

  it("shows a settled call pushed, without a reload (long before the page's once-a-minute refresh)", async () => {
    const page = await open("light");
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const dailyBefore = await page.locator('article.cap[data-cap="daily"] .cap-spent').textContent();
    h.fake.behave(() => ({ kind: "ok", usage: { input: 40_000, output: 9_000 } }));
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("live", 10_000), contentType: "application/json" }));
    const [latest] = (await getJson<CallsResponse>(h, `${API_PATHS.calls}?limit=1`)).calls;
    records.push(latest!); // in the ledger now, whatever the page does: the later tests count it
    // Not a timing claim (a loaded machine may take a second or more): only a push brings it before the minute's refresh.
    await page.waitForSelector(`table.calls tbody tr[data-id="${latest!.id}"]`, { timeout: 15_000 });
    assert.equal(await page.locator("table.calls tbody tr").first().getAttribute("data-id"), latest!.id, "on top");
    await page.waitForFunction((before) => document.querySelector('article.cap[data-cap="daily"] .cap-spent')?.textContent !== before, dailyBefore, { timeout: 2000 });
    const status = await getJson<StatusResponse>(h, API_PATHS.status);
    assert.equal(await page.locator('article.cap[data-cap="daily"] .cap-spent').textContent(), usd(status.caps.find((c) => c.id === "daily")!.spentUsd));
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, "the page was not reloaded");
    await page.close();
  });

  it("renders in the dark theme and with forced colours (high contrast)", async () => {
    const dark = await open("dark");
    const bg = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, "rgb(30, 30, 30)", "the dark fallback palette applies");
    assert.ok((await drawnPixels(dark, "#chart-model")) > 2000);
    await dark.screenshot({ path: path.join(SHOTS, "dashboard-dark.png"), fullPage: true });
    await dark.screenshot({ path: path.join(SHOTS, "dashboard-dark-top.png") });
    await dark.close();
    const hc = await open("dark", { forcedColors: "active" });
    assert.ok((await drawnPixels(hc, "#chart-tool")) > 2000);
    await hc.screenshot({ path: path.join(SHOTS, "dashboard-forced-colors.png"), fullPage: true });
    await hc.close();
    assert.deepEqual(pageErrors, []);
  });

  it("exports the shown range as CSV with the report's columns", async () => {
    const series = await getJson<DashboardSeriesResponse>(h, `${DASHBOARD_PATHS.series}?window=month`);
    const res = await fetch(`${h.gateway.url}${DASHBOARD_PATHS.exportCsv}?from=${series.from}&to=${new Date(Date.now() + 1000).toISOString()}`, { headers: auth(h) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-disposition")!, /attachment; filename="bedrock-budget-.*\.csv"/);
    const lines = (await res.text()).trimEnd().split("\n");
    assert.equal(lines[0], CSV_COLUMNS.join(","));
    const inRange = records.filter((r) => r.at >= series.from);
    assert.equal(lines.length - 1, inRange.length);
    const nonsense = await fetch(`${h.gateway.url}${DASHBOARD_PATHS.exportCsv}?from=nonsense`, { headers: auth(h) });
    assert.equal(nonsense.status, 400);
    assert.match(((await nonsense.json()) as { message: string }).message, /^from "nonsense" is neither a date \(YYYY-MM-DD\) nor an ISO time/);
    // A date is a whole day in the gateway's zone (New York here), as `report --to` reads it, not a UTC midnight.
    const today = localDateKey(new Date(), TZ);
    const byDate = await fetch(`${h.gateway.url}${DASHBOARD_PATHS.exportCsv}?from=${series.from}&to=${today}`, { headers: auth(h) });
    assert.equal((await byDate.text()).trimEnd().split("\n").length - 1, inRange.length, "to=<today> includes today's calls");
  });

  it("works as a VS Code webview: requests and events through postMessage, state restored after a reload", async () => {
    const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    const posted: WebviewToHost[] = [];
    // The extension host's relay, in Node: what client/dashboardPanel.ts does, minus VS Code.
    await page.exposeBinding("__toHost", async (_src, message: WebviewToHost) => {
      posted.push(message);
      const reply = (m: HostToWebview) => page.evaluate((msg) => window.postMessage(msg, "*"), m as unknown as Record<string, unknown>).catch(() => undefined);
      if (message.type === "ready") await reply({ type: "init", gatewayUrl: h.gateway.url, focus: { model: "amazon.nova-lite-v1:0" } });
      if (message.type === "request") {
        const paths = { status: API_PATHS.status, calls: API_PATHS.calls, series: DASHBOARD_PATHS.series, prices: DASHBOARD_PATHS.prices, reconcile: DASHBOARD_PATHS.reconcile, whatif: DASHBOARD_PATHS.whatIf };
        const res = await fetch(`${h.gateway.url}${paths[message.route]}?${new URLSearchParams(message.query)}`, { headers: auth(h) });
        await reply({ type: "response", id: message.id, ok: true, body: await res.json() });
      }
    });
    // A string, not a function: tsx's name helpers would not exist in the page.
    await page.addInitScript(`
      window.acquireVsCodeApi = function () {
        return {
          postMessage: function (m) { window.__toHost(m); },
          getState: function () { return JSON.parse(sessionStorage.getItem("vscode-state") || "null") || undefined; },
          setState: function (s) { sessionStorage.setItem("vscode-state", JSON.stringify(s)); return s; },
        };
      };
    `);
    // Served from the gateway only to get a page with the same CSP; the data goes through the fake host.
    await page.goto(pageUrl(h));
    await page.waitForSelector("body[data-ready=true][data-host=vscode]");
    assert.equal(posted[0]?.type, "ready", "ready comes first");
    assert.ok(posted.some((m) => m.type === "request" && m.route === "series"));
    await page.waitForFunction(() => (document.querySelector("#filter-model") as unknown as HTMLSelectElement).value === "amazon.nova-lite-v1:0", undefined, { timeout: 5000 });
    await page.click('button[data-window="month"]');
    await page.selectOption("#filter-outcome", "ok");
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    assert.equal(await page.getAttribute('button[data-window="month"]', "aria-pressed"), "true", "range restored from getState");
    assert.equal(await page.inputValue("#filter-outcome"), "ok", "filter restored");
    await page.close();
  });
});

describe("local API: the call-level routes need the user's token (other local users reach loopback too)", function () {
  this.timeout(60_000);
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }] });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 100, output: 100 } }));
    await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("private prompt", 100) }));
  });
  after(() => h?.close());

  const callLevel = [
    API_PATHS.calls,
    API_PATHS.events,
    `${DASHBOARD_PATHS.exportCsv}?from=${new Date(Date.now() - 86_400_000).toISOString()}&to=${new Date(Date.now() + 3_600_000).toISOString()}`,
    DASHBOARD_PATHS.page,
    `${DASHBOARD_PATHS.series}?window=day&groupBy=tag`,
    DASHBOARD_PATHS.whatIf,
  ];

  it("refuses calls, events, export, the page and series without the token or with a wrong one, saying where the token is", async () => {
    for (const p of callLevel) {
      for (const headers of [{}, { [TOKEN_HEADER]: "guessed-token" }] as Record<string, string>[]) {
        const res = await fetch(`${h.gateway.url}${p}`, { headers });
        assert.equal(res.status, 403, `${p} with ${JSON.stringify(headers)} answered ${res.status}`);
        assert.match(((await res.json()) as { message: string }).message, /token.*bedrock-budget status.*gateway\.secret/s);
      }
      assert.equal((await fetch(`${h.gateway.url}${p}${p.includes("?") ? "&" : "?"}token=wrong`)).status, 403, `${p}?token=wrong`);
    }
  });

  it("answers them with the token (header, or query as EventSource and links send it), and keeps status, health and prices open", async () => {
    const token = h.gateway.api.token();
    for (const p of callLevel) {
      const controller = new AbortController();
      const byHeader = await fetch(`${h.gateway.url}${p}`, { headers: { [TOKEN_HEADER]: token }, signal: controller.signal });
      assert.equal(byHeader.status, 200, `${p} with the token header`);
      controller.abort();
      const controller2 = new AbortController();
      const byQuery = await fetch(`${h.gateway.url}${p}${p.includes("?") ? "&" : "?"}token=${token}`, { signal: controller2.signal });
      assert.equal(byQuery.status, 200, `${p} with ?token=`);
      controller2.abort();
    }
    for (const p of [API_PATHS.status, API_PATHS.health, DASHBOARD_PATHS.prices, DASHBOARD_PATHS.script]) {
      assert.equal((await fetch(`${h.gateway.url}${p}`)).status, 200, `${p} stays open`);
    }
  });
});
