// The journal's fast line check accepts exactly the lines zod's entry schema accepts, and checkEntry yields the same entry either way.
import assert from "node:assert/strict";
import fc from "fast-check";
import { isJournalEntry } from "../../../server/ledger/entryFastCheck";
import { checkEntry, entrySchema } from "../../../server/ledger/schema";

const OPERATIONS = ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "CountTokens", "ApplyGuardrail"];
const OUTCOMES = ["ok", "refused", "upstream-error", "cut", "client-aborted", "upstream-failed", "interrupted", "throttled", "quota-exceeded"];

/** Strings with the awkward cases in them: empty, astral characters, digits, a time, prototype names. */
const str = fc.oneof(fc.string(), fc.constantFrom("", "😀", "0", "12", "2026-11-22T09:00:00.000Z", "__proto__", "constructor", "toString"));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const time = fc.oneof(fc.date({ min: new Date("1970-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom("2026-11-22", "Sun, 22 Nov 2026 09:00:00 GMT"));
const picos = fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String), fc.constantFrom("0", "007"));
const count = fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER));
const tags = fc.dictionary(str, str, { maxKeys: 4 });

/** Drops the keys whose value is undefined, as JSON.stringify would. */
const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const common = {
  id: str.filter((s) => s.length > 0),
  at: time,
  user: str,
  tool: str,
  operation: fc.constantFrom(...OPERATIONS),
  modelId: str,
  caller: opt(str),
  callerProfile: opt(str),
  extra: opt(fc.jsonValue({ maxDepth: 2 })), // unknown fields are kept, never a reason to refuse
};

const reserve = fc
  .record({ ...common, baseModelId: opt(str), worstCasePicos: picos, capIds: fc.array(str, { maxLength: 3 }), tags: opt(tags) })
  .map((r) => defined({ type: "reserve", ...r }));

const settle = fc
  .record({
    ...common,
    startedAt: time,
    baseModelId: str,
    usage: fc.record({ inputTokens: count, outputTokens: count, cacheReadInputTokens: count, cacheWrite5mInputTokens: count, cacheWrite1hInputTokens: count }),
    usageEstimated: fc.boolean(),
    costPicos: picos,
    worstCasePicos: picos,
    outcome: fc.constantFrom(...OUTCOMES),
    status: fc.integer({ min: -1000, max: 1000 }),
    refusedBy: opt(str),
    requestId: opt(str),
    latencyMs: fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e12, noNaN: true })),
    tags,
    serviceTier: opt(str),
    message: opt(str),
    answeredBy: opt(str),
    actions: opt(fc.array(fc.record({ capId: str, action: fc.constantFrom("warn", "downgrade", "clamp"), detail: str }), { maxLength: 2 })),
    guardrail: opt(fc.record({ id: str, costPicos: picos, worstCasePicos: picos, units: count, unitsEstimated: fc.boolean() })),
  })
  .map((r) => defined({ type: "settle", ...r }));

const entry = fc.oneof(reserve, settle);

/** Values a mutation puts in a field: every JSON type, and near misses of the valid ones. */
const junk = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom("", "12.5", "-1", "1e3", " 12", "12\n", "yesterday", "reserve", "settle", "Warn", "OK", -1, 1.5, -0, 2 ** 53, 1e308, null, true, [], {}, [1], { capId: "c", action: "warn" }),
);

type Json = unknown;
/** Every path into a value (objects' keys and arrays' indices), the value itself first. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

/** A copy of `v` with the value at `path` replaced (or, `remove`, deleted). */
function mutate(v: Json, path: (string | number)[], replacement: Json, remove: boolean): Json {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(v)) {
    const copy = [...(v as Json[])];
    if (rest.length === 0 && remove) copy.splice(head as number, 1);
    else copy[head as number] = mutate(copy[head as number], rest, replacement, remove);
    return copy;
  }
  const copy = { ...(v as Record<string, Json>) };
  if (rest.length === 0 && remove) delete copy[head];
  else copy[head] = mutate(copy[head], rest, replacement, remove);
  return copy;
}

const mutated = fc
  .tuple(entry, fc.nat(), junk, fc.boolean(), fc.nat(3))
  .map(([e, n, replacement, remove, times]) => {
    let v: Json = e;
    for (let i = 0; i <= times; i++) {
      const all = paths(v);
      v = mutate(v, all[(n + i * 7) % all.length]!, replacement, remove);
    }
    return v;
  });

/** A value as the journal sees it: a JSON line, parsed. */
const asLine = (v: Json) => JSON.parse(JSON.stringify(v)) as unknown;

function agrees(value: unknown): void {
  const zod = entrySchema.safeParse(value).success;
  assert.equal(isJournalEntry(value), zod, `fast check and zod disagree on ${JSON.stringify(value)}`);
  const checked = checkEntry(value);
  assert.equal(checked.ok, zod);
  if (checked.ok) assert.equal(checked.entry, value); // the line as written
}

describe("ledger: the fast journal line check mirrors the zod schema", () => {
  it("accepts every generated valid line, yielding the line itself", () => {
    fc.assert(
      fc.property(entry.map(asLine), (value) => {
        assert.equal(isJournalEntry(value), true, JSON.stringify(value));
        agrees(value);
      }),
      { numRuns: 3000 },
    );
  });

  it("agrees with zod on mutated lines (a field replaced by any JSON value or removed, up to four times)", () => {
    fc.assert(fc.property(mutated.map(asLine), agrees), { numRuns: 20000 });
  });

  it("agrees with zod on any JSON value and on the edge cases of each rule", () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), agrees), { numRuns: 3000 });
    const base = { type: "settle", id: "s", at: "2026-11-22T09:00:00.000Z", startedAt: "2026-11-22T09:00:00.000Z", user: "u", tool: "t", operation: "Converse", modelId: "m", baseModelId: "m", usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 }, usageEstimated: false, costPicos: "1", worstCasePicos: "2", outcome: "ok", status: 200, latencyMs: 3, tags: {} };
    const lines = [
      '{"__proto__":{"type":"settle"},"type":"reserve","id":"r","at":"2026-11-22T09:00:00Z","user":"u","tool":"t","operation":"Converse","modelId":"m","worstCasePicos":"1","capIds":[]}',
      JSON.stringify(base).replace('"tags":{}', '"tags":{"__proto__":1}'),
      JSON.stringify(base).replace('"tags":{}', '"tags":{"constructor":"x"}'),
      JSON.stringify(base).replace('"latencyMs":3', '"latencyMs":1e400'),
      JSON.stringify(base).replace('"latencyMs":3', '"latencyMs":-0'),
      JSON.stringify(base).replace('"status":200', '"status":9007199254740992'),
      JSON.stringify(base).replace('"inputTokens":1', '"inputTokens":-0'),
      JSON.stringify(base).replace('"inputTokens":1', '"inputTokens":1.0'),
      JSON.stringify(base).replace('"id":"s"', '"id":""'),
      JSON.stringify({ ...base, actions: [] }),
      JSON.stringify({ ...base, actions: [{ capId: "c", action: "clamp", detail: "", more: 1 }] }),
      JSON.stringify({ ...base, usage: [] }),
      JSON.stringify({ ...base, guardrail: { id: "", costPicos: "0", worstCasePicos: "007", units: 0, unitsEstimated: false, more: 1 } }),
      JSON.stringify({ ...base, guardrail: null }),
      JSON.stringify({ ...base, guardrail: [] }),
      JSON.stringify({ ...base, guardrail: { id: "g", costPicos: "1", worstCasePicos: "2", units: 1.5, unitsEstimated: true } }),
      JSON.stringify({ ...base, guardrail: { id: "g", costPicos: "1", worstCasePicos: "2", units: 3 } }),
      JSON.stringify({ ...base, guardrail: { id: "g", costPicos: 1, worstCasePicos: "2", units: 3, unitsEstimated: true } }),
      JSON.stringify(base).replace('"tags":{}', '"tags":{},"guardrail":{"id":"g","costPicos":"1","worstCasePicos":"2","units":-0,"unitsEstimated":true}'),
      "null",
      "[]",
      '"settle"',
    ];
    for (const line of lines) agrees(JSON.parse(line));
  });
});
