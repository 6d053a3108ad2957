/**
 * Where new VS Code terminals and debug sessions send Bedrock calls, as plain data (no `vscode`,
 * so it is tested alone): the gateway while it serves; while it starts on a fixed port, still that
 * address (else, and once it has failed or stopped, a name that never resolves). Either way calls fail instead of going out
 * unmetered, unless the user chose `bedrockBudget.whenGatewayDown: "direct"`. Every variable a
 * Bedrock client reads for its endpoint gets the same value, and the one that would make AWS
 * clients ignore it is turned off, so no client in a routed terminal bypasses the gateway.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { GatewayStateNotification } from "../server/protocol";

/** Where the gateway listens (always this loopback address): a proxy can never reach it. */
const GATEWAY_HOST = "127.0.0.1";

/** A process we could not verify holds the gateway's port: never hand it signed requests. `.invalid` never resolves, and the name says why. */
export const UNVERIFIED_ENDPOINT = "http://gateway-unverified.bedrock-budget.invalid";
/** No address known yet (a port chosen at random, nothing served so far): a name that fails as clearly. */
export const NOT_STARTED_ENDPOINT = "http://gateway-not-started.bedrock-budget.invalid";
/**
 * The gateway failed or its process stopped: nothing of ours holds its port, and nothing watches
 * who binds it next (another user's process would receive signed requests). A name that never
 * resolves instead; terminals opened meanwhile need reopening once it serves again.
 */
export const DOWN_ENDPOINT = "http://gateway-down.bedrock-budget.invalid";

/**
 * The variables Bedrock clients read for their endpoint: the AWS SDKs, boto3, the AWS CLI, the
 * Vercel AI SDK and LangChain read the first; `@anthropic-ai/bedrock-sdk` ignores it and reads
 * only the second.
 */
export const ENDPOINT_VARIABLES = ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "ANTHROPIC_BEDROCK_BASE_URL"] as const;
export type EndpointVariable = (typeof ENDPOINT_VARIABLES)[number];

/**
 * Set to "true" (inherited, injected by a repository's `terminal.integrated.env.*`, a dev
 * container's `remoteEnv`), or `ignore_configured_endpoint_urls` in the AWS config file, it makes
 * the AWS SDKs, boto3 and the CLI ignore the endpoint variable and call Bedrock directly. "false"
 * in the environment overrides the config file's setting, so a routed terminal sets it.
 */
export const IGNORE_ENDPOINTS_VARIABLE = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";
/** Every variable routing sets in a terminal or debug session. */
export const TERMINAL_VARIABLES = [...ENDPOINT_VARIABLES, IGNORE_ENDPOINTS_VARIABLE] as const;
export type TerminalVariable = (typeof TERMINAL_VARIABLES)[number];

/** The environment that sends every Bedrock client to `url` (a metered terminal's). */
export function routedEnv(url: string): Record<TerminalVariable, string> {
  return { ...(Object.fromEntries(ENDPOINT_VARIABLES.map((name) => [name, url])) as Record<EndpointVariable, string>), [IGNORE_ENDPOINTS_VARIABLE]: "false" };
}

/**
 * The POSIX shell line that routes a terminal outside VS Code to `url` as a routed terminal is: the
 * endpoint variables, IGNORE off, and the gateway's address appended to NO_PROXY (else boto3
 * behind HTTP_PROXY sends the gateway's calls to the proxy). The same line as the README's.
 */
export function shellExports(url: string): string {
  const assignments = Object.entries(routedEnv(url)).map(([name, value]) => `${name}=${value}`);
  // Python and curl read a lower-case no_proxy before NO_PROXY: extended too when the shell has it (as proxyBypassNames picks them).
  return `export ${assignments.join(" ")} NO_PROXY="\${NO_PROXY:+\$NO_PROXY,}${GATEWAY_HOST}" \${no_proxy+no_proxy="\${no_proxy:+\$no_proxy,}${GATEWAY_HOST}"}`;
}

export type WhenGatewayDown = "block" | "direct";

/** Only an explicit "direct" lets calls bypass the gateway; anything else (unset, invalid) blocks. */
export function whenGatewayDownOf(value: unknown): WhenGatewayDown {
  return value === "direct" ? "direct" : "block";
}

export interface TerminalInputs {
  /** The latest gateway state; undefined before the background process said anything. */
  state: GatewayStateNotification.Params | undefined;
  routeTerminals: boolean;
  whenGatewayDown: WhenGatewayDown;
}

/**
 * The state to route by before the background process has said anything (it takes a moment to
 * start): what its first "starting" report says, the configured port's address when the port is
 * fixed, else none (a name that never resolves). `port`: the user's `bedrockBudget.port`.
 */
export function stateBeforeFirstReport(port: unknown): GatewayStateNotification.Params {
  const fixed = typeof port === "number" && Number.isInteger(port) && port > 0 && port <= 65_535;
  return fixed ? { state: "starting", endpoint: `http://${GATEWAY_HOST}:${port}` } : { state: "starting" };
}

/** The endpoint new terminals and debug sessions are given; undefined gives none. */
export function terminalEndpoint(i: TerminalInputs): string | undefined {
  if (!i.routeTerminals) return undefined;
  if (i.state?.state === "ready") return i.state.url;
  if (i.whenGatewayDown === "direct") return undefined;
  if (i.state?.state === "error") return i.state.strangerOnPort ? UNVERIFIED_ENDPOINT : DOWN_ENDPOINT;
  // Starting on a fixed port: its own process is about to serve there, so terminals keep working
  // once it does. Without one (port 0) no address is ours yet: the last one was released.
  return i.state?.endpoint ?? NOT_STARTED_ENDPOINT;
}

/** Each routing variable's value for new terminals and debug sessions; undefined removes it. The same rules apply to all. */
export function terminalVariables(i: TerminalInputs): Record<TerminalVariable, string | undefined> {
  const url = terminalEndpoint(i);
  if (url === undefined) return Object.fromEntries(TERMINAL_VARIABLES.map((name) => [name, undefined])) as Record<TerminalVariable, undefined>;
  return routedEnv(url);
}

/**
 * Terminals already open when the extension activates (restored after a reload or a restart, or
 * opened in the moment before) started with the routing VS Code saved from the last session
 * (`saved`: its AWS endpoint, the collection's cached value) or kept the one they had: no running
 * shell's environment can be changed. With `port` 0 each gateway takes a new random port, so that
 * address may be one nothing of ours holds, where another local user's process could bind and
 * receive signed calls. Once the gateway's first state settles it (ready or failed), the warning
 * to show, if any; undefined while it is still starting.
 */
export function restoredTerminalsNotice(
  restored: { saved: string | undefined; terminals: number },
  state: GatewayStateNotification.Params,
): { message?: string } | undefined {
  const host = restored.saved === undefined ? undefined : URL.canParse(restored.saved) ? new URL(restored.saved).hostname : undefined;
  // No terminal, none routed, or routed to a name that never resolves (its error says what to do).
  if (restored.terminals === 0 || host !== GATEWAY_HOST) return {};
  if (state.state === "starting") return undefined;
  if (state.state === "ready" && state.url === restored.saved) return {};
  const count = restored.terminals === 1 ? "A terminal" : `${restored.terminals} terminals`;
  const now = state.state === "ready" ? `the gateway serves ${state.url} now` : "the gateway is not serving";
  return {
    message:
      `Bedrock Budget: ${count} opened before this window started may still send Bedrock calls to ${restored.saved}, the gateway's address in an earlier session, but ${now}: ` +
      "their calls fail there, or reach whichever process holds that port. Close them and open new ones. (With bedrockBudget.port 0 every start takes a new port; a fixed port keeps terminals' address.)",
  };
}

/** What the status bar says about terminals while the gateway is not serving. */
export function whenDownNotice(routeTerminals: boolean, whenGatewayDown: WhenGatewayDown): { short: string; sentence: string } {
  if (!routeTerminals) {
    return { short: "terminals not routed", sentence: "VS Code terminals are not routed through the gateway (bedrockBudget.routeTerminals is off)." };
  }
  return whenGatewayDown === "block"
    ? {
        short: "terminal calls blocked",
        sentence: 'Until it serves, Bedrock calls from VS Code terminals are blocked: they fail to connect. Terminals opened while it is down need reopening once it serves. (Set bedrockBudget.whenGatewayDown to "direct" to let them go to Bedrock unmetered.)',
      }
    : {
        short: "terminal calls unmetered",
        sentence: 'Until it serves, Bedrock calls from VS Code terminals go to Bedrock directly, unmetered (bedrockBudget.whenGatewayDown is "direct").',
      };
}

/**
 * Whether environment variable names are matched regardless of case, as on Windows (where the
 * extension host runs: a remote window's is the remote machine's): `aws_ignore_configured_endpoint_urls`
 * there is the same variable as AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
 */
const CASE_INSENSITIVE_ENV = process.platform === "win32";

/** The variables that name hosts HTTP clients reach without HTTP_PROXY, in both spellings clients read. */
export const PROXY_BYPASS_VARIABLES = ["NO_PROXY", "no_proxy"] as const;
export type ProxyBypassVariable = (typeof PROXY_BYPASS_VARIABLES)[number];
/** What routed terminals append to the bypass list (VS Code appends it as is; an empty first entry is ignored by every client). */
export const PROXY_BYPASS_SUFFIX = `,${GATEWAY_HOST}`;

/**
 * Which bypass variables get the gateway's address. boto3 (botocore), requests, httpx and curl
 * send an http:// request through HTTP_PROXY unless NO_PROXY names its host, loopback included:
 * behind a corporate proxy a routed terminal's calls went to the proxy, signed and in clear, and
 * failed there. Only those the environment sets, since a new lower-case `no_proxy` would shadow
 * the user's `NO_PROXY` (Python and curl read it first); both when neither is set.
 */
export function proxyBypassNames(env: Readonly<Record<string, unknown>>, caseInsensitive = CASE_INSENSITIVE_ENV): ProxyBypassVariable[] {
  const set = PROXY_BYPASS_VARIABLES.filter((name) => typeof env[name] === "string");
  // Windows has one variable whichever the spelling (its process.env answers to both): named once.
  if (caseInsensitive) return [set[0] ?? PROXY_BYPASS_VARIABLES[0]];
  return set.length ? set : [...PROXY_BYPASS_VARIABLES];
}

/** One change to a terminal's environment, as VS Code's EnvironmentVariableCollection applies it. */
export interface TerminalMutation {
  type: "replace" | "append";
  value: string;
  /**
   * Also applied again by VS Code's shell integration, after the shell's startup files (~/.bashrc,
   * ~/.zshrc, a PowerShell profile) ran: one that exports NO_PROXY or AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
   * again (as most that set it do, and VS Code's environment usually holds its value already)
   * would otherwise undo the change made when the shell started.
   */
  applyAtShellIntegration: boolean;
}

/**
 * What routed terminals get, variable by variable (undefined: ours removed): `variables` as
 * terminalVariables gives them, the gateway's address appended to the bypass variables
 * `bypassNames` (proxyBypassNames of VS Code's environment) while it routes. The endpoint
 * variables are set when the shell starts only: one a startup file sets itself is the user's own
 * choice, as in a launch configuration. No mutator applies only where a variable is already set,
 * so a spelling of NO_PROXY that only a startup file sets cannot be matched (proxyBypassNames).
 */
export function terminalMutations(
  variables: Readonly<Record<TerminalVariable, string | undefined>>,
  bypassNames: readonly ProxyBypassVariable[],
): Map<TerminalVariable | ProxyBypassVariable, TerminalMutation | undefined> {
  const plan = new Map<TerminalVariable | ProxyBypassVariable, TerminalMutation | undefined>();
  for (const name of TERMINAL_VARIABLES) {
    const value = variables[name];
    plan.set(name, value ? { type: "replace", value, applyAtShellIntegration: name === IGNORE_ENDPOINTS_VARIABLE } : undefined);
  }
  const routes = Boolean(variables[ENDPOINT_VARIABLES[0]]);
  for (const name of PROXY_BYPASS_VARIABLES) {
    plan.set(name, routes && bypassNames.includes(name) ? { type: "append", value: PROXY_BYPASS_SUFFIX, applyAtShellIntegration: true } : undefined);
  }
  return plan;
}

/** A bypass list with the gateway's address in it; unchanged when it already bypasses it. */
export function withGatewayBypass(current: string | undefined): string {
  const entries = (current ?? "").split(",").map((entry) => entry.trim());
  if (current !== undefined && (entries.includes("*") || entries.includes(GATEWAY_HOST))) return current;
  return current ? `${current},${GATEWAY_HOST}` : GATEWAY_HOST;
}

/** The bypass variables (proxyBypassNames) with the gateway's address in their lists, for an environment given whole. */
export function proxyBypassEnv(env: Readonly<Record<string, string | undefined>>): Partial<Record<ProxyBypassVariable, string>> {
  return Object.fromEntries(proxyBypassNames(env).map((name) => [name, withGatewayBypass(env[name])]));
}

/**
 * The variables a launch configuration's `envFile` sets, read as the debuggers read such a file
 * (lines `NAME=value`, `export` before it allowed, `#` comments, a value in single or double
 * quotes taken as it is inside them, `\n` in double quotes a line break).
 */
export function parseEnvFile(text: string): Record<string, string> {
  const variables: Record<string, string> = {};
  // Split by hand, not by one regex: a repository's file is read on the extension host's thread,
  // and a regex with two blank runs around a lazy value backtracks quadratically (a line of 100K
  // blanks took minutes).
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const head = /^\s*(?:export\s+)?([\w.-]+)\s*$/.exec(line.slice(0, eq));
    if (!head) continue;
    const name = head[1]!;
    const raw = line.slice(eq + 1).trim();
    const quoted = /^(["'])(.*)\1$/.exec(raw);
    if (quoted) variables[name] = quoted[1] === '"' ? quoted[2]!.replace(/\\n/g, "\n") : quoted[2]!;
    else {
      const comment = raw.search(/\s#/);
      variables[name] = comment < 0 ? raw : raw.slice(0, comment).trimEnd();
    }
  }
  return variables;
}

/** Larger than any file of variables; a bigger one (or a device, a pipe) is not read. */
const MAX_ENV_FILE_BYTES = 1 << 20;
/** More files than any launch configuration lists (the Go debugger's `envFile` may be a list). */
const MAX_ENV_FILES = 16;

/**
 * The variables of a launch configuration's `envFile` (relative to `folder`); none when it has
 * none or it cannot be read (the debugger reports that itself), so the gateway's variables then
 * apply as if it had none. A repository's launch.json names it: a device (/dev/zero), a pipe or a
 * huge file would otherwise hang or exhaust the extension host.
 */
export async function readEnvFile(file: unknown, folder: string | undefined): Promise<Record<string, string>> {
  // The Go debugger takes a list of files, later ones winning; a list longer than any real one is not read.
  if (Array.isArray(file)) {
    if (file.length > MAX_ENV_FILES) return {};
    const each = await Promise.all(file.map((one) => readEnvFile(one, folder)));
    return Object.assign({}, ...each) as Record<string, string>;
  }
  if (typeof file !== "string" || !file) return {};
  const full = path.isAbsolute(file) || folder === undefined ? file : path.join(folder, file);
  try {
    const info = await stat(full);
    if (!info.isFile() || info.size > MAX_ENV_FILE_BYTES) return {};
    return parseEnvFile(await readFile(full, "utf8"));
  } catch {
    return {};
  }
}

/** Debuggers that read a launched program's variables from `environment: [{ name, value }]` (the C/C++ extension's), not from an `env` object. */
const ENVIRONMENT_LIST_DEBUGGERS = new Set(["cppdbg", "cppvsdbg"]);

/**
 * A launch configuration with the routing variables added in the form its debugger reads: merged
 * into its `env` object (its other variables kept), appended to an `env` list of "NAME=value"
 * strings (lldb-dap's form), or to the C/C++ debuggers' `environment` list. `variables` as
 * terminalVariables gives them; undefined adds nothing. A variable the configuration sets itself
 * is the user's choice and is kept, except AWS_IGNORE_CONFIGURED_ENDPOINT_URLS next to the
 * gateway's AWS endpoint: "true" there would make AWS clients skip the gateway for a session that
 * looks routed, so it is kept only beside the configuration's own AWS endpoint. NO_PROXY (as
 * proxyBypassNames picks them, from the configuration's variables over `hostEnv`, the environment
 * the session inherits) gets the gateway's address added to its list. An `env` or `environment`
 * of another shape cannot take the variables: the session is refused (it does not start) with an
 * error saying how to fix it. `fileEnv`: the variables of the configuration's `envFile`
 * (parseEnvFile), set by the configuration as much as its `env`: debuggers give `env` precedence
 * over the file, so one of ours there would silently replace the user's own endpoint or NO_PROXY
 * list. `caseInsensitive` (Windows): a name the configuration spells in another case is the same
 * variable, so it counts as set and is replaced, never left beside ours for the debugger to pick
 * one of the two.
 */
export function routedDebugConfig<T extends object>(
  config: T,
  variables: Partial<Record<TerminalVariable, string | undefined>>,
  hostEnv: Readonly<Record<string, string | undefined>> = {},
  fileEnv: Readonly<Record<string, string>> = {},
  caseInsensitive = CASE_INSENSITIVE_ENV,
): T {
  const wanted = TERMINAL_VARIABLES.filter((name) => variables[name]);
  if (!wanted.length) return config;
  const { type } = config as { type?: unknown };
  const pairs = typeof type === "string" && ENVIRONMENT_LIST_DEBUGGERS.has(type);
  const key = pairs ? "environment" : "env";
  const current = (config as Record<string, unknown>)[key] ?? (pairs ? [] : {});
  const strings = !pairs && Array.isArray(current) && current.every((entry) => typeof entry === "string");
  const list = Array.isArray(current) ? (current as unknown[]) : undefined;
  if (pairs ? !list : typeof current !== "object" || (list && !strings)) {
    const form = pairs ? 'a list of { "name": …, "value": … }' : 'an object of variables ({ "NAME": "value" })';
    const label = JSON.stringify(String((config as { name?: unknown }).name ?? type ?? ""));
    throw new Error(
      `Bedrock Budget: the launch configuration ${label} has an "${key}" that is not ${form}, so its Bedrock calls cannot be routed through the gateway. ` +
        `Make "${key}" ${form}, or turn bedrockBudget.routeTerminals off to start it unrouted.`,
    );
  }
  const nameOf = (entry: unknown): unknown =>
    strings ? (entry as string).split("=", 1)[0] : typeof entry === "object" && entry !== null ? (entry as { name?: unknown }).name : undefined;
  const valueOf = (entry: unknown): unknown =>
    strings ? (entry as string).slice((entry as string).indexOf("=") + 1) : typeof entry === "object" && entry !== null ? (entry as { value?: unknown }).value : undefined;
  /** A variable's identity: its name, or on Windows its name in upper case. */
  const same = (name: unknown): unknown => (caseInsensitive && typeof name === "string" ? name.toUpperCase() : name);
  const ownEntries: Array<[unknown, unknown]> = list ? list.map((entry) => [nameOf(entry), valueOf(entry)]) : Object.entries(current as object);
  const ownValues = new Map<unknown, unknown>([...Object.entries(fileEnv), ...ownEntries].map(([name, value]) => [same(name), value]));
  const set = new Map<string, string>();
  for (const name of wanted) {
    if (!ownValues.has(same(name)) || (name === IGNORE_ENDPOINTS_VARIABLE && !ownValues.has(same(ENDPOINT_VARIABLES[0])))) set.set(name, variables[name]!);
  }
  // The configuration's own list is kept, with the gateway's address added; an inherited one is copied with it.
  const inherited: Record<string, unknown> = Object.fromEntries([...Object.entries(hostEnv).map(([name, value]) => [same(name), value]), ...ownValues]);
  for (const name of proxyBypassNames(inherited, caseInsensitive)) {
    const before = typeof inherited[name] === "string" ? (inherited[name] as string) : undefined;
    const after = withGatewayBypass(before);
    if (after !== before) set.set(name, after);
  }
  // What the configuration set under a name given here (in any spelling of it, on Windows) gives way.
  const replaced = new Set([...set.keys()].map(same));
  if (list) {
    const kept = list.filter((entry) => !replaced.has(same(nameOf(entry))));
    const entries = [...set].map(([name, value]) => (strings ? `${name}=${value}` : { name, value }));
    return { ...config, [key]: [...kept, ...entries] };
  }
  const kept = Object.entries(current as object).filter(([name]) => !replaced.has(same(name)));
  return { ...config, env: { ...Object.fromEntries(kept), ...Object.fromEntries(set) } };
}
