/**
 * The dashboard's CSV export (`/export.csv`) over a busy ledger: it arrives whole and byte for byte
 * what the report prints for the range, a Bedrock call through the same gateway is answered while
 * a download is under way, a download cut by the client or by a journal error ends as a failure
 * (never as a file that looks complete), and a gateway with a small heap serves 100,000 calls
 * without dying (it is the process every Bedrock call goes through).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { Journal } from "../../server/ledger/journal";
import { callsBetween, parseRange, toCsv } from "../../server/ledger/report";
import type { CallRecord } from "../../server/ledger/types";
import { DASHBOARD_PATHS, TOKEN_HEADER } from "../../server/protocol";
import { CLI, cliEnv, serve, type Served } from "../support/cliProcess";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";
import { settledCall } from "../support/records";
import { GatewaySecret } from "../../server/ledger/secret";

const TZ = "Asia/Tokyo";

/** `n` settled calls from `start`, `stepMs` apart, with cells CSV must quote or defuse (commas, quotes, formulas). */
function calls(n: number, start: number, stepMs: number, prefix: string): CallRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const at = new Date(start + i * stepMs).toISOString();
    return settledCall({
      id: `${prefix}${i}`,
      at,
      startedAt: at,
      tool: i % 7 === 0 ? "=HYPERLINK(\"x\")" : "boto3",
      costPicos: String(1_000_000 + i),
      worstCasePicos: String(2_000_000 + i),
      tags: i % 3 === 0 ? { project: "chat, \"bot\"" } : { team: "search" },
      ...(i % 11 === 0 ? { outcome: "refused" as const, status: 400, refusedBy: "daily" } : {}),
    });
  });
}

/** Writes settle lines into the journal's month files (by the UTC month of `at`, as the ledger files them). */
async function writeJournal(ledgerDir: string, records: CallRecord[]): Promise<void> {
  const dir = path.join(ledgerDir, "journal");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const byMonth = new Map<string, string[]>();
  for (const r of records) {
    const month = r.at.slice(0, 7);
    const lines = byMonth.get(month) ?? [];
    lines.push(JSON.stringify(r));
    byMonth.set(month, lines);
  }
  for (const [month, lines] of byMonth) await writeFile(path.join(dir, `${month}.jsonl`), `${lines.join("\n")}\n`, { mode: 0o600 });
}

/** What the export answered before it streamed: every call of the range read, then one CSV string. */
async function previousExport(ledgerDir: string, fromText: string, toText: string): Promise<string> {
  const range = parseRange(fromText, toText, TZ, new Date(), "");
  assert.ok(typeof range !== "string", String(range));
  const journal = await Journal.open(ledgerDir, { readOnly: true });
  try {
    return toCsv(await callsBetween(journal, range.from, range.to));
  } finally {
    await journal.close();
  }
}

/** GET of the export over HTTP/1.1, as a browser's download: resolves with the response once its head arrives. */
function requestExport(base: string, token: string, query: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${DASHBOARD_PATHS.exportCsv}?${query}`, { headers: { [TOKEN_HEADER]: token } }, (res) => resolve({ req, res }));
    req.once("error", reject);
  });
}

/** The rest of a response's body; rejects when the connection is cut before the body's end. */
function body(res: http.IncomingMessage, chunks: Buffer[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    res.on("data", (d: Buffer) => chunks.push(d));
    res.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.once("aborted", () => reject(new Error("the download was cut")));
    res.once("error", reject);
    res.resume();
  });
}

/** The first chunk of a body, leaving the rest unread (a slow reader: the socket fills, the gateway must wait). */
function firstChunk(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) =>
    res.once("data", (d: Buffer) => {
      res.pause();
      resolve(d);
    }),
  );
}

describe("dashboard CSV export over a busy ledger (in-process gateway)", function () {
  this.timeout(120_000);
  let h: Harness;
  // 30,000 calls, one every 90 s from Aug 31 to Oct 1 UTC: Tokyo's September starts and ends mid-file.
  const START = Date.parse("2026-08-31T00:00:00Z");
  const RECORDS = calls(30_000, START, 90_000, "sep");
  const QUERY = "from=2026-09-01&to=2026-09-30";

  before(async () => {
    h = await startHarness({ timeZone: TZ });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    await writeJournal(h.ledgerDir, RECORDS);
    await h.restart({ timeZone: TZ });
  });
  after(() => h?.close());

  it("arrives whole, byte for byte what it answered before, while a Bedrock call through the gateway is answered mid-download", async () => {
    const expected = await previousExport(h.ledgerDir, "2026-09-01", "2026-09-30");
    const inRange = RECORDS.filter((r) => r.at >= "2026-08-31T15:00:00.000Z" && r.at < "2026-09-30T15:00:00.000Z").length;
    assert.equal(expected.split("\n").length - 2, inRange, "the reference holds Tokyo's September: header, rows, final newline");

    const { res } = await requestExport(h.gateway.url, h.gateway.api.token(), QUERY);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["content-type"], "text/csv; charset=utf-8");
    assert.equal(res.headers["content-disposition"], 'attachment; filename="bedrock-budget-2026-09-01-to-2026-09-30.csv"');
    const first = await firstChunk(res);
    let ended = false;
    const rest = body(res, [first]).finally(() => (ended = true));
    res.pause(); // the reader stops: the export waits for it, the gateway goes on
    const answer = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("during the export", 10) }));
    assert.equal(answer.$metadata.httpStatusCode, 200);
    assert.equal(ended, false, "the call was answered while the download was still under way");
    res.resume();
    const csv = await rest;
    assert.equal(csv.length, expected.length);
    assert.ok(csv === expected, "the same bytes as the export built whole");
  });

  it("an empty range is the header alone; a cancelled download leaves the gateway serving and the next export whole", async () => {
    const empty = await requestExport(h.gateway.url, h.gateway.api.token(), "from=2026-05-01&to=2026-05-31");
    assert.equal(empty.res.statusCode, 200);
    assert.equal(await body(empty.res), await previousExport(h.ledgerDir, "2026-05-01", "2026-05-31"));

    const cancelled = await requestExport(h.gateway.url, h.gateway.api.token(), QUERY);
    await firstChunk(cancelled.res);
    cancelled.req.destroy();
    const answer = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("after a cancelled export", 10) }));
    assert.equal(answer.$metadata.httpStatusCode, 200);
    const again = await requestExport(h.gateway.url, h.gateway.api.token(), QUERY);
    assert.equal(await body(again.res), await previousExport(h.ledgerDir, "2026-09-01", "2026-09-30"));
  });

  it("a journal that fails mid-export cuts the download (it never ends looking complete), and the gateway serves on", async () => {
    // Tokyo's October runs into the 2026-10 file; a month file the gateway cannot read past it fails the read mid-stream.
    const unreadable = path.join(h.ledgerDir, "journal", "2026-11.jsonl");
    await mkdir(unreadable);
    try {
      const { res } = await requestExport(h.gateway.url, h.gateway.api.token(), "from=2026-09-01&to=2026-11-15");
      assert.equal(res.statusCode, 200, "the first rows were sent before the failing file was reached");
      await assert.rejects(body(res), /cut|aborted|socket|ECONNRESET/);
    } finally {
      await rm(unreadable, { recursive: true, force: true });
    }
    const answer = await h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("after a failed export", 10) }));
    assert.equal(answer.$metadata.httpStatusCode, 200);
  });
});

describe("dashboard CSV export of 100,000 calls from a gateway with a 64 MB heap (the bundle)", function () {
  this.timeout(180_000);
  const N = 100_000;
  let fake: FakeBedrock;
  let dir: string;
  let served: Served | undefined;
  before(async function () {
    if (!existsSync(CLI)) this.skip(); // built by `npm run build`
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-export-big-"));
    // Some 40 MB of journal in one month (what a busy team's month holds): held whole, more than the heap.
    await writeJournal(path.join(dir, "ledger"), calls(N, Date.parse("2026-06-01T00:00:00Z"), 20_000, "big"));
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ timeZone: TZ }));
    served = await serve(["--config", path.join(dir, "config.json"), "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", fake.url], cliEnv(), 30_000, ["--max-old-space-size=64"]);
  });
  after(async () => {
    served?.child.kill("SIGKILL");
    await served?.exited;
    await fake?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("sends every call and stays up: Bedrock calls through it are answered during and after the download", async () => {
    const token = (await GatewaySecret.load(path.join(dir, "ledger"))).token();
    const { res } = await requestExport(served!.url, token, "from=2026-06-01&to=2026-07-31");
    assert.equal(res.statusCode, 200);
    const first = await firstChunk(res);
    const client = clientFor(served!.url);
    try {
      const during = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("during", 10) }));
      assert.equal(during.$metadata.httpStatusCode, 200);
      const lines = (await body(res, [first])).trimEnd().split("\n");
      assert.deepEqual([lines.length - 1, lines[1]!.split(",")[0], lines[N]!.split(",")[0]], [N, "2026-06-01T00:00:00.000Z", new Date(Date.parse("2026-06-01T00:00:00Z") + (N - 1) * 20_000).toISOString()]);
      const after = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("after", 10) }));
      assert.equal(after.$metadata.httpStatusCode, 200);
    } finally {
      client.destroy();
    }
    assert.equal(served!.child.exitCode, null, `the gateway is still running; stderr:\n${served!.stderr().slice(0, 2000)}`);
  });
});
