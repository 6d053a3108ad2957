/**
 * Text for a terminal, from strings others can write (a gateway's status, a team's cap names and
 * model globs, model ids and tags in the journal): their control characters are shown escaped,
 * never sent, so a string cannot move the cursor, hide the lines printed after it (ESC [8m) or
 * pass for a line of ours. Bidirectional overrides are escaped too (they reorder what is shown).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
const LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

function escaped(c: string): string {
  const code = c.codePointAt(0)!;
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One value: every control character escaped, line breaks and tabs included (a value is one line). */
export function printableValue(text: string): string {
  return text.replace(CONTROL, escaped);
}

/** A whole text we laid out: its line breaks and tabs kept, every other control character escaped. */
export function printableText(text: string): string {
  return text.replace(LAYOUT, escaped);
}

/** Every string in a parsed JSON value passed through printableValue (object keys included). */
export function withPrintableStrings<T>(value: T): T {
  if (typeof value === "string") return printableValue(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => withPrintableStrings(v)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [printableValue(k), withPrintableStrings(v)])) as T;
  }
  return value;
}
