/**
 * Routes tools started from VS Code through the gateway: new integrated terminals and debug
 * sessions get every endpoint variable Bedrock clients read (AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
 * ANTHROPIC_BEDROCK_BASE_URL), AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false and the gateway's
 * address in NO_PROXY, so their Bedrock calls are metered unchanged. Which address (or none) is decided in terminalModel.ts.
 */
import * as vscode from "vscode";
import { proxyBypassNames, routedDebugConfig, terminalMutations, type TerminalVariable } from "./terminalModel";

export class TerminalRouting implements vscode.Disposable {
  private variables: Partial<Record<TerminalVariable, string | undefined>> = {};
  private readonly registration: vscode.Disposable;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.context.environmentVariableCollection.description = "Bedrock Budget meters Bedrock calls through its local gateway";
    this.registration = vscode.debug.registerDebugConfigurationProvider("*", {
      // In the form each debugger reads; what the launch configuration sets itself is kept (routedDebugConfig).
      resolveDebugConfiguration: (_folder, config) => routedDebugConfig(config, this.variables, process.env),
    });
  }

  /** `variables`: each routing variable's value (terminalVariables); undefined removes it. */
  update(variables: Record<TerminalVariable, string | undefined>): void {
    this.variables = variables;
    const collection = this.context.environmentVariableCollection;
    // The gateway's address joins NO_PROXY, added to whatever list the terminal has (proxyBypassNames).
    for (const [name, change] of terminalMutations(variables, proxyBypassNames(process.env))) {
      if (!change) collection.delete(name);
      else collection[change.type](name, change.value, { applyAtProcessCreation: true, applyAtShellIntegration: change.applyAtShellIntegration });
    }
  }

  dispose(): void {
    this.registration.dispose();
  }
}
