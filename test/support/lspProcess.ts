/**
 * The background process as an editor runs it: `out/server.js --stdio`, spoken to over LSP, with
 * the editor's settings answered from a plain object (what VS Code's settings.json would hold).
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from "vscode-jsonrpc/node";
import type { CallRecord } from "../../server/ledger/types";
import type { ConfigErrorNotification, GatewayStateNotification, StatusResponse } from "../../server/protocol";
import { cliEnv } from "./cliProcess";

export const SERVER = path.resolve(__dirname, "../../out/server.js");

export interface LspSession {
  child: ChildProcess;
  connection: MessageConnection;
  settings: Record<string, unknown>;
  states: GatewayStateNotification.Params[];
  statuses: StatusResponse[];
  calls: CallRecord[];
  configErrors: string[][];
  /** The same notifications, whole (blocked, anotherWindowServes). */
  configErrorParams: ConfigErrorNotification.Params[];
  diagnostics: Map<string, Array<{ message: string; code?: string | number }>>;
  /** The server's log lines (window/logMessage), as the editor's output channel shows them. */
  logs: string[];
  /** Resolves with the first notification (already received or to come) that satisfies `test`. */
  waitFor<T>(what: string, read: () => T | undefined, timeoutMs?: number): Promise<T>;
  /** Changes settings the way VS Code does: a didChangeConfiguration, then re-read on request. */
  changeSettings(next: Record<string, unknown>): Promise<void>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** How the editor speaks: VS Code's by default; another editor's capabilities and settings lookup when given. */
export interface EditorShape {
  capabilities?: Record<string, unknown>;
  /** Answers one `workspace/configuration` item (Neovim looks the section up in its `settings` table). */
  configuration?: (settings: Record<string, unknown>, section: string | undefined) => unknown;
  env?: NodeJS.ProcessEnv;
}

const VS_CODE_CAPABILITIES = {
  workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true }, codeLens: { refreshSupport: true } },
  textDocument: { codeLens: {}, hover: { contentFormat: ["markdown"] }, publishDiagnostics: {} },
};

export async function startLsp(settings: Record<string, unknown>, editor: EditorShape = {}): Promise<LspSession> {
  const child = spawn(process.execPath, [SERVER, "--stdio"], { env: editor.env ?? cliEnv(), stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const waiters = new Set<() => void>();
  const poke = () => waiters.forEach((w) => w());
  const session: LspSession = {
    child,
    connection,
    settings,
    states: [],
    statuses: [],
    calls: [],
    configErrors: [],
    configErrorParams: [],
    diagnostics: new Map(),
    logs: [],
    exited,
    waitFor<T>(what: string, read: () => T | undefined, timeoutMs = 15_000) {
      return new Promise<T>((resolve, reject) => {
        const check = () => {
          const value = read();
          if (value === undefined) return;
          cleanup();
          resolve(value);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async changeSettings(next) {
      session.settings = next;
      await connection.sendNotification("workspace/didChangeConfiguration", { settings: null });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await connection.sendRequest("shutdown").catch(() => undefined);
        await connection.sendNotification("exit").catch(() => undefined);
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      connection.dispose();
    },
  };
  const answer = editor.configuration ?? ((all) => all);
  connection.onRequest("workspace/configuration", (params: { items: Array<{ section?: string }> }) =>
    params.items.map((item) => answer(session.settings, item.section)),
  );
  connection.onRequest("client/registerCapability", () => null);
  connection.onRequest("workspace/codeLens/refresh", () => null);
  connection.onNotification("window/logMessage", (p: { message: string }) => (session.logs.push(p.message), poke()));
  connection.onNotification("bedrockBudget/gatewayState", (p: GatewayStateNotification.Params) => (session.states.push(p), poke()));
  connection.onNotification("bedrockBudget/status", (p: StatusResponse) => (session.statuses.push(p), poke()));
  connection.onNotification("bedrockBudget/callSettled", (p: CallRecord) => (session.calls.push(p), poke()));
  connection.onNotification("bedrockBudget/configError", (p: ConfigErrorNotification.Params) => (session.configErrors.push(p.errors), session.configErrorParams.push(p), poke()));
  connection.onNotification("textDocument/publishDiagnostics", (p: { uri: string; diagnostics: Array<{ message: string; code?: string }> }) => {
    session.diagnostics.set(p.uri, p.diagnostics);
    poke();
  });
  connection.listen();
  await connection.sendRequest("initialize", {
    processId: process.pid,
    rootUri: null,
    capabilities: editor.capabilities ?? VS_CODE_CAPABILITIES,
  });
  await connection.sendNotification("initialized", {});
  return session;
}

export function readyUrl(session: LspSession, role?: "leader" | "follower", after = 0): string | undefined {
  const ready = session.states.slice(after).find((s) => s.state === "ready" && (!role || s.role === role));
  return ready && ready.state === "ready" ? ready.url : undefined;
}
