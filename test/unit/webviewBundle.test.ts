/** The dashboard page's bundle carries no LSP machinery: vscode-jsonrpc is ~53 KB of it minified, and the page needs none. */
import assert from "node:assert/strict";
import path from "node:path";
import * as esbuild from "esbuild";

const ROOT = path.resolve(__dirname, "..", "..");
// The production build's own options (esbuild.js), so the check follows any change to them.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { builds } = require(path.join(ROOT, "esbuild.js")) as { builds: esbuild.BuildOptions[] };

describe("the dashboard page's bundle (out/webview/dashboard.js)", function () {
  this.timeout(60_000);

  it("does not contain vscode-jsonrpc or any other LSP package", async () => {
    const page = builds.find((b) => b.platform === "browser");
    assert.ok(page, "esbuild.js builds the page for the browser");
    const result = await esbuild.build({ ...page, absWorkingDir: ROOT, write: false, metafile: true, minify: true, sourcemap: false, logLevel: "silent" });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((i) => i.endsWith("webview/dataSource.ts")), "the metafile lists the page's sources");
    assert.ok(inputs.some((i) => i.includes("node_modules/chart.js/")), "and the packages it bundles (the check is not blind)");
    assert.deepEqual(inputs.filter((i) => /node_modules\/vscode-(jsonrpc|languageserver|languageclient)/.test(i)), []);
  });
});
