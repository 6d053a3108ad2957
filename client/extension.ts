/**
 * Activation wires the parts; each concern lives in its own module. Nothing heavy happens here:
 * the background process starts asynchronously and reports back by notifications.
 */
import * as vscode from "vscode";
import { State, type LanguageClient } from "vscode-languageclient/node";
import {
  CallSettledNotification,
  ConfigErrorNotification,
  GatewayStateNotification,
  RestartGatewayRequest,
  StatusNotification,
} from "../server/protocol";
import { Alerts } from "./alerts";
import { DashboardPanel, registerDashboardSerializer } from "./dashboardPanel";
import { liveGateway, notServingMessage } from "./gatewayTarget";
import { createLanguageClient } from "./languageClient";
import { TrustedSettings } from "./settings";
import { SpendMeter } from "./statusBar";
import { TerminalRouting } from "./terminalEnv";
import { proxyBypassEnv, routedEnv, shellExports, stateBeforeFirstReport, terminalVariables, whenDownNotice, whenGatewayDownOf } from "./terminalModel";

let client: LanguageClient | undefined;

/** What other extensions (and the e2e suite) may ask of this one. */
export interface BedrockBudgetApi {
  endpoint(): string | undefined;
}

export function activate(context: vscode.ExtensionContext): BedrockBudgetApi {
  const started = performance.now();
  const log = vscode.window.createOutputChannel("Bedrock Budget", { log: true });
  const meter = new SpendMeter();
  const terminals = new TerminalRouting(context);
  const settings = new TrustedSettings(context.extension.packageJSON);
  const alerts = new Alerts(context, settings);
  let state: GatewayStateNotification.Params | undefined;
  const gateway = () => liveGateway(state);
  const terminalSettings = () => {
    // Both are machine-scoped: the user's values (or defaults) only, never a repository's.
    return { routeTerminals: settings.get("routeTerminals") !== false, whenGatewayDown: whenGatewayDownOf(settings.get("whenGatewayDown")) };
  };
  /** Terminals and the meter follow the gateway's state and the two terminal settings. */
  const refresh = () => {
    // Before the first report, as the process's first "starting" report will say: debug sessions
    // started meanwhile got no variables at all, and ran unmetered.
    const routing = terminalSettings();
    terminals.update(terminalVariables({ state: state ?? stateBeforeFirstReport(settings.get("port")), ...routing }));
    if (state) meter.setState(state, whenDownNotice(routing.routeTerminals, routing.whenGatewayDown));
  };

  client = createLanguageClient(context, log, settings);
  const lc = client;
  context.subscriptions.push(
    log,
    meter,
    terminals,
    lc.onNotification(GatewayStateNotification.type, (params) => {
      state = params;
      terminals.followState(params); // terminals restored from an earlier session may point at its address
      DashboardPanel.current?.followGateway(); // the open panel follows a gateway that moved or stopped
      refresh();
    }),
    // The background process stopped for good (it is not restarted): the gateway is down.
    lc.onDidChangeState((e) => {
      if ((e.newState !== State.Stopped && e.newState !== State.StartFailed) || state?.state === "error") return;
      state = { state: "error", message: "the background process stopped; run “Bedrock Budget: Restart Gateway” or reload the window" };
      terminals.followState(state);
      DashboardPanel.current?.followGateway();
      refresh();
    }),
    lc.onNotification(StatusNotification.type, (status) => {
      meter.update(status);
      alerts.onStatus(status);
    }),
    lc.onNotification(CallSettledNotification.type, (record) => alerts.onCall(record)),
    lc.onNotification(ConfigErrorNotification.type, (params) =>
      params.errors.length ? alerts.onConfigErrors(params.errors, params.blocked ?? false, params.anotherWindowServes ?? false) : alerts.clearConfigErrors(),
    ),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("bedrockBudget.routeTerminals") || e.affectsConfiguration("bedrockBudget.whenGatewayDown")) refresh();
    }),
    vscode.commands.registerCommand("bedrockBudget.showDashboard", (focus?: { model?: string }) => {
      if (!gateway()) return void vscode.window.showWarningMessage(notServingMessage(state));
      DashboardPanel.createOrShow(context, gateway, focus);
    }),
    vscode.commands.registerCommand("bedrockBudget.copyEndpoint", async () => {
      const endpoint = gateway()?.url;
      if (!endpoint) return void vscode.window.showWarningMessage(notServingMessage(state));
      await vscode.env.clipboard.writeText(endpoint);
      void vscode.window.showInformationMessage(`Copied ${endpoint}. In a terminal outside VS Code: ${shellExports(endpoint)}`);
    }),
    // The walkthrough's step: a terminal whose Bedrock calls go through the gateway, even with routeTerminals off.
    vscode.commands.registerCommand("bedrockBudget.openRoutedTerminal", () => {
      const endpoint = gateway()?.url;
      if (!endpoint) return void vscode.window.showWarningMessage(notServingMessage(state));
      vscode.window.createTerminal({ name: "Bedrock (metered)", env: { ...routedEnv(endpoint), ...proxyBypassEnv(process.env) } }).show();
    }),
    vscode.commands.registerCommand("bedrockBudget.restartGateway", async () => {
      try {
        if (lc.state === State.Stopped || lc.state === State.StartFailed) {
          // The background process stopped for good (it kept crashing, or could not start): the
          // messages that said so tell the user to run this command, so it starts the process anew.
          await lc.stop().catch(() => undefined); // a failed start must be stopped before it can start again
          await lc.start();
          void vscode.window.showInformationMessage("Bedrock Budget: the background process was started again; the gateway follows.");
          return;
        }
        const result = await lc.sendRequest(RestartGatewayRequest.type);
        if ("error" in result) void vscode.window.showErrorMessage(`Bedrock Budget: ${result.error}`);
        else void vscode.window.showInformationMessage(`Bedrock Budget: the gateway serves ${result.url}.`);
      } catch (err) {
        void vscode.window.showErrorMessage(`Bedrock Budget: could not restart the gateway: ${err instanceof Error ? err.message : String(err)}. Reload the window; the log has details.`);
      }
    }),
    vscode.commands.registerCommand("bedrockBudget.showLog", () => log.show()),
    vscode.commands.registerCommand("bedrockBudget.openSettings", () => vscode.commands.executeCommand("workbench.action.openSettings", "bedrockBudget")),
  );
  registerDashboardSerializer(context, gateway);
  refresh();
  void lc.start().catch((err: unknown) => log.error(`could not start the background process: ${err instanceof Error ? err.message : String(err)}`));
  // The benchmark (test/bench/extension.bench.ts) reads this line.
  log.info(`activated in ${(performance.now() - started).toFixed(1)} ms`);
  return { endpoint: () => gateway()?.url };
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
