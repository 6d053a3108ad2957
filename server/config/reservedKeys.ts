/**
 * JSON may name a key `__proto__`; a parsed object then holds it as an own key, but zod's records
 * and objects (and any `{ ...value }` copy) drop it without a word. Settings and team.json refuse
 * it by name instead of losing an entry silently. Pure.
 */
const RESERVED = "__proto__";
/** Deeper than any setting: a document nested further is not checked past it (zod still is). */
const MAX_DEPTH = 32;

/** The path to the first `__proto__` key in `value` (a parsed JSON document), or undefined. */
export function reservedKeyPath(value: unknown, depth = 0): (string | number)[] | undefined {
  if (value === null || typeof value !== "object" || depth >= MAX_DEPTH) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = reservedKeyPath(value[i], depth + 1);
      if (inner) return [i, ...inner];
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (key === RESERVED) return [key];
    const inner = reservedKeyPath((value as Record<string, unknown>)[key], depth + 1);
    if (inner) return [key, ...inner];
  }
  return undefined;
}

export const RESERVED_KEY_MESSAGE = `"${RESERVED}" cannot be a key (JavaScript reserves it, so the entry would be lost)`;
