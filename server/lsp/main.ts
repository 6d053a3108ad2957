/**
 * Entry of the background process (out/server.js): one process that is both the language server
 * and the gateway. The transport comes from argv (--node-ipc from VS Code, --stdio elsewhere).
 */
import { createConnection, ProposedFeatures } from "vscode-languageserver/node";
import { startServer } from "./server";

const connection = createConnection(ProposedFeatures.all);

// Anything printed must not corrupt a stdio transport: route it to the client's log.
console.log = (...args: unknown[]) => connection.console.log(args.map(String).join(" "));
console.info = (...args: unknown[]) => connection.console.info(args.map(String).join(" "));
console.warn = (...args: unknown[]) => connection.console.warn(args.map(String).join(" "));
console.error = (...args: unknown[]) => connection.console.error(args.map(String).join(" "));
/**
 * A throw that escapes into an event callback (a bug, or upstream bytes nobody foresaw) must not end
 * this process: it hosts the gateway and every call in flight. Continuing is safe: each call's money
 * is settled by its own handlers, a call that never settles keeps its reservation counted against
 * the caps, and its reserve entry is already durable (charged its worst case at the next start).
 */
function logEscaped(what: string, reason: unknown): void {
  const text = `${what} (the server keeps running): ${reason instanceof Error ? reason.stack : String(reason)}`;
  try {
    connection.console.error(text);
  } catch {
    process.stderr.write(`${text}\n`); // the client connection is gone; stderr never carries the protocol
  }
}
process.on("uncaughtException", (err) => logEscaped("uncaught exception", err));
process.on("unhandledRejection", (reason) => logEscaped("unhandled rejection", reason));

startServer(connection);
connection.listen();
