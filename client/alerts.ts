/** Notifications: cap thresholds (once per window each), refused and cut calls, caps' actions on calls, invalid settings. */
import * as vscode from "vscode";
import type { CallRecord, StatusResponse } from "../server/protocol";
import { keysCovered, newCrossings, pruneNotified } from "../server/shared/alertCrossings";
import { callNotice } from "./callNotice";
import { configErrorMessage } from "./configErrorModel";
import { crossingNotice } from "./notificationText";
import type { TrustedSettings } from "./settings";

const NOTIFIED_KEY = "bedrockBudget.notifiedThresholds";
/** A runaway loop can be refused (or warned) many times a second: one toast per cap per minute is enough. */
const REFUSAL_QUIET_MS = 60_000;

export class Alerts {
  private readonly lastRefusalToast = new Map<string, number>();
  private lastConfigErrors = "";

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly settings: TrustedSettings,
  ) {}

  onStatus(status: StatusResponse): void {
    // Machine-scoped: the user's thresholds (or the default), never a repository's.
    const value = this.settings.get("alertThresholds");
    const thresholds = Array.isArray(value) ? (value as number[]) : [50, 80, 90, 100];
    const notified = new Set(this.context.globalState.get<string[]>(NOTIFIED_KEY) ?? []);
    const crossings = newCrossings(status, thresholds, notified);
    if (crossings.length === 0) return;
    for (const c of crossings) {
      for (const key of keysCovered(c, thresholds)) notified.add(key);
      const show = c.threshold >= 80 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
      void show(crossingNotice(c), "Open Dashboard").then((choice) => {
        if (choice) void vscode.commands.executeCommand("bedrockBudget.showDashboard");
      });
    }
    void this.context.globalState.update(NOTIFIED_KEY, pruneNotified(notified, status));
  }

  onCall(record: CallRecord): void {
    const notice = callNotice(record);
    if (!notice) return;
    if (notice.quietKey !== undefined) {
      const last = this.lastRefusalToast.get(notice.quietKey) ?? 0;
      if (Date.now() - last < REFUSAL_QUIET_MS) return;
      this.lastRefusalToast.set(notice.quietKey, Date.now());
    }
    const show = { error: vscode.window.showErrorMessage, warning: vscode.window.showWarningMessage, info: vscode.window.showInformationMessage }[notice.level];
    const choices = notice.capSetting ? ["Open Dashboard", "Open Cap Setting"] : ["Open Dashboard"];
    void show(notice.message, ...choices).then((choice) => {
      if (choice === "Open Dashboard") void vscode.commands.executeCommand("bedrockBudget.showDashboard", ...(notice.capSetting ? [{ model: record.baseModelId }] : []));
      if (choice === "Open Cap Setting") void vscode.commands.executeCommand("workbench.action.openSettings", "bedrockBudget.caps");
    });
  }

  /** `blocked`: a bad setting decides money; `anotherWindowServes`: the gateway runs on another window's settings. */
  onConfigErrors(errors: string[], blocked: boolean, anotherWindowServes: boolean): void {
    const text = configErrorMessage(errors, blocked, anotherWindowServes);
    if (text === this.lastConfigErrors) return; // said once; the settings UI shows it too
    this.lastConfigErrors = text;
    void vscode.window
      .showErrorMessage(text, "Open Settings")
      .then((choice) => choice && vscode.commands.executeCommand("workbench.action.openSettings", "bedrockBudget"));
  }

  clearConfigErrors(): void {
    this.lastConfigErrors = "";
  }
}
