/**
 * The language server half of the background process. Editor-agnostic LSP: settings through
 * `workspace/configuration` (or the standalone config file), live figures and alerts through
 * custom notifications (server/protocol.ts), code lenses, hovers and diagnostics over Bedrock
 * call sites. The gateway runs in this same process (GatewayHost).
 */
import type { Connection, InitializeResult } from "vscode-languageserver";
import { DidChangeConfigurationNotification, TextDocumentSyncKind } from "vscode-languageserver";
import { configFileThere, DEFAULT_CONFIG_FILE, readConfigFile } from "../config/load";
import { configFromSettings, FIX_IN_EDITOR } from "../config/fromSettings";
import type { Config } from "../config/schema";
import { blockedMessage, checkSettings, type SettingsCheck } from "../config/settingsCheck";
import { createLogger, type Logger } from "../log";
import {
  CallSettledNotification,
  ConfigErrorNotification,
  GatewayStateNotification,
  RestartGatewayRequest,
  StatusNotification,
} from "../protocol";
import type { NotificationType } from "vscode-jsonrpc";
import { GatewayHost } from "./gatewayHost";
import { CodeLensFeature } from "./codeLensFeature";

/**
 * How long calls in flight may finish when the editor shuts the server down: short of the 2 s
 * vscode-languageclient waits for the shutdown answer (stopping the late calls and closing the
 * ledger take the rest).
 */
export const SHUTDOWN_DEADLINE_MS = 1_500;

/**
 * Sends a contract message, its params checked against the message's type. vscode-languageserver
 * bundles its own copy of vscode-jsonrpc, whose NotificationType class TypeScript keeps apart from
 * the one server/protocol.ts (and the client) use, so the method name goes on the wire.
 */
function notify<P>(connection: Connection, type: NotificationType<P>, params: P): void {
  void connection.sendNotification(type.method, params);
}

export function startServer(connection: Connection): void {
  const log = connectionLogger(connection);
  let canReadSettings = false;
  let canWatchSettings = false;
  let config: Config | undefined;
  let lenses: CodeLensFeature | undefined;
  let lastHadErrors = false;

  const host = new GatewayHost(log, {
    state: (params) => notify(connection, GatewayStateNotification.type, withEndpoint(params, config)),
    status: (status) => {
      notify(connection, StatusNotification.type, status);
      lenses?.onStatus(status);
    },
    call: (record) => notify(connection, CallSettledNotification.type, record),
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

  // Invalid values of harmless keys are ignored; invalid values of keys that decide money start
  // (or keep) the gateway blocked: it refuses Bedrock calls until they are fixed, never guessing.
  connection.onInitialized(async () => {
    if (canWatchSettings) void connection.client.register(DidChangeConfigurationNotification.type, { section: "bedrockBudget" });
    const first = await readConfig(undefined);
    config = first.config;
    log.setLevel(config.logLevel);
    lenses?.onConfig(config);
    tellClient(first.check, "before");
    try {
      await host.start(config, first.blocked);
    } finally {
      tellClient(first.check, "after");
    }
  });

  connection.onDidChangeConfiguration(async () => {
    const next = await readConfig(config);
    config = next.config;
    log.setLevel(next.config.logLevel);
    lenses?.onConfig(next.config);
    tellClient(next.check, "before");
    try {
      await host.reconfigure(next.config, next.blocked);
    } catch (err) {
      log.error(`applying the settings: ${(err as Error).message}`); // the Bedrock Budget log, not the connection's
    } finally {
      tellClient(next.check, "after");
    }
  });

  // The request's result type comes from the contract (see notify for why the method name is passed).
  connection.onRequest(RestartGatewayRequest.type.method, async (): Promise<RestartGatewayRequest.Result> => {
    await host.restart();
    return host.url ? { url: host.url } : { error: "the gateway did not start; see the log" };
  });

  // vscode-languageclient waits 2 s for the answer, then kills the process 2 s later: calls still
  // running at the deadline are stopped, answered, charged their worst case and journaled, and the
  // ledger lock released, before that.
  connection.onShutdown(async () => {
    await host.stop({ deadlineMs: SHUTDOWN_DEADLINE_MS });
  });

  /** Reads and checks the settings key by key, and tells the client what is wrong (or that nothing is any more). */
  async function readConfig(previous: Config | undefined): Promise<{ config: Config; blocked?: string; check: SettingsCheck }> {
    let check: SettingsCheck;
    let howToFix = FIX_IN_EDITOR;
    // An editor that answers settings requests but has no section for us (Neovim answers null)
    // sets nothing: the config file applies then, as for an editor that cannot answer.
    const raw: unknown = canReadSettings ? await connection.workspace.getConfiguration({ section: "bedrockBudget" }) : undefined;
    if (raw !== null && raw !== undefined) {
      check = configFromSettings(raw, previous);
    } else if (configFileThere(DEFAULT_CONFIG_FILE)) {
      howToFix = `Correct it in ${DEFAULT_CONFIG_FILE}.`;
      try {
        check = checkSettings(await readConfigFile(DEFAULT_CONFIG_FILE), previous);
      } catch (err) {
        // An unreadable file: nothing in it can be trusted, so it blocks like a bad money key.
        const problem = (err as Error).message;
        check = { config: previous ?? checkSettings({}, undefined).config, errors: [problem], blocking: [problem] };
      }
    } else {
      check = checkSettings({}, previous);
    }
    if (check.errors.length > 0) log.error(`invalid settings: ${check.errors.join("; ")}`);
    return check.blocking.length > 0 ? { config: check.config, blocked: blockedMessage(check.blocking, howToFix), check } : { config: check.config, check };
  }

  /**
   * Tells the client what is wrong with the settings (after the host has started or reconfigured,
   * when it knows whose gateway serves), or that nothing is any more (before, as soon as it is so).
   */
  function tellClient(check: SettingsCheck, when: "before" | "after"): void {
    if (check.errors.length > 0) {
      if (when === "before") return;
      notify(connection, ConfigErrorNotification.type, { errors: check.errors, blocked: check.blocking.length > 0, ...(host.follows ? { anotherWindowServes: true } : {}) });
    } else if (lastHadErrors) {
      notify(connection, ConfigErrorNotification.type, { errors: [] });
    }
    lastHadErrors = check.errors.length > 0;
  }

  lensesHandlers();
  function lensesHandlers(): void {
    connection.onCodeLens((params) => lenses?.provide(params) ?? []);
    connection.onCodeLensResolve((lens) => lenses?.resolve(lens) ?? lens);
    connection.onHover((params) => lenses?.hover(params) ?? null);
  }
}

/** Tells the client where terminals should point while the gateway is not (yet) serving: its configured port. */
function withEndpoint(params: GatewayStateNotification.Params, config: Config | undefined): GatewayStateNotification.Params {
  if (params.state === "ready" || !config?.port || params.endpoint) return params;
  return { ...params, endpoint: `http://127.0.0.1:${config.port}` };
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
