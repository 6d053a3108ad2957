/**
 * Runs the `vscode`-API suites in a VS Code desktop build with @vscode/test-electron, on a machine
 * that can download one (this project's CI cannot: there the same suites run inside
 * code-server's extension host, test/e2e/hostSuite.test.ts). `npm run test:vscode-desktop`.
 */
import path from "node:path";
import { build } from "esbuild";
import { runTests } from "@vscode/test-electron";

async function main(): Promise<void> {
  const root = path.resolve(__dirname, "../..");
  const entry = path.join(root, "out-test/vscode/index.js");
  await build({
    entryPoints: [path.join(root, "test/vscode/index.ts")],
    outfile: entry,
    bundle: true, platform: "node", target: "node20", format: "cjs", external: ["vscode"], logLevel: "error",
  });
  await runTests({ version: "1.100.3", extensionDevelopmentPath: root, extensionTestsPath: entry });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
