/**
 * The gateway as a service (docs/bedrock-budget.service): systemd accepts the unit without a
 * warning, and its ExecStart, run with the paths moved into a temporary folder, serves a metered
 * call, keeps its ledger in the folder the unit names, and stops cleanly on SIGTERM (systemctl stop);
 * traced with strace, it makes no system call the unit's SystemCallFilter= leaves out.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { CLI, cliEnv, serve } from "../support/cliProcess";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, clientFor, CREDENTIALS, SONNET_45 } from "../support/harness";

const UNIT = path.resolve(__dirname, "../../docs/bedrock-budget.service");
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";
const INSTALL_DIR = "/opt/bedrock-budget";
const CONFIG_FILE = "/etc/bedrock-budget/config.json";
const STATE_DIR = "/var/lib/bedrock-budget";

const STRACE = "/usr/bin/strace";

/** The values of every `key=` line of the unit, in order. */
function unitValues(key: string): string[] {
  return readFileSync(UNIT, "utf8").split("\n").filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1).trim());
}

/** The system calls a SystemCallFilter entry (a call or a @group, groups nested) stands for, as this systemd knows them. */
function syscallsOf(entry: string, seen = new Set<string>()): string[] {
  if (!entry.startsWith("@")) return [entry];
  if (seen.has(entry)) return [];
  seen.add(entry);
  const out = spawnSync(SYSTEMD_ANALYZE, ["syscall-filter", entry], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout
    .split("\n")
    .slice(1) // the group's own name
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .flatMap((l) => syscallsOf(l, seen));
}

/** The unit's ExecStart, split into words (it has no quoting). */
function execStart(): string[] {
  const line = readFileSync(UNIT, "utf8").split("\n").find((l) => l.startsWith("ExecStart="));
  assert.ok(line, "the unit has an ExecStart");
  return line.slice("ExecStart=".length).trim().split(/\s+/);
}

describe("the gateway as a systemd service (docs/bedrock-budget.service)", function () {
  this.timeout(60_000);

  it("is accepted by systemd-analyze verify, without a warning", function () {
    if (!existsSync(SYSTEMD_ANALYZE)) {
      console.log(`    (skipped: ${SYSTEMD_ANALYZE} is not installed; Debian's systemd package has it)`);
      this.skip();
    }
    const out = spawnSync(SYSTEMD_ANALYZE, ["verify", UNIT], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    // verify exits 0 on unknown keys and bad values (it only ignores them): any output is a fault.
    assert.equal(out.stderr.trim(), "", "systemd reports nothing about the unit");
  });

  describe("its ExecStart", function () {
    let fake: FakeBedrock;
    let dir: string;
    beforeEach(async () => {
      fake = await FakeBedrock.start({ credentials: CREDENTIALS });
      dir = await mkdtemp(path.join(os.tmpdir(), "bb-systemd-"));
    });
    afterEach(async () => {
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("serves a metered call with the ledger in the unit's state folder, and stops with exit 0 on SIGTERM", async () => {
      const [node, script, command, ...args] = execStart();
      assert.equal(node, "/usr/bin/node");
      assert.equal(script, `${INSTALL_DIR}/out/cli.js`, "the built CLI under the install folder");
      assert.equal(command, "serve");
      assert.ok(args.includes(CONFIG_FILE) && args.includes(STATE_DIR), `the config file and the state folder: ${args.join(" ")}`);

      // The same flags, with /etc and /var/lib moved into the test's folder.
      const configFile = path.join(dir, "config.json");
      const stateDir = path.join(dir, "state");
      await writeFile(configFile, JSON.stringify({ port: 0, upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "daily", window: "day", limitUsd: 10 }] }));
      const served = await serve(args.map((a) => (a === CONFIG_FILE ? configFile : a === STATE_DIR ? stateDir : a)));

      fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
      const client = clientFor(served.url);
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("from CI", 600) }));
      client.destroy();
      assert.equal(fake.hits.length, 1);
      assert.ok((await readdir(stateDir)).some((f) => f.startsWith("journal")), `the journal is in the state folder: ${(await readdir(stateDir)).join(", ")}`);

      served.child.kill("SIGTERM");
      assert.equal(await served.exited, 0, `a clean stop (no restart by Restart=on-failure); stderr:\n${served.stderr()}`);
    });

    it("makes no system call SystemCallFilter= leaves out and opens no socket family RestrictAddressFamilies= leaves out (systemd would kill it with SIGSYS, or refuse the socket)", async function () {
      if (!existsSync(STRACE) || !existsSync(SYSTEMD_ANALYZE)) {
        console.log(`    (skipped: needs ${STRACE} and ${SYSTEMD_ANALYZE})`);
        this.skip();
      }
      const [, , command, ...args] = execStart();
      const configFile = path.join(dir, "config.json");
      const stateDir = path.join(dir, "state");
      const trace = path.join(dir, "trace");
      await writeFile(configFile, JSON.stringify({ port: 0, upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "daily", window: "day", limitUsd: 10 }] }));
      const flags = args.map((a) => (a === CONFIG_FILE ? configFile : a === STATE_DIR ? stateDir : a));
      // From node's first instruction: the start-up (V8's set-up) is where the surprises are.
      const child = spawn(STRACE, ["-f", "-qq", "-o", trace, "--", process.execPath, CLI, command!, ...flags], { env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`serve exited with ${code}; stderr:\n${stderr}`)));
      });
      // SIGTERM to node itself (strace does not pass its own on); strace then exits with node's status.
      const nodePid = Number(/^(\d+)\s/.exec(await readFile(trace, "utf8"))?.[1]);
      fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
      const client = clientFor(url);
      try {
        await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("from CI", 600) }));
      } finally {
        client.destroy();
        process.kill(nodePid, "SIGTERM");
      }
      assert.equal(await exited, 0, stderr);

      const lines = (await readFile(trace, "utf8")).split("\n");
      const called = new Set(lines.map((l) => /^\d+\s+([a-z0-9_]+)\(/.exec(l)?.[1]).filter((c): c is string => c !== undefined));
      assert.ok(called.has("epoll_wait") || called.has("epoll_pwait"), "the trace holds the process's calls");
      const allowed = new Set(unitValues("SystemCallFilter").flatMap((v) => v.split(/\s+/)).flatMap((e) => syscallsOf(e)));
      const outside = [...called].filter((c) => !allowed.has(c)).sort();
      assert.deepEqual(outside, [], "system calls outside SystemCallFilter=");

      const families = new Set(lines.map((l) => /\bsocket\((AF_[A-Z0-9]+)/.exec(l)?.[1]).filter((f): f is string => f !== undefined));
      const allowedFamilies = new Set(unitValues("RestrictAddressFamilies").flatMap((v) => v.split(/\s+/)));
      assert.deepEqual([...families].filter((f) => !allowedFamilies.has(f)), [], "socket families outside RestrictAddressFamilies=");
    });
  });
});
