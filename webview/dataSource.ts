/**
 * Where the page gets its figures. In a normal browser (served by the gateway): fetch and
 * EventSource against the same origin, with the token the page's URL carries (`?token=`, as
 * Jupyter does). Inside a VS Code webview: postMessage to the extension host, which relays to the
 * gateway's local API with the token (a webview cannot reach localhost itself).
 */
// The paths from their own module: server/protocol.ts's runtime part would bundle vscode-jsonrpc.
import type { DashboardRoute, DashboardViewState, GatewayEvent, HostToWebview, WebviewToHost } from "../server/protocol";
import { API_PATHS, DASHBOARD_PATHS, TOKEN_HEADER, TOKEN_QUERY } from "../server/shared/apiPaths";

export interface DataSource {
  readonly kind: "browser" | "vscode";
  get<T>(route: DashboardRoute, query?: Record<string, string>): Promise<T>;
  /** Live events; `onConnection` reports whether the stream is open. */
  subscribe(onEvent: (e: GatewayEvent) => void, onConnection: (open: boolean) => void): void;
  exportCsv(from: string, to: string, suggestedName: string): void;
  loadState(): Partial<DashboardViewState> | undefined;
  saveState(state: DashboardViewState): void;
  /** A model to focus the call log on (the extension's command argument). */
  onFocus(cb: (model: string | undefined) => void): void;
}

const ROUTES: Record<DashboardRoute, string> = {
  status: API_PATHS.status,
  calls: API_PATHS.calls,
  series: DASHBOARD_PATHS.series,
  prices: DASHBOARD_PATHS.prices,
  reconcile: DASHBOARD_PATHS.reconcile,
  whatif: DASHBOARD_PATHS.whatIf,
};

const query = (q: Record<string, string> = {}) => {
  const text = new URLSearchParams(q).toString();
  return text ? `?${text}` : "";
};

const STORAGE_KEY = "bedrock-budget.dashboard";
/** A live stream the browser gave up on is opened again after this long, doubling up to the most. */
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 5_000;

export class BrowserDataSource implements DataSource {
  readonly kind = "browser" as const;
  /** From the page's URL; sent as a header where possible, in the query where not. */
  private readonly token = new URLSearchParams(location.search).get(TOKEN_QUERY) ?? "";

  async get<T>(route: DashboardRoute, q?: Record<string, string>): Promise<T> {
    const res = await fetch(`${ROUTES[route]}${query(q)}`, { headers: { accept: "application/json", [TOKEN_HEADER]: this.token } });
    if (!res.ok) throw new Error(`${route}: ${res.status} ${((await res.json().catch(() => ({}))) as { message?: string }).message ?? res.statusText}`);
    return (await res.json()) as T;
  }

  subscribe(onEvent: (e: GatewayEvent) => void, onConnection: (open: boolean) => void): void {
    this.listen(onEvent, onConnection, RECONNECT_FIRST_MS);
  }

  private listen(onEvent: (e: GatewayEvent) => void, onConnection: (open: boolean) => void, delay: number): void {
    // EventSource reconnects by itself after a dropped stream (the gateway restarting, a laptop
    // waking up), but gives up for good on an HTTP error or a refused connection: then a new one
    // is opened, with backoff, as the VS Code relay does.
    const source = new EventSource(`${API_PATHS.events}${query({ [TOKEN_QUERY]: this.token })}`);
    source.onopen = () => {
      delay = RECONNECT_FIRST_MS;
      onConnection(true);
    };
    source.onerror = () => {
      onConnection(false);
      if (source.readyState !== EventSource.CLOSED) return;
      setTimeout(() => this.listen(onEvent, onConnection, Math.min(delay * 2, RECONNECT_MAX_MS)), delay);
    };
    source.addEventListener("call", (e) => onEvent({ event: "call", data: JSON.parse((e as MessageEvent<string>).data) }));
    source.addEventListener("status", (e) => onEvent({ event: "status", data: JSON.parse((e as MessageEvent<string>).data) }));
  }

  exportCsv(from: string, to: string, suggestedName: string): void {
    const a = document.createElement("a");
    a.href = `${DASHBOARD_PATHS.exportCsv}${query({ from, to, [TOKEN_QUERY]: this.token })}`;
    a.download = suggestedName;
    document.body.append(a);
    a.click();
    a.remove();
  }

  loadState(): Partial<DashboardViewState> | undefined {
    try {
      const text = localStorage.getItem(STORAGE_KEY);
      return text ? (JSON.parse(text) as Partial<DashboardViewState>) : undefined;
    } catch {
      return undefined;
    }
  }

  saveState(state: DashboardViewState): void {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
    } catch {
      /* storage may be disabled; the page works without it */
    }
  }

  onFocus(cb: (model: string | undefined) => void): void {
    const model = new URLSearchParams(location.search).get("model");
    if (model) queueMicrotask(() => cb(model));
  }
}

export class VsCodeDataSource implements DataSource {
  readonly kind = "vscode" as const;
  private readonly vscode = acquireVsCodeApi<Partial<DashboardViewState>>();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private eventHandlers: { onEvent: (e: GatewayEvent) => void; onConnection: (open: boolean) => void } | undefined;
  private focusHandler: ((model: string | undefined) => void) | undefined;

  constructor() {
    window.addEventListener("message", (e: MessageEvent<HostToWebview>) => this.receive(e.data));
    this.post({ type: "ready" });
  }

  get<T>(route: DashboardRoute, q: Record<string, string> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ type: "request", id, route, query: q });
    });
  }

  subscribe(onEvent: (e: GatewayEvent) => void, onConnection: (open: boolean) => void): void {
    this.eventHandlers = { onEvent, onConnection };
  }

  exportCsv(from: string, to: string, suggestedName: string): void {
    this.post({ type: "export", from, to, suggestedName });
  }

  loadState(): Partial<DashboardViewState> | undefined {
    return this.vscode.getState();
  }

  saveState(state: DashboardViewState): void {
    this.vscode.setState(state);
  }

  onFocus(cb: (model: string | undefined) => void): void {
    this.focusHandler = cb;
  }

  private post(message: WebviewToHost): void {
    this.vscode.postMessage(message);
  }

  private receive(m: HostToWebview): void {
    if (!m || typeof m !== "object") return;
    switch (m.type) {
      case "response": {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.body);
        else p.reject(new Error(`${m.status}: ${m.message}`));
        return;
      }
      case "event":
        return this.eventHandlers?.onEvent(m.event);
      case "connection":
        return this.eventHandlers?.onConnection(m.state === "open");
      case "init":
        if (m.focus?.model) this.focusHandler?.(m.focus.model);
        return;
      case "focus":
        return this.focusHandler?.(m.model);
      case "exported":
        return;
    }
  }
}

export function createDataSource(): DataSource {
  return typeof acquireVsCodeApi === "function" ? new VsCodeDataSource() : new BrowserDataSource();
}
