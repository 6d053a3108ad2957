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
  minify: production,
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

// Entry points of features not yet in the tree are skipped, so each can land on its own.
const fs = require("node:fs");
const present = (b) => Object.values(b.entryPoints).every((file) => fs.existsSync(file));

async function main() {
  const contexts = await Promise.all(builds.filter(present).map((options) => esbuild.context(options)));
  if (watch) {
    await Promise.all(contexts.map((ctx) => ctx.watch()));
    return;
  }
  await Promise.all(contexts.map((ctx) => ctx.rebuild()));
  await Promise.all(contexts.map((ctx) => ctx.dispose()));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
