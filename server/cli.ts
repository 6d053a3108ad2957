#!/usr/bin/env node
/**
 * bedrock-budget serve | status | report | whatif | prices update | reconcile — the gateway standalone, for
 * headless machines and CI, and its report, price and bill tools.
 */
import { readFileSync, unwatchFile, watch, watchFile, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, configFileThere, DEFAULT_CONFIG_FILE, ledgerDirOf, loadConfigFile, readConfigFile, timeZoneOf, validated } from "./config/load";
import { isFolderPath, type Config } from "./config/schema";
import { blockedMessage, checkSettings, type SettingsCheck } from "./config/settingsCheck";
import { DEFAULT_SHUTDOWN_DEADLINE_MS, startGateway, type RunningGateway } from "./gateway/gateway";
import { simulatedLedgerDir } from "./simulator/mode";
import { startSimulator } from "./simulator/server";
import { stderrLogger, type Logger } from "./log";
import { csvHeader, csvRows, currentMonth, eachSettledBatch, jsonArrayEnd, jsonArrayPart, monthRange, MONTH_PATTERN, parseRange, totalsCsv, totalsJson, type ReportRange } from "./ledger/report";
import { ChargebackTally } from "./ledger/chargeback";
import { Journal, LedgerUnreadable } from "./ledger/journal";
import { LedgerLocked } from "./ledger/lock";
import { whatIfMonth } from "./policy/whatifRun";
import { formatWhatIf } from "./policy/whatif";
import { formatStatus } from "./statusText";
import { printableText } from "./terminalText";
import { API_PATHS, DASHBOARD_PATHS, TOKEN_QUERY, type HealthResponse, type StatusResponse } from "./protocol";
import { GatewaySecret } from "./ledger/secret";
import { probeGateway } from "./lsp/gatewayHost";
import { describeListener, gatewayOnAnotherLedger } from "./lsp/portHolder";
import { credentialSource } from "./credentials";
import { updatePrices } from "./pricing/update";
import { loadPriceTable } from "./metering/priceFile";
import { PriceBook } from "./metering/prices";
import { formatReconciliation, MONTH_RE, reconcileMonth } from "./billing/reconcileMonth";

const USAGE = `usage:
  bedrock-budget serve  [--config FILE] [--port N] [--ledger DIR] [--upstream URL] [--shutdown-deadline SECONDS] [--simulate]
  bedrock-budget status [--config FILE] [--port N] [--ledger DIR] [--simulate]
  bedrock-budget report [--config FILE] [--ledger DIR] [--format csv|json] [--month YYYY-MM | --from DATE|TIME] [--to DATE|TIME] [--calls] [--simulate]
  bedrock-budget whatif --config PROPOSED.json [--ledger DIR] [--month YYYY-MM] [--format text|json]
  bedrock-budget prices update [--config FILE] [--ledger DIR] [--region REGION]
  bedrock-budget reconcile [--config FILE] [--ledger DIR] [--month YYYY-MM]

  --simulate  try-it mode: answers come from a built-in simulator, not AWS (no credentials needed,
              SigV4 with any key accepted, nothing spent); recorded in <ledger>/simulated only`;

async function main(argv: string[]): Promise<number> {
  const [command, ...afterCommand] = argv;
  // Asked for (`help`, `--help`, `-h`, also after a command): the usage on stdout, a success.
  if (command === undefined || command === "help" || argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // `prices` takes a sub-command (`prices update`).
  const sub = command === "prices" ? afterCommand[0] : undefined;
  const rest = command === "prices" ? afterCommand.slice(1) : afterCommand;
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: "string" },
      port: { type: "string" },
      ledger: { type: "string" },
      upstream: { type: "string" },
      "shutdown-deadline": { type: "string" },
      format: { type: "string" },
      month: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      calls: { type: "boolean", default: false },
      region: { type: "string", multiple: true },
      simulate: { type: "boolean" },
    },
    strict: true,
  });
  const configFile = values.config ?? (configFileThere(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const config = await configWithFlags(configFile, values);

  switch (command) {
    case "serve":
      if (values.simulate && values.upstream !== undefined) throw new ConfigError("--upstream", ["upstream: --simulate answers every call itself; drop --upstream or --simulate"]);
      return serve(config, configFile, values, shutdownDeadlineMs(values["shutdown-deadline"]));
    case "status":
      return status(config);
    case "report":
      return report(config, values);
    case "whatif":
      if (!values.config) throw new ConfigError("--config", ["whatif needs --config PROPOSED.json: the settings whose caps to replay the month against"]);
      return whatIfCommand(config, values.config, values.format ?? "text", values.month);
    case "prices":
      if (sub !== "update") break;
      return pricesUpdate(config, values.region);
    case "reconcile":
      return reconcileCommand(config, values.month);
  }
  // An unknown command: the usage as the error.
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

type Flags = { port?: string; ledger?: string; upstream?: string; simulate?: boolean };

async function configWithFlags(file: string | undefined, flags: Flags): Promise<Config> {
  const base = file ? await loadConfigFile(file) : validated({}, "defaults");
  return validated(withFlags(base, flags), file ? `${file} and flags` : "flags");
}

/** Command-line flags win over the file's keys. */
function withFlags(raw: object, flags: Flags): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  if (flags.port !== undefined) {
    if (!/^\d+$/.test(flags.port)) throw new ConfigError("--port", [`port: "${flags.port}" is not a port number`]);
    out.port = Number(flags.port);
  }
  // A folder typed on the command line is the shell's: relative to the folder it runs in.
  if (flags.ledger !== undefined) out.ledgerDir = isFolderPath(flags.ledger) ? flags.ledger : path.resolve(flags.ledger);
  if (flags.upstream !== undefined) out.upstreamEndpoint = flags.upstream;
  // Simulated spend has its own ledger folder (a value of the wrong type is left for validation to name).
  if (flags.simulate && (out.ledgerDir === undefined || typeof out.ledgerDir === "string")) {
    out.ledgerDir = simulatedLedgerDir(ledgerDirOf({ ledgerDir: out.ledgerDir as string | undefined }));
  }
  return out;
}

/**
 * An edit of the config file, checked key by key against the settings in force: a bad harmless
 * key is ignored, a bad key that decides money (or a file that cannot be read as JSON) blocks.
 */
async function checkEdit(file: string, flags: Flags, previous: Config): Promise<SettingsCheck> {
  let raw: unknown;
  try {
    raw = await readConfigFile(file);
  } catch (err) {
    const problem = err instanceof ConfigError ? err.problems.join("; ") : (err as Error).message;
    return { config: previous, errors: [problem], blocking: [problem] };
  }
  return checkSettings(raw && typeof raw === "object" && !Array.isArray(raw) ? withFlags(raw, flags) : raw, previous);
}

/** `--shutdown-deadline`: seconds calls in flight may run after SIGTERM/SIGINT before they are stopped. */
function shutdownDeadlineMs(flag: string | undefined): number {
  if (flag === undefined) return DEFAULT_SHUTDOWN_DEADLINE_MS;
  if (!/^\d+(\.\d+)?$/.test(flag) || Number(flag) > 86_400) {
    throw new ConfigError("--shutdown-deadline", [`shutdown-deadline: "${flag}" is not a number of seconds (0 to 86400)`]);
  }
  return Math.round(Number(flag) * 1000);
}

/**
 * A throw that escapes into an event callback (a bug, or upstream bytes nobody foresaw) must not
 * end the process and every call in flight with it. Continuing is safe: each call's money is
 * settled by its own handlers (its 'close'/'error' paths, the request's catch-all), a call that
 * never settles keeps its reservation counted against the caps, and its reserve entry is already
 * durable, so it is charged its worst case at the latest when the gateway next starts.
 */
function guardProcess(log: Logger): void {
  process.on("uncaughtException", (err) => log.error(`uncaught exception (the gateway keeps serving): ${err.stack ?? err}`));
  process.on("unhandledRejection", (reason) => log.error(`unhandled rejection (the gateway keeps serving): ${reason instanceof Error ? reason.stack : String(reason)}`));
}

async function serve(config: Config, configFile: string | undefined, flags: Flags, deadlineMs: number): Promise<number> {
  const log = stderrLogger(config.logLevel, flags.simulate ? "[simulated]" : undefined);
  guardProcess(log);
  const simulator = flags.simulate ? await startSimulator() : undefined;
  let gateway: RunningGateway;
  try {
    gateway = await startGateway({ config, log, ...(simulator ? { simulator } : {}) });
  } catch (err) {
    await simulator?.close();
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") throw await portInUse(config.port, ledgerDirOf(config));
    // A full disk, a read-only folder, a folder where a file belongs: the message says what failed, this says where.
    if (isSystemError(err)) err.message = `the gateway could not start with its ledger in ${ledgerDirOf(config)}: ${err.message}`;
    throw err;
  }
  let current = config;
  const stopWatching = configFile
    ? watchConfig(configFile, async () => {
        try {
          const check = await checkEdit(configFile, flags, current);
          const blocked = check.blocking.length > 0;
          // Block before applying anything; unblock only once the valid settings are in force.
          if (blocked) gateway.block(blockedMessage(check.blocking, `Correct it in ${configFile}; the gateway re-reads the file when it is saved.`));
          const ignored = check.errors.filter((e) => !check.blocking.includes(e));
          if (ignored.length) log.warn(`${configFile}: ignored (the last good value applies): ${ignored.join("; ")}`);
          // The port and the ledger are the running gateway's until it restarts (the lock, the journal, the secret).
          const movedLedger = ledgerDirOf(check.config) !== ledgerDirOf(config);
          current = { ...check.config, port: config.port, ...(movedLedger ? { ledgerDir: ledgerDirOf(config) } : {}) };
          await gateway.reconfigure(current);
          if (!blocked) gateway.unblock();
          if (movedLedger) {
            log.warn(`${configFile}: ledgerDir changed to ${ledgerDirOf(check.config)}, but this gateway keeps journaling to ${ledgerDirOf(config)} until it is restarted; status and report with this file read the new folder meanwhile`);
          }
          log.info(`configuration reloaded from ${configFile}`);
        } catch (err) {
          log.error(`applying ${configFile}: ${(err as Error).message}`);
        }
      })
    : () => undefined;
  if (simulator) {
    process.stdout.write(`SIMULATED: answers come from the built-in simulator, not AWS; nothing is spent; SigV4 with any key is accepted; ledger: ${ledgerDirOf(config)}\n`);
  }
  // Ready only once the config watcher is in place, so no edit after this line is missed.
  process.stdout.write(`listening on ${gateway.url}\n`);

  let signals = 0;
  await new Promise<void>((resolve) => {
    const onSignal = () => {
      if (++signals === 1) return resolve();
      // A second signal stops the calls now; the process still exits only once they are journaled.
      log.warn("second signal: stopping the calls in flight now");
      void gateway.close({ deadlineMs: 0 }).catch(() => undefined); // the same shutdown, awaited below
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  log.info(`stopping: calls in flight have ${deadlineMs / 1000} s to finish, then are stopped and charged their worst case (signal again to stop them now)`);
  stopWatching();
  await gateway.close({ deadlineMs });
  await simulator?.close();
  return 0;
}

/** The gateway's port is taken: bad input like an invalid flag (exit 2), which a restart cannot fix. */
class PortInUse extends Error {}

/** One line naming the port, what holds it (a gateway answers its health route; the owner's user from /proc) and the fix. */
async function portInUse(port: number, ledgerDir: string): Promise<PortInUse> {
  const owner = await describeListener(port);
  const fix = 'start this one on a free port with --port N (or "port" in the config file)';
  const secret = await GatewaySecret.read(ledgerDir).catch(() => undefined);
  // This ledger is locked by this process, so a gateway there serves another one: named, never used.
  const probe = secret ? await probeGateway(`http://127.0.0.1:${port}`, secret) : undefined;
  if (!probe || probe.kind === "other") return new PortInUse(`port ${port} is already in use by ${owner ?? "another program"}; ${fix}`);
  return new PortInUse(`${gatewayOnAnotherLedger(port, probe.kind === "impostor" ? probe.pid : undefined, owner)}; stop it, or ${fix}`);
}

/**
 * Calls `onChange` after the file's content changes: file events for speed, plus a slow stat
 * poll because some editors replace the file and network drives deliver no events.
 */
function watchConfig(file: string, onChange: () => Promise<void>): () => void {
  let timer: NodeJS.Timeout | undefined;
  let last: string | undefined;
  let running = Promise.resolve();
  const check = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(async () => {
        const text = await readFile(file, "utf8").catch(() => undefined);
        if (text === undefined || text === last) return;
        last = text;
        await onChange();
      });
    }, 150);
  };
  try {
    last = readFileSync(file, "utf8"); // synchronously: an edit made right after start must still count as a change
  } catch {
    last = undefined;
  }
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(file, { persistent: false }, check);
  } catch {
    watcher = undefined; // polling below still notices changes
  }
  watchFile(file, { interval: 2_000, persistent: false }, check);
  return () => {
    clearTimeout(timer);
    watcher?.close();
    unwatchFile(file, check);
  };
}

async function status(config: Config): Promise<number> {
  const base = `http://127.0.0.1:${config.port}`;
  const dir = ledgerDirOf(config);
  const noGateway = () => {
    process.stderr.write(`no Bedrock Budget gateway answers on port ${config.port} (start one with: bedrock-budget serve)\n`);
    return 1;
  };
  // Checked before anything it says is printed: another local user's process holding the port must
  // not have its figures (or a fake dashboard line) shown as this gateway's.
  const secret = await GatewaySecret.read(dir).catch((err: Error) => err);
  let heading = "";
  if (secret instanceof GatewaySecret) {
    const probe = await probeGateway(base, secret);
    if (probe.kind === "other") return noGateway();
    if (probe.kind === "impostor") {
      const pid = probe.pid ? ` (it says it is pid ${probe.pid})` : "";
      process.stderr.write(`WARNING: the process on port ${config.port}${pid} cannot prove it is the gateway of the ledger in ${dir}: its figures are not shown; do not send it calls (pass --ledger with the gateway's folder if it uses another)\n`);
      return 1;
    }
  } else {
    if (!(await answersHealth(base))) return noGateway();
    // Another user's gateway (a service's ledger this user cannot read): its figures, marked unproven.
    const why = secret ? `cannot read the token in ${dir}: ${secret.message}` : `no token in ${dir}`;
    heading = `UNVERIFIED: nothing proves the process on port ${config.port} is your gateway (${why}; pass --ledger with the gateway's folder); as it reports itself:\n`;
  }
  let body: StatusResponse;
  try {
    const response = await fetch(`${base}${API_PATHS.status}`, { signal: AbortSignal.timeout(3_000) });
    body = (await response.json()) as StatusResponse;
  } catch (err) {
    process.stderr.write(`the gateway on port ${config.port} did not answer its status: ${(err as Error).message}\n`);
    return 1;
  }
  const dashboard = secret instanceof GatewaySecret ? `dashboard: ${base}${DASHBOARD_PATHS.page}?${TOKEN_QUERY}=${secret.token()}\n` : "";
  process.stdout.write(`${heading}${formatStatus(body)}${dashboard}`);
  return 0;
}

/** Whether a Bedrock Budget gateway answers on `base` (what it is, without proving whose). */
async function answersHealth(base: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}${API_PATHS.health}`, { signal: AbortSignal.timeout(1_500) });
    return ((await res.json()) as Partial<HealthResponse>).product === "bedrock-budget";
  } catch {
    return false;
  }
}

/**
 * The chargeback report: totals by user, model, tool, caller and tag value (or, with --calls, one
 * row per call) of a month in the configured time zone (default: this one) or a --from/--to range.
 */
async function report(config: Config, flags: { format?: string; month?: string; from?: string; to?: string; calls?: boolean }): Promise<number> {
  const format = flags.format ?? "csv";
  if (format !== "csv" && format !== "json") throw new ConfigError("--format", [`format: "${format}" is not csv or json`]);
  const timeZone = timeZoneOf(config);
  const now = new Date();
  let range;
  if (flags.from !== undefined || flags.to !== undefined) {
    if (flags.month !== undefined) throw new ConfigError("--month", ["give either --month or --from/--to, not both"]);
    range = parseRange(flags.from, flags.to, timeZone, now);
    if (typeof range === "string") throw new ConfigError(flags.from !== undefined && range.startsWith("--from") ? "--from" : "--to", [range]);
  } else {
    const month = flags.month ?? currentMonth(now, timeZone);
    if (!MONTH_PATTERN.test(month)) throw new ConfigError("--month", [`month: "${month}" is not YYYY-MM`]);
    range = monthRange(month, timeZone);
  }
  // Each write's callback carries its error; unheard, the same error as an event would end the process with a stack.
  process.stdout.on("error", () => undefined);
  try {
    await printReport(ledgerDirOf(config), range, format, flags.calls === true);
  } catch (err) {
    if (err instanceof OutputClosed) return 0;
    throw err;
  }
  return 0;
}

async function printReport(dir: string, range: ReportRange, format: "csv" | "json", calls: boolean): Promise<void> {
  // Read and printed a batch at a time: a year of a busy ledger must not be held whole (heap, string length).
  if (calls) {
    // Nothing is printed before the first batch is read: a ledger that cannot be opened prints no header.
    let any = false;
    await eachSettledBatch(dir, range, (batch) => {
      const text = format === "json" ? jsonArrayPart(batch, !any) : `${any ? "" : csvHeader()}${csvRows(batch)}`;
      any = true;
      return writeOut(text);
    });
    await writeOut(format === "json" ? jsonArrayEnd(any) : any ? "" : csvHeader());
    return;
  }
  const tally = new ChargebackTally();
  await eachSettledBatch(dir, range, (batch) => {
    for (const c of batch) tally.add(c);
  });
  await writeOut(format === "json" ? totalsJson(tally.result(), range) : totalsCsv(tally.result()));
}

/** The reader of stdout went away (`report --calls | head`): the report stops there, as a pipe's writer does, without an error. */
class OutputClosed extends Error {}

/**
 * Writes to stdout and resolves once the text is handed to the system: a pipe takes 64 KiB at once
 * and Node queues the rest, which the process.exit after the command would throw away. Awaited per
 * batch, it also keeps a slow reader from making the whole report pile up in memory.
 */
function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(text, (err) => (err ? reject((err as NodeJS.ErrnoException).code === "EPIPE" ? new OutputClosed() : err) : resolve())),
  );
}

/** A month of the journal replayed against the caps of a proposed config file (its ledgerDir and timeZone apply, as for every command). */
async function whatIfCommand(config: Config, source: string, format: string, month: string | undefined): Promise<number> {
  if (format !== "text" && format !== "json") throw new ConfigError("--format", [`format: "${format}" is not text or json`]);
  const timeZone = timeZoneOf(config);
  const selected = month ?? currentMonth(new Date(), timeZone);
  if (!MONTH_PATTERN.test(selected)) throw new ConfigError("--month", [`month: "${selected}" is not YYYY-MM`]);
  const dir = ledgerDirOf(config);
  const prices = new PriceBook(config.pricing, (await loadPriceTable(dir)).table); // downgrades and clamps re-priced with the gateway's price book
  const journal = await Journal.open(dir, { readOnly: true });
  try {
    const result = await whatIfMonth(journal, config, selected, timeZone, prices);
    process.stdout.write(format === "json" ? `${JSON.stringify(result, null, 2)}\n` : printableText(formatWhatIf(result, source)));
  } finally {
    await journal.close();
  }
  return 0;
}

/**
 * Fetches on-demand prices from the AWS Price List (the config's awsProfile, else the default
 * chain) and writes the ledger's price file; the gateway applies it live.
 */
async function pricesUpdate(config: Config, regions: string[] | undefined): Promise<number> {
  const region = regions?.length ? regions : [process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1"];
  if (region.length > 1) throw new ConfigError("--region", [`region: the price file holds one region's prices; give one --region (got ${region.join(", ")})`]);
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region[0]!)) throw new ConfigError("--region", [`region: "${region[0]}" is not an AWS region`]);
  const text = await updatePrices(ledgerDirOf(config), region[0]!, credentialSource(config.awsProfile)).catch((err: Error) => {
    const hint = isCredentialError(err) ? " (the AWS Price List needs credentials, from awsProfile or the default chain, allowed pricing:GetProducts)" : "";
    throw new AwsCallError(`prices update: ${err.message}${hint}`);
  });
  process.stdout.write(text);
  return 0;
}

/** The ledger's figure beside what Cost Explorer billed, per UTC day and model. */
async function reconcileCommand(config: Config, month: string | undefined): Promise<number> {
  const selected = month ?? new Date().toISOString().slice(0, 7);
  if (!MONTH_RE.test(selected)) throw new ConfigError("--month", [`month: "${selected}" is not YYYY-MM`]);
  const dir = ledgerDirOf(config);
  const { table } = await loadPriceTable(dir);
  const book = new PriceBook(config.pricing, table);
  const result = await reconcileMonth(selected, { ledgerDir: dir }, table, book, credentialSource(config.awsProfile)).catch((err: Error) => {
    if (err instanceof LedgerUnreadable) throw err; // not Cost Explorer's
    const hint = isCredentialError(err) ? " (Cost Explorer needs credentials, from awsProfile or the default chain, allowed ce:GetCostAndUsage and ce:GetDimensionValues)" : "";
    throw new AwsCallError(`reconcile: ${err.message}${hint}`);
  });
  process.stdout.write(printableText(formatReconciliation(result)));
  return 0;
}

/** A failed AWS call of a one-shot command: its message says what to fix, no stack needed. */
class AwsCallError extends Error {}

/**
 * Whether an AWS call failed for want of credentials or of permission (none found, expired, a bad
 * signature, access denied): only then does the message add which credentials and action it needs.
 */
function isCredentialError(err: unknown): boolean {
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  if (status === 401 || status === 403) return true;
  const name = typeof e?.name === "string" ? e.name : "";
  return /credential|accessdenied|unauthorized|notauthorized|unrecognizedclient|invalidclienttokenid|signature|expiredtoken|missingauthenticationtoken|tokenrefresh/i.test(name);
}

/** An error of a system call (ENOSPC, EROFS, EACCES …): its message names the call, and often the path. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException | undefined;
  return e instanceof Error && typeof e.code === "string" && /^E[A-Z]+$/.test(e.code) && typeof e.syscall === "string";
}

/** What the user can act on without a stack: our own refusals, and the system's (a full disk, a read-only folder). */
function plainMessage(err: unknown): boolean {
  return err instanceof ConfigError || err instanceof TypeError || err instanceof AwsCallError || err instanceof PortInUse || err instanceof LedgerLocked || err instanceof LedgerUnreadable || isSystemError(err);
}

/**
 * Exits once what the command wrote is handed to the system. Into a pipe Node takes 64 KiB at once
 * and queues the rest, which a bare process.exit throws away (`whatif --format json | jq` cut short,
 * a script reading half the output and exit 0). A reader gone early (EPIPE) is not waited on.
 */
function exitAfterOutput(code: number): void {
  const flushed = (stream: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => {
      if (stream.writableLength === 0 || stream.destroyed) return resolve();
      stream.on("error", () => resolve());
      stream.write("", () => resolve());
    });
  void Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => process.exit(code));
}

main(process.argv.slice(2)).then(exitAfterOutput, (err) => {
  process.stderr.write(`bedrock-budget: ${plainMessage(err) ? (err as Error).message : (err as Error).stack ?? err}\n`);
  exitAfterOutput(err instanceof ConfigError || err instanceof PortInUse || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1);
});
