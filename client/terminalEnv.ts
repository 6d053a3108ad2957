/**
 * Routes tools started from VS Code through the gateway: new integrated terminals and debug
 * sessions get every endpoint variable Bedrock clients read (AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
 * ANTHROPIC_BEDROCK_BASE_URL), AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false and the gateway's
 * address in NO_PROXY, so their Bedrock calls are metered unchanged. Which address (or none) is decided in terminalModel.ts.
 */
import * as vscode from "vscode";
import type { GatewayStateNotification } from "../server/protocol";
import { ENDPOINT_VARIABLES, proxyBypassNames, readEnvFile, restoredTerminalsNotice, routedDebugConfig, terminalMutations, type TerminalVariable } from "./terminalModel";

export class TerminalRouting implements vscode.Disposable {
  private variables: Partial<Record<TerminalVariable, string | undefined>> = {};
  private readonly registration: vscode.Disposable;
  /** The NO_PROXY spellings terminals get the gateway's address in, from the environment VS Code was started with (it does not change). */
  private readonly bypassNames = proxyBypassNames(process.env);
  /** The terminals open before the first update and the address VS Code saved for them, until the gateway's state settles what to tell (restoredTerminalsNotice). */
  private restored: { saved: string | undefined; terminals: number } | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    // Read before update() replaces it: the collection still holds what VS Code saved last session.
    this.restored = { saved: this.context.environmentVariableCollection.get(ENDPOINT_VARIABLES[0])?.value, terminals: vscode.window.terminals.length };
    this.context.environmentVariableCollection.description = "Bedrock Budget meters Bedrock calls through its local gateway";
    this.registration = vscode.debug.registerDebugConfigurationProvider("*", {
      // In the form each debugger reads; what the launch configuration sets itself, in `env` or its
      // `envFile`, is kept (routedDebugConfig). After substitution: an envFile path names ${workspaceFolder}.
      resolveDebugConfigurationWithSubstitutedVariables: async (folder, config) => {
        const fileEnv = await readEnvFile(config.envFile, folder?.uri.fsPath);
        return routedDebugConfig(config, this.variables, process.env, fileEnv); // the routing as it is once the file is read
      },
    });
  }

  /** `variables`: each routing variable's value (terminalVariables); undefined removes it. */
  update(variables: Record<TerminalVariable, string | undefined>): void {
    this.variables = variables;
    const collection = this.context.environmentVariableCollection;
    // The gateway's address joins NO_PROXY, added to whatever list the terminal has (proxyBypassNames).
    for (const [name, change] of terminalMutations(variables, this.bypassNames)) {
      if (!change) collection.delete(name);
      else collection[change.type](name, change.value, { applyAtProcessCreation: true, applyAtShellIntegration: change.applyAtShellIntegration });
    }
  }

  /** Each gateway state: once it is ready or has failed, warns once if terminals opened before activation point elsewhere. */
  followState(state: GatewayStateNotification.Params): void {
    if (!this.restored) return;
    const notice = restoredTerminalsNotice(this.restored, state);
    if (!notice) return;
    this.restored = undefined;
    if (notice.message) void vscode.window.showWarningMessage(notice.message);
  }

  dispose(): void {
    this.registration.dispose();
  }
}
