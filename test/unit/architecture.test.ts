import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

// The layering the code relies on, checked over the import statements of every source file.
const ROOT = path.resolve(__dirname, "..", "..");

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts"))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join("/"));
}

/** Each module a file imports (static, type-only, re-exports, dynamic): repo paths for relative ones, package names otherwise. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|require\(\s*["']([^"']+)["']\s*\)/g)].map(
    (m) => (m[1] ?? m[2] ?? m[3])!,
  );
  return specs.map((s) => (s.startsWith(".") ? path.posix.normalize(path.posix.join(path.posix.dirname(file), s)) : s));
}

function violations(files: string[], allowed: (target: string) => boolean): string[] {
  return files.flatMap((f) => importsOf(f).filter((t) => !allowed(t)).map((t) => `${f} imports ${t}`));
}

const isUnder = (dir: string) => (target: string) => target === dir || target.startsWith(`${dir}/`);
// money.ts (exact dollar arithmetic) imports nothing, so the editor and the gateway can share it.
const SHARED = (t: string) => t === "server/protocol" || t === "server/metering/money" || isUnder("server/shared")(t);

describe("architecture: who may import what", () => {
  it("reads the imports it checks (the parser is not blind)", () => {
    assert.ok(importsOf("server/gateway/gateway.ts").includes("server/ledger/ledger"));
    assert.ok(importsOf("client/extension.ts").includes("vscode"));
  });

  it("server/team/ and server/dashboard/ import nothing from server/gateway/", () => {
    assert.deepEqual(violations([...sources("server/team"), ...sources("server/dashboard")], (t) => !isUnder("server/gateway")(t)), []);
  });

  it("server/protocol.ts owns its types: it imports only the JSON-RPC / LSP protocol packages and the API's paths it re-exports", () => {
    const allowed = (t: string) => t === "vscode-jsonrpc" || t === "vscode-languageserver-protocol" || t === "server/shared/apiPaths";
    assert.deepEqual(violations(["server/protocol.ts"], allowed), []);
  });

  it("the API's paths import nothing, so the dashboard page can use them without bundling vscode-jsonrpc", () => {
    assert.deepEqual(importsOf("server/shared/apiPaths.ts"), []);
  });

  it("client/ and webview/ import from server/ only the contract and the shared formatting", () => {
    assert.deepEqual(violations([...sources("client"), ...sources("webview")], (t) => !t.startsWith("server/") || SHARED(t)), []);
  });

  it("the shared formatting imports only the contract and itself (no I/O, no packages)", () => {
    assert.deepEqual(violations(sources("server/shared"), SHARED), []);
    assert.deepEqual(importsOf("server/metering/money.ts"), []);
  });

  it("the pure core (server/budget/) imports no gateway, team store, ledger I/O or LSP", () => {
    const io = ["server/gateway", "server/team", "server/lsp", "server/dashboard", "server/ledger/ledger", "server/ledger/journal"];
    assert.deepEqual(violations(sources("server/budget"), (t) => !io.some((d) => isUnder(d)(t)) && !t.startsWith("node:")), []);
  });
});
