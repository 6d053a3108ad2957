/** Keys a JSON text sets twice in one object (pure): the config file and team.json refuse them. */
import { createScanner, SyntaxKind } from "jsonc-parser";

/** Deeper than any setting (as reservedKeys.ts): keys nested further are not checked (zod refuses such a document: no setting nests that deep). */
const MAX_DEPTH = 32;

/**
 * The most keys reported: each is named by its path, and a 1 MiB team.json can set a key thousands
 * of times under a key of half a megabyte (every path a copy of it: the heap ran out, the gateway died).
 */
const MAX_REPORTED = 10;
/** Longest key shown in a path; a longer one is cut, marked with "…". */
const MAX_KEY_CHARS = 100;

/** An open object (its keys so far, and the key whose value is being read) or array (the index of the element being read). */
type Frame = { keys: Set<string>; at: string } | { keys: undefined; at: number };

/**
 * Keys set twice in one object of a JSON text, by path (`caps`, `caps[0].id`), the first MAX_REPORTED. JSON.parse keeps
 * the last silently: a second `"caps": []` would remove every cap the first listed. Read token by
 * token with a stack of its own, not by recursion: anyone who can write the team folder can write a
 * team.json nested a million levels deep, which a recursive walk answers with a stack overflow
 * (the gateway failed to start, and a live change was never reported as invalid).
 */
export function duplicateKeys(text: string): string[] {
  const found: string[] = [];
  const open: Frame[] = [];
  let depth = 0;
  let wantsKey = false; // the next string of the innermost open object is a key
  const scanner = createScanner(text, true);
  for (let token = scanner.scan(); token !== SyntaxKind.EOF; token = scanner.scan()) {
    if (token === SyntaxKind.OpenBraceToken || token === SyntaxKind.OpenBracketToken) {
      depth++;
      if (depth <= MAX_DEPTH) open.push(token === SyntaxKind.OpenBraceToken ? { keys: new Set(), at: "" } : { keys: undefined, at: 0 });
      wantsKey = token === SyntaxKind.OpenBraceToken;
      continue;
    }
    if (token === SyntaxKind.CloseBraceToken || token === SyntaxKind.CloseBracketToken) {
      if (depth <= MAX_DEPTH) open.pop();
      depth--;
      wantsKey = false;
      continue;
    }
    if (depth > MAX_DEPTH) continue;
    const top = open[open.length - 1];
    if (!top) continue;
    if (token === SyntaxKind.CommaToken) {
      if (top.keys) wantsKey = true;
      else top.at++;
    } else if (token === SyntaxKind.StringLiteral && top.keys && wantsKey) {
      const key = scanner.getTokenValue();
      wantsKey = false;
      top.at = key;
      if (top.keys.has(key)) {
        found.push(pathText(open.map((f) => f.at)));
        if (found.length === MAX_REPORTED) return found;
      }
      top.keys.add(key);
    }
  }
  return found;
}

function pathText(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${p.length > MAX_KEY_CHARS ? `${p.slice(0, MAX_KEY_CHARS)}…` : p}`)).join("");
}
