/**
 * The dashboard as a VS Code webview panel: one instance, resources only from the extension's
 * out/webview, a nonce CSP. The webview cannot reach the gateway itself (connect-src 'none'), so
 * this host relays its requests (GET, to a fixed set of local API routes) and the gateway's
 * server-sent events, after the page says it is `ready`, with the user's token (the language
 * server sends it with the verified gateway's URL over the editor's private channel; it never
 * reaches the page). A serializer brings it back after a reload; the page restores its own view
 * state (acquireVsCodeApi().getState()).
 */
import * as vscode from "vscode";
import { dashboardHtml, newNonce, webviewCsp } from "../server/shared/dashboardPage";
import { parseSse } from "../server/shared/sse";
import type { GatewayTarget } from "./gatewayTarget";
import {
  API_PATHS,
  DASHBOARD_PATHS,
  TOKEN_HEADER,
  type DashboardRoute,
  type HostToWebview,
  type WebviewToHost,
} from "../server/protocol";

export const DASHBOARD_VIEW_TYPE = "bedrockBudget.dashboard";

/** The headers of a request to `target`: its token, when known. */
function authHeaders(target: GatewayTarget, extra: Record<string, string> = {}): Record<string, string> {
  return target.token ? { ...extra, [TOKEN_HEADER]: target.token } : extra;
}
export type GatewayProvider = () => GatewayTarget | undefined;

const ROUTES: Record<DashboardRoute, string> = {
  status: API_PATHS.status,
  calls: API_PATHS.calls,
  series: DASHBOARD_PATHS.series,
  prices: DASHBOARD_PATHS.prices,
  reconcile: DASHBOARD_PATHS.reconcile,
  whatif: DASHBOARD_PATHS.whatIf,
};
const REQUEST_TIMEOUT_MS = 15_000;
const GATEWAY_WAIT_MS = 30_000;

export class DashboardPanel implements vscode.Disposable {
  static current: DashboardPanel | undefined;

  private ready = false;
  private focus: { model?: string } | undefined;
  private events: AbortController | undefined;
  /** The gateway the event relay is connected to (or trying). */
  private relayed: GatewayTarget | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  /**
   * Opens the dashboard (or reveals the open one), optionally focused on a model's calls. `gateway`
   * is read on every request: the panel follows the gateway when it moves (another window took it
   * over on another port, a restart), never a URL captured when it opened.
   */
  static createOrShow(context: vscode.ExtensionContext, gateway: GatewayProvider, focus?: { model?: string }): DashboardPanel {
    const existing = DashboardPanel.current;
    if (existing) {
      existing.gateway = gateway;
      existing.followGateway();
      existing.panel.reveal();
      if (focus) existing.setFocus(focus);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(DASHBOARD_VIEW_TYPE, "Bedrock Budget", vscode.ViewColumn.Active, webviewOptions(context.extensionUri));
    return new DashboardPanel(panel, context.extensionUri, gateway, focus);
  }

  /** After a reload: the serializer hands back the panel. */
  static revive(panel: vscode.WebviewPanel, context: vscode.ExtensionContext, gateway: GatewayProvider): DashboardPanel {
    DashboardPanel.current?.dispose();
    return new DashboardPanel(panel, context.extensionUri, gateway, undefined);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private gateway: GatewayProvider,
    focus: { model?: string } | undefined,
  ) {
    DashboardPanel.current = this;
    this.focus = focus;
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = this.html();
    panel.onDidDispose(() => this.dispose(), undefined, this.disposables);
    panel.webview.onDidReceiveMessage((m: WebviewToHost) => void this.receive(m), undefined, this.disposables);
  }

  setFocus(focus: { model?: string }): void {
    this.focus = focus;
    if (this.ready) this.post({ type: "focus", ...(focus.model ? { model: focus.model } : {}) });
  }

  /**
   * The gateway's state changed: it moved (restarted elsewhere, another port, a new token), so the
   * event relay reconnects now; or it stopped serving, so the relay stops (whatever holds its old
   * port next is not to be sent the token) until it serves again.
   */
  followGateway(): void {
    if (!this.ready) return;
    const target = this.gateway();
    if (!target) return this.stopEvents();
    if (!this.events || target.url !== this.relayed?.url || target.token !== this.relayed?.token) this.startEvents();
  }

  private stopEvents(): void {
    if (!this.events) return;
    this.events.abort();
    this.events = undefined;
    this.relayed = undefined;
    this.post({ type: "connection", state: "closed" });
  }

  dispose(): void {
    if (DashboardPanel.current === this) DashboardPanel.current = undefined;
    this.events?.abort();
    this.events = undefined;
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }

  private html(): string {
    const webview = this.panel.webview;
    const nonce = newNonce();
    const asset = (name: string) => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "out", "webview", name)).toString();
    return dashboardHtml({ nonce, csp: webviewCsp(nonce, webview.cspSource), scriptUri: asset("dashboard.js"), styleUri: asset("dashboard.css") });
  }

  private post(message: HostToWebview): void {
    if (this.ready) void this.panel.webview.postMessage(message);
  }

  private async receive(m: WebviewToHost): Promise<void> {
    if (!m || typeof m !== "object") return;
    switch (m.type) {
      case "ready": {
        // The page (re)started: a first open, or a reload after being hidden.
        this.ready = true;
        const target = await this.waitForGateway();
        this.post({ type: "init", gatewayUrl: target?.url ?? "", ...(this.focus ? { focus: this.focus } : {}) });
        this.startEvents();
        return;
      }
      case "request":
        return this.relay(m.id, m.route, m.query);
      case "export":
        return this.exportCsv(m.from, m.to, m.suggestedName);
    }
  }

  /** The gateway may still be starting when a restored panel asks (the serializer runs early). */
  private async waitForGateway(): Promise<GatewayTarget | undefined> {
    const deadline = Date.now() + GATEWAY_WAIT_MS;
    let target = this.gateway();
    while (!target && Date.now() < deadline && DashboardPanel.current === this) {
      await new Promise((r) => setTimeout(r, 250));
      target = this.gateway();
    }
    return target;
  }

  private async relay(id: number, route: DashboardRoute, query: Record<string, string>): Promise<void> {
    const path = ROUTES[route];
    if (!path) return this.post({ type: "response", id, ok: false, status: 400, message: `unknown route ${String(route)}` });
    const target = await this.waitForGateway();
    if (!target) return this.post({ type: "response", id, ok: false, status: 503, message: "the gateway is not running" });
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (typeof v === "string") params.set(k, v);
    const qs = params.toString();
    try {
      const res = await fetch(`${target.url}${path}${qs ? `?${qs}` : ""}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), headers: authHeaders(target) });
      const body: unknown = await res.json().catch(() => undefined);
      if (res.ok) this.post({ type: "response", id, ok: true, body });
      else this.post({ type: "response", id, ok: false, status: res.status, message: (body as { message?: string } | undefined)?.message ?? res.statusText });
    } catch (err) {
      this.post({ type: "response", id, ok: false, status: 0, message: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Relays API_PATHS.events, reconnecting with backoff until the panel closes or the gateway changes. */
  private startEvents(): void {
    this.events?.abort();
    const controller = new AbortController();
    this.events = controller;
    void (async () => {
      let delay = 500;
      while (!controller.signal.aborted) {
        const target = await this.waitForGateway();
        if (controller.signal.aborted) return;
        this.relayed = target;
        if (target) {
          try {
            const res = await fetch(`${target.url}${API_PATHS.events}`, { signal: controller.signal, headers: authHeaders(target, { accept: "text/event-stream" }) });
            if (res.ok && res.body) {
              this.post({ type: "connection", state: "open" });
              delay = 500;
              for await (const event of parseSse(res.body, controller.signal)) this.post({ type: "event", event });
            }
          } catch {
            /* dropped: reconnect below */
          }
        }
        if (controller.signal.aborted) return;
        this.post({ type: "connection", state: "closed" });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    })();
  }

  private async exportCsv(from: string, to: string, suggestedName: string): Promise<void> {
    const target = this.gateway();
    if (!target) return this.post({ type: "exported", error: "the gateway is not running" });
    try {
      const res = await fetch(`${target.url}${DASHBOARD_PATHS.exportCsv}?${new URLSearchParams({ from, to })}`, { headers: authHeaders(target) });
      if (!res.ok) throw new Error(`the gateway answered ${res.status}`);
      const csv = new Uint8Array(await res.arrayBuffer());
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const name = suggestedName.replace(/[^\w.-]/g, "_");
      const uri = await vscode.window.showSaveDialog({
        ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, name) } : {}),
        filters: { CSV: ["csv"] },
        saveLabel: "Export",
      });
      if (!uri) return this.post({ type: "exported" });
      await vscode.workspace.fs.writeFile(uri, csv);
      this.post({ type: "exported", path: uri.fsPath });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      void vscode.window.showErrorMessage(`Bedrock Budget: export failed: ${message}`);
      this.post({ type: "exported", error: message });
    }
  }
}

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    enableForms: false,
    retainContextWhenHidden: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, "out", "webview")],
  };
}

/** Restores the panel after a window reload. Call once from activate. */
export function registerDashboardSerializer(context: vscode.ExtensionContext, gateway: GatewayProvider): void {
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW_TYPE, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, _state: unknown): Promise<void> {
        DashboardPanel.revive(panel, context, gateway);
      },
    }),
  );
}
