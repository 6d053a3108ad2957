/**
 * Starts the background process (language server + gateway) over IPC. If it crashes it is
 * restarted, and the user is told once, in words.
 */
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  TransportKind,
  type CloseHandlerResult,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import type { TrustedSettings } from "./settings";
import { answerItem } from "./settingsModel";

const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 3 * 60_000;

export function createLanguageClient(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, settings: TrustedSettings): LanguageClient {
  const module = context.asAbsolutePath("out/server.js");
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ["--nolazy", "--inspect=6012"] } },
  };
  const restarts: number[] = [];
  let told = false;
  const clientOptions: LanguageClientOptions = {
    documentSelector: ["typescript", "typescriptreact", "javascript", "javascriptreact", "python"].map((language) => ({ language })),
    outputChannel: log,
    middleware: {
      workspace: {
        // The server reads its settings by workspace/configuration; VS Code's own answer for our
        // section merges in a repository's unregistered dotted keys, so ours is built key by key.
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) return answers; // an error, passed on as it is
          return params.items.map((item, i) => answerItem(item.section, answers[i], () => settings.all()));
        },
        // The change notification would carry that merged section too: send none (`settings: null`);
        // the server reads the settings again by workspace/configuration, answered above.
        didChangeConfiguration: (_sections, next) => next(undefined),
      },
    },
    errorHandler: {
      error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue }),
      closed: (): CloseHandlerResult => {
        const now = Date.now();
        restarts.push(now);
        while (restarts.length && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
        if (restarts.length > MAX_RESTARTS) {
          return { action: CloseAction.DoNotRestart, message: "Bedrock Budget's background process keeps stopping, so it was not restarted. Bedrock calls from VS Code terminals are not metered until you run “Bedrock Budget: Restart Gateway”. The log has details." };
        }
        if (!told) {
          told = true;
          return { action: CloseAction.Restart, message: "Bedrock Budget's background process stopped unexpectedly and was restarted. Spend already recorded is safe." };
        }
        return { action: CloseAction.Restart, handled: true };
      },
    },
    initializationFailedHandler: (error) => {
      log.error(`the background process failed to start: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    },
  };
  return new LanguageClient("bedrockBudget", "Bedrock Budget", serverOptions, clientOptions);
}
