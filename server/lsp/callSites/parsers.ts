/**
 * One web-tree-sitter Parser per grammar, created once and reused: loading a grammar compiles a wasm
 * module (tens of ms), parsing is then synchronous. Initialisation is shared by concurrent callers.
 */
// `import = require` makes both tsx and esbuild pick web-tree-sitter's CommonJS build: its ESM build
// needs import.meta.url, which does not survive bundling to CJS.
import TreeSitter = require("web-tree-sitter");
import { locateWasm } from "./wasmFiles";

export type Grammar = "typescript" | "tsx" | "python";
export type SyntaxNode = TreeSitter.Node;
export type SyntaxTree = TreeSitter.Tree;

export interface ParserOptions {
  /** A folder holding all four .wasm files (overrides the search in wasmFiles.ts). */
  wasmDir?: string;
}

let loading: Promise<Map<Grammar, TreeSitter.Parser>> | undefined;
let ready: Map<Grammar, TreeSitter.Parser> | undefined;

/** Loads the runtime and the three grammars once; later calls return the same promise. */
export function initParsers(options: ParserOptions = {}): Promise<void> {
  loading ??= load(options).then((parsers) => (ready = parsers));
  // A failed load is not cached: a later call (e.g. after the files are fixed) tries again.
  loading.catch(() => (loading = undefined));
  return loading.then(() => undefined);
}

export function parsersReady(): boolean {
  return ready !== undefined;
}

/**
 * Parses with the cached parser; `oldTree` (already `edit()`ed to match `text`) is reused where the
 * edit left it intact. The caller must `tree.delete()` when done (wasm memory is not GC'd).
 */
export function parse(grammar: Grammar, text: string, oldTree?: SyntaxTree): SyntaxTree {
  const parser = ready?.get(grammar);
  if (!parser) throw new Error("call-site parsers not initialised: await initParsers() first");
  const tree = parser.parse(text, oldTree ?? null);
  if (!tree) throw new Error(`tree-sitter returned no tree for ${grammar}`);
  return tree;
}

async function load(options: ParserOptions): Promise<Map<Grammar, TreeSitter.Parser>> {
  const runtime = locateWasm("runtime", options.wasmDir);
  await TreeSitter.Parser.init({ locateFile: () => runtime });
  const parsers = new Map<Grammar, TreeSitter.Parser>();
  for (const grammar of ["typescript", "tsx", "python"] as const) {
    const language = await TreeSitter.Language.load(locateWasm(grammar, options.wasmDir));
    const parser = new TreeSitter.Parser();
    parser.setLanguage(language);
    parsers.set(grammar, parser);
  }
  return parsers;
}
