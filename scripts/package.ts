/**
 * `npm run package`: a clean production build, then `bedrock-budget.vsix`. The README's relative
 * links and images (docs/images/, kept out of the VSIX) are rewritten to the repository named in
 * package.json, as vsce does by itself for GitHub, so they also work for any other host.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { repository?: { url?: string } };
const repo = pkg.repository?.url?.replace(/\.git$/, "");
if (!repo || !/^https:\/\//.test(repo)) {
  process.stderr.write("npm run package: package.json needs repository.url (https://…): the README's images are linked from there\n");
  process.exit(1);
}

const run = (command: string, args: string[]) => {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
};
rmSync(path.join(ROOT, "out"), { recursive: true, force: true });
run(process.execPath, ["esbuild.js", "--production"]);
run(process.execPath, [
  path.join(ROOT, "node_modules/@vscode/vsce/vsce"), "package", "--no-dependencies", "--out", "bedrock-budget.vsix",
  "--baseContentUrl", `${repo}/blob/HEAD`, "--baseImagesUrl", `${repo}/raw/HEAD`,
]);
