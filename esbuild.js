// Bundles every entry point into out/ (nothing from node_modules is needed at run time):
// the extension client (node, vscode external), the background server and the CLI (node),
// and the dashboard page (browser).
const esbuild = require("esbuild");

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");

const node = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  outdir: "out",
  sourcemap: !production,
  // Production: whitespace and syntax minified, names kept. Mangled names cost each process ~10 MB
  // of resident memory (the gateway listened at ~131 MB against ~120 MB, side by side), and keep
  // stack traces and CPU profiles readable.
  minifyWhitespace: production,
  minifySyntax: production,
  // jsonc-parser's `main` is a UMD build whose modules are required at run time by computed names,
  // which a bundle cannot resolve: its ES module build bundles.
  alias: { "jsonc-parser": "jsonc-parser/lib/esm/main.js" },
  logLevel: "warning",
};

/** @type {import('esbuild').BuildOptions[]} */
const builds = [
  { ...node, entryPoints: { extension: "client/extension.ts" }, external: ["vscode"] },
  { ...node, entryPoints: { server: "server/lsp/main.ts" } },
  { ...node, entryPoints: { cli: "server/cli.ts" } },
  {
    entryPoints: { dashboard: "webview/main.ts" },
    bundle: true,
    platform: "browser",
    target: "es2022",
    format: "iife",
    outdir: "out/webview",
    sourcemap: !production,
    minify: production,
    logLevel: "warning",
  },
];

const fs = require("node:fs");

// The language server parses code with web-tree-sitter, which loads .wasm files at run time: copy
// them next to the bundle (out/wasm/), where server/lsp/callSites/wasmFiles.ts looks first.
const path = require("node:path");
const WASM_FILES = [
  "web-tree-sitter/web-tree-sitter.wasm",
  "tree-sitter-python/tree-sitter-python.wasm",
  "tree-sitter-typescript/tree-sitter-typescript.wasm",
  "tree-sitter-typescript/tree-sitter-tsx.wasm",
];
function copyWasm() {
  fs.mkdirSync("out/wasm", { recursive: true });
  for (const file of WASM_FILES) fs.copyFileSync(path.join("node_modules", file), path.join("out/wasm", path.basename(file)));
}

/**
 * A production build writes no source maps, so the maps an earlier dev build left in `outdir`s
 * would map the new bundles' lines wrongly in a debugger or a stack trace: they go.
 */
function dropStaleMaps(dirs) {
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const file of fs.readdirSync(dir)) if (file.endsWith(".map")) fs.rmSync(path.join(dir, file));
  }
}

async function main() {
  copyWasm();
  if (production) dropStaleMaps(builds.map((options) => options.outdir));
  const contexts = await Promise.all(builds.map((options) => esbuild.context(options)));
  if (watch) {
    await Promise.all(contexts.map((ctx) => ctx.watch()));
    return;
  }
  await Promise.all(contexts.map((ctx) => ctx.rebuild()));
  await Promise.all(contexts.map((ctx) => ctx.dispose()));
}

// The build options are exported for test/unit/webviewBundle.test.ts, which checks what the page bundles.
module.exports = { builds, dropStaleMaps };

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
