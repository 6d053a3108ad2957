/**
 * The language-neutral result of evaluating an expression statically. Both finders (TS/JS and
 * Python) produce these, so request reading (request.ts) is written once.
 */
import type { Json } from "./types";

export type Value =
  /** `parts`: literal pieces in order; null marks a piece not knowable statically. */
  | { kind: "str"; parts: (string | null)[] }
  | { kind: "num"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "null" }
  /** `open`: an unknown spread (`...x`, `**x`) may add or override keys. */
  | { kind: "obj"; entries: Map<string, Value>; open: boolean }
  | { kind: "arr"; items: Value[]; open: boolean }
  /** JSON.stringify(x) / json.dumps(x): kept structured so a request body can be read. */
  | { kind: "json"; of: Value }
  | { kind: "unknown"; why: string };

export const unknown = (why: string): Value => ({ kind: "unknown", why });
export const str = (text: string): Value => ({ kind: "str", parts: [text] });

/** Concatenation as `+` does it when one side is a string; anything else is unknown. */
export function concat(a: Value, b: Value): Value {
  if (a.kind === "num" && b.kind === "num") return { kind: "num", value: a.value + b.value };
  if (a.kind !== "str" && b.kind !== "str") return unknown("not a string concatenation");
  return { kind: "str", parts: [...partsOf(a), ...partsOf(b)] };
}

/** The pieces a value contributes when interpolated into a string. */
export function partsOf(v: Value): (string | null)[] {
  if (v.kind === "str") return v.parts;
  if (v.kind === "num" || v.kind === "bool") return [String(v.value)];
  return [null];
}

export function isCompleteString(v: Value): v is { kind: "str"; parts: string[] } {
  return v.kind === "str" && v.parts.every((p) => p !== null);
}

export function stringOf(v: Value | undefined): string | undefined {
  return v !== undefined && isCompleteString(v) ? v.parts.join("") : undefined;
}

export function member(v: Value, key: string): Value {
  if (v.kind === "obj") return v.entries.get(key) ?? (v.open ? unknown(`${key} may come from a spread`) : unknown(`no ${key}`));
  if (v.kind === "arr" && /^\d+$/.test(key)) return v.items[Number(key)] ?? unknown(`no element ${key}`);
  return unknown(`${key} of a value not known statically`);
}

/** A JSON string literal body (`body: '{"max_tokens": 10}'`) read as the structure it encodes. */
export function parseJsonString(v: Value): Value | undefined {
  const text = stringOf(v);
  if (text === undefined) return undefined;
  try {
    return fromJson(JSON.parse(text) as Json);
  } catch {
    return undefined;
  }
}

export function fromJson(j: Json): Value {
  if (j === null) return { kind: "null" };
  if (typeof j === "string") return str(j);
  if (typeof j === "number") return { kind: "num", value: j };
  if (typeof j === "boolean") return { kind: "bool", value: j };
  if (Array.isArray(j)) return { kind: "arr", items: j.map(fromJson), open: false };
  return { kind: "obj", entries: new Map(Object.entries(j).map(([k, v]) => [k, fromJson(v)])), open: false };
}
