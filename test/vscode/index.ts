/**
 * Entry of the `vscode`-API suites, in the shape @vscode/test-electron expects of
 * `extensionTestsPath` (`run()` resolves when every test passed). The suites are imported here,
 * after mocha has set its globals, so one bundle carries them into any extension host.
 */
import Mocha from "mocha";

export interface HostResults {
  passes: string[];
  failures: Array<{ title: string; error: string }>;
}

export async function run(onResults?: (results: HostResults) => void): Promise<void> {
  const mocha = new Mocha({ ui: "bdd", color: false, timeout: 60_000 });
  mocha.suite.emit("pre-require", globalThis, "vscode-suites", mocha);
  await import("./suite/extension.test");
  const results: HostResults = { passes: [], failures: [] };
  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on("pass", (test) => results.passes.push(test.fullTitle()));
    runner.on("fail", (test, err: Error) => results.failures.push({ title: test.fullTitle(), error: err.stack ?? String(err) }));
  });
  onResults?.(results);
  if (results.failures.length > 0) throw new Error(`${results.failures.length} of ${results.passes.length + results.failures.length} tests failed`);
}
