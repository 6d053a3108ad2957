/**
 * Where the .wasm files are. Two layouts must work: running from source (tsx, tests) where they sit
 * in node_modules, and the bundle (out/server.js) where esbuild.js copies them to out/wasm/ because
 * the packaged extension ships no node_modules.
 */
import fs from "node:fs";
import path from "node:path";

export const WASM_FILES = {
  runtime: { pkg: "web-tree-sitter", file: "web-tree-sitter.wasm" },
  python: { pkg: "tree-sitter-python", file: "tree-sitter-python.wasm" },
  typescript: { pkg: "tree-sitter-typescript", file: "tree-sitter-typescript.wasm" },
  tsx: { pkg: "tree-sitter-typescript", file: "tree-sitter-tsx.wasm" },
} as const;

export type WasmName = keyof typeof WASM_FILES;

/**
 * First existing path among: `wasmDir` (the caller knows best), `<this file's dir>/wasm` (the bundle:
 * __dirname is out/), then node_modules/<pkg>/ in this directory and each parent (source layout).
 */
export function locateWasm(name: WasmName, wasmDir?: string, from: string = __dirname): string {
  const { pkg, file } = WASM_FILES[name];
  const candidates: string[] = [];
  if (wasmDir !== undefined) candidates.push(path.join(wasmDir, file));
  candidates.push(path.join(from, "wasm", file));
  for (let dir = from; ; dir = path.dirname(dir)) {
    candidates.push(path.join(dir, "node_modules", pkg, file));
    if (path.dirname(dir) === dir) break;
  }
  const found = candidates.find((p) => fs.existsSync(p));
  if (found === undefined) throw new Error(`${file} not found; looked in:\n  ${candidates.join("\n  ")}`);
  return found;
}
