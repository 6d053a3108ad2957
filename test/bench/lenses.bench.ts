/**
 * Time to compute code lenses for one document (parse + find call sites + estimate every lens),
 * for generated TypeScript and Python files of 1K, 10K and 50K lines with a Bedrock call about
 * every 40 lines, from scratch and after a one-character edit in the middle of the file (the
 * language server keeps each document's tree and reparses incrementally: DocumentTrees).
 * The edit is what typing does: a character typed into the name of a line in the middle, after
 * its indentation (`v3` → `vx3`), then taken out again. A second column types it at column 0 of
 * that line instead: in Python that un-indents the line, a syntax error ending the function's block.
 * Reports a table; no assertions. Run: npx tsx test/bench/lenses.bench.ts
 */
import { performance } from "node:perf_hooks";
import { DocumentTrees } from "../../server/lsp/callSites/documentTrees";
import { findCallSitesSync, initParsers } from "../../server/lsp/callSites/index";
import { parse } from "../../server/lsp/callSites/parsers";
import { lensesFor, resolveLens } from "../../server/lsp/codeLenses";
import { PriceBook } from "../../server/metering/prices";

const SIZES = [1_000, 10_000, 50_000];
const RUNS = 5;

function tsFile(lines: number): string {
  const out = [
    'import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand as Invoke } from "@aws-sdk/client-bedrock-runtime";',
    "const client = new BedrockRuntimeClient({});",
    'const MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";',
  ];
  for (let i = 0; out.length < lines; i++) {
    out.push(
      `export async function task${i}(input: string, n: number): Promise<string> {`,
      `  const items = input.split(",").map((s) => s.trim()).filter(Boolean);`,
      `  let total = 0;`,
      `  for (const item of items) {`,
      `    if (item.length > n) total += item.length; else total -= 1;`,
      `  }`,
      `  const label = \`task ${i}: \${total} items\`;`,
      `  console.log(label, { total, n, when: new Date().toISOString() });`,
      ...Array.from({ length: 22 }, (_, k) => `  const v${k} = items.length * ${k} + total; // filler line ${k}`),
      i % 2 === 0
        ? `  const r = await client.send(new ConverseCommand({ modelId: MODEL, system: [{ text: "You are helpful." }], messages: [{ role: "user", content: [{ text: \`Summarize \${label} briefly please.\` }] }], inferenceConfig: { maxTokens: ${256 + i} } }));`
        : `  const r = await client.send(new Invoke({ modelId: "us.anthropic.claude-haiku-4-5-20251001-v1:0", body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 512, messages: [{ role: "user", content: "Classify: " + input }] }) }));`,
      `  return String(r.$metadata.httpStatusCode) + v0 + v21;`,
      `}`,
      ``,
    );
  }
  return out.slice(0, lines).join("\n");
}

function pyFile(lines: number): string {
  const out = ["import json", "import boto3", 'runtime = boto3.client("bedrock-runtime")', 'MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"'];
  for (let i = 0; out.length < lines; i++) {
    out.push(
      `def task_${i}(text, n):`,
      `    items = [s.strip() for s in text.split(",") if s.strip()]`,
      `    total = 0`,
      `    for item in items:`,
      `        total += len(item) if len(item) > n else -1`,
      `    label = f"task ${i}: {total} items"`,
      ...Array.from({ length: 22 }, (_, k) => `    v${k} = len(items) * ${k} + total  # filler line ${k}`),
      i % 2 === 0
        ? `    r = runtime.converse(modelId=MODEL, system=[{"text": "You are helpful."}], messages=[{"role": "user", "content": [{"text": f"Summarize {label} briefly."}]}], inferenceConfig={"maxTokens": ${256 + i}})`
        : `    r = runtime.invoke_model(modelId="us.anthropic.claude-haiku-4-5-20251001-v1:0", body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512, "messages": [{"role": "user", "content": "Classify: " + text}]}))`,
      `    return str(r) + str(v0 + v21)`,
      ``,
    );
  }
  return out.slice(0, lines).join("\n");
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Where the edit types: into a name after the line's indentation (as typing does), or at its column 0. */
export type EditPlace = "in-line" | "column 0";

/** The index typed at: in the first filler line after the middle of the file (both generators write one every ~40 lines). */
function editIndex(text: string, place: EditPlace): number {
  const lineStart = text.lastIndexOf("\n", text.indexOf("filler line", text.length >> 1)) + 1;
  // `  const v3 = …` / `    v3 = …`: after the `v` of the line's name.
  return place === "column 0" ? lineStart : text.indexOf(" v", lineStart) + 2;
}

/** Milliseconds to the priced lenses of `text` after a one-character edit in its middle, median of `runs`. */
export function afterEdit(languageId: string, text: string, runs: number, place: EditPlace = "in-line"): number {
  const prices = new PriceBook();
  const trees = new DocumentTrees();
  const times: number[] = [];
  try {
    trees.callSites("file:///bench", languageId, text);
    const at = editIndex(text, place);
    for (let run = 0; run < runs + 1; run++) {
      // Type one character into a filler line, then the next run takes it out again.
      const edited = run % 2 === 0 ? `${text.slice(0, at)}x${text.slice(at)}` : text;
      const a = performance.now();
      const lenses = lensesFor("file:///bench", trees.callSites("file:///bench", languageId, edited));
      for (const lens of lenses) resolveLens(lens, prices);
      if (run > 0) times.push(performance.now() - a);
    }
  } finally {
    trees.clear();
  }
  return median(times);
}

export const LENS_SIZES = SIZES;
export { pyFile, tsFile };

async function main(): Promise<void> {
  const t0 = performance.now();
  await initParsers();
  const initMs = performance.now() - t0;
  const prices = new PriceBook();
  const rows: string[][] = [];
  for (const [languageId, gen] of [["typescript", tsFile], ["python", pyFile]] as const) {
    for (const lines of SIZES) {
      const text = gen(lines);
      const parseOnly: number[] = [];
      const find: number[] = [];
      const resolve: number[] = [];
      let sites = 0;
      for (let run = 0; run < RUNS + 1; run++) {
        const p = performance.now();
        parse(languageId, text).delete();
        const pEnd = performance.now();
        const a = performance.now();
        const found = findCallSitesSync(text, languageId);
        const lenses = lensesFor("file:///bench", found);
        const b = performance.now();
        for (const lens of lenses) resolveLens(lens, prices);
        const c = performance.now();
        if (run === 0) continue; // warm-up (JIT, tokenizer tables)
        parseOnly.push(pEnd - p);
        find.push(b - a);
        resolve.push(c - b);
        sites = found.length;
      }
      const f = median(find);
      const r = median(resolve);
      const edit = afterEdit(languageId, text, RUNS);
      const column0 = afterEdit(languageId, text, RUNS, "column 0");
      rows.push([languageId, lines.toLocaleString("en-US"), `${(text.length / 1024).toFixed(0)} KiB`, String(sites), median(parseOnly).toFixed(1), f.toFixed(1), r.toFixed(1), (f + r).toFixed(1), edit.toFixed(1), column0.toFixed(1)]);
    }
  }
  const head = ["language", "lines", "size", "call sites", "(parse alone ms)", "parse+find ms", "estimate all ms", "total ms", "after an edit ms", "(typed at column 0 ms)"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ") + " |";
  console.log(`parser init (runtime + 3 grammars, once per process): ${initMs.toFixed(0)} ms; median of ${RUNS} runs after a warm-up\n`);
  console.log(line(head));
  console.log("|" + widths.map((w, i) => (i < 2 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|");
  for (const r of rows) console.log(line(r));
}

if (require.main === module) void main();
