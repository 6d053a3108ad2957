/**
 * A test-only extension that runs the `vscode`-API suites inside code-server's extension host
 * (which ignores --extensionTestsPath) and writes the results where the harness reads them:
 * the file named by $BB_HOST_RESULTS.
 */
import { writeFileSync } from "node:fs";
import { run, type HostResults } from "./index";

export function activate(): void {
  const file = process.env.BB_HOST_RESULTS;
  if (!file) return;
  const write = (results: HostResults) => writeFileSync(file, JSON.stringify(results, null, 2));
  run(write).catch((err: Error) => {
    // A failed test already wrote its results; anything else (the suite did not load) is written here.
    if (!/tests failed$/.test(err.message)) write({ passes: [], failures: [{ title: "loading the suites", error: err.stack ?? String(err) }] });
  });
}

export function deactivate(): void {}
