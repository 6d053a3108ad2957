/**
 * The gateway as a service (docs/bedrock-budget.service): systemd accepts the unit without a
 * warning, and its ExecStart, run with the paths moved into a temporary folder, serves a metered
 * call, keeps its ledger in the folder the unit names, and stops cleanly on SIGTERM (systemctl stop);
 * traced with strace, it makes no system call the unit's SystemCallFilter= leaves out. The config
 * (which may hold a Redis password or a webhook token) reaches it as a credential (LoadCredential=),
 * so /etc/bedrock-budget/config.json can be root-only: the runs here hand it over the same way, in a
 * private folder named by $CREDENTIALS_DIRECTORY, as systemd does.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS } from "../../server/shared/apiPaths";
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

/** The unit's ExecStart, split into words (it has no quoting), its specifiers left as written. */
function execStart(): string[] {
  const line = readFileSync(UNIT, "utf8").split("\n").find((l) => l.startsWith("ExecStart="));
  assert.ok(line, "the unit has an ExecStart");
  return line.slice("ExecStart=".length).trim().split(/\s+/);
}

/** The credentials the unit loads (LoadCredential=ID:PATH), by ID. */
function loadedCredentials(): Map<string, string> {
  return new Map(
    unitValues("LoadCredential").map((v) => {
      const colon = v.indexOf(":");
      assert.ok(colon > 0, `LoadCredential=${v} names an ID and a file`);
      return [v.slice(0, colon), v.slice(colon + 1)] as const;
    }),
  );
}

/**
 * The ExecStart flags of `serve` as systemd passes them: ${CREDENTIALS_DIRECTORY} is the service's credentials folder
 * (here `credentialsDir`), the state folder is moved to `stateDir`. It also checks that --config is the
 * credential loaded from CONFIG_FILE, and writes `config` there as systemd would copy it: a folder and
 * a file only the service may read.
 */
async function serveFlags(credentialsDir: string, stateDir: string, config: object): Promise<string[]> {
  const [node, script, command, ...args] = execStart();
  assert.equal(node, "/usr/bin/node");
  assert.equal(script, `${INSTALL_DIR}/out/cli.js`, "the built CLI under the install folder");
  assert.equal(command, "serve");
  assert.ok(args.includes(STATE_DIR), `the state folder: ${args.join(" ")}`);
  const configFlag = args[args.indexOf("--config") + 1];
  const CREDENTIALS = "${CREDENTIALS_DIRECTORY}/"; // not %d: systemd 247 has credentials but not %d
  const id = configFlag?.startsWith(CREDENTIALS) ? configFlag.slice(CREDENTIALS.length) : undefined;
  // Not the file in /etc itself: the service would need it readable by its user, so by everyone (DynamicUser).
  assert.ok(id !== undefined && !id.includes("/"), `--config is a credential (\${CREDENTIALS_DIRECTORY}/ID), not ${configFlag}`);
  assert.equal(loadedCredentials().get(id), CONFIG_FILE, `LoadCredential=${id}:${CONFIG_FILE}`);

  await mkdir(credentialsDir);
  await writeFile(path.join(credentialsDir, id), JSON.stringify(config));
  await chmod(path.join(credentialsDir, id), 0o400);
  await chmod(credentialsDir, 0o500);
  return args.map((a) => (a === STATE_DIR ? stateDir : a.replace("${CREDENTIALS_DIRECTORY}", credentialsDir)));
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
      await chmod(path.join(dir, "credentials"), 0o700).catch(() => {}); // read-only as systemd makes it: opened to be removed
      await rm(dir, { recursive: true, force: true });
    });

    it("serves a metered call with the settings of its config credential and the ledger in the unit's state folder, and stops with exit 0 on SIGTERM", async () => {
      // The same flags, with the credentials folder and /var/lib moved into the test's folder.
      const credentialsDir = path.join(dir, "credentials");
      const stateDir = path.join(dir, "state");
      const flags = await serveFlags(credentialsDir, stateDir, { port: 0, upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "from-the-credential", window: "day", limitUsd: 10 }] });
      const served = await serve(flags, cliEnv({ CREDENTIALS_DIRECTORY: credentialsDir }));

      fake.behave(() => ({ kind: "ok", usage: { input: 1000, output: 500 } }));
      const client = clientFor(served.url);
      await client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("from CI", 600) }));
      client.destroy();
      assert.equal(fake.hits.length, 1, "the call went to the credential's upstreamEndpoint");
      const status = JSON.stringify(await (await fetch(`${served.url}${API_PATHS.status}`)).json());
      assert.match(status, /"from-the-credential"/, `the credential's caps are in force: ${status}`);
      assert.ok((await readdir(stateDir)).some((f) => f.startsWith("journal")), `the journal is in the state folder: ${(await readdir(stateDir)).join(", ")}`);

      served.child.kill("SIGTERM");
      assert.equal(await served.exited, 0, `a clean stop (no restart by Restart=on-failure); stderr:\n${served.stderr()}`);
    });

    it("makes no system call SystemCallFilter= leaves out and opens no socket family RestrictAddressFamilies= leaves out (systemd would kill it with SIGSYS, or refuse the socket)", async function () {
      if (!existsSync(STRACE) || !existsSync(SYSTEMD_ANALYZE)) {
        console.log(`    (skipped: needs ${STRACE} and ${SYSTEMD_ANALYZE})`);
        this.skip();
      }
      const credentialsDir = path.join(dir, "credentials");
      const stateDir = path.join(dir, "state");
      const trace = path.join(dir, "trace");
      const flags = await serveFlags(credentialsDir, stateDir, { port: 0, upstreamEndpoint: fake.url, timeZone: "UTC", caps: [{ id: "daily", window: "day", limitUsd: 10 }] });
      // From node's first instruction: the start-up (V8's set-up) is where the surprises are.
      const child = spawn(STRACE, ["-f", "-qq", "-o", trace, "--", process.execPath, CLI, "serve", ...flags], { env: cliEnv({ CREDENTIALS_DIRECTORY: credentialsDir }), stdio: ["ignore", "pipe", "pipe"] });
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
