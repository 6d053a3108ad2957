import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { DocumentTrees } from "../../../server/lsp/callSites/documentTrees";
import { findCallSitesSync, findInTree, initParsers, languageIdForPath, languageSpec, type CallSite } from "../../../server/lsp/callSites/index";
import { parse } from "../../../server/lsp/callSites/parsers";
import { ParsedText } from "../../../server/lsp/callSites/parsedText";
import { lensesFor, resolveLens } from "../../../server/lsp/codeLenses";
import { PriceBook } from "../../../server/metering/prices";

const FIXTURES = path.join(__dirname, "../../fixtures/callsites");

/**
 * A file whose call sites read names declared far from them: a module constant, a `let` assigned
 * once elsewhere, a helper's return, a parameter, a local template. Editing a declaration changes
 * the lenses of calls in other functions; editing a call's own function changes only its lens.
 */
const TS_DOC = `import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand as Invoke } from "@aws-sdk/client-bedrock-runtime";
const client = new BedrockRuntimeClient({});
const MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
const HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
let limit;
limit = 300;
function body(text: string) {
  return { anthropic_version: "bedrock-2023-05-31", max_tokens: 200, messages: [{ role: "user", content: text }] };
}
export async function first(input: string) {
  const label = \`first \${input} done\`;
  let total;
  total = 64;
  return client.send(new ConverseCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: label }] }], inferenceConfig: { maxTokens: total } }));
}
export async function second(input: string) {
  const note = "a fixed prompt for the second call";
  return client.send(new Invoke({ modelId: HAIKU, body: JSON.stringify(body(note)) }));
}
export async function third(MODEL: string) {
  return client.send(new ConverseCommand({ modelId: MODEL, messages: [{ role: "user", content: [{ text: "third" }] }], inferenceConfig: { maxTokens: limit } }));
}
export async function fourth() {
  const prompt = "fourth prompt";
  return client.converse({ modelId: HAIKU, messages: [{ role: "user", content: [{ text: prompt }] }] });
}
`;

const PY_DOC = `import json
import boto3

runtime = boto3.client("bedrock-runtime")
MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
LIMIT = 300


def body(text):
    return {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200, "messages": [{"role": "user", "content": text}]}


def first(question):
    label = f"first {question} done"
    total = 64
    return runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": label}]}], inferenceConfig={"maxTokens": total})


def second(question):
    note = "a fixed prompt for the second call"
    return runtime.invoke_model(modelId=HAIKU, body=json.dumps(body(note)))


def third(MODEL):
    return runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "third"}]}], inferenceConfig={"maxTokens": LIMIT})
`;

/**
 * Blocks whose indentation decides what the calls read: a class whose method reads a module constant,
 * a local shadowing it, assignments in an `if`. Un-indenting a line ends its block: the lines after it
 * become top-level statements, binding names that calls in other functions read.
 */
const PY_BLOCKS = `import boto3

runtime = boto3.client("bedrock-runtime")
MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"


class Agent:
    limit = 128

    def ask(self, question):
        if question:
            prompt = f"Answer: {question}"
        else:
            prompt = "Nothing asked"
        return runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": prompt}]}], inferenceConfig={"maxTokens": 256})


def local():
    MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    size = 64
    return runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "local"}]}], inferenceConfig={"maxTokens": size})


def module_level():
    return runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "top"}]}])
`;

/** What an editor shows: every lens resolved (title, range). */
function shown(sites: ReturnType<typeof findCallSitesSync>, prices: PriceBook): unknown {
  return lensesFor("file:///doc", sites).map((lens) => resolveLens(lens, prices));
}

/** Typed text: names (those the sites read among them), blanks, and what changes structure. */
const TYPED = ["x", "MODEL", "HAIKU", "limit", "LIMIT", "total", "label", "note", "body", "input", "question", "const ", "let ", "var ", "def ", " ", "7", "_2", "\n", "  ", "{", "}", "(", ")", '"', "`", ";", " = ", "// ", "#"];

/** An edit at a name's start or end (where typing changes what a name is), or anywhere. */
const editArb: fc.Arbitrary<Edit> = fc.record({
  anchor: fc.nat(),
  atName: fc.boolean(),
  atEnd: fc.boolean(),
  remove: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 7, max: 40 })),
  typed: fc.constantFrom(...TYPED),
});

interface Edit {
  anchor: number;
  atName: boolean;
  atEnd: boolean;
  remove: number;
  typed: string;
}

function apply(text: string, e: Edit): string {
  let at = e.anchor % (text.length + 1);
  if (e.atName) {
    const names = [...text.matchAll(/[A-Za-z_$][\w$]*/g)];
    const m = names[e.anchor % Math.max(1, names.length)];
    if (m) at = m.index + (e.atEnd ? m[0].length : 0);
  }
  return text.slice(0, at) + e.typed + text.slice(Math.min(text.length, at + e.remove));
}

/** Typed at a line's start or inside its indentation: lines un-indented, re-indented, blocks opened or closed. */
const LINE_TYPED = ["x", "MODEL", "size", "prompt", " ", "  ", "    ", "\t", "#", "pass", "\n", "if x:\n", "else:\n", "def f():\n"];

/** At a line (`line`-th, wrapping) in its indentation (column at most its indent), cutting up to 8 characters. */
const lineEditArb: fc.Arbitrary<LineEdit> = fc.record({
  line: fc.nat(),
  column: fc.nat({ max: 8 }),
  remove: fc.constantFrom(0, 0, 1, 2, 4, 8),
  typed: fc.constantFrom(...LINE_TYPED),
});

interface LineEdit {
  line: number;
  column: number;
  remove: number;
  typed: string;
}

function applyAtLine(text: string, e: LineEdit): string {
  const starts = [0, ...[...text.matchAll(/\n/g)].map((m) => m.index + 1)];
  const start = starts[e.line % starts.length]!;
  const indent = /^[ \t]*/.exec(text.slice(start))![0].length;
  const at = start + Math.min(e.column, indent);
  return text.slice(0, at) + e.typed + text.slice(Math.min(text.length, at + e.remove));
}

/**
 * The same document edited alongside, every site read from scratch on each tree: what DocumentTrees
 * must answer. The tree is reparsed as DocumentTrees does it (ParsedText: the same edits give the same
 * tree), because on text with syntax errors tree-sitter's recovery after an edit may differ from a fresh parse's.
 */
class FromScratch {
  private readonly parsed: ParsedText;
  constructor(private readonly languageId: string, text: string) {
    this.parsed = new ParsedText(languageSpec(languageId)!.grammar, text);
  }
  sitesAfter(text: string): { sites: CallSite[]; fresh: CallSite[] | undefined } {
    const spec = languageSpec(this.languageId)!;
    this.parsed.update(text).delete();
    const full = parse(spec.grammar, text);
    try {
      // Without syntax errors the incremental tree is the fresh one: the lenses must be a fresh parse's too.
      return { sites: findInTree(spec, this.parsed.tree, text), fresh: full.rootNode.hasError ? undefined : findInTree(spec, full, text) };
    } finally {
      full.delete();
    }
  }
  delete(): void {
    this.parsed.delete();
  }
}

describe("lsp: lenses after edits reuse what an edit cannot change, and equal a fresh parse's", () => {
  before(() => initParsers());
  const prices = new PriceBook();

  /** Applies `edits` one by one: after each, the document's incremental lenses equal those of a read from scratch (and of a fresh parse). */
  function editsMatchFresh<E extends { typed: string }>(languageId: string, doc: string, edits: E[], applyEdit: (text: string, e: E) => string): void {
    const trees = new DocumentTrees();
    const scratch = new FromScratch(languageId, doc);
    try {
      let text: string = doc;
      assert.deepEqual(shown(trees.callSites("file:///doc", languageId, text), prices), shown(findCallSitesSync(text, languageId), prices));
      for (const e of edits) {
        text = applyEdit(text, e);
        const incremental = trees.callSites("file:///doc", languageId, text);
        const { sites, fresh } = scratch.sitesAfter(text);
        assert.deepEqual(incremental, sites, `after typing ${JSON.stringify(e.typed)}: ${text}`);
        assert.deepEqual(shown(incremental, prices), shown(sites, prices));
        if (fresh) assert.deepEqual(incremental, fresh, `fresh parse, after typing ${JSON.stringify(e.typed)}: ${text}`);
      }
    } finally {
      trees.clear();
      scratch.delete();
    }
  }

  for (const [name, languageId, doc] of [["TypeScript", "typescript", TS_DOC], ["Python", "python", PY_DOC]] satisfies [string, string, string][]) {
    it(`${name}: after any series of edits (names typed or cut at their ends, declarations changed, brackets, quotes), every lens equals a fresh full parse's`, () => {
      fc.assert(
        fc.property(fc.array(editArb, { minLength: 1, maxLength: 25 }), (edits) => editsMatchFresh(languageId, doc, edits, apply)),
        { numRuns: 60, seed: 10 },
      );
    });
  }

  for (const [name, doc] of [["PY_DOC", PY_DOC], ["PY_BLOCKS", PY_BLOCKS]] satisfies [string, string][]) {
    it(`Python (${name}): after any series of edits at lines' starts and in their indentation mixed with others (blocks un-indented, re-indented, opened), every lens equals a fresh full parse's`, () => {
      const edit = fc.oneof(lineEditArb.map((e) => ({ at: "line" as const, ...e })), editArb.map((e) => ({ at: "any" as const, ...e })));
      fc.assert(
        fc.property(fc.array(edit, { minLength: 1, maxLength: 25 }), (edits) =>
          editsMatchFresh("python", doc, edits, (text, e) => (e.at === "line" ? applyAtLine(text, e) : apply(text, e))),
        ),
        { numRuns: 60, seed: 11 },
      );
    });
  }

  it("Python: a character typed at column 0 of an indented line (the rest of its block un-indented) re-reads the calls it reached and keeps the others' reading", () => {
    const trees = new DocumentTrees();
    try {
      const before = trees.callSites("file:///doc", "python", PY_DOC);
      const edited = PY_DOC.replace("\n    total = 64\n", "\nx    total = 64\n");
      const after = trees.callSites("file:///doc", "python", edited);
      const scratch = new FromScratch("python", PY_DOC);
      try {
        assert.deepEqual(after, scratch.sitesAfter(edited).sites);
      } finally {
        scratch.delete();
      }
      assert.equal(after.length, 3);
      // first()'s call is now top-level code after the error: read again. second() and third() are untouched.
      assert.notEqual(after[0]!.assumptions, before[0]!.assumptions);
      assert.equal(after[1]!.assumptions, before[1]!.assumptions, "second(): its reading kept");
      assert.equal(after[2]!.assumptions, before[2]!.assumptions, "third(): its reading kept");
      // Taken out again: the lenses are the original file's.
      assert.deepEqual(trees.callSites("file:///doc", "python", PY_DOC), findCallSitesSync(PY_DOC, "python"));
    } finally {
      trees.clear();
    }
  });

  for (const [name, languageId, doc, line] of [["TypeScript", "typescript", TS_DOC, "  let total;"], ["Python", "python", PY_DOC, "    total = 64"]] satisfies [string, string, string, string][]) {
    for (const [keys, typed] of [["Enter", `\n${/^\s*/.exec(line)![0]}`], ["a bracket pair", "()"], ["a quote pair", '""']]) {
      it(`${name}: ${keys} typed at a line's end in one function, then taken out, keeps the reading of the calls in the others`, () => {
        const trees = new DocumentTrees();
        const scratch = new FromScratch(languageId, doc);
        try {
          const before = trees.callSites("file:///doc", languageId, doc);
          const entered = doc.replace(line, `${line}${typed}`);
          const after = trees.callSites("file:///doc", languageId, entered);
          assert.deepEqual(after, scratch.sitesAfter(entered).sites);
          // Every call outside first() keeps what it read (the same facts, not read again).
          for (let i = 1; i < before.length; i++) assert.equal(after[i]!.assumptions, before[i]!.assumptions, `call ${i} kept`);
          const back = trees.callSites("file:///doc", languageId, doc);
          assert.deepEqual(back, findCallSitesSync(doc, languageId));
          for (let i = 1; i < before.length; i++) assert.equal(back[i]!.assumptions, before[i]!.assumptions, `call ${i} kept after the undo`);
        } finally {
          trees.clear();
          scratch.delete();
        }
      });
    }
  }

  it("two calls starting at the same place (a chain, or what error recovery makes of a broken line) both keep their lenses after an edit elsewhere", () => {
    const trees = new DocumentTrees();
    try {
      const doc = PY_DOC.replace("return runtime.invoke_model(", "return runtime.converse(modelId=MODEL, messages=[]).invoke_model(");
      const before = trees.callSites("file:///doc", "python", doc);
      assert.deepEqual(before.map((s) => s.operation), ["converse", "converse", "invoke_model", "converse"]);
      const edited = doc.replace("LIMIT = 300", "LIMIT = 3000");
      assert.deepEqual(trees.callSites("file:///doc", "python", edited), findCallSitesSync(edited, "python"));
    } finally {
      trees.clear();
    }
  });

  it("a declaration edited in one statement changes the lens of a call in another function, and only the lenses it should", () => {
    const trees = new DocumentTrees();
    try {
      const before = trees.callSites("file:///doc", "typescript", TS_DOC);
      // `limit = 300` → `limit = 3000`: typed inside a literal, far from the call reading it.
      const edited = TS_DOC.replace("limit = 300;", "limit = 3000;");
      const after = trees.callSites("file:///doc", "typescript", edited);
      assert.deepEqual(after.map((s) => s.maxTokens), [64, 200, 3000, undefined]);
      assert.deepEqual(before.map((s) => s.maxTokens), [64, 200, 300, undefined]);
      assert.deepEqual(after, findCallSitesSync(edited, "typescript"));
      // The parameter named MODEL shadows the constant in third(): renaming the constant leaves third() unknown and first() too.
      const renamed = edited.replace('const MODEL = "', 'const MODELS = "');
      const sites = trees.callSites("file:///doc", "typescript", renamed);
      assert.deepEqual(sites.map((s) => s.modelId), [undefined, "us.anthropic.claude-haiku-4-5-20251001-v1:0", undefined, "us.anthropic.claude-haiku-4-5-20251001-v1:0"]);
      assert.deepEqual(sites, findCallSitesSync(renamed, "typescript"));
    } finally {
      trees.clear();
    }
  });

  it("a call appears when the keyword before it is completed, and goes when it is cut (a name that was no call's becomes one)", () => {
    const trees = new DocumentTrees();
    try {
      const doc = TS_DOC.replace("return client.converse(", "return client.conv(").replace("client.send(new Invoke(", "client.send(ne Invoke(");
      assert.equal(trees.callSites("file:///doc", "typescript", doc).length, 2);
      const typed = doc.replace("client.send(ne Invoke(", "client.send(new Invoke(");
      const sites = trees.callSites("file:///doc", "typescript", typed);
      assert.deepEqual(sites.map((s) => s.operation), ["ConverseCommand", "InvokeModelCommand", "ConverseCommand"]);
      assert.deepEqual(sites, findCallSitesSync(typed, "typescript"));
      const method = typed.replace("return client.conv(", "return client.converse(");
      assert.deepEqual(trees.callSites("file:///doc", "typescript", method).map((s) => s.operation), ["ConverseCommand", "InvokeModelCommand", "ConverseCommand", "converse"]);
      const cut = method.replace("client.send(new Invoke(", "client.send(ne Invoke(");
      assert.deepEqual(trees.callSites("file:///doc", "typescript", cut), findCallSitesSync(cut, "typescript"));
      assert.equal(trees.callSites("file:///doc", "typescript", cut).length, 3);
    } finally {
      trees.clear();
    }
  });

  for (const file of ["sdkCommands.ts", "anthropicBedrock.ts", "aggregatedClient.js", "boto3_client.py", "anthropic_bedrock.py"]) {
    it(`${file}: after a series of typed names and cuts, the lenses equal a fresh parse's`, () => {
      const languageId = languageIdForPath(file)!;
      const doc = readFileSync(path.join(FIXTURES, file), "utf8");
      fc.assert(
        fc.property(fc.array(editArb, { minLength: 1, maxLength: 15 }), (edits) => {
          const trees = new DocumentTrees();
          const scratch = new FromScratch(languageId, doc);
          try {
            let text = doc;
            trees.callSites("file:///doc", languageId, text);
            for (const e of edits) {
              text = apply(text, e);
              const incremental = trees.callSites("file:///doc", languageId, text);
              const { sites, fresh } = scratch.sitesAfter(text);
              assert.deepEqual(incremental, sites, text);
              if (fresh) assert.deepEqual(incremental, fresh, text);
            }
          } finally {
            trees.clear();
            scratch.delete();
          }
        }),
        { numRuns: 25, seed: 7 },
      );
    });
  }
});
