/**
 * The contract between the background process and everything that shows its figures: the local
 * HTTP API (CLI, dashboard, other windows), the custom LSP messages, and the webview's messages.
 * It owns every type it names and imports only the JSON-RPC message types; the routes' paths and
 * the token's names live in shared/apiPaths.ts (re-exported here), which the dashboard page imports
 * without pulling in vscode-jsonrpc.
 */
import { NotificationType, RequestType0 } from "vscode-jsonrpc";

// The journal's settled call: the editor, the dashboard and the local API receive it as it is.
export type MeteredOperation = "InvokeModel" | "InvokeModelWithResponseStream" | "Converse" | "ConverseStream";
export type Operation = MeteredOperation | "CountTokens" | "ApplyGuardrail";

/** Token counts as Bedrock reports them: input excludes cache reads and writes. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheWrite5mInputTokens: number;
  cacheWrite1hInputTokens: number;
}

export type Outcome =
  | "ok" // settled at the usage Bedrock reported
  | "refused" // a cap refused it; never forwarded
  | "upstream-error" // Bedrock answered with an error; nothing charged
  | "cut" // a stream stopped by the gateway at a cap; charged what was generated
  | "client-aborted" // the caller went away mid-call; charged what is known, else the worst case
  | "upstream-failed" // connection to Bedrock dropped mid-call, or its answer could not be read; charged conservatively
  | "interrupted" // unsettled after a crash, or stopped by a shutdown past its deadline; charged the worst case
  | "throttled" // over the caller's rate limit (HTTP 429); never forwarded, costs nothing
  | "quota-exceeded"; // over the caller's request quota (HTTP 400); never forwarded, costs nothing

/** The settled call. Written before the caller sees the end of its response. */
export interface CallRecord {
  type: "settle";
  id: string;
  at: string; // ISO time of settlement
  startedAt: string;
  user: string;
  tool: string;
  operation: Operation;
  modelId: string; // as the caller named it
  baseModelId: string;
  usage: TokenUsage;
  /** True when usage was not reported by Bedrock and was estimated (cut, aborted, interrupted). */
  usageEstimated: boolean;
  costPicos: string;
  worstCasePicos: string;
  outcome: Outcome;
  status: number; // HTTP status the caller got
  refusedBy?: string; // cap id
  requestId?: string;
  latencyMs: number;
  tags: Record<string, string>;
  /** Who made the call: the SigV4 access key id, or apikey:<sha256 prefix> for a Bedrock API key. */
  caller?: string;
  /** The AWS profile (a key of `callers`) whose credentials verified the call, when it was not the gateway's own. */
  callerProfile?: string;
  serviceTier?: string;
  message?: string; // short, secret-free description of an error
  /** The model that answered, when a cap's `downgrade` action sent the call to another model than `modelId`. */
  answeredBy?: string;
  /** What a cap's action did to this call (warn: let through past the limit; downgrade; clamp). */
  actions?: CapActionTaken[];
  /** The part of costPicos and worstCasePicos that is a guardrail attached to the call (priced when guardrailPricing is set). */
  guardrail?: GuardrailPart;
}

/** A priced guardrail attached to a model call, as its record keeps it. Money as pico-dollar decimal strings. */
export interface GuardrailPart {
  id: string;
  costPicos: string;
  worstCasePicos: string;
  /** Policy units charged: text units times each policy that evaluated them. */
  units: number;
  /** True when Bedrock reported no guardrail usage (no trace) and the units were estimated from the text, or taken at the worst case. */
  unitsEstimated: boolean;
}

/** One cap action applied to a call: the cap, the action, and what it did (`maxTokens=4096->812`, `a -> b`). */
export interface CapActionTaken {
  capId: string;
  action: "warn" | "downgrade" | "clamp";
  detail: string;
}

export { API_PATHS, API_PREFIX, DASHBOARD_PATHS, TOKEN_HEADER, TOKEN_QUERY } from "./shared/apiPaths";

/**
 * Identifies a compatible gateway already serving a port (so another window can reuse it). Any
 * process can claim this; `GET health?challenge=<16–128 base64url chars>` makes the gateway prove
 * it holds this user's secret: `proof` is base64url HMAC-SHA256(secret, "bedrock-budget health v1\n"
 * + port + "\n" + challenge) (server/ledger/secret.ts). A follower trusts only a correct proof.
 */
export interface HealthResponse {
  product: "bedrock-budget";
  apiVersion: 1;
  version: string;
  pid: number;
  startedAt: string;
  proof?: string;
}

/** Journal lines found invalid when the gateway opened its ledger, moved aside (never deleted). */
export interface JournalHealthDto {
  /** Lines in the quarantine files (this start's and earlier ones'). */
  quarantinedLines: number;
  /** Of those, lines whose amount could not be read: spend may be higher than shown. */
  unknownAmountLines: number;
  quarantineFiles: string[];
}

export interface CapStatusDto {
  id: string;
  scope: "personal" | "team";
  window: "day" | "week" | "month";
  model?: string;
  /** The callers the cap applies to (access key ids, profiles, API-key ids, users); every caller when absent. */
  callers?: string[];
  /** Tags a call must carry for the cap to apply; every call when absent. */
  tags?: Record<string, string>;
  /** What the cap does at its limit when not `block` (absent: block): `warn` lets calls through and counts them. */
  action?: "warn" | "downgrade" | "clamp";
  limitUsd: number;
  spentUsd: number;
  reservedUsd: number;
  /** Exact figures as decimal strings of USD (the numbers above are for display; money is computed from these). */
  limitExact: string;
  spentExact: string;
  reservedExact: string;
  windowStart: string;
  resetsAt: string;
  /**
   * Team caps counted in a shared team ledger: where the figures come from and how fresh they are
   * ("team: $312 / $500 this month, as of 12 s ago"). Absent for personal caps, and for team caps
   * when no teamLedger is set (then only this machine's spend counts).
   */
  team?: { source: "folder" | "redis"; asOf: string; stale: boolean };
}

export type BlockedBy = "settings" | "team" | "ledger";

/** Why the gateway refuses every Bedrock call, and from what: StatusResponse's `blocked` and `blockedBy`. */
export interface BlockedCause {
  reason: string;
  by: BlockedBy;
}

export interface StatusResponse {
  user: string;
  endpoint: string;
  timeZone: string;
  caps: CapStatusDto[];
  /** `costExact`: the exact figure as a decimal string of USD. */
  today: { calls: number; costUsd: number; costExact: string };
  /** Today's settled calls per base model id (code lenses show them). */
  todayByModel: Record<string, { calls: number; costUsd: number; costExact: string }>;
  inFlight: number;
  /** Why the gateway refuses every Bedrock call right now; absent while it admits calls. */
  blocked?: string;
  /**
   * What `blocked` comes from: a setting that decides money is invalid, team caps the gateway cannot
   * know (team.json or the team store), or a ledger it could not count at start (a restart counts it
   * again). Absent with `blocked` from gateways older than this field.
   */
  blockedBy?: BlockedBy;
  /** `serve --simulate`: answers come from the built-in simulator, not AWS, and spend is recorded in the simulated ledger. */
  simulated?: boolean;
  /** Absent from gateways older than the quarantine (issue #9). */
  journal?: JournalHealthDto;
  /** The price table in force: where it comes from and how old it is (absent from older gateways). */
  prices?: PriceTableDto;
}

/** The price table in force (status, dashboard): a table older than 60 days is stale. */
export interface PriceTableDto {
  /** "AWS Price List" when `bedrock-budget prices update` wrote a price file, else "built-in". */
  source: "AWS Price List" | "built-in";
  /** YYYY-MM-DD the figures were fetched (price file) or checked (built-in, the oldest row). */
  date: string;
  region?: string;
  ageDays: number;
  stale: boolean;
  /** Rows priced from the price file, and rows at the built-in figure. */
  fetchedRows: number;
  builtInRows: number;
}

export interface CallsResponse {
  calls: CallRecord[];
  /** Cursor for the next (older) page, when there is one. */
  next?: string;
}

export interface CallsQuery {
  limit?: number;
  before?: string;
  model?: string;
  outcome?: Outcome;
}

/**
 * Custom LSP messages between the background process and the extension (or any LSP client that
 * wants them). Each is a method name, its parameter type, and a typed `type` constant both sides
 * use, so a changed message breaks the build on both ends instead of being cast.
 */
export namespace GatewayStateNotification {
  export const method = "bedrockBudget/gatewayState";
  export const type = new NotificationType<Params>(method);
  export type Params =
    /** `endpoint`: where the gateway will serve (`http://127.0.0.1:<configured port>`), when the port is fixed. */
    | { state: "starting"; endpoint?: string }
    /**
     * `role`: this process serves the port, or follows another window's gateway (verified: it
     * proved it holds this user's secret). `token`: for the call-level local API routes (the
     * dashboard panel relays with it); sent only over the editor's private channel.
     */
    | { state: "ready"; url: string; role: "leader" | "follower"; token?: string }
    /** `strangerOnPort`: a process that is not this user's verified gateway holds the port; nothing may be sent to it. */
    | { state: "error"; message: string; endpoint?: string; strangerOnPort?: true };
}

export namespace StatusNotification {
  export const method = "bedrockBudget/status";
  export type Params = StatusResponse;
  export const type = new NotificationType<Params>(method);
}

export namespace CallSettledNotification {
  export const method = "bedrockBudget/callSettled";
  export type Params = CallRecord;
  export const type = new NotificationType<Params>(method);
}

/**
 * Settings that failed validation (each error names its setting), or `[]` once they are valid
 * again. `blocked`: one of them decides money, so the gateway refuses Bedrock calls until it is
 * fixed; otherwise the bad values are ignored (their default or last good value applies).
 */
export namespace ConfigErrorNotification {
  export const method = "bedrockBudget/configError";
  export interface Params {
    errors: string[];
    /** A bad value decides money: the gateway this window runs refuses Bedrock calls until it is fixed. */
    blocked?: boolean;
    /** This window follows another window's gateway, which runs on that window's settings. */
    anotherWindowServes?: boolean;
  }
  export const type = new NotificationType<Params>(method);
}

/** Client → server: restart the gateway (stop, reopen the ledger, listen again). */
export namespace RestartGatewayRequest {
  export const method = "bedrockBudget/restartGateway";
  export type Result = { url: string } | { error: string };
  export const type = new RequestType0<Result, void>(method);
}

/** Server-sent events on API_PATHS.events: `event: call` carries a CallRecord, `event: status` a StatusResponse. */
export type GatewayEvent = { event: "call"; data: CallRecord } | { event: "status"; data: StatusResponse };

// ---------------------------------------------------------------------------------------------
// Dashboard (issue: "Show Dashboard"). Added as a block so the types above stay as they were.
// Routes served by server/dashboard/routes.ts; the webview ⇄ extension-host messages of
// client/dashboardPanel.ts and webview/.
// ---------------------------------------------------------------------------------------------

export type SeriesWindow = "day" | "week" | "month";
export type SeriesGroupBy = "model" | "tool" | "tag";

/** A cap as /status reports it (what the dashboard aggregate needs of it). */
export type CapDto = CapStatusDto;

export interface SeriesPoint {
  t: string; // ISO instant
  usd: number;
}

/** One stacked dataset: cost per bucket, in USD (display only). */
export interface SeriesGroup {
  /** Base model id, tool name, `key=value` tag, "(untagged)" or "(other)". */
  key: string;
  totalUsd: number;
  costUsd: number[];
}

/** Cumulative spend of the calls a cap applies to, in the cap's current window. */
export interface CapSeries {
  id: string;
  scope: "personal" | "team";
  window: SeriesWindow;
  model?: string;
  limitUsd: number;
  /** The engine's figures (as /status). */
  spentUsd: number;
  reservedUsd: number;
  /** The last point of `points`: settled spend the aggregate attributes to this window. */
  chartedUsd: number;
  windowStart: string;
  resetsAt: string;
  /** From the window start to now. */
  points: SeriesPoint[];
  /** From now at the current rate (trailing 3 h / 24 h / 7 days): to the limit if reached before the reset, else to the reset. */
  projection: { ratePerHourUsd: number; reachesAt: string | null; points: SeriesPoint[] };
}

export interface DashboardSeriesResponse {
  window: SeriesWindow;
  timeZone: string;
  from: string;
  to: string;
  now: string;
  bucket: "hour" | "day";
  buckets: { start: string; label: string }[];
  groups: Partial<Record<SeriesGroupBy, SeriesGroup[]>>;
  totals: {
    calls: number;
    costUsd: number;
    costExact: string;
    /** Input includes cache reads and writes. */
    inputTokens: number;
    outputTokens: number;
    outcomes: Record<Outcome, number>;
  };
  caps: CapSeries[];
}

/**
 * The series route's answer while the dashboard's aggregate is still being built after the gateway
 * started (answered at once, never held): the page shows "loading" and asks again.
 */
export interface DashboardSeriesLoading {
  loading: true;
  window: SeriesWindow;
  timeZone: string;
  now: string;
  /** Calls read from the journal so far (the rest, if any, come from the ledger's checkpoint). */
  callsRead: number;
  message: string;
}

/** USD per 1M tokens as the gateway would charge a call named `modelId` (overrides and profile premiums applied). */
export interface PriceDto {
  modelId: string;
  displayName: string;
  provider: string;
  inputPer1M: number;
  outputPer1M: number;
  cacheReadPer1M: number;
  note?: string;
  /** Where the row's figures come from ("AWS Price List 2026-11-29 (us-east-1)", or the built-in row's source and check date). */
  source?: string;
}

export interface PricesResponse {
  models: PriceDto[];
  table?: PriceTableDto;
}

/** Dollar figures of one reconciliation line (display numbers, plus exact decimal strings). */
export interface ReconcileFiguresDto {
  ledgerUsd: number;
  billUsd: number;
  /** bill − ledger. */
  driftUsd: number;
  ledgerExact: string;
  billExact: string;
  driftExact: string;
  /** drift / bill in percent, null when the bill is 0. */
  driftPercent: number | null;
}

/** The ledger beside what AWS billed, per UTC day and model (bedrock-budget reconcile). */
export interface ReconcileResponse {
  month: string;
  lines: (ReconcileFiguresDto & { date: string; model: string })[];
  total: ReconcileFiguresDto;
}

/** Calls one rule of a policy stopped or changed, and the dollars it saved (a cap's id; a plan's "tier \"pro\" rateLimit.requestsPerDay"). */
export interface WhatIfGroupDto {
  policy: string;
  /** Stopped: "refused" | "quota-exceeded"; changed: "throttled" | "warned" | "downgraded" | "clamped". */
  outcome: string;
  by: string;
  calls: number;
  savedUsd: string;
}

/**
 * What-if (`bedrock-budget whatif`, and DASHBOARD_PATHS.whatIf on the settings in force): a month
 * of the journal replayed against the usage plans and the caps with their actions. Money as exact
 * decimal strings of USD.
 */
export interface WhatIfResponse {
  month: string;
  timeZone: string;
  /** Settled calls of the month replayed, in the order they started. */
  replayed: number;
  /** Calls refused, throttled or over a quota for real: never forwarded, so not replayed. */
  notReplayed: number;
  actualUsd: string;
  wouldCostUsd: string;
  /** Calls that would not have been made (refused by a cap, over a quota); saved: what they cost. */
  stopped: { calls: number; savedUsd: string; groups: WhatIfGroupDto[] };
  /** Calls made but throttled, warned, downgraded or clamped; saved: how much cheaper they would have been. */
  changed: { calls: number; savedUsd: string; groups: WhatIfGroupDto[] };
  /** Every policy replayed, with the calls it stopped and changed and the dollars it saved. */
  policies: { name: string; stoppedCalls: number; changedCalls: number; savedUsd: string }[];
  /** What the replay can only approximate. */
  approximations: string[];
}

/** Requests the webview may relay through the extension host (GET only, to these routes). */
export type DashboardRoute = "status" | "calls" | "series" | "prices" | "reconcile" | "whatif";

/** webview → extension host */
export type WebviewToHost =
  | { type: "ready" }
  | { type: "request"; id: number; route: DashboardRoute; query: Record<string, string> }
  /** Fetch the CSV of [from, to) and offer to save it. */
  | { type: "export"; from: string; to: string; suggestedName: string };

/** extension host → webview */
export type HostToWebview =
  | { type: "init"; gatewayUrl: string; focus?: { model?: string } }
  | { type: "focus"; model?: string }
  | { type: "response"; id: number; ok: true; body: unknown }
  | { type: "response"; id: number; ok: false; status: number; message: string }
  /** A relayed server-sent event from API_PATHS.events. */
  | { type: "event"; event: GatewayEvent }
  | { type: "connection"; state: "open" | "closed" }
  | { type: "exported"; path?: string; error?: string };

/** What the page keeps in `vscode.setState` (and the serializer hands back after a reload). */
export interface DashboardViewState {
  window: SeriesWindow;
  filterModel: string;
  filterOutcome: string;
  calculator: { users: number; conversationsPerDay: number; tokensPerConversation: number; inputShare: number; modelId: string };
}
