/**
 * Routes tools started from VS Code through the gateway: new integrated terminals and debug
 * sessions get AWS_ENDPOINT_URL_BEDROCK_RUNTIME, so their Bedrock calls are metered unchanged.
 * Which address (or none) is decided in terminalModel.ts.
 */
import * as vscode from "vscode";

export const ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME";

export class TerminalRouting implements vscode.Disposable {
  private url: string | undefined;
  private readonly registration: vscode.Disposable;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.context.environmentVariableCollection.description = "Bedrock Budget meters Bedrock calls through its local gateway";
    this.registration = vscode.debug.registerDebugConfigurationProvider("*", {
      resolveDebugConfiguration: (_folder, config) => {
        if (this.url && !(config.env && ENDPOINT_VARIABLE in config.env)) {
          config.env = { ...(config.env ?? {}), [ENDPOINT_VARIABLE]: this.url };
        }
        return config;
      },
    });
  }

  /** `url`: the variable's value (terminalEndpoint); undefined removes it. */
  update(url: string | undefined): void {
    this.url = url;
    const collection = this.context.environmentVariableCollection;
    if (url) collection.replace(ENDPOINT_VARIABLE, url);
    else collection.delete(ENDPOINT_VARIABLE);
  }

  dispose(): void {
    this.registration.dispose();
  }
}
