/** Keys a JSON text sets twice in one object (pure): the config file and team.json refuse them. */
import { visit, type JSONPath } from "jsonc-parser";

/**
 * Keys set twice in one object of a JSON text, by path (`caps`, `caps[0].id`). JSON.parse keeps
 * the last silently: a second `"caps": []` would remove every cap the first listed.
 */
export function duplicateKeys(text: string): string[] {
  const seen: Set<string>[] = [];
  const found: string[] = [];
  visit(text, {
    onObjectBegin: () => void seen.push(new Set()),
    onObjectEnd: () => void seen.pop(),
    onObjectProperty: (key, _offset, _length, _line, _column, parent) => {
      const keys = seen[seen.length - 1];
      if (keys?.has(key)) found.push(pathText([...parent(), key]));
      keys?.add(key);
    },
  });
  return found;
}

function pathText(path: JSONPath): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}
