/**
 * The language server half of the background process. Editor-agnostic LSP: settings through
 * `workspace/configuration` (or the standalone config file), live figures and alerts through
 * custom notifications (server/protocol.ts), code lenses, hovers and diagnostics over Bedrock
 * call sites. The gateway runs in this same process (GatewayHost).
 */
import { existsSync } from "node:fs";
import type { Connection, InitializeResult } from "vscode-languageserver";
import { DidChangeConfigurationNotification, TextDocumentSyncKind } from "vscode-languageserver";
import { DEFAULT_CONFIG_FILE, loadConfigFile } from "../config/load";
import { configFromSettings } from "../config/fromSettings";
import { parseConfig, type Config } from "../config/schema";
import { createLogger, type Logger } from "../log";
import {
  CallSettledNotification,
  ConfigErrorNotification,
  GatewayStateNotification,
  RestartGatewayRequest,
  StatusNotification,
} from "../protocol";
import { GatewayHost } from "./gatewayHost";
import { CodeLensFeature } from "./codeLensFeature";

export function startServer(connection: Connection): void {
  const log = connectionLogger(connection);
  let canReadSettings = false;
  let canWatchSettings = false;
  let config: Config | undefined;
  let lenses: CodeLensFeature | undefined;
  let lastHadErrors = false;

  const host = new GatewayHost(log, {
    state: (params) => void connection.sendNotification(GatewayStateNotification.method, params),
    status: (status) => {
      void connection.sendNotification(StatusNotification.method, status);
      lenses?.onStatus(status);
    },
    call: (record) => void connection.sendNotification(CallSettledNotification.method, record),
  });

  connection.onInitialize((params): InitializeResult => {
    canReadSettings = !!params.capabilities.workspace?.configuration;
    canWatchSettings = !!params.capabilities.workspace?.didChangeConfiguration?.dynamicRegistration;
    lenses = new CodeLensFeature(connection, log, () => config, {
      refreshSupported: !!params.capabilities.workspace?.codeLens?.refreshSupport,
    });
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        codeLensProvider: { resolveProvider: true },
        hoverProvider: true,
      },
      serverInfo: { name: "bedrock-budget" },
    };
  });

  connection.onInitialized(async () => {
    if (canWatchSettings) void connection.client.register(DidChangeConfigurationNotification.type, { section: "bedrockBudget" });
    const first = await readConfig();
    config = first ?? parseOrDefaults();
    log.setLevel(config.logLevel);
    lenses?.onConfig(config);
    await host.start(config);
  });

  connection.onDidChangeConfiguration(async () => {
    const next = await readConfig();
    if (!next) return; // reported; the last good configuration stays in force
    config = next;
    log.setLevel(next.logLevel);
    lenses?.onConfig(next);
    await host.reconfigure(next);
  });

  connection.onRequest(RestartGatewayRequest.method, async (): Promise<RestartGatewayRequest.Result> => {
    await host.restart();
    return host.url ? { url: host.url } : { error: "the gateway did not start; see the log" };
  });

  connection.onShutdown(async () => {
    await host.stop();
  });

  /** Reads and validates the settings; on errors, tells the client and returns undefined. */
  async function readConfig(): Promise<Config | undefined> {
    let result;
    if (canReadSettings) {
      const raw: unknown = await connection.workspace.getConfiguration({ section: "bedrockBudget" });
      result = configFromSettings(raw);
    } else if (existsSync(DEFAULT_CONFIG_FILE)) {
      try {
        return await loadConfigFile(DEFAULT_CONFIG_FILE);
      } catch (err) {
        result = { ok: false as const, errors: [(err as Error).message] };
      }
    } else {
      return parseOrDefaults();
    }
    if (result.ok) {
      if (lastHadErrors) void connection.sendNotification(ConfigErrorNotification.method, { errors: [] } satisfies ConfigErrorNotification.Params);
      lastHadErrors = false;
      return result.config;
    }
    lastHadErrors = true;
    log.error(`invalid settings: ${result.errors.join("; ")}`);
    void connection.sendNotification(ConfigErrorNotification.method, { errors: result.errors } satisfies ConfigErrorNotification.Params);
    return undefined;
  }

  lensesHandlers();
  function lensesHandlers(): void {
    connection.onCodeLens((params) => lenses?.provide(params) ?? []);
    connection.onCodeLensResolve((lens) => lenses?.resolve(lens) ?? lens);
    connection.onHover((params) => lenses?.hover(params) ?? null);
  }
}

function parseOrDefaults(): Config {
  const result = parseConfig({});
  if (!result.ok) throw new Error(result.errors.join("; "));
  return result.config;
}

/** The gateway's log lines go to the client's log (an output channel in VS Code). */
function connectionLogger(connection: Connection): Logger {
  return createLogger((level, line) => {
    if (level === "error") connection.console.error(line);
    else if (level === "warn") connection.console.warn(line);
    else if (level === "info") connection.console.info(line);
    else connection.console.log(line);
  }, "info");
}
