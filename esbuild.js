// Bundles each entry point into one file under out/ (no node_modules needed at run time).
const esbuild = require("esbuild");

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");

/** @type {import('esbuild').BuildOptions[]} */
const builds = [
  {
    entryPoints: { cli: "server/cli.ts" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    outdir: "out",
    sourcemap: !production,
    minify: production,
    banner: { js: "#!/usr/bin/env node" },
    logLevel: "warning",
  },
];

async function main() {
  const contexts = await Promise.all(builds.map((options) => esbuild.context(options)));
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
