/**
 * Property-based tests (fast-check) over the gateway's inputs: more than 10,000 generated bad
 * requests — garbled paths, bad model ids, bad or missing signatures, malformed bodies of every
 * operation — over raw HTTP/1.1 and HTTP/2. None may crash the process, none may reach Bedrock,
 * and memory stays bounded. Requests that must get past authentication are signed correctly, so
 * the model id and body checks behind it are exercised.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import fc from "fast-check";
import { FakeBedrock } from "../support/fakeBedrock";
import { CREDENTIALS } from "../support/harness";
import { H2Client, sendH1, type Outgoing, type Reply } from "./rawHttp";
import { cleanup, GatewayProcess, HAIKU_3, MiB, signFor, tempDir, type RawRequest } from "./support";

type Op = "InvokeModel" | "InvokeModelWithResponseStream" | "Converse" | "ConverseStream" | "CountTokens" | "ApplyGuardrail";
const OPS: Op[] = ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "CountTokens", "ApplyGuardrail"];
const SUFFIX: Record<Exclude<Op, "ApplyGuardrail">, string> = {
  InvokeModel: "invoke",
  InvokeModelWithResponseStream: "invoke-with-response-stream",
  Converse: "converse",
  ConverseStream: "converse-stream",
  CountTokens: "count-tokens",
};

const RUNS = { paths: [2000, 1000], modelIds: [1500, 1000], auth: [1500, 1000], bodies: [1500, 1000] } as const;

function pathOf(op: Op, modelId = HAIKU_3): string {
  return op === "ApplyGuardrail" ? "/guardrail/gr-reliability/version/1/apply" : `/model/${encodeURIComponent(modelId)}/${SUFFIX[op]}`;
}

const converseBody = { messages: [{ role: "user", content: [{ text: "hello" }] }], inferenceConfig: { maxTokens: 100 } };

/** A body Bedrock accepts for the operation. */
function validBody(op: Op): Record<string, unknown> {
  switch (op) {
    case "InvokeModel":
    case "InvokeModelWithResponseStream":
      return { anthropic_version: "bedrock-2023-05-31", max_tokens: 100, messages: [{ role: "user", content: "hello" }] };
    case "Converse":
    case "ConverseStream":
      return converseBody;
    case "CountTokens":
      return { input: { converse: { messages: converseBody.messages } } };
    case "ApplyGuardrail":
      return { source: "INPUT", content: [{ text: { text: "hello" } }] };
  }
}

// ---------------------------------------------------------------------------------------------
// Generators

const opArb = fc.constantFrom(...OPS);
const modelOpArb = fc.constantFrom(...OPS.filter((o): o is Exclude<Op, "ApplyGuardrail"> => o !== "ApplyGuardrail"));
const methodArb = fc.constantFrom("POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD");

/** Bytes outside what a Bedrock model id may hold ([A-Za-z0-9-:._] and '/' only inside an ARN). */
const forbiddenInId = fc.oneof(
  fc.constantFrom(..." !\"#$%&'()*+,;<=>?@[\\]^`{|}~"),
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.constant("\x7f"),
  fc.constantFrom("é", "中", "😀", "\u202e", "\ufeff"),
);
const idChars = fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-.:"), minLength: 1, maxLength: 40 });

/** Model ids that cannot be Bedrock model ids: traversal, forbidden bytes, over 2,048 characters. */
const badModelIdArb = fc.oneof(
  fc.tuple(idChars, fc.constantFrom("../../admin", "../", "/..", "a/../b", "./x", "../../../etc/passwd", "..\\..\\admin"), fc.string({ maxLength: 10 }))
    .map(([a, t, b]) => `${a}${t}${b}`),
  fc.tuple(idChars, forbiddenInId, idChars).map(([a, c, b]) => `${a}${c}${b}`),
  fc.tuple(idChars, fc.integer({ min: 2049, max: 8000 })).map(([a, n]) => a.repeat(Math.ceil(n / a.length)).slice(0, n)),
);

/** Paths that name no operation the gateway forwards (the local API's prefix excluded). */
const garbledPathArb = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }).map((s) => `/${s}`),
  fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 })).map(([a, b]) => `/model/${a}/${b}-${b}x`),
  fc.tuple(fc.constantFrom("%", "%z", "%zz", "%F0%28", "%C0%AF", "%00", "%%", "%2", "%u0041"), idChars)
    .map(([bad, id]) => `/model/${id}${bad}/invoke`),
  fc.constantFrom("/model//invoke", "/model/x/invoke/extra", "/guardrail//version//apply", "/async-invoke", "/model/x/invoke-with-bidirectional-stream", "//", "/.", "/model/%2e%2e/invoke", "*"),
).filter((p) => !p.includes("__bedrock-budget"));

const junkBody = fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)), fc.constant(Buffer.from(JSON.stringify(validBody("InvokeModel")))));

const INVALID_UTF8 = [[0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]];

/** Per operation, JSON that is well-formed but not a request Bedrock would take. */
function wrongShapes(op: Op): fc.Arbitrary<unknown> {
  const notArray = fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.constant(null), fc.constant({}), fc.boolean());
  const badCount = fc.oneof(fc.integer({ min: -1e9, max: -1 }), fc.constant("100"), fc.constant([]), fc.constant({}), fc.constant(true));
  switch (op) {
    case "InvokeModel":
    case "InvokeModelWithResponseStream":
      return fc.oneof(
        badCount.map((m) => ({ ...validBody(op), max_tokens: m })),
        notArray.map((m) => ({ ...validBody(op), messages: m })),
      );
    case "Converse":
    case "ConverseStream":
      return fc.oneof(
        notArray.map((m) => ({ ...converseBody, messages: m })),
        badCount.map((m) => ({ ...converseBody, inferenceConfig: { maxTokens: m } })),
        notArray.filter((v) => v !== null && typeof v !== "object").map((c) => ({ ...converseBody, inferenceConfig: c })),
      );
    case "CountTokens":
      return fc.oneof(
        fc.constant({}),
        notArray.filter((v) => !(typeof v === "object" && v !== null)).map((v) => ({ input: v })),
        fc.constant({ input: {} }),
        notArray.map((v) => ({ input: { converse: v } })),
      );
    case "ApplyGuardrail":
      return fc.oneof(
        fc.oneof(fc.constant("SIDEWAYS"), fc.integer(), fc.constant(null)).map((s) => ({ ...validBody(op), source: s })),
        notArray.map((c) => ({ source: "INPUT", content: c })),
      );
  }
}

type BodyFault = "truncated-json" | "broken-json" | "not-json" | "invalid-utf8" | "not-an-object" | "huge-number" | "deep-nesting" | "wrong-shape";

/** Bodies that are not a valid request of `op`, as bytes, each with what is wrong with it. */
function badBodyArb(op: Op): fc.Arbitrary<[BodyFault, Buffer]> {
  const valid = JSON.stringify(validBody(op));
  const tag = (fault: BodyFault) => (b: Buffer): [BodyFault, Buffer] => [fault, b];
  return fc.oneof(
    // Malformed JSON: every proper prefix of an object's text is invalid.
    fc.integer({ min: 1, max: valid.length - 1 }).map((n) => Buffer.from(valid.slice(0, n))).map(tag("truncated-json")),
    fc.tuple(fc.integer({ min: 0, max: valid.length }), fc.constantFrom("{", "}", ",", ":", "\"", "]", "'", "\\", "NaN"))
      .map(([i, c]) => Buffer.from(`${valid.slice(0, i)}${c}${valid.slice(i)}`))
      .filter((b) => !isJson(b))
      .map(tag("broken-json")),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)).filter((b) => !isJson(b)).map(tag("not-json")),
    // Invalid UTF-8 inside a string value.
    fc.constantFrom(...INVALID_UTF8).map((bytes) => {
      const at = valid.indexOf("hello");
      return Buffer.concat([Buffer.from(valid.slice(0, at)), Buffer.from(bytes), Buffer.from(valid.slice(at))]);
    }).map(tag("invalid-utf8")),
    // Not an object at the top.
    fc.oneof(fc.array(fc.integer(), { maxLength: 5 }), fc.integer(), fc.string(), fc.constant(null), fc.boolean())
      .map((v) => Buffer.from(JSON.stringify(v)))
      .map(tag("not-an-object")),
    // Huge and non-finite numbers where a count or a text goes.
    fc.constantFrom("1e400", "-1e400", "99999999999999999999999999999999999999").map((n) =>
      Buffer.from(valid.replace('"maxTokens":100', `"maxTokens":${n}`).replace('"max_tokens":100', `"max_tokens":${n}`).replace('"text":"hello"', `"text":${n}`)),
    ).map(tag("huge-number")),
    // Deep nesting: unbalanced (invalid JSON) or a balanced array at the top (not an object).
    fc.integer({ min: 1_000, max: 100_000 }).map((n) => Buffer.from("{\"a\":".repeat(n))).map(tag("deep-nesting")),
    fc.integer({ min: 1_000, max: 100_000 }).map((n) => Buffer.from("[".repeat(n) + "]".repeat(n))).map(tag("deep-nesting")),
    wrongShapes(op).map((v) => Buffer.from(JSON.stringify(v))).map(tag("wrong-shape")),
  );
}

function isJson(b: Buffer): boolean {
  try {
    JSON.parse(b.toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

type AuthKind = "missing" | "garbage" | "near-miss" | "bearer" | "wrong-key" | "wrong-secret" | "bad-date-text" | "stale-date" | "duplicated";
const authKindArb = (h1: boolean) =>
  fc.constantFrom<AuthKind>("missing", "garbage", "near-miss", "bearer", "wrong-key", "wrong-secret", "bad-date-text", "stale-date", ...(h1 ? (["duplicated"] as const) : []));

// ---------------------------------------------------------------------------------------------

describe("reliability: property-based bad input", function () {
  this.timeout(600_000);
  let fake: FakeBedrock;
  let dir: string;
  let gateway: GatewayProcess;
  let h2: H2Client;
  let rssBefore = 0;
  let tried = 0;
  const crashes: string[] = [];

  before(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await tempDir("fuzz");
    gateway = await GatewayProcess.start({ dir, upstream: fake.url, config: { caps: [{ id: "month", window: "month", limitUsd: 1000 }], logLevel: "error" } });
    h2 = new H2Client(() => gateway.port);
  });
  after(async () => {
    h2?.close();
    console.log(`      ${tried} generated bad inputs sent to the gateway`);
    await gateway?.stop();
    await fake?.close();
    await cleanup(dir);
  });

  const host = () => `127.0.0.1:${gateway.port}`;

  function signed(op: Op, body: Buffer, path = pathOf(op)): Outgoing {
    const req = signFor(host(), { method: "POST", path, headers: {}, body });
    return toOutgoing(req);
  }

  function toOutgoing(req: RawRequest): Outgoing {
    return { method: req.method, path: req.path, headers: Object.entries(req.headers), body: req.body };
  }

  /** Sends one input; a gateway that stopped answering is recorded as a crash and started again. */
  async function send(proto: "h1" | "h2", req: Outgoing, bad = true): Promise<Reply> {
    const reply = proto === "h1" ? await sendH1(gateway.port, req) : await h2.send(req);
    if (reply.sent && bad) tried++;
    if (!gateway.alive()) {
      crashes.push(`${proto} ${req.method} ${req.path.slice(0, 120)}: ${gateway.stderr().split("\n").filter(Boolean).slice(-3).join(" | ")}`);
      h2.close();
      await gateway.start();
    }
    return reply;
  }

  /**
   * Runs a property over `runs` inputs and collects every input that broke a rule (rather than
   * stopping at the first), so a failure reports how many were wrong and shows a few.
   */
  async function check<T>(runs: number, arb: fc.Arbitrary<T>, one: (input: T) => Promise<string | undefined>, label: (input: T) => string = () => ""): Promise<void> {
    const violations: string[] = [];
    const crashesBefore = crashes.length;
    await fc.assert(
      fc.asyncProperty(arb, async (input) => {
        const hitsBefore = fake.hits.length;
        const problem = await one(input);
        const forwarded = fake.hits.length - hitsBefore;
        const what = label(input);
        if (forwarded > 0) violations.push(`forwarded to Bedrock: ${what ? `${what}: ` : ""}${fake.hits.at(-1)!.method} ${fake.hits.at(-1)!.path.slice(0, 160)}`);
        else if (problem) violations.push(`${what ? `${what}: ` : ""}${problem}`);
      }),
      { numRuns: runs, timeout: 20_000, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: true },
    );
    const newCrashes = crashes.slice(crashesBefore);
    assert.deepEqual(newCrashes, [], `the gateway process died on ${newCrashes.length} inputs`);
    const byKind = new Map<string, number>();
    for (const v of violations) {
      const kind = v.replace(/^forwarded to Bedrock: /, "forwarded: ").split(/ "|: POST| \//)[0]!;
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    }
    const summary = [...byKind].sort((a, b) => b[1] - a[1]).slice(0, 16).map(([k, n]) => `${n} × ${k}`).join("; ");
    assert.equal(violations.length, 0, `${violations.length} of ${runs} inputs broke a rule (${summary}), e.g.:\n  ${[...new Set(violations)].slice(0, 8).join("\n  ")}`);
    assert.ok(await gateway.answers(), "the status route answers after the run");
  }

  const describeReply = (r: Reply) => `HTTP ${r.status} ${r.headers["x-amzn-errortype"] ?? ""} ${r.body.slice(0, 160)}${r.error ? ` (${r.error})` : ""}`;
  /** Refused: a 4xx answer, or the request reset (an HTTP/2 stream or session error, or a connection closed on a body not read). */
  const refused4xx = (r: Reply) =>
    (r.status >= 400 && r.status < 500) || (r.status === 0 && /(Stream|Session) closed with error code|ECONNRESET|EPIPE/.test(r.error ?? ""))
      ? undefined
      : `expected a 4xx refusal or a reset, got ${describeReply(r)}`;
  const validation400 = (r: Reply) =>
    r.status === 400 && r.headers["x-amzn-errortype"] === "ValidationException" ? undefined : `expected 400 ValidationException, got ${describeReply(r)}`;

  it("control: a valid signed call of each operation passes over both protocols (so the signing below is right)", async () => {
    for (const op of OPS) {
      for (const proto of ["h1", "h2"] as const) {
        const before = fake.hits.length;
        const r = await send(proto, signed(op, Buffer.from(JSON.stringify(validBody(op)))), false);
        assert.equal(r.status, 200, `${proto} ${op}: ${describeReply(r)}`);
        assert.equal(fake.hits.length, before + 1);
      }
    }
    rssBefore = gateway.rssBytes();
  });

  for (const proto of ["h1", "h2"] as const) {
    const i = proto === "h1" ? 0 : 1;

    it(`${proto}: ${RUNS.paths[i]} garbled and unknown paths, unsigned, any method → a 4xx, nothing forwarded`, async () => {
      await check(RUNS.paths[i], fc.tuple(methodArb, garbledPathArb, junkBody), async ([method, path, body]) => {
        const r = await send(proto, { method, path: proto === "h2" ? encodeForH2(path) : path, headers: [["content-type", "application/json"]], body: method === "GET" || method === "HEAD" ? Buffer.alloc(0) : body });
        return r.sent ? refused4xx(r) : undefined;
      });
    });

    it(`${proto}: ${RUNS.modelIds[i]} bad model ids (traversal, control and other forbidden bytes, over 2,048 chars), signed → 400 ValidationException, nothing forwarded`, async () => {
      await check(RUNS.modelIds[i], fc.tuple(modelOpArb, badModelIdArb), async ([op, id]) => {
        const r = await send(proto, signed(op, Buffer.from(JSON.stringify(validBody(op))), pathOf(op, id)));
        return r.sent ? validation400(r) : undefined;
      }, ([op, id]) => `${op} ${idFault(id)}`);
    });

    it(`${proto}: ${RUNS.auth[i]} missing, malformed${proto === "h1" ? ", duplicated" : ""} or wrong signatures (Bearer keys off by default) → refused, nothing forwarded`, async () => {
      await check(RUNS.auth[i], fc.tuple(opArb, authKindArb(proto === "h1"), fc.string({ unit: "grapheme-ascii", maxLength: 120 }), fc.integer({ min: 0, max: 1 << 20 })), async ([op, kind, junk, size]) => {
        const body = Buffer.from(JSON.stringify({ ...validBody(op), padding: "x".repeat(size % 4 === 0 ? size : 0) }));
        const r = await send(proto, badAuth(op, kind, junk, body));
        return r.sent ? refused4xx(r) : undefined;
      }, ([op, kind]) => `${kind} ${op}`);
    });

    it(`${proto}: ${RUNS.bodies[i]} malformed bodies of every operation (bad JSON, invalid UTF-8, wrong shapes, huge numbers, deep nesting), signed → 400 ValidationException, nothing forwarded`, async () => {
      await check(RUNS.bodies[i], opArb.chain((op) => fc.tuple(fc.constant(op), badBodyArb(op))), async ([op, [, body]]) => {
        const r = await send(proto, signed(op, body));
        return r.sent ? validation400(r) : undefined;
      }, ([op, [fault, body]]) => `${op} ${fault} ${JSON.stringify(body.subarray(0, 60).toString("latin1"))}${body.length > 60 ? `… (${body.length} bytes)` : ""}`);
    });
  }

  it("memory stays bounded over every input above, and at least 10,000 inputs were tried", () => {
    const grown = gateway.rssBytes() - rssBefore;
    console.log(`      RSS ${(rssBefore / MiB).toFixed(0)} MiB → ${(gateway.rssBytes() / MiB).toFixed(0)} MiB`);
    assert.ok(grown < 150 * MiB, `RSS grew by ${(grown / MiB).toFixed(0)} MiB`);
    assert.ok(tried >= 10_000, `only ${tried} inputs were sent`);
  });

  it("memory stays bounded under 8 unsigned 24 MiB HTTP/2 uploads that never end", async () => {
    const before = gateway.rssBytes();
    const hitsBefore = fake.hits.length;
    const session = http2.connect(`http://127.0.0.1:${gateway.port}`);
    session.on("error", () => undefined);
    try {
      const uploads = Array.from({ length: 8 }, () => unsignedUpload(session, pathOf("InvokeModel"), 24 * MiB));
      await Promise.all(uploads);
      const during = gateway.rssBytes();
      console.log(`      RSS ${(before / MiB).toFixed(0)} MiB → ${(during / MiB).toFixed(0)} MiB with the uploads open`);
      assert.ok(during - before < 150 * MiB, `RSS grew by ${((during - before) / MiB).toFixed(0)} MiB holding unsigned bodies`);
      assert.equal(fake.hits.length, hitsBefore, "nothing was forwarded");
    } finally {
      session.destroy();
    }
    assert.ok(await gateway.answers(), "the status route answers after");
  });

  /** A request whose Authorization is missing or wrong in one way; the rest is valid. */
  function badAuth(op: Op, kind: AuthKind, junk: string, body: Buffer): Outgoing {
    const good = signFor(host(), { method: "POST", path: pathOf(op), headers: {}, body });
    const headers = Object.entries(good.headers).filter(([n]) => n !== "authorization");
    const auth = good.headers.authorization!;
    switch (kind) {
      case "missing":
        return { method: "POST", path: good.path, headers, body };
      case "garbage":
        return { method: "POST", path: good.path, headers: [...headers, ["authorization", junk.trim() || "x"]], body };
      case "near-miss":
        return { method: "POST", path: good.path, headers: [...headers, ["authorization", mangle(auth, junk)]], body };
      case "bearer":
        return { method: "POST", path: good.path, headers: [...headers, ["authorization", `Bearer ${junk.replace(/\s/g, "") || "token"}`]], body };
      case "wrong-key":
        return toOutgoing(signFor(host(), { method: "POST", path: pathOf(op), headers: {}, body }, { accessKeyId: "AKIAOTHERUSER0000000", secretAccessKey: "another-secret" }));
      case "wrong-secret":
        return toOutgoing(signFor(host(), { method: "POST", path: pathOf(op), headers: {}, body }, { ...CREDENTIALS, secretAccessKey: `${CREDENTIALS.secretAccessKey}x` }));
      case "bad-date-text":
        return { method: "POST", path: good.path, headers: [...headers.filter(([n]) => n !== "x-amz-date"), ["x-amz-date", junk.trim() || "yesterday"], ["authorization", auth]], body };
      case "stale-date": {
        const offMinutes = 16 + (junk.length * 7919) % (10 * 365 * 24 * 60);
        return toOutgoing(signFor(host(), { method: "POST", path: pathOf(op), headers: {}, body }, CREDENTIALS, new Date(Date.now() + (junk.length % 2 ? 1 : -1) * offMinutes * 60_000)));
      }
      case "duplicated":
        // A bad copy first (a parser that keeps one keeps it), then the good one or another bad one.
        return { method: "POST", path: good.path, headers: [...headers, ["authorization", mangle(auth, junk)], ["authorization", junk.length % 2 ? auth : `${auth}0`]], body };
    }
  }
});

/** What makes a generated model id invalid, for reports. */
function idFault(id: string): string {
  if (id.length > 2048) return `an id of ${id.length} chars`;
  if (/\.\.[/\\]|[/\\]\.\./.test(id)) return "a traversal id";
  const bad = [...id].find((c) => !/[A-Za-z0-9.:-]/.test(c)) ?? "";
  return `an id with U+${bad.codePointAt(0)?.toString(16).padStart(4, "0")}`;
}

/** Changes a signature header so that it is wrong: a character of the signature, the scope, or junk appended. */
function mangle(auth: string, junk: string): string {
  const sig = auth.lastIndexOf("Signature=") + 10;
  switch (junk.length % 4) {
    case 0:
      return `${auth.slice(0, sig)}${auth[sig] === "0" ? "1" : "0"}${auth.slice(sig + 1)}`;
    case 1:
      return auth.replace("/bedrock/", "/s3/");
    case 2:
      return auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    default:
      return `${auth}${junk.replace(/[\r\n]/g, "") || ","}`;
  }
}

/** HTTP/2 refuses some bytes in :path outright; percent-encode those so the input still gets sent. */
function encodeForH2(path: string): string {
  return path.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** Sends up to `bytes` of body without a signature and without ending the stream; resolves when sent or refused. */
function unsignedUpload(session: http2.ClientHttp2Session, path: string, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json", "content-length": String(bytes) }, { endStream: false });
    stream.on("error", () => resolve());
    stream.on("close", () => resolve());
    const chunk = Buffer.alloc(MiB, 0x20);
    let sent = 0;
    const timer = setTimeout(() => resolve(), 30_000); // a server that stops reading: measure what it holds now
    const next = () => {
      if (stream.closed || stream.destroyed) return;
      if (sent >= bytes) {
        clearTimeout(timer);
        resolve(); // all sent, never ended: the server holds whatever it buffered
        return;
      }
      sent += chunk.length;
      if (stream.write(chunk)) setImmediate(next);
      else stream.once("drain", next);
    };
    next();
  });
}
