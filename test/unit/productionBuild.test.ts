/** `node esbuild.js --production` (npm start, the bench, the VSIX) leaves no dev source map beside its bundles. */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { dropStaleMaps } = require(path.join(ROOT, "esbuild.js")) as { dropStaleMaps: (dirs: string[]) => void };

describe("the production build's stale source maps", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), "bb-maps-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("removes the .map files a dev build left in each output folder and keeps everything else", () => {
    const out = path.join(dir, "out");
    mkdirSync(path.join(out, "webview"), { recursive: true });
    mkdirSync(path.join(out, "wasm"));
    for (const f of ["cli.js", "cli.js.map", "server.js.map", "webview/dashboard.js", "webview/dashboard.js.map", "wasm/tree-sitter.wasm"]) writeFileSync(path.join(out, f), "x");

    dropStaleMaps([out, path.join(out, "webview"), path.join(dir, "never-built")]);

    assert.equal(existsSync(path.join(out, "cli.js.map")), false);
    assert.equal(existsSync(path.join(out, "server.js.map")), false);
    assert.equal(existsSync(path.join(out, "webview", "dashboard.js.map")), false);
    for (const kept of ["cli.js", "webview/dashboard.js", "wasm/tree-sitter.wasm"]) assert.ok(existsSync(path.join(out, kept)), `${kept} is kept`);
  });
});
