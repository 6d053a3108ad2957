/**
 * The local HTTP API's paths and the token's header and query names: plain constants, no imports,
 * so the dashboard page (webview/) can use them without bundling vscode-jsonrpc, which
 * server/protocol.ts needs for its LSP message types (and re-exports these from here).
 */

export const API_PREFIX = "/__bedrock-budget/v1";
export const API_PATHS = {
  health: `${API_PREFIX}/health`,
  status: `${API_PREFIX}/status`,
  calls: `${API_PREFIX}/calls`,
  events: `${API_PREFIX}/events`,
  /** Prometheus text format (needs the token, like calls: it shows model names and spend). */
  metrics: `${API_PREFIX}/metrics`,
} as const;

/**
 * The call-level routes (calls, events, metrics, export.csv, series, the dashboard page) need the user's
 * token: header `x-bedrock-budget-token` or query `token` (EventSource and links cannot set
 * headers). Without it: 403 with a message saying where the token is. health, status, prices and
 * the page's script and style stay open on loopback.
 */
export const TOKEN_HEADER = "x-bedrock-budget-token";
export const TOKEN_QUERY = "token";

/** The dashboard's routes, served by server/dashboard/routes.ts. */
export const DASHBOARD_PATHS = {
  /** The page itself (HTML, strict CSP with a nonce). */
  page: `${API_PREFIX}/dashboard`,
  script: `${API_PREFIX}/dashboard/dashboard.js`,
  style: `${API_PREFIX}/dashboard/dashboard.css`,
  /** `?window=day|week|month[&groupBy=model,tool,tag]` → DashboardSeriesResponse. */
  series: `${API_PREFIX}/series`,
  /** → PricesResponse. */
  prices: `${API_PREFIX}/prices`,
  /** `?month=YYYY-MM` → ReconcileResponse: the ledger beside the Cost Explorer bill (needs the token and AWS credentials). */
  reconcile: `${API_PREFIX}/reconcile`,
  /** `?from=ISO&to=ISO` → CSV of settled calls with `at` in [from, to), the columns of `bedrock-budget report`. */
  exportCsv: `${API_PREFIX}/export.csv`,
  /** `?month=YYYY-MM` (default: this month in the configured zone) → WhatIfResponse: that month replayed against the caps in force (needs the token). */
  whatIf: `${API_PREFIX}/whatif`,
} as const;
