/**
 * Entry point of call-site finding: text + language → CallSite[]. Parsing needs the wasm parsers
 * loaded once (`initParsers`); `findCallSites` awaits that, `findCallSitesSync` assumes it.
 */
import { initParsers, parse, type Grammar, type ParserOptions, type SyntaxTree } from "./parsers";
import { findPyCallSites } from "./pyFinder";
import { findTsCallSites } from "./tsFinder";
import type { Incremental } from "./reuse";
import type { CallSite, CallSiteLanguage } from "./types";

export type { CallSite, CallSiteApi, CallSiteLanguage, Position, Range } from "./types";
export { initParsers, parsersReady, type ParserOptions } from "./parsers";

/** LSP language ids (and file extensions, for callers without one) this module reads. */
interface LanguageSpec {
  grammar: Grammar;
  language: CallSiteLanguage;
}
const BY_LANGUAGE_ID: Record<string, LanguageSpec> = {
  typescript: { grammar: "typescript", language: "typescript" },
  // The TSX grammar is a superset of JavaScript (JSX included); the plain TypeScript grammar
  // would misread JSX and `<T>x` is not valid JavaScript anyway.
  typescriptreact: { grammar: "tsx", language: "typescript" },
  javascript: { grammar: "tsx", language: "javascript" },
  javascriptreact: { grammar: "tsx", language: "javascript" },
  python: { grammar: "python", language: "python" },
};
const BY_EXTENSION: Record<string, string> = {
  ts: "typescript", mts: "typescript", cts: "typescript", tsx: "typescriptreact",
  js: "javascript", mjs: "javascript", cjs: "javascript", jsx: "javascriptreact", py: "python", pyi: "python",
};

export const SUPPORTED_LANGUAGE_IDS: readonly string[] = Object.keys(BY_LANGUAGE_ID);

export function isSupportedLanguage(languageId: string): boolean {
  return Object.hasOwn(BY_LANGUAGE_ID, languageId);
}

/** How a language id is parsed and read; undefined for languages we do not read. */
export function languageSpec(languageId: string): LanguageSpec | undefined {
  return Object.hasOwn(BY_LANGUAGE_ID, languageId) ? BY_LANGUAGE_ID[languageId] : undefined;
}

/** Call sites in a parsed document; `inc`: reuse what an edit since the previous run cannot have changed (reuse.ts). */
export function findInTree(spec: LanguageSpec, tree: SyntaxTree, text: string, inc?: Incremental): CallSite[] {
  return spec.grammar === "python" ? findPyCallSites(tree.rootNode, text, inc) : findTsCallSites(tree.rootNode, text, spec.language, inc);
}

/** "src/app.py" → "python"; undefined for files we do not read. */
export function languageIdForPath(path: string): string | undefined {
  const ext = /\.([^./\\]+)$/.exec(path)?.[1]?.toLowerCase();
  return ext === undefined ? undefined : BY_EXTENSION[ext];
}

/** Call sites of one document; [] for languages we do not read. Parsers must be initialised. */
export function findCallSitesSync(text: string, languageId: string): CallSite[] {
  const spec = languageSpec(languageId);
  if (!spec) return [];
  const tree = parse(spec.grammar, text);
  try {
    return findInTree(spec, tree, text);
  } finally {
    tree.delete(); // wasm memory: not reclaimed by the JS garbage collector
  }
}

export async function findCallSites(text: string, languageId: string, options?: ParserOptions): Promise<CallSite[]> {
  if (!isSupportedLanguage(languageId)) return [];
  await initParsers(options);
  return findCallSitesSync(text, languageId);
}
