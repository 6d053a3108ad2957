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
process.on("unhandledRejection", (reason) => connection.console.error(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`));

startServer(connection);
connection.listen();
