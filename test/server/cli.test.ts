/** The standalone CLI: `serve` (start, SIGTERM, kill -9 recovery, live config), `status`, `report`. */
import assert from "node:assert/strict";
import { once } from "node:events";
import { execFile } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { InvokeModelCommand, InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { GatewaySecret } from "../../server/ledger/secret";
import { API_PATHS, DASHBOARD_PATHS, TOKEN_HEADER, type CallsResponse, type StatusResponse } from "../../server/protocol";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";
import { CLI, cliEnv, run, serve } from "../support/cliProcess";

const getJson = async <T>(url: string, headers: Record<string, string> = {}): Promise<T> => (await (await fetch(url, { headers })).json()) as T;
/** The call log's token, read from the ledger folder as the CLI and the editor do. */
const tokenOf = async (ledgerDir: string) => ({ [TOKEN_HEADER]: (await GatewaySecret.read(ledgerDir))!.token() });

/** Polls a condition a bounded number of times (the state changes in another process). */
async function eventually(check: () => Promise<boolean>, what: string, tries = 50, everyMs = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out waiting until ${what}`);
}

describe("cli", function () {
  this.timeout(60_000);
  let fake: FakeBedrock;
  let dir: string;
  let configFile: string;
  beforeEach(async () => {
    fake = await FakeBedrock.start({ credentials: CREDENTIALS });
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-cli-"));
    configFile = path.join(dir, "config.json");
    await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], timeZone: "UTC" }));
  });
  afterEach(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const flags = () => ["--config", configFile, "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", fake.url];

  it("serve prints its address, meters calls, and on SIGTERM lets the call in flight finish, then exits 0", async () => {
    const served = await serve(flags());
    fake.behave(() => ({ kind: "ok", usage: { input: 100, output: 50 }, chunks: 10, chunkDelayMs: 50 }));
    const client = clientFor(served.url);
    const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }));
    served.child.kill("SIGTERM"); // mid-stream
    let chunks = 0;
    for await (const part of out.body!) if (part.chunk) chunks++;
    client.destroy();
    assert.equal(chunks, 15, "the whole stream arrived");
    assert.equal(await served.exited, 0);
    const report = await run(["report", "--calls", "--format", "json", "--ledger", path.join(dir, "ledger"), "--config", configFile]);
    assert.equal(report.code, 0, report.stderr);
    const rows = JSON.parse(report.stdout) as Array<{ outcome: string; usage: { outputTokens: number } }>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.outcome, "ok");
    assert.equal(rows[0]!.usage.outputTokens, 50);
  });

  it("a relative --ledger is the shell's folder's; a relative ledgerDir in the config file is refused, naming the key", async () => {
    const served = await serve(flags());
    const client = clientFor(served.url);
    await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }));
    client.destroy();
    served.child.kill("SIGTERM");
    assert.equal(await served.exited, 0);
    const relative = await run(["report", "--calls", "--format", "json", "--ledger", "ledger", "--config", configFile], cliEnv(), dir);
    assert.equal(relative.code, 0, relative.stderr);
    assert.equal((JSON.parse(relative.stdout) as unknown[]).length, 1);
    await writeFile(configFile, JSON.stringify({ ledgerDir: "ledger", timeZone: "UTC" }));
    const refused = await run(["report", "--calls", "--config", configFile], cliEnv(), dir);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /ledgerDir: an absolute path or one under ~\//);
  });

  it("report, whatif and reconcile refuse a ledger they cannot read (exit 1, naming it) instead of printing $0; a ledger with no calls yet reports none", async () => {
    const missing = path.join(dir, "no-such-ledger");
    const noJournal = path.join(dir, "fresh-ledger");
    await mkdir(noJournal);
    const fileJournal = path.join(dir, "file-journal");
    await mkdir(fileJournal);
    await writeFile(path.join(fileJournal, "journal"), "not a folder");
    for (const command of [["report"], ["whatif", "--config", configFile], ["reconcile"]]) {
      const gone = await run([...command, "--ledger", missing, "--month", "2026-11"]);
      assert.equal(gone.code, 1, `${command[0]}: ${gone.stdout}${gone.stderr}`);
      assert.match(gone.stderr, new RegExp(`no ledger at ${missing.replace(/[/\\.]/g, "\\$&")} \\(no such folder\\): check --ledger or ledgerDir`));
      assert.equal(gone.stdout, "", "no totals printed");
      assert.doesNotMatch(gone.stderr, /credentials/, "the fault is named, nothing else");
      const unreadable = await run([...command, "--ledger", fileJournal, "--month", "2026-11"]);
      assert.equal(unreadable.code, 1, `${command[0]}: ${unreadable.stdout}${unreadable.stderr}`);
      assert.match(unreadable.stderr, /cannot read the journal in .*file-journal\/journal \(ENOTDIR\)/);
    }
    const fresh = await run(["report", "--ledger", noJournal, "--month", "2026-11", "--format", "json"]);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stdout, /"calls": 0/);
  });

  it("status into a pipe prints every cap, not the first 64 KiB (a script reading it got half the caps and exit 0)", async () => {
    // 1,500 caps print some 140 KB.
    const caps = Array.from({ length: 1500 }, (_, i) => ({ id: `cap-${String(i).padStart(4, "0")}-with-a-long-name`, window: "day", limitUsd: 5 }));
    await writeFile(configFile, JSON.stringify({ caps, timeZone: "UTC" }));
    const served = await serve(flags());
    try {
      // Through a shell's pipe (`| cat`), as a user's `| grep` has it: the harness's own stdio is a socket pair, which takes far more at once.
      const status = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        execFile("bash", ["-c", 'set -o pipefail; "$@" | cat', "bash", process.execPath, CLI, "status", "--port", String(served.port), "--ledger", path.join(dir, "ledger")], { env: cliEnv(), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
          err && typeof err.code !== "number" ? reject(err) : resolve({ code: err ? (err.code as number) : 0, stdout, stderr }),
        );
      });
      assert.equal(status.code, 0, status.stderr);
      assert.ok(status.stdout.length > 65_536, `past a pipe's 64 KiB (${status.stdout.length} characters)`);
      assert.match(status.stdout, /cap-1499-with-a-long-name \(personal\): \$0\.00 \/ \$5\.00 today/, "the last cap is printed");
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  for (const durability of ["process", "machine"] as const) {
    it(`after kill -9 with a call in flight, the restarted gateway charges that call at its worst case (durability ${durability})`, async () => {
      // Input free, output $15 per 1M tokens: the worst case is 1,000 × $0.000015 = $0.015 = 15,000,000,000 picos.
      await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], timeZone: "UTC", pricing: { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } }, durability }));
      const first = await serve(flags());
      fake.behave(() => ({ kind: "hang" }));
      const client = clientFor(first.url);
      const pending = client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hang", 1000) })).catch((e: Error) => e);
      await eventually(async () => fake.hits.length === 1, "the call reached Bedrock");
      first.child.kill("SIGKILL");
      await first.exited;
      await pending;
      client.destroy();

      const second = await serve(flags());
      try {
        const status = await getJson<StatusResponse>(`${second.url}${API_PATHS.status}`);
        const calls = await getJson<CallsResponse>(`${second.url}${API_PATHS.calls}`, await tokenOf(path.join(dir, "ledger")));
        assert.equal(calls.calls.length, 1);
        const [call] = calls.calls;
        assert.equal(call!.outcome, "interrupted");
        assert.equal(call!.costPicos, "15000000000");
        assert.equal(status.caps[0]!.spentExact, "0.015");
      } finally {
        second.child.kill("SIGTERM");
        await second.exited;
      }
    });
  }

  it("applies an edited config file live, and keeps the last good one when an edit is invalid", async () => {
    const served = await serve(flags());
    try {
      await writeFile(configFile, JSON.stringify({ caps: [{ id: "weekly", window: "week", limitUsd: 20 }], timeZone: "UTC" }));
      await eventually(async () => (await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`)).caps[0]?.id === "weekly", `the new cap is in force (stderr: ${served.stderr()})`);
      await writeFile(configFile, JSON.stringify({ caps: [{ id: "broken", window: "fortnight", limitUsd: 20 }] }));
      await eventually(async () => /caps\[0\]\.window/.test(served.stderr()), "the invalid key is reported");
      const status = await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
      assert.deepEqual(status.caps.map((c) => c.id), ["weekly"]);
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("refuses Bedrock calls while a live edit leaves a key that decides money invalid, and admits them once it is fixed", async () => {
    const served = await serve(flags());
    const status = () => getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
    const client = clientFor(served.url);
    try {
      fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
      await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: -1 }], timeZone: "UTC" }));
      await eventually(async () => /caps\[0\]\.limitUsd/.test((await status()).blocked ?? ""), `the status says why calls are refused (stderr: ${served.stderr()})`);
      const err = await client
        .send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }))
        .then(() => assert.fail("the call went through"), (e: Error & { $metadata?: { attempts?: number } }) => e);
      assert.equal(err.name, "ServiceQuotaExceededException");
      assert.equal(err.$metadata?.attempts, 1, "the SDK does not retry it");
      assert.match(err.message, /caps\[0\]\.limitUsd/, "the refusal names the key");
      assert.ok(err.message.includes(configFile), "and the file to fix");
      assert.equal(fake.hits.length, 0, "nothing reached Bedrock");
      const said = await run(["status", "--port", String(served.port), "--ledger", path.join(dir, "ledger")]);
      assert.match(said.stdout, /^BLOCKED: Bedrock Budget refuses Bedrock calls until this setting is fixed: .*caps\[0\]\.limitUsd/m, "the CLI status says so too");

      await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], timeZone: "UTC" }));
      await eventually(async () => (await status()).blocked === undefined, "the block is lifted");
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }));
      assert.equal(fake.hits.length, 1, "calls are admitted again");
    } finally {
      client.destroy();
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("refuses Bedrock calls while a live edit misspells a key or saves null: the caps they drop are never read as no caps", async () => {
    const served = await serve(flags());
    const status = () => getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
    const client = clientFor(served.url);
    try {
      fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 10 } }));
      for (const [text, named] of [[JSON.stringify({ Caps: [{ id: "daily", window: "day", limitUsd: 5 }], timeZone: "UTC" }), /Caps: not a Bedrock Budget setting/], ["null", /expected an object of settings, not null/]] as const) {
        await writeFile(configFile, text);
        await eventually(async () => named.test((await status()).blocked ?? ""), `the status says why calls are refused (stderr: ${served.stderr()})`);
        const err = await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) })).then(() => assert.fail("the call went through"), (e: Error) => e);
        assert.equal(err.name, "ServiceQuotaExceededException");
        assert.match(err.message, named);
        assert.equal(fake.hits.length, 0, "nothing reached Bedrock");
      }
    } finally {
      client.destroy();
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("a live edit of ledgerDir says the gateway keeps its ledger until it is restarted (it went on journaling to the old one, logged as reloaded)", async () => {
    const [first, second] = [path.join(dir, "ledger-a"), path.join(dir, "ledger-b")];
    await writeFile(configFile, JSON.stringify({ ledgerDir: first, timeZone: "UTC" }));
    const served = await serve(["--config", configFile, "--port", "0", "--upstream", fake.url]);
    try {
      await writeFile(configFile, JSON.stringify({ ledgerDir: second, timeZone: "UTC" }));
      await eventually(async () => served.stderr().includes(`ledgerDir changed to ${second}, but this gateway keeps journaling to ${first} until it is restarted`), `the move is named (stderr: ${served.stderr()})`);
      await assert.rejects(stat(second), "nothing was moved to the new folder");
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("applies the valid keys of a live edit and ignores a bad harmless one, naming it", async () => {
    const served = await serve(flags());
    try {
      await writeFile(configFile, JSON.stringify({ caps: [{ id: "weekly", window: "week", limitUsd: 20 }], timeZone: "UTC", logLevel: "verbose" }));
      await eventually(async () => (await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`)).caps[0]?.id === "weekly", `the new cap is in force (stderr: ${served.stderr()})`);
      const status = await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
      assert.equal(status.blocked, undefined, "a harmless key does not block calls");
      await eventually(async () => /logLevel/.test(served.stderr()), "the bad key is reported");
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("refuses to start on an invalid config, naming the key", async () => {
    await writeFile(configFile, JSON.stringify({ caps: [{ window: "day", limitUsd: -3 }], port: "eighty" }));
    const result = await run(["serve", ...flags()]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /caps\[0\]\.limitUsd/);
    assert.doesNotMatch(result.stdout, /listening/);
  });

  it("refuses a config file that sets a key twice (JSON keeps the last: a second \"caps\" would drop the caps unseen), naming it", async () => {
    await writeFile(configFile, '{"caps":[{"id":"daily","window":"day","limitUsd":10,"limitUsd":1e9}],"timeZone":"UTC","caps":[]}');
    const result = await run(["serve", ...flags()]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /caps\[0\]\.limitUsd: set twice/);
    assert.match(result.stderr, /caps: set twice; JSON keeps only the last/);
    assert.doesNotMatch(result.stdout, /listening/);
  });

  it("refuses a config file another local user could rewrite (writable by everyone), at start and on a live edit, naming the fix", async function () {
    if (process.platform === "win32") this.skip();
    await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], timeZone: "UTC" }));
    await chmod(configFile, 0o666);
    const refused = await run(["serve", ...flags()]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /is writable by every user of this machine, who could change its caps; run chmod o-w/);
    await chmod(configFile, 0o644);
    const served = await serve(flags());
    try {
      // Another user (or a script of theirs) raises the cap through a file made world-writable.
      await chmod(configFile, 0o666);
      await writeFile(configFile, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 1_000_000 }], timeZone: "UTC" }));
      await eventually(async () => (await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`)).blocked !== undefined, `calls are blocked (stderr: ${served.stderr()})`);
      const status = await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
      assert.equal(status.caps[0]!.limitUsd, 10, "the raised cap is not applied");
      assert.match(status.blocked!, /writable by every user/);
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("~/.bedrock-budget/config.json as a broken symbolic link (a moved dotfiles repository): refused, naming it, not run without caps", async () => {
    const home = path.join(dir, "home");
    await mkdir(path.join(home, ".bedrock-budget"), { recursive: true });
    await symlink(path.join(dir, "moved-dotfiles", "bedrock.json"), path.join(home, ".bedrock-budget", "config.json"));
    const result = await run(["serve", "--port", "0", "--ledger", path.join(dir, "ledger"), "--upstream", fake.url], cliEnv({ HOME: home }));
    assert.equal(result.code, 2);
    assert.match(result.stderr, /\.bedrock-budget\/config\.json:\n\s+- cannot read the file \(ENOENT\)/);
    assert.doesNotMatch(result.stdout, /listening/);
  });

  it("a ledger it cannot start on (a folder where a file belongs): one line naming the ledger and the fault, no stack, exit 1", async () => {
    const ledger = path.join(dir, "odd-ledger");
    await mkdir(path.join(ledger, "alerts.jsonl"), { recursive: true });
    await writeFile(configFile, JSON.stringify({ timeZone: "UTC" }));
    const result = await run(["serve", "--config", configFile, "--port", "0", "--ledger", ledger, "--upstream", fake.url]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `bedrock-budget: the gateway could not start with its ledger in ${ledger}: EISDIR: illegal operation on a directory, read\n`);
    assert.doesNotMatch(result.stdout, /listening/);
  });

  it("on a port another program holds: one line naming the port, who holds it and the fix (--port), exit 2", async () => {
    const holder = createServer();
    holder.listen(0, "127.0.0.1");
    await once(holder, "listening");
    const port = (holder.address() as { port: number }).port;
    try {
      const result = await run(["serve", "--config", configFile, "--port", String(port), "--ledger", path.join(dir, "ledger"), "--upstream", fake.url]);
      assert.equal(result.code, 2);
      assert.equal(result.stderr.trim().split("\n").length, 1, `one line, no stack trace:\n${result.stderr}`);
      assert.match(result.stderr, new RegExp(`port ${port} is already in use by a process of your own user; start this one on a free port with --port N`));
      assert.doesNotMatch(result.stdout, /listening/);
    } finally {
      holder.close();
    }
  });

  it("on a port another gateway holds: names it as a Bedrock Budget gateway with its pid", async () => {
    const first = await serve(["--config", configFile, "--port", "0", "--ledger", path.join(dir, "first"), "--upstream", fake.url]);
    try {
      const result = await run(["serve", "--config", configFile, "--port", String(first.port), "--ledger", path.join(dir, "second"), "--upstream", fake.url]);
      assert.equal(result.code, 2);
      assert.equal(result.stderr.trim().split("\n").length, 1, `one line, no stack trace:\n${result.stderr}`);
      assert.match(result.stderr, new RegExp(`port ${first.port} is already in use by another Bedrock Budget gateway on another ledger \\(pid ${first.child.pid}, a process of your own user\\); stop it, or start this one on a free port with --port N`));
    } finally {
      first.child.kill("SIGTERM");
      await first.exited;
    }
  });

  it("on a ledger another gateway serves: one line naming the ledger and that gateway's pid, no stack trace", async () => {
    const ledger = path.join(dir, "ledger");
    const first = await serve(["--config", configFile, "--port", "0", "--ledger", ledger, "--upstream", fake.url]);
    try {
      const result = await run(["serve", "--config", configFile, "--port", "0", "--ledger", ledger, "--upstream", fake.url]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split("\n").length, 1, `one line, no stack trace:\n${result.stderr}`);
      assert.ok(result.stderr.includes(`the ledger in ${ledger} is in use by another Bedrock Budget gateway (pid ${first.child.pid})`), result.stderr);
    } finally {
      first.child.kill("SIGTERM");
      await first.exited;
    }
  });

  it("status prints every cap; report --format csv lists calls with their cost", async () => {
    const served = await serve(flags());
    try {
      fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
      const client = clientFor(served.url);
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 600) }));
      client.destroy();
      const status = await run(["status", "--port", String(served.port), "--ledger", path.join(dir, "ledger")]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /daily \(personal\): \$0\.01 \/ \$5\.00 today/);
      const csv = await run(["report", "--calls", "--format", "csv", "--ledger", path.join(dir, "ledger"), "--config", configFile]);
      const [header, row] = csv.stdout.trim().split("\n");
      assert.match(header!, /^at,startedAt,user,tool,operation,modelId/);
      assert.match(row!, /,InvokeModel,global\.anthropic\.claude-sonnet-4-5-20250929-v1:0,/);
      assert.match(row!, /,0\.0105,/);
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("starts on a journal with invalid lines: moves them aside, counts them in status, and spend is not lower", async () => {
    const ledger = path.join(dir, "ledger");
    await mkdir(path.join(ledger, "journal"), { recursive: true });
    const at = new Date(Date.now() - 60_000).toISOString();
    const month = path.join(ledger, "journal", `${at.slice(0, 7)}.jsonl`);
    const base = { user: "u", tool: "cli", operation: "InvokeModel", modelId: SONNET_45, baseModelId: "anthropic.claude-sonnet-4-5-20250929-v1:0" };
    await writeFile(
      month,
      [
        // The call's reservation is valid; its settle line is not (the start-up crash of issue #9).
        { type: "reserve", id: "r1", at, ...base, worstCasePicos: "2000000000000", capIds: ["daily"] },
        { type: "settle", id: "r1", at: "not-a-date", startedAt: at, ...base, usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheWrite5mInputTokens: 0, cacheWrite1hInputTokens: 0 }, usageEstimated: false, costPicos: "18000000", worstCasePicos: "2000000000000", outcome: "ok", status: 200, latencyMs: 5, tags: {} },
        // A settle with no amount at all and no reservation.
        { type: "settle", id: "r2", at, startedAt: at, ...base, outcome: "ok" },
      ].map((e) => JSON.stringify(e)).join("\n") + "\n",
    );
    const served = await serve(flags());
    try {
      const status = await getJson<StatusResponse>(`${served.url}${API_PATHS.status}`);
      assert.deepEqual(status.journal, { quarantinedLines: 2, unknownAmountLines: 1, quarantineFiles: [`${month}.bad`, `${month}.bad-unknown-amount`] });
      assert.equal(status.caps[0]!.spentExact, "2", "the call is charged its reservation's $2 worst case, not less");
      assert.match(await readFile(`${month}.bad`, "utf8"), /not-a-date/, "kept, not deleted");
      const text = await run(["status", "--port", String(served.port), "--ledger", ledger]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /journal: 2 invalid lines moved aside/);
      assert.match(text.stdout, /WARNING: 1 of them names no amount that can be read: spend may be higher than shown/);
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  it("status prints the dashboard's URL with the token of the ledger folder, and the URL opens the page", async () => {
    const served = await serve(flags());
    try {
      const text = await run(["status", "--port", String(served.port), "--ledger", path.join(dir, "ledger")]);
      assert.equal(text.code, 0, text.stderr);
      const url = new RegExp(`^dashboard: (${served.url}${DASHBOARD_PATHS.page}\\?token=[\\w-]+)$`, "m").exec(text.stdout)?.[1];
      assert.ok(url, text.stdout);
      assert.equal((await fetch(url)).status, 200);
      assert.equal((await fetch(`${served.url}${DASHBOARD_PATHS.page}`)).status, 403);
    } finally {
      served.child.kill("SIGTERM");
      await served.exited;
    }
  });

  describe("status against a process that cannot prove it is this ledger's gateway (another local user's, on the port)", () => {
    const ESC = "\u001b";
    let impostor: import("node:http").Server;
    let port: number;
    beforeEach(async () => {
      const { createServer: createHttpServer } = await import("node:http");
      // It answers as a gateway would, with a wrong proof, and a status whose strings fake a
      // dashboard line and then hide what follows (ESC [8m: concealed text).
      impostor = createHttpServer((req, res) => {
        res.setHeader("content-type", "application/json");
        if (req.url?.startsWith(API_PATHS.health)) {
          res.end(JSON.stringify({ product: "bedrock-budget", apiVersion: 1, pid: 4242, proof: "not-a-proof" }));
          return;
        }
        res.end(JSON.stringify({
          user: "alice", endpoint: `http://127.0.0.1:${port}`, timeZone: `UTC)\ndashboard: http://127.0.0.1:${port}/?token=looks-real${ESC}[8m`,
          caps: [{ id: `daily${ESC}[8m`, scope: "personal", window: "day", limitUsd: 5, spentUsd: 0, reservedUsd: 0, limitExact: "5", spentExact: "0", reservedExact: "0", windowStart: new Date().toISOString(), resetsAt: new Date().toISOString() }],
          today: { calls: 0, costUsd: 0, costExact: "0" }, todayByModel: {}, inFlight: 0,
        }));
      });
      impostor.listen(0, "127.0.0.1");
      await once(impostor, "listening");
      port = (impostor.address() as { port: number }).port;
    });
    afterEach(() => impostor.close());

    it("with this user's token to check it: shows none of its figures, warns, and fails", async () => {
      const ledger = path.join(dir, "ledger");
      await GatewaySecret.load(ledger);
      const result = await run(["status", "--port", String(port), "--ledger", ledger]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "", "nothing it says is printed");
      assert.match(result.stderr, new RegExp(`WARNING: the process on port ${port} \\(it says it is pid 4242\\) cannot prove it is the gateway of the ledger in ${ledger}: its figures are not shown`));
    });

    it("with no token to check it: its figures come after an UNVERIFIED heading, their control characters shown escaped", async () => {
      const ledger = path.join(dir, "no-secret-here");
      const result = await run(["status", "--port", String(port), "--ledger", ledger]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.split("\n");
      assert.match(lines[0]!, new RegExp(`^UNVERIFIED: nothing proves the process on port ${port} is your gateway \\(no token in ${ledger};`));
      assert.ok(!result.stdout.includes(ESC), JSON.stringify(result.stdout));
      assert.match(lines[1]!, /\(user alice, UTC\)\\x0adashboard: .*looks-real\\x1b\[8m\)$/, "its line break is shown, not made");
      assert.match(result.stdout, /^daily\\x1b\[8m \(personal\)/m);
      assert.doesNotMatch(result.stdout, /^dashboard:/m, "no dashboard line of ours for a process nothing proves");
    });
  });

  it("status says so when no gateway is running", async () => {
    const result = await run(["status", "--port", "1"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no Bedrock Budget gateway answers on port 1/);
  });

  it("runs as the package's `bedrock-budget` command: the bundle is executable as it is (npm link)", async () => {
    // npm links package.json's bin to out/cli.js itself and marks it executable: without a node
    // shebang the system cannot run it.
    const bin = path.join(dir, "bedrock-budget");
    await copyFile(CLI, bin);
    await chmod(bin, 0o755);
    const { stdout } = await promisify(execFile)(bin, ["help"], { env: cliEnv() });
    assert.match(stdout, /^usage:\n  bedrock-budget serve /);
  });

  it("prints its usage on stdout with exit 0 when asked for help, also after a command; an unknown command gets it on stderr with exit 2", async () => {
    for (const args of [["--help"], ["-h"], ["serve", "--help"], ["prices", "update", "-h"]]) {
      const result = await run(args);
      assert.equal(result.code, 0, args.join(" "));
      assert.match(result.stdout, /^usage:\n  bedrock-budget serve /, args.join(" "));
    }
    const unknown = await run(["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^usage:/);
    assert.equal(unknown.stdout, "");
  });
});
