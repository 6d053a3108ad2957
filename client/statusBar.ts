/** The spend meter: one status bar item, pushed by the server, never polled. */
import * as vscode from "vscode";
import type { GatewayStateNotification, StatusResponse } from "../server/protocol";
import { MeterModel, meterView } from "./statusModel";

export class SpendMeter implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("bedrockBudget.meter", vscode.StatusBarAlignment.Right, 100);
  private timer: NodeJS.Timeout | undefined;
  private readonly model = new MeterModel();

  constructor() {
    this.item.name = "Bedrock Budget";
    this.item.command = "bedrockBudget.showDashboard";
    this.setState({ state: "starting" });
    this.item.show();
    // Only the "resets in …" wording ages; refresh it once a minute.
    this.timer = setInterval(() => this.draw(this.model.onTick()), 60_000);
  }

  /** `whenDown`: what happens to terminals' calls while the gateway does not serve (terminalModel.ts). */
  setState(params: GatewayStateNotification.Params, whenDown?: { short: string; sentence: string }): void {
    const figures = this.model.onState(params);
    if (figures) return this.draw(figures);
    this.item.backgroundColor = params.state === "error" ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    this.item.color = params.state === "error" ? new vscode.ThemeColor("statusBarItem.errorForeground") : undefined;
    this.item.text = params.state === "error" ? `$(error) Bedrock Budget${whenDown ? `: ${whenDown.short}` : ""}` : "$(loading~spin) Bedrock Budget";
    const what = params.state === "error" ? `Bedrock Budget: ${params.message}` : "Bedrock Budget: starting the gateway…";
    this.item.tooltip = whenDown ? `${what}\n\n${whenDown.sentence}` : what;
    if (params.state === "error") this.item.command = "bedrockBudget.showLog";
  }

  /** New figures: drawn while the gateway serves, else kept for when it does. */
  update(status: StatusResponse): void {
    this.draw(this.model.onStatus(status));
  }

  private draw(status: StatusResponse | undefined): void {
    if (!status) return;
    const view = meterView(status);
    this.item.text = view.text;
    this.item.command = "bedrockBudget.showDashboard";
    const tooltip = new vscode.MarkdownString(view.tooltip);
    tooltip.isTrusted = { enabledCommands: ["bedrockBudget.showDashboard", "bedrockBudget.copyEndpoint", "bedrockBudget.openSettings", "bedrockBudget.showLog"] };
    this.item.tooltip = tooltip;
    // Backgrounds only for the thresholds, each paired with its foreground.
    this.item.backgroundColor = view.severity === "normal" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
    this.item.color = view.severity === "normal" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Foreground`);
  }

  dispose(): void {
    clearInterval(this.timer);
    this.item.dispose();
  }
}
