/** Where terminals send Bedrock calls while the gateway serves, starts, fails, or a stranger holds its port. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import {
  DOWN_ENDPOINT,
  NOT_STARTED_ENDPOINT,
  parseEnvFile,
  proxyBypassEnv,
  proxyBypassNames,
  readEnvFile,
  restoredTerminalsNotice,
  routedDebugConfig,
  routedEnv,
  shellExports,
  stateBeforeFirstReport,
  terminalEndpoint,
  terminalMutations,
  terminalVariables,
  UNVERIFIED_ENDPOINT,
  whenDownNotice,
  whenGatewayDownOf,
  withGatewayBypass,
  type TerminalInputs,
  type TerminalMutation,
} from "../../../client/terminalModel";

const base: TerminalInputs = { state: undefined, routeTerminals: true, whenGatewayDown: "block" };
const at = (extra: Partial<TerminalInputs>) => terminalEndpoint({ ...base, ...extra });

describe("terminal endpoint", () => {
  it("points at the gateway while it serves, leader or follower", () => {
    assert.equal(at({ state: { state: "ready", url: "http://127.0.0.1:8777", role: "leader" } }), "http://127.0.0.1:8777");
    assert.equal(at({ state: { state: "ready", url: "http://127.0.0.1:9000", role: "follower" }, whenGatewayDown: "direct" }), "http://127.0.0.1:9000");
  });

  it("keeps pointing at the configured address while the gateway starts (block, the default)", () => {
    assert.equal(at({ state: { state: "starting", endpoint: "http://127.0.0.1:8777" } }), "http://127.0.0.1:8777");
    assert.equal(at({ state: { state: "starting" } }), NOT_STARTED_ENDPOINT, "a name that never resolves when no address is known");
  });

  it("while a gateway without a fixed port (port 0) starts again, points at a name that never resolves, not at the random port it released", () => {
    // After Restart Gateway or a take-over the new gateway binds another random port; the last
    // one is free, and another local user's process that binds it would get this user's signed calls.
    assert.equal(at({ state: { state: "starting" } }), NOT_STARTED_ENDPOINT);
    assert.deepEqual(terminalVariables({ ...base, state: { state: "starting" } }).AWS_ENDPOINT_URL_BEDROCK_RUNTIME, NOT_STARTED_ENDPOINT);
  });

  it("before the background process has reported anything, routes as its first report will: the fixed port's address, else a name that never resolves, never nothing", () => {
    // Debug sessions started in that moment got no variables at all and called Bedrock unmetered.
    const before = (port: unknown, extra: Partial<TerminalInputs> = {}) => terminalVariables({ ...base, ...extra, state: stateBeforeFirstReport(port) });
    assert.deepEqual(before(8777), routedEnv("http://127.0.0.1:8777"));
    assert.deepEqual(before(0), routedEnv(NOT_STARTED_ENDPOINT));
    for (const odd of [undefined, "8777", 70_000, -1, 1.5]) assert.deepEqual(before(odd), routedEnv(NOT_STARTED_ENDPOINT), String(odd));
    assert.equal(before(8777, { whenGatewayDown: "direct" }).AWS_ENDPOINT_URL_BEDROCK_RUNTIME, undefined, "direct, as chosen, while nothing serves");
    assert.equal(before(8777, { routeTerminals: false }).AWS_ENDPOINT_URL_BEDROCK_RUNTIME, undefined);
  });

  it("once the gateway has failed or its process stopped, points at a name that never resolves, not at a port nobody of ours holds", () => {
    // Another local user could bind the free port and receive this user's signed requests.
    assert.equal(at({ state: { state: "error", message: "could not start", endpoint: "http://127.0.0.1:8777" } }), DOWN_ENDPOINT);
    assert.equal(at({ state: { state: "error", message: "the background process stopped" } }), DOWN_ENDPOINT);
    assert.equal(new URL(DOWN_ENDPOINT).hostname.endsWith(".invalid"), true);
  });

  it("points at a name that never resolves when an unverified process holds the port", () => {
    const url = at({ state: { state: "error", message: "port taken", endpoint: "http://127.0.0.1:8777", strangerOnPort: true } });
    assert.equal(url, UNVERIFIED_ENDPOINT);
    assert.equal(new URL(url!).hostname.endsWith(".invalid"), true);
  });

  it("removes the variable while the gateway is down when the user chose direct, and whenever routing is off", () => {
    assert.equal(at({ state: { state: "error", message: "x", endpoint: "http://127.0.0.1:8777" }, whenGatewayDown: "direct" }), undefined);
    assert.equal(at({ state: { state: "error", message: "x", strangerOnPort: true }, whenGatewayDown: "direct" }), undefined);
    assert.equal(at({ state: { state: "starting", endpoint: "http://127.0.0.1:8777" }, whenGatewayDown: "direct" }), undefined);
    assert.equal(at({ state: { state: "ready", url: "http://127.0.0.1:8777", role: "leader" }, routeTerminals: false }), undefined);
  });

  it("gives the Anthropic SDK's variable the same address as the AWS one, under the same block and direct rules", () => {
    const vars = (extra: Partial<TerminalInputs>) => terminalVariables({ ...base, ...extra });
    const both = (url: string | undefined) => ({ AWS_ENDPOINT_URL_BEDROCK_RUNTIME: url, ANTHROPIC_BEDROCK_BASE_URL: url, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: url === undefined ? undefined : "false" });
    assert.deepEqual(vars({ state: { state: "ready", url: "http://127.0.0.1:8777", role: "leader" } }), both("http://127.0.0.1:8777"));
    assert.deepEqual(vars({ state: { state: "error", message: "stopped", endpoint: "http://127.0.0.1:8777" } }), both(DOWN_ENDPOINT), "blocked while down");
    assert.deepEqual(vars({ state: { state: "error", message: "port taken", strangerOnPort: true } }), both(UNVERIFIED_ENDPOINT));
    assert.deepEqual(vars({ state: { state: "starting" } }), both(NOT_STARTED_ENDPOINT));
    assert.deepEqual(vars({ state: { state: "error", message: "x", endpoint: "http://127.0.0.1:8777" }, whenGatewayDown: "direct" }), both(undefined), "direct: both removed");
    assert.deepEqual(vars({ state: { state: "ready", url: "http://127.0.0.1:8777", role: "leader" }, routeTerminals: false }), both(undefined), "routing off: both removed");
  });

  it("sets both variables in a metered terminal, and turns off the one that makes AWS clients ignore them", () => {
    assert.deepEqual(routedEnv("http://127.0.0.1:8777"), {
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://127.0.0.1:8777",
      ANTHROPIC_BEDROCK_BASE_URL: "http://127.0.0.1:8777",
      AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "false",
    });
  });

  it("a routed environment reaches the gateway with the real AWS SDK even where endpoint variables are turned off (environment or AWS config file)", async () => {
    // The host the SDK would send to, read by a middleware that stops the request before it leaves.
    const hostOf = async (): Promise<string> => {
      const client = new BedrockRuntimeClient({ region: "us-east-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "x" }, maxAttempts: 1 });
      client.middlewareStack.add(
        () => async (args) => {
          const request = args.request as { protocol: string; hostname: string; port?: number };
          throw new Error(`${request.protocol}//${request.hostname}${request.port ? `:${request.port}` : ""}`);
        },
        { step: "finalizeRequest", priority: "low" },
      );
      try {
        await client.send(new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", body: "{}" }));
        return "sent";
      } catch (err) {
        return (err as Error).message;
      } finally {
        client.destroy();
      }
    };
    const dir = await mkdtemp(path.join(os.tmpdir(), "bb-awsconfig-"));
    const names = ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "ANTHROPIC_BEDROCK_BASE_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_ENDPOINT_URL"] as const;
    const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
    try {
      const ignoring = path.join(dir, "config");
      await writeFile(ignoring, "[default]\nignore_configured_endpoint_urls = true\n");
      for (const inherited of [{ AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }, { AWS_CONFIG_FILE: ignoring }]) {
        for (const n of names) delete process.env[n];
        Object.assign(process.env, inherited);
        assert.equal(await hostOf(), "https://bedrock-runtime.us-east-1.amazonaws.com", `${JSON.stringify(inherited)} alone: the SDK goes to Bedrock`);
        Object.assign(process.env, routedEnv("http://127.0.0.1:8777"));
        assert.equal(await hostOf(), "http://127.0.0.1:8777", `${JSON.stringify(inherited)} in a routed terminal: the gateway`);
      }
    } finally {
      for (const n of names) {
        if (saved[n] === undefined) delete process.env[n];
        else process.env[n] = saved[n];
      }
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("warns once the gateway serves elsewhere (port 0: a new random port) that terminals restored from an earlier session still point at its released port", () => {
    // VS Code restores the saved variables (and revived terminals keep theirs): nothing told the user
    // their calls now went to a port nothing of ours holds, which another local user could bind.
    const restored = { saved: "http://127.0.0.1:41234", terminals: 2 };
    const moved = restoredTerminalsNotice(restored, { state: "ready", url: "http://127.0.0.1:39999", role: "leader" });
    assert.match(moved?.message ?? "", /2 terminals opened before this window started may still send Bedrock calls to http:\/\/127\.0\.0\.1:41234.*serves http:\/\/127\.0\.0\.1:39999 now.*Close them and open new ones.*bedrockBudget\.port/);
    assert.match(restoredTerminalsNotice(restored, { state: "error", message: "could not start" })?.message ?? "", /the gateway is not serving/);
    assert.equal(restoredTerminalsNotice(restored, { state: "starting" }), undefined, "undecided while it starts");
    // Nothing to say: the same address (a fixed port, another window's gateway), no terminal, none routed, a name that never resolves.
    assert.deepEqual(restoredTerminalsNotice(restored, { state: "ready", url: "http://127.0.0.1:41234", role: "follower" }), {});
    assert.deepEqual(restoredTerminalsNotice({ ...restored, terminals: 0 }, { state: "starting" }), {});
    assert.deepEqual(restoredTerminalsNotice({ saved: undefined, terminals: 2 }, { state: "starting" }), {});
    assert.deepEqual(restoredTerminalsNotice({ saved: DOWN_ENDPOINT, terminals: 2 }, { state: "ready", url: "http://127.0.0.1:39999", role: "leader" }), {});
    assert.match(restoredTerminalsNotice({ ...restored, terminals: 1 }, { state: "error", message: "x" })?.message ?? "", /^Bedrock Budget: A terminal opened/);
  });

  it("blocks unless the setting says exactly direct", () => {
    assert.equal(whenGatewayDownOf("direct"), "direct");
    for (const value of [undefined, "block", "Direct", 1, null]) assert.equal(whenGatewayDownOf(value), "block", String(value));
  });

  it("tells the status bar which applies while the gateway is down", () => {
    assert.match(whenDownNotice(true, "block").sentence, /calls from VS Code terminals are blocked/);
    assert.match(whenDownNotice(true, "direct").sentence, /go to Bedrock directly, unmetered/);
    assert.match(whenDownNotice(false, "block").sentence, /not routed/);
  });
});

describe("routed terminals' environment", () => {
  const GW = "http://127.0.0.1:8777";
  /** VS Code's own bash shell integration script, from the code-server the e2e suite installs. */
  const script = path.resolve(".vscode-test/code-server/node_modules/code-server/lib/vscode/out/vs/workbench/contrib/terminal/common/scripts/shellIntegration-bash.sh");
  /** The environment VS Code starts a terminal's shell with, as its applyToProcessEnvironment builds it (Linux, macOS). */
  const atShellStart = (host: Record<string, string>, plan: Map<string, TerminalMutation | undefined>): Record<string, string> => {
    const env = { ...host };
    for (const [name, change] of plan) {
      if (!change) continue;
      env[name] = change.type === "append" ? (env[name] ?? "") + change.value : change.value;
      if (!change.applyAtShellIntegration) continue;
      const key = `VSCODE_ENV_${change.type.toUpperCase()}`;
      env[key] = `${env[key] ? `${env[key]}:` : ""}${name}=${change.value.replaceAll(":", "\\x3a")}`;
    }
    return env;
  };

  it("a shell startup file that exports NO_PROXY or AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true again does not undo routing (VS Code's environment usually holds its values already)", async function () {
    // The change made when the shell started was overwritten by ~/.bashrc: boto3 sent the gateway's
    // calls to HTTP_PROXY, or skipped the gateway and called Bedrock unmetered.
    if (!existsSync(script)) this.skip();
    const home = await mkdtemp(path.join(os.tmpdir(), "bb-shellrc-"));
    try {
      await writeFile(path.join(home, ".bashrc"), "export NO_PROXY=corp.example\nexport AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true\nexport ANTHROPIC_BEDROCK_BASE_URL=http://localhost:4566\n");
      const host = { NO_PROXY: "corp.example", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true", PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, VSCODE_INJECTION: "1" };
      const plan = terminalMutations(routedEnv(GW), proxyBypassNames(host, false));
      const shell = spawnSync("bash", ["--init-file", script, "-i"], {
        env: atShellStart(host, plan),
        // The marker is put together by the shell: VS Code's script echoes the command line too.
        input: 'M=BB; printf "${M}[%s|%s|%s|%s|%s]${M}\\n" "$NO_PROXY" "${no_proxy-unset}" "$AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" "$AWS_ENDPOINT_URL_BEDROCK_RUNTIME" "$ANTHROPIC_BEDROCK_BASE_URL"; exit\n',
        encoding: "utf8",
        timeout: 10_000,
      });
      const seen = /BB\[(.*)\]BB/.exec(shell.stdout)?.[1]?.split("|");
      assert.ok(seen, `bash printed: ${shell.stdout} ${shell.stderr}`);
      assert.deepEqual(seen, ["corp.example,127.0.0.1", "unset", "false", GW, "http://localhost:4566"], "its own endpoint is the user's choice, as in a launch configuration");
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("replaces the routing variables, appends the gateway to the bypass spellings chosen, and removes them all when not routing", () => {
    const plan = terminalMutations(routedEnv(GW), ["NO_PROXY"]);
    assert.deepEqual(plan.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"), { type: "replace", value: GW, applyAtShellIntegration: false });
    assert.deepEqual(plan.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), { type: "replace", value: "false", applyAtShellIntegration: true });
    assert.deepEqual(plan.get("NO_PROXY"), { type: "append", value: ",127.0.0.1", applyAtShellIntegration: true });
    assert.equal(plan.get("no_proxy"), undefined);
    const off = terminalMutations(terminalVariables({ ...base, routeTerminals: false }), ["NO_PROXY", "no_proxy"]);
    assert.deepEqual([...off.values()], [undefined, undefined, undefined, undefined, undefined]);
    assert.equal(off.size, 5);
  });
});

describe("debug sessions", () => {
  const GW = "http://127.0.0.1:8777";
  const routed = routedEnv(GW);
  /** A launch configuration as VS Code hands it over (any fields). */
  type Launch = { type: string; name: string; [key: string]: unknown };
  /** Routed from a session whose NO_PROXY already bypasses the gateway (NO_PROXY has its own test). */
  const launch = (config: Launch) => routedDebugConfig(config, routed, { NO_PROXY: "127.0.0.1" });

  it("adds the variables to a launch configuration's env, keeping its other variables", () => {
    const config = launch({ type: "debugpy", name: "app", request: "launch", env: { STAGE: "dev" } });
    assert.deepEqual(config.env, { STAGE: "dev", ...routed });
    assert.deepEqual(launch({ type: "node", name: "app", request: "launch" }).env, routed);
  });

  it("keeps an endpoint the launch configuration sets itself (README), the other variable still routed", () => {
    const config = launch({ type: "node", name: "mock", env: { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:4566" } });
    assert.deepEqual(config.env, { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:4566", ANTHROPIC_BEDROCK_BASE_URL: GW, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "false" });
  });

  it("keeps the endpoint and NO_PROXY list a launch configuration's envFile sets, which the gateway's env would otherwise silently replace; its AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true still gives way", () => {
    // Debuggers give env precedence over envFile: a user's LocalStack endpoint in .env went to the gateway (real Bedrock, real money) instead.
    const file = parseEnvFile('# local mock\nexport AWS_ENDPOINT_URL_BEDROCK_RUNTIME="http://localhost:4566"\nNO_PROXY=corp.example # ours\nSTAGE=dev\n');
    assert.deepEqual(file, { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:4566", NO_PROXY: "corp.example", STAGE: "dev" });
    const config = routedDebugConfig({ type: "debugpy", name: "app", envFile: "/w/.env", env: { X: "1" } }, routed, { NO_PROXY: "host.example" }, file);
    assert.deepEqual(config.env, { X: "1", ANTHROPIC_BEDROCK_BASE_URL: GW, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "false", NO_PROXY: "corp.example,127.0.0.1" });
    // The file's own AWS endpoint keeps its AWS_IGNORE_CONFIGURED_ENDPOINT_URLS; without one, "true" there is overridden.
    const ignoring = parseEnvFile("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS='true'\n");
    assert.equal((routedDebugConfig<Launch>({ type: "node", name: "app" }, routed, { NO_PROXY: "127.0.0.1" }, ignoring).env as Record<string, string>).AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, "false");
    const both = { ...file, ...ignoring };
    assert.equal("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" in (routedDebugConfig<Launch>({ type: "node", name: "app" }, routed, {}, both).env as object), false);
    // env still wins over the file, as in the debugger.
    const env = routedDebugConfig({ type: "node", name: "app", env: { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:1" } }, routed, { NO_PROXY: "127.0.0.1" }, file).env as Record<string, string>;
    assert.equal(env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME, "http://localhost:1");
  });

  it("reads an envFile as the debuggers do: quotes, export, comments, blank and malformed lines", () => {
    assert.deepEqual(parseEnvFile('A=1\r\n\n  # B=2\nC = "x # y\\nz"\nnot a line\nD=\nE=\'q w\'\n'), { A: "1", C: "x # y\nz", D: "", E: "q w" });
  });

  it("reads the envFile a launch configuration names (relative to its folder), and none that is missing, not a file, or over 1 MB", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "bb-envfile-"));
    try {
      await writeFile(path.join(dir, ".env"), "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://localhost:4566\n");
      assert.deepEqual(await readEnvFile(".env", dir), { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:4566" });
      assert.deepEqual(await readEnvFile(path.join(dir, ".env"), undefined), { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:4566" });
      await writeFile(path.join(dir, "big.env"), `A=${"x".repeat(1 << 20)}\n`);
      for (const file of ["missing.env", dir, "/dev/zero", "big.env", 3, undefined, ""]) assert.deepEqual(await readEnvFile(file, dir), {}, String(file));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reads a Go launch configuration's list of envFiles, later files winning", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "bb-envfiles-"));
    try {
      await writeFile(path.join(dir, "a.env"), "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://localhost:1\nSTAGE=a\n");
      await writeFile(path.join(dir, "b.env"), "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://localhost:4566\n");
      assert.deepEqual(await readEnvFile(["a.env", "b.env", "missing.env"], dir), { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:4566", STAGE: "a" });
      assert.deepEqual(await readEnvFile(Array.from({ length: 17 }, () => "a.env"), dir), {}, "a list longer than any real one is not read");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a repository's envFile with a long run of blanks in a line does not hang the extension host", function () {
    // The old single regex backtracked quadratically here: minutes for this line. Mocha's timeout is the bound, as a hang detector.
    this.timeout(20_000);
    const blanks = " ".repeat(300_000);
    assert.deepEqual(parseEnvFile(`A=x${blanks}y\nB${blanks}=${blanks}2${blanks}# note\n${blanks}`), { A: `x${blanks}y`, B: "2" });
  });

  it("a launch configuration's AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true does not make AWS clients skip the gateway it was given", () => {
    // A repository's launch.json could otherwise switch metering off for a session that looks routed.
    const config = launch({ type: "python", name: "app", env: { AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true", STAGE: "dev" } });
    assert.deepEqual(config.env, { ...routed, STAGE: "dev" });
    // Beside its own AWS endpoint it is the user's routing, kept.
    const own = launch({ type: "python", name: "app", env: { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: "http://localhost:4566", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" } });
    assert.equal((own.env as Record<string, string>).AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, "true");
  });

  it("gives the C/C++ debuggers the variables in the environment list they read, not in an env they ignore", () => {
    const config = launch({ type: "cppdbg", name: "app", environment: [{ name: "STAGE", value: "dev" }, { name: "ANTHROPIC_BEDROCK_BASE_URL", value: "http://localhost:1" }] });
    assert.equal("env" in config, false);
    assert.deepEqual(config.environment, [
      { name: "STAGE", value: "dev" },
      { name: "ANTHROPIC_BEDROCK_BASE_URL", value: "http://localhost:1" },
      { name: "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", value: GW },
      { name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", value: "false" },
    ]);
    const ignoring = launch({ type: "cppvsdbg", name: "app", environment: [{ name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", value: "true" }] });
    assert.deepEqual(ignoring.environment, Object.entries(routed).map(([name, value]) => ({ name, value })));
  });

  it("gives a debugger whose env is a list of NAME=value strings (lldb-dap) the variables in that form, instead of refusing the session", () => {
    const config = launch({ type: "lldb-dap", name: "app", env: ["STAGE=dev", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true", "ANTHROPIC_BEDROCK_BASE_URL=http://localhost:1"] });
    assert.deepEqual(config.env, ["STAGE=dev", "ANTHROPIC_BEDROCK_BASE_URL=http://localhost:1", `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=${GW}`, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false"]);
  });

  it("refuses, saying how to fix it, a launch configuration whose env cannot take the variables, instead of crashing or starting unrouted", () => {
    for (const env of ["STAGE=dev", [{ STAGE: "dev" }], 3]) {
      assert.throws(() => launch({ type: "node", name: "app", env }), /launch configuration "app" has an "env" that is not an object.*routeTerminals/, JSON.stringify(env));
    }
    assert.throws(() => launch({ type: "cppdbg", name: "app", environment: { STAGE: "dev" } }), /"environment" that is not a list/);
  });

  it("adds the gateway's address to NO_PROXY, so HTTP_PROXY does not take its calls: to the spelling the session has, keeping the list", () => {
    const env = (config: Launch, host: Record<string, string>) => routedDebugConfig(config, routed, host).env as Record<string, string>;
    const inherited = env({ type: "debugpy", name: "app" }, { NO_PROXY: "corp.example", HTTP_PROXY: "http://proxy:3128" });
    assert.equal(inherited.NO_PROXY, "corp.example,127.0.0.1");
    assert.equal("no_proxy" in inherited, false, "a new no_proxy would shadow the user's NO_PROXY (Python and curl read it first)");
    const own = env({ type: "debugpy", name: "app", env: { no_proxy: "a.example" } }, { NO_PROXY: "b.example" });
    assert.deepEqual([own.no_proxy, own.NO_PROXY], ["a.example,127.0.0.1", "b.example,127.0.0.1"]);
    const none = env({ type: "node", name: "app" }, {});
    assert.deepEqual([none.NO_PROXY, none.no_proxy], ["127.0.0.1", "127.0.0.1"]);
    assert.equal("NO_PROXY" in env({ type: "node", name: "app" }, { NO_PROXY: "*", no_proxy: "localhost,127.0.0.1" }), false, "a list that already bypasses it is left alone");
    const cpp = (routedDebugConfig({ type: "cppdbg", name: "app" } as Launch, routed, { no_proxy: "x" }) as Launch).environment;
    assert.deepEqual((cpp as Array<{ name: string; value: string }>).find((e) => e.name === "no_proxy"), { name: "no_proxy", value: "x,127.0.0.1" });
  });

  it("terminal bypass lists: the spellings set, else both; the address appended once", () => {
    assert.deepEqual(proxyBypassNames({}), ["NO_PROXY", "no_proxy"]);
    assert.deepEqual(proxyBypassNames({ NO_PROXY: "x" }), ["NO_PROXY"]);
    assert.deepEqual(proxyBypassNames({ no_proxy: "" }), ["no_proxy"]);
    assert.deepEqual([undefined, "", "a", "a, 127.0.0.1", "*"].map(withGatewayBypass), ["127.0.0.1", "127.0.0.1", "a,127.0.0.1", "a, 127.0.0.1", "*"]);
    assert.deepEqual(proxyBypassEnv({ no_proxy: "corp.example" }), { no_proxy: "corp.example,127.0.0.1" }, "Open Metered Terminal's environment");
  });

  it("on Windows, where a variable's name has no case, a launch configuration's lower-case aws_ignore_configured_endpoint_urls=true gives way to the gateway's false instead of sitting beside it", () => {
    // Both spellings reached the debugger, which passed one of them on: "true" made AWS clients skip the gateway, unmetered.
    const windows = (config: Launch, host: Record<string, string> = { NO_PROXY: "127.0.0.1" }) => routedDebugConfig(config, routed, host, {}, true);
    assert.deepEqual(windows({ type: "python", name: "app", env: { aws_ignore_configured_endpoint_urls: "true", STAGE: "dev" } }).env, { ...routed, STAGE: "dev" });
    assert.deepEqual(windows({ type: "cppvsdbg", name: "app", environment: [{ name: "Aws_Ignore_Configured_Endpoint_Urls", value: "true" }] }).environment, Object.entries(routed).map(([name, value]) => ({ name, value })));
    // Its own endpoint in lower case is its own endpoint: kept alone, not doubled by the gateway's.
    const own = windows({ type: "node", name: "mock", env: { aws_endpoint_url_bedrock_runtime: "http://localhost:4566", aws_ignore_configured_endpoint_urls: "true" } }).env;
    assert.deepEqual(own, { aws_endpoint_url_bedrock_runtime: "http://localhost:4566", aws_ignore_configured_endpoint_urls: "true", ANTHROPIC_BEDROCK_BASE_URL: GW });
    // NO_PROXY is one variable: the configuration's no_proxy over the inherited No_Proxy, the gateway added once.
    assert.deepEqual(windows({ type: "node", name: "app", env: { no_proxy: "a.example" } }, { No_Proxy: "b.example" }).env, { ...routed, NO_PROXY: "a.example,127.0.0.1" });
    assert.deepEqual(windows({ type: "node", name: "app" }, { No_Proxy: "b.example" }).env, { ...routed, NO_PROXY: "b.example,127.0.0.1" });
    assert.deepEqual(proxyBypassNames({ NO_PROXY: "x", no_proxy: "x" }, true), ["NO_PROXY"], "Windows' process.env answers to both spellings");
    assert.deepEqual(proxyBypassNames({}, true), ["NO_PROXY"]);
    assert.deepEqual(proxyBypassNames({}, false), ["NO_PROXY", "no_proxy"]);
  });

  it("adds nothing when routing gives no variables (routing off, or direct while the gateway is down)", () => {
    const none = terminalVariables({ ...base, routeTerminals: false, state: { state: "ready", url: GW, role: "leader" } });
    const config = { type: "node", name: "app", env: "anything" };
    assert.equal(routedDebugConfig(config, none), config);
  });
});

describe("Copy Gateway Endpoint's line for a terminal outside VS Code", () => {
  // Run in a real bash, as a user pastes it: every variable a routed terminal gets, NO_PROXY extended, not replaced.
  const run = (env: Record<string, string>, shell = "bash") =>
    spawnSync(shell, ["-c", `${shellExports("http://127.0.0.1:8777")}; env`], { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8" }).stdout;
  it("sets the endpoint variables and IGNORE=false, and appends the gateway's address to NO_PROXY", () => {
    const out = run({ NO_PROXY: "corp.example,10.0.0.0/8", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" });
    for (const [name, value] of Object.entries(routedEnv("http://127.0.0.1:8777"))) assert.match(out, new RegExp(`^${name}=${value}$`, "m"), name);
    assert.match(out, /^NO_PROXY=corp\.example,10\.0\.0\.0\/8,127\.0\.0\.1$/m);
  });
  it("with no NO_PROXY set, NO_PROXY is the gateway's address alone (no empty entry), and no no_proxy is made", () => {
    assert.match(run({}), /^NO_PROXY=127\.0\.0\.1$/m);
    assert.doesNotMatch(run({}), /^no_proxy=/m);
  });
  for (const shell of ["bash", "dash"]) {
    it(`extends a lower-case no_proxy too, which Python and curl read first (${shell})`, () => {
      const out = run({ no_proxy: "corp.example", HTTP_PROXY: "http://proxy.example:3128" }, shell);
      assert.match(out, /^no_proxy=corp\.example,127\.0\.0\.1$/m);
      assert.match(out, /^NO_PROXY=127\.0\.0\.1$/m);
      assert.match(run({ no_proxy: "" }, shell), /^no_proxy=127\.0\.0\.1$/m);
    });
  }
});
