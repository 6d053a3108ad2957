/**
 * The background process as VS Code (or any LSP client) runs it: settings from the editor, the
 * gateway started inside it, live figures pushed as notifications, several windows sharing one
 * gateway with take-over, and code lenses over Bedrock calls.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import http from "node:http";
import { mkdir, mkdtemp, rename, rm, rmdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { localDateKey } from "../../server/budget/windows";
import { journalMonth } from "../../server/ledger/journal";
import { readMonth } from "../../server/ledger/report";
import { API_PATHS, TOKEN_HEADER, type StatusResponse } from "../../server/protocol";
import { serve } from "../support/cliProcess";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import { readyUrl, startLsp, type LspSession } from "../support/lspProcess";
import { freePort } from "../support/ports";


describe("language server process", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let dir: string;
  const sessions: LspSession[] = [];
  const settings = (extra: Record<string, unknown> = {}) => ({
    port: 0, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: fake.url, timeZone: "UTC",
    caps: [{ id: "daily", window: "day", limitUsd: 1 }], ...extra,
  });
  const start = async (s: Record<string, unknown>) => {
    const session = await startLsp(s);
    sessions.push(session);
    return session;
  };

  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-lsp-"));
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.stop()));
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("starts the gateway from the editor's settings and pushes each settled call and the new status", async () => {
    const lsp = await start(settings());
    const url = await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp, "leader"));
    const initial = await lsp.waitFor("a first status", () => lsp.statuses[0]);
    assert.equal(initial.caps[0]!.id, "daily");
    assert.equal(initial.caps[0]!.spentUsd, 0);

    fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
    const client = clientFor(url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 600) }));
    client.destroy();
    const call = await lsp.waitFor("the settled call", () => lsp.calls[0]);
    assert.equal(call.costPicos, "10500000000");
    const after = await lsp.waitFor("a status with the spend", () => lsp.statuses.find((s) => s.caps[0]!.spentUsd > 0));
    assert.equal(after.caps[0]!.spentExact, "0.0105");
    assert.equal(after.todayByModel["anthropic.claude-sonnet-4-5-20250929-v1:0"]?.calls, 1);
  });

  it("after a change of time zone, pushes the status once today's totals are in the new zone's day, without waiting for a call", async () => {
    // A call settled 20 hours ago: today's in a zone where it is now past 20:00, yesterday's where it is not.
    const now = new Date();
    const then = new Date(now.getTime() - 20 * 3_600_000);
    const zones = Array.from({ length: 27 }, (_, i) => (i === 12 ? "Etc/GMT" : `Etc/GMT${i < 12 ? "+" : "-"}${Math.abs(i - 12)}`));
    const sameDay = (zone: string) => localDateKey(then, zone) === localDateKey(now, zone);
    const before = zones.find((z) => !sameDay(z))!;
    const after = zones.find(sameDay)!;
    const record = {
      type: "settle", id: "earlier", at: then.toISOString(), startedAt: then.toISOString(), user: "u", tool: "t", operation: "InvokeModel",
      modelId: SONNET_45, baseModelId: SONNET_45, usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 },
      usageEstimated: false, costPicos: "7", worstCasePicos: "7", outcome: "ok", status: 200, latencyMs: 1, tags: {},
    };
    await mkdir(path.join(dir, "ledger", "journal"), { recursive: true });
    await writeFile(path.join(dir, "ledger", "journal", `${journalMonth(then)}.jsonl`), `${JSON.stringify(record)}\n`, { mode: 0o600 });

    const lsp = await start(settings({ timeZone: before }));
    await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp, "leader"));
    const first = await lsp.waitFor("a first status", () => lsp.statuses[0]);
    assert.equal(first.today.calls, 0, `in ${before} the call was yesterday's`);
    await lsp.changeSettings(settings({ timeZone: after }));
    const moved = await lsp.waitFor(`a status with the call in today's totals of ${after}`, () => lsp.statuses.find((s) => s.today.calls === 1));
    assert.equal(moved.today.costExact, "0.000000000007");
  });

  it("reports invalid settings by name and keeps the last good ones in force", async () => {
    const lsp = await start(settings());
    await lsp.waitFor("ready", () => readyUrl(lsp));
    await lsp.changeSettings(settings({ caps: [{ id: "daily", window: "day", limitUsd: -5 }] }));
    const errors = await lsp.waitFor("a config error", () => lsp.configErrors[0]);
    assert.match(errors.join("\n"), /bedrockBudget\.caps\[0\]\.limitUsd/);
    await lsp.changeSettings(settings({ caps: [{ id: "weekly", window: "week", limitUsd: 3 }] }));
    const status = await lsp.waitFor("the valid change applied", () => lsp.statuses.find((s) => s.caps[0]?.id === "weekly"));
    assert.equal(status.caps[0]!.limitUsd, 3);
    assert.deepEqual(lsp.configErrors.at(-1), [], "the error is cleared once the settings are valid");
  });

  /** The refusal a real SDK client gets, or a failure if the call went through. */
  const refusalOf = async (url: string) => {
    const client = clientFor(url);
    try {
      return await client
        .send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 1000) }))
        .then(() => assert.fail("the call went through"), (e: Error & { $metadata?: { httpStatusCode?: number; attempts?: number } }) => e);
    } finally {
      client.destroy();
    }
  };

  it("ignores a bad value of a harmless setting, names it, and keeps every cap in force", async () => {
    // A repository's .vscode/settings.json sets a log level that does not exist.
    const lsp = await start(settings({ caps: [{ id: "tiny", window: "day", limitUsd: 0.01 }], logLevel: "verbose" }));
    const url = await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp, "leader"));
    const errors = await lsp.waitFor("a config error", () => lsp.configErrors[0]);
    assert.match(errors.join("\n"), /bedrockBudget\.logLevel/);
    const status = await lsp.waitFor("a first status", () => lsp.statuses[0]);
    assert.deepEqual(status.caps.map((c) => c.id), ["tiny"], "the caps of the settings are in force, not the defaults");
    assert.equal(status.blocked, undefined, "a harmless key does not block calls");

    // 1,000 output tokens of Sonnet 4.5 may cost $0.015: over the $0.01 cap.
    const err = await refusalOf(url);
    assert.equal(err.name, "ServiceQuotaExceededException");
    assert.match(err.message, /cap "tiny"/);
    assert.equal(fake.hits.length, 0, "nothing reached Bedrock");
  });

  it("refuses every Bedrock call while a setting that decides money is invalid at start, naming it, and admits calls once it is fixed", async () => {
    const bad = settings({ caps: [{ id: "daily", window: "day", limitUsd: -1 }] });
    const lsp = await start(bad);
    const url = await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp, "leader"));
    const status = await lsp.waitFor("a status that says why calls are refused", () => lsp.statuses.find((s) => s.blocked));
    assert.match(status.blocked!, /bedrockBudget\.caps\[0\]\.limitUsd/);
    const errors = await lsp.waitFor("a config error", () => lsp.configErrors[0]);
    assert.match(errors.join("\n"), /bedrockBudget\.caps\[0\]\.limitUsd/);

    fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    const err = await refusalOf(url);
    assert.equal(err.name, "ServiceQuotaExceededException");
    assert.equal(err.$metadata?.httpStatusCode, 400);
    assert.equal(err.$metadata?.attempts, 1, "the SDK does not retry it");
    assert.match(err.message, /bedrockBudget\.caps\[0\]\.limitUsd/, "the message names the setting");
    assert.match(err.message, /user settings/, "and says where to fix it");
    assert.equal(fake.hits.length, 0, "nothing reached Bedrock");
    // The local API keeps answering, and says why.
    const api = (await (await fetch(`${url}${API_PATHS.status}`)).json()) as StatusResponse;
    assert.match(api.blocked ?? "", /bedrockBudget\.caps\[0\]\.limitUsd/);

    const fixedAt = lsp.statuses.length;
    await lsp.changeSettings(settings());
    await lsp.waitFor("a status without the block", () => lsp.statuses.slice(fixedAt).find((s) => !s.blocked && s.caps[0]?.id === "daily"));
    assert.deepEqual(lsp.configErrors.at(-1), [], "the error is cleared");
    const client = clientFor(url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }));
    client.destroy();
    assert.equal(fake.hits.length, 1, "the call reached Bedrock once the setting was fixed");
  });

  it("blocks calls when a live change makes a setting that decides money invalid, and unblocks when it is fixed", async () => {
    const lsp = await start(settings());
    const url = await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp, "leader"));
    await lsp.waitFor("a first status", () => lsp.statuses[0]);
    fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));

    await lsp.changeSettings(settings({ upstreamEndpoint: "not a url" }));
    const blocked = await lsp.waitFor("the blocked status", () => lsp.statuses.find((s) => s.blocked));
    assert.match(blocked.blocked!, /bedrockBudget\.upstreamEndpoint/);
    const err = await refusalOf(url);
    assert.equal(err.name, "ServiceQuotaExceededException");
    assert.match(err.message, /bedrockBudget\.upstreamEndpoint/);
    assert.equal(fake.hits.length, 0, "nothing reached Bedrock, neither the last good upstream nor a default one");

    const fixedAt = lsp.statuses.length;
    await lsp.changeSettings(settings());
    await lsp.waitFor("a status without the block", () => lsp.statuses.slice(fixedAt).find((s) => !s.blocked));
    const client = clientFor(url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }));
    client.destroy();
    assert.equal(fake.hits.length, 1, "calls are admitted again");
  });

  it("a cap added in the settings that cannot be counted from the journal: calls are refused, and the log and the status say why", async () => {
    const lsp = await start(settings());
    const url = await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp, "leader"));
    fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    const client = clientFor(url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }));
    // This month's journal cannot be read: a folder stands where the file was.
    const file = path.join(dir, "ledger", "journal", `${journalMonth(new Date())}.jsonl`);
    await rename(file, `${file}.aside`);
    await mkdir(file);
    await lsp.changeSettings(settings({ caps: [{ id: "daily", window: "day", limitUsd: 1 }, { id: "month", window: "month", limitUsd: 5 }] }));
    const logged = await lsp.waitFor("the failure in the log", () => lsp.logs.find((l) => /applying the settings: counting this window's journal into cap\(s\) "month" failed/.test(l)));
    assert.match(logged, /EISDIR/);
    const status = await lsp.waitFor("a status that says why calls are refused", () => lsp.statuses.find((s) => s.blocked));
    assert.match(status.blocked!, /cap\(s\) "month" failed.*Restart Gateway/);
    await assert.rejects(client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) })), { name: "ServiceUnavailableException" });
    client.destroy();
    assert.equal(fake.hits.length, 1, "only the call before the change reached Bedrock");
    await rmdir(file);
    await rename(`${file}.aside`, file);
  });

  it("tells the client the configured address while the gateway starts, so terminals keep pointing at it", async () => {
    const port = await freePort();
    const lsp = await start(settings({ port }));
    const starting = await lsp.waitFor("the starting state", () => lsp.states.find((s) => s.state === "starting"));
    assert.deepEqual(starting, { state: "starting", endpoint: `http://127.0.0.1:${port}` });
    assert.equal(await lsp.waitFor("ready", () => readyUrl(lsp, "leader")), `http://127.0.0.1:${port}`);
  });

  it("shares one gateway between windows, and another window takes over when the first closes", async () => {
    const port = await freePort();
    const first = await start(settings({ port }));
    const url = await first.waitFor("the first window's gateway", () => readyUrl(first, "leader"));
    assert.equal(url, `http://127.0.0.1:${port}`);
    const second = await start(settings({ port }));
    assert.equal(await second.waitFor("the second window to follow", () => readyUrl(second, "follower")), url);

    fake.behave(() => ({ kind: "ok", usage: { input: 100, output: 100 } }));
    const client = clientFor(url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("a", 100) }));
    await second.waitFor("the follower to see the call", () => second.calls[0]);
    const seen = await second.waitFor("the follower's status", () => second.statuses.find((s) => s.caps[0]!.spentUsd > 0));
    assert.equal(seen.caps[0]!.spentExact, "0.0018");

    const statesBefore = second.states.length;
    await first.stop(); // the first window closes
    const takenOver = await second.waitFor("the take-over", () => readyUrl(second, "leader", statesBefore));
    assert.equal(takenOver, url, "same port, so tools keep their endpoint");
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("b", 100) }));
    client.destroy();
    const merged = await second.waitFor("the new leader's status", () => second.statuses.find((s) => s.caps[0]!.spentExact === "0.0036"));
    assert.ok(merged, "spend recorded by the first window counts in the second");
  });

  it("closed by the editor with a call hanging upstream: the call is stopped, answered and journaled as interrupted, and the ledger lock is released, before the process exits on its own", async () => {
    const lsp = await start(settings());
    const url = await lsp.waitFor("the gateway to be ready", () => readyUrl(lsp, "leader"));
    const reached = new Promise<void>((resolve) => fake.behave(() => (setImmediate(resolve), { kind: "hang" })));
    const client = clientFor(url);
    const answered = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hang", 100) })).then(() => undefined, (e: Error) => e);
    await reached;

    // As vscode-languageclient closes a window: a shutdown request, then exit once it is answered.
    // It gives up on the answer after 2 s and kills the process 2 s later; this bound is generous
    // beside that, and still short of the 10 s a gateway gives calls by default.
    let killed = false;
    const killer = setTimeout(() => ((killed = true), lsp.child.kill("SIGKILL")), 8_000);
    void lsp.connection.sendRequest("shutdown").then(() => lsp.connection.sendNotification("exit"), () => undefined);
    const code = await lsp.exited;
    clearTimeout(killer);
    assert.equal(killed, false, "the process exited by itself, before the editor would have killed it");
    assert.equal(code, 0);
    assert.equal(existsSync(path.join(dir, "ledger", "gateway.lock")), false, "the ledger lock was released");
    const error = await answered;
    client.destroy();
    assert.ok(error instanceof Error, "the caller was answered with an error");
    // Read before any gateway opens the ledger again: the line is the closing gateway's own.
    const calls = await readMonth(path.join(dir, "ledger"), new Date().toISOString().slice(0, 7), "UTC");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.outcome, "interrupted");
    assert.match(calls[0]!.message ?? "", /the gateway shut down with this call in flight/);
  });

  it("a window whose own money settings are invalid, following another window's gateway, is told calls are not refused for it, and blocks them once it takes over", async () => {
    const port = await freePort();
    const first = await start(settings({ port }));
    const url = await first.waitFor("the first window's gateway", () => readyUrl(first, "leader"));
    const second = await start(settings({ port, caps: [{ id: "daily", window: "day", limitUsd: -1 }] }));
    await second.waitFor("the second window to follow", () => readyUrl(second, "follower"));
    const told = await second.waitFor("the follower's config error", () => second.configErrorParams[0]);
    assert.equal(told.blocked, true, "the bad key decides money");
    assert.equal(told.anotherWindowServes, true, "and the follower says the gateway runs on another window's settings");
    assert.equal(first.configErrorParams.length, 0, "the leader's settings are valid");

    fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
    const client = clientFor(url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("a", 100) }));
    client.destroy();
    assert.equal(fake.hits.length, 1, "the leader's valid settings decide calls");

    const statesBefore = second.states.length;
    await first.stop();
    await second.waitFor("the take-over", () => readyUrl(second, "leader", statesBefore));
    await second.waitFor("the new leader's blocked status", () => second.statuses.find((s) => s.blocked));
    const err = await refusalOf(url);
    assert.match(err.message, /bedrockBudget\.caps\[0\]\.limitUsd/, "the new leader refuses calls, naming its invalid setting");
    assert.equal(fake.hits.length, 1, "nothing more reached Bedrock");
  });

  it("puts a priced code lens over a Bedrock call and warns when it sets no max tokens", async () => {
    const lsp = await start(settings());
    await lsp.waitFor("ready", () => readyUrl(lsp));
    const uri = "file:///work/app.ts";
    const text = [
      'import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";',
      "const client = new BedrockRuntimeClient({});",
      "await client.send(new InvokeModelCommand({",
      '  modelId: "global.anthropic.claude-sonnet-4-5-20250929-v1:0",',
      '  body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 1024, messages: [{ role: "user", content: "Hello" }] }),',
      "}));",
      "await client.send(new InvokeModelCommand({",
      '  modelId: "global.anthropic.claude-sonnet-4-5-20250929-v1:0",',
      '  body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", messages: [{ role: "user", content: "Hello" }] }),',
      "}));",
    ].join("\n");
    await lsp.connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "typescript", version: 1, text } });
    const lenses = (await lsp.connection.sendRequest("textDocument/codeLens", { textDocument: { uri } })) as Array<{ range: { start: { line: number } } }>;
    assert.equal(lenses.length, 2);
    assert.equal(lenses[0]!.range.start.line, 2);
    const resolved = (await lsp.connection.sendRequest("codeLens/resolve", lenses[0])) as { command: { title: string; command: string } };
    // Worst case: ~7 input tokens and 1,024 output tokens at $3 / $15 per million ≈ $0.0154.
    assert.match(resolved.command.title, /^≈ \$0\.02 per call · Claude Sonnet 4\.5 · ~\d+ in \/ ≤1,024 out/);
    assert.equal(resolved.command.command, "bedrockBudget.showDashboard");
    const diagnostics = await lsp.waitFor("diagnostics", () => lsp.diagnostics.get(uri));
    assert.equal(diagnostics.length, 1, "only the call without max tokens is flagged");
    assert.match(diagnostics[0]!.message, /max tokens/i);
  });
});

describe("language server process: only this user's gateway is followed", function () {
  this.timeout(60_000);
  let dir: string;
  const sessions: LspSession[] = [];
  let squatter: http.Server | undefined;
  const start = async (s: Record<string, unknown>) => {
    const session = await startLsp(s);
    sessions.push(session);
    return session;
  };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-lsp-verify-"));
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.stop()));
    if (squatter) await new Promise((r) => squatter!.close(r));
    squatter = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses to follow a squatter that answers the health route like a gateway, and reports strangerOnPort", async () => {
    const port = await freePort();
    const seen: string[] = [];
    // Another local user's process: it says "bedrock-budget", and answers any challenge with a guess.
    squatter = http.createServer((req, res) => {
      seen.push(req.url ?? "");
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ product: "bedrock-budget", apiVersion: 1, version: "0.1.0", pid: 4242, startedAt: new Date().toISOString(), proof: "AAAA" }));
    });
    await new Promise<void>((resolve) => squatter!.listen(port, "127.0.0.1", resolve));

    const lsp = await start({ port, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC" });
    const error = await lsp.waitFor("the error state", () => lsp.states.find((s) => s.state === "error"));
    assert.ok(error.state === "error");
    assert.equal(error.strangerOnPort, true);
    // The squatter runs as this user here (the tests cannot run as another one): named as a
    // gateway of this user on another ledger, and still never followed.
    assert.match(error.message, new RegExp(`port ${port} is already in use by another Bedrock Budget gateway on another ledger \\(pid 4242, a process of your own user\\)`));
    assert.match(error.message, /bedrockBudget\.port/);
    assert.equal(lsp.states.find((s) => s.state === "ready"), undefined, "no URL handed out to terminals");
    // The start's own question (is it a gateway of ours handing the port over?) asks the bare health path: nothing else reaches it (no token, no call).
    assert.ok(seen.some((u) => u.startsWith("/__bedrock-budget/v1/health?challenge=")), `the squatter was challenged: ${seen.join(", ")}`);
    assert.ok(seen.every((u) => u === "/__bedrock-budget/v1/health" || u.startsWith("/__bedrock-budget/v1/health?challenge=")), `the squatter got only health questions: ${seen.join(", ")}`);
  });

  it("the user's own `serve --simulate` on the port (another ledger): named as such with its pid, not as another user's gateway or an impostor", async () => {
    const port = await freePort();
    const served = await serve(["--simulate", "--port", String(port), "--ledger", path.join(dir, "other-ledger")]);
    try {
      const lsp = await start({ port, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC" });
      const error = await lsp.waitFor("the error state", () => lsp.states.find((s) => s.state === "error"));
      assert.ok(error.state === "error");
      assert.match(error.message, new RegExp(`port ${port} is already in use by another Bedrock Budget gateway on another ledger \\(pid ${served.child.pid}, a process of your own user\\): probably your own \`bedrock-budget serve --ledger …\` or \`serve --simulate\``));
      assert.match(error.message, /Stop it, or set bedrockBudget\.port to a free port/);
      assert.doesNotMatch(error.message, /another user's gateway|impersonating/);
      assert.equal(error.strangerOnPort, true, "terminals are not pointed at it");
      assert.equal(lsp.states.find((s) => s.state === "ready"), undefined, "nothing is sent to it");
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("a ledger locked by a gateway on another machine (a network share): an error naming that machine at once, nothing served", async () => {
    const ledger = path.join(dir, "ledger");
    await mkdir(ledger, { recursive: true, mode: 0o700 });
    await writeFile(path.join(ledger, "gateway.lock"), "999999\nhttp://127.0.0.1:8787\nmachine=0123456789abcdef0123456789abcdef\nhost=build-07\n", { mode: 0o600 });
    const lsp = await start({ port: 0, ledgerDir: ledger, upstreamEndpoint: "http://127.0.0.1:9", timeZone: "UTC" });
    const error = await lsp.waitFor("the error state", () => lsp.states.find((s) => s.state === "error"));
    assert.ok(error.state === "error");
    assert.match(error.message, /in use by a Bedrock Budget gateway on another machine \("build-07", pid 999999\)/);
    assert.match(error.message, /Give each machine its own ledgerDir/);
    assert.doesNotMatch(error.message, /does not answer/, "told at the first attempt, not after the retries meant for a window starting here");
    assert.equal(lsp.states.find((s) => s.state === "ready"), undefined, "no URL handed out to terminals");
  });

  it("follows this user's gateway after it proves itself, and hands the editor the token for the dashboard", async () => {
    const fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    try {
      const port = await freePort();
      const s = { port, ledgerDir: path.join(dir, "ledger"), upstreamEndpoint: fake.url, timeZone: "UTC" };
      const leader = await start(s);
      const url = await leader.waitFor("the leader", () => readyUrl(leader, "leader"));
      const follower = await start(s);
      await follower.waitFor("the follower", () => readyUrl(follower, "follower"));
      const tokens = [leader, follower].map((l) => l.states.find((st) => st.state === "ready")).map((st) => (st?.state === "ready" ? st.token : undefined));
      assert.ok(tokens[0], "the leader's ready state carries the token");
      assert.equal(tokens[1], tokens[0], "the follower derives the same token from the ledger's secret");
      assert.equal((await fetch(`${url}${API_PATHS.calls}`, { headers: { [TOKEN_HEADER]: tokens[1]! } })).status, 200);
    } finally {
      await fake.close();
    }
  });
});
