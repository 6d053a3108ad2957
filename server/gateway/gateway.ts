/**
 * Assembles the gateway: ledger (recovered), budget engine (replayed from the ledger), prices,
 * credentials, and one loopback listener for Bedrock calls and the local API.
 */
import { BudgetEngine } from "../budget/engine";
import { windowBounds } from "../budget/windows";
import { ledgerDirOf, timeZoneOf, userOf } from "../config/load";
import { capId, type CapConfig, type Config } from "../config/schema";
import { credentialSource, type CredentialSource } from "../credentials";
import { Ledger } from "../ledger/ledger";
import { JournalWriteError } from "../ledger/journal";
import { lockLedger } from "../ledger/lock";
import type { CallRecord } from "../ledger/types";
import { stderrLogger, type Logger } from "../log";
import { PriceBook, type PriceTable } from "../metering/prices";
import { loadPriceTable, priceFilePath, watchPriceFile, type PriceTableInfo } from "../metering/priceFile";
import { ProfileLookup } from "../metering/profileLookup";
import type { GatewayContext } from "./context";
import { CallScope } from "./callScope";
import { accessDenied, refusal } from "./errors";
import { inboundGuard, isLoopbackHost, type InboundGuard, type InboundLimits } from "./inbound";
import { listen, type AnyRequest, type AnyResponse, type Listener } from "./listener";
import { LocalApi } from "./localApi";
import { attachDashboard, DashboardRoutes } from "../dashboard/routes";
import { answer, handleBedrock } from "./proxy";
import { cannotRecord, upstreamUnreachable } from "./errors";
import { attachTeam, runtimeKey, TeamRuntime } from "../team/runtime";

export interface GatewayOptions {
  config: Config;
  /** Overrides config.port (0 picks a free port). */
  port?: number;
  credentials?: CredentialSource;
  log?: Logger;
  now?: () => Date;
  /** Start blocked (see RunningGateway.block): settings that decide money are invalid. */
  blocked?: string;
  /** Overrides the fixed bounds on unproven work (tests use short timeouts and small budgets). */
  limits?: Partial<InboundLimits>;
}

export interface RunningGateway {
  readonly port: number;
  readonly url: string;
  readonly api: LocalApi;
  /** Request-body bytes held now and at most so far, and open connections. */
  readonly inbound: { readonly bufferedBytes: number; readonly peakBufferedBytes: number; readonly connections: number };
  /** Applies new settings live; spend and reservations carry over, and new caps count this window's history. */
  reconfigure(config: Config): Promise<void>;
  /**
   * Refuses every Bedrock call with `reason` (a non-retryable 400) until unblock(), while the local
   * API keeps answering and its status says why: settings that decide money are invalid, and
   * the gateway never guesses them.
   */
  block(reason: string): void;
  unblock(): void;
  onCall(listener: (record: CallRecord) => void): () => void;
  /**
   * Stops accepting and lets calls in flight finish for `deadlineMs` (default 10 s); calls still in
   * flight then are stopped (upstream destroyed, caller answered or cut) and settled at their worst
   * case as "interrupted", journaled; then the ledger closes. Calling it again while it runs with a
   * shorter deadline (0: now) hurries the same shutdown.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

/** How long calls in flight may run after a stop was asked for. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 10_000;
/** After stopping the late calls: time for their handlers to answer and the connections to close. */
const STOP_GRACE_MS = 2_000;

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const log = options.log ?? stderrLogger(options.config.logLevel);
  const now = options.now ?? (() => new Date());
  const ledgerDir = ledgerDirOf(options.config);
  const lock = await lockLedger(ledgerDir);
  let ledger: Ledger;
  try {
    ledger = await Ledger.open(ledgerDir, { now, timeZone: timeZoneOf(options.config), durability: options.config.durability });
  } catch (err) {
    await lock.release();
    throw err;
  }
  const history = (since: Date) => ledger.settledSince(since);
  const guard = inboundGuard(options.limits);
  let team: TeamRuntime | undefined;
  let ctx: GatewayContext;
  /** The built-in table with the ledger's price file (bedrock-budget prices update) applied; an invalid file stops the start. */
  let prices: { table: PriceTable; info: PriceTableInfo };
  try {
    prices = await loadPriceTable(ledgerDir);
    team = options.config.teamLedger ? await openTeam(options.config) : undefined;
    ctx = (await assemble(options.config)).next;
  } catch (err) {
    await team?.close();
    await ledger.close();
    await lock.release();
    throw err;
  }
  ctx.profiles = new ProfileLookup({ ledgerDir, credentials: () => ctx.credentials(), log, now });
  await replaySpend(ctx);

  let inFlight = 0;
  let idle: (() => void) | undefined;
  /** One per Bedrock request in flight: what close() stops when the deadline passes. */
  const scopes = new Set<CallScope>();
  let url = "";
  let blocked = options.blocked;
  const api = new LocalApi(() => ctx, () => url, () => inFlight, () => blocked, () => prices);
  ctx.publish = (record) => api.publish(record);
  const dashboard = attachDashboard(api, () => ctx);

  /** Team caps come from team.json and the settings; the local engine keeps the personal ones. */
  async function openTeam(config: Config): Promise<TeamRuntime> {
    const runtime = await TeamRuntime.open({ config, ledgerDir, user: userOf(config), history, log, now });
    runtime.onChange(() => {
      if (team !== runtime) return;
      void apply(currentConfig).catch((err) => log.error(`applying team.json: ${(err as Error).message}`));
    });
    return runtime;
  }

  /** A context for `config` (team.json merged in); its engine keeps this machine's caps. */
  async function assemble(config: Config, previous?: GatewayContext): Promise<{ next: GatewayContext; engineCaps: CapConfig[] }> {
    const timeZone = timeZoneOf(config);
    const eff = team?.effective(config, userOf(config), timeZone);
    const effective: Config = eff ? { ...config, caps: [...eff.personal, ...eff.team], pricing: eff.pricing } : config;
    const engineCaps = eff ? eff.personal : config.caps;
    const next = buildContext(effective, ledger, options, log, now, engineCaps, guard, prices.table);
    if (eff) next.prices = new PriceBook(eff.pricing, prices.table, eff.teamPricing); // team.json's prices can only raise rates
    if (team && eff) await team.store.setCaps(eff.team, eff.teamTimeZone);
    attachTeam(next, team?.store);
    if (previous) {
      next.engine = previous.engine;
      next.publish = previous.publish;
      next.profiles = previous.profiles; // answers already learned stay
      // Keep resolved (memoized) credentials unless the profile changed: SSO look-ups are slow.
      if (previous.config.awsProfile === config.awsProfile) next.credentials = previous.credentials;
    }
    return { next, engineCaps };
  }

  let currentConfig = options.config;
  let applying: Promise<void> = Promise.resolve();
  /** Applies settings (or a team.json change) live; serialised, so overlapping changes apply in order. */
  function apply(config: Config): Promise<void> {
    applying = applying.then(async () => {
      currentConfig = config;
      if (runtimeKey(config) !== (team?.key ?? runtimeKey({ ...config, teamLedger: undefined }))) {
        const old = team;
        team = config.teamLedger ? await openTeam(config) : undefined;
        await old?.close();
      }
      const { next, engineCaps } = await assemble(config, ctx);
      const fresh = next.engine.setCaps(engineCaps);
      log.setLevel(config.logLevel);
      ctx = next;
      if (fresh.length > 0) await replaySpend(ctx, new Set(fresh));
    });
    return applying;
  }

  const handler = (req: AnyRequest, res: AnyResponse) => {
    if (!isLoopbackHost(req)) {
      return answer(res, accessDenied("Bedrock Budget answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1])."));
    }
    const rawPath = req.url ?? "/";
    if (DashboardRoutes.handles(rawPath)) return void dashboard.handle(req, res).catch((err) => log.error(`dashboard: ${(err as Error).message}`));
    if (LocalApi.handles(rawPath)) return void api.handle(req, res).catch((err) => log.error(`local API: ${(err as Error).message}`));
    if (blocked !== undefined) {
      if (req.httpVersionMajor === 1) res.setHeader("connection", "close"); // the body is left unread
      return answer(res, refusal(blocked));
    }
    inFlight++;
    const scope = new CallScope();
    scopes.add(scope);
    // Catch-all: whatever escapes a call is logged and answered; the gateway serves on.
    handleBedrock(ctx, req, res, scope)
      .catch((err) => {
        const unrecorded = err instanceof JournalWriteError; // a full or read-only disk: expected, named, retryable
        if (unrecorded) log.warn(`refused a call: ${err.message}`);
        else log.error(`unexpected failure: ${(err as Error).stack ?? err}`);
        try {
          answer(res, unrecorded ? cannotRecord(err.message) : upstreamUnreachable(`Bedrock Budget failed on this call: ${(err as Error).message}`));
        } catch (answerErr) {
          log.error(`could not answer after the failure: ${(answerErr as Error).message}`);
        }
      })
      .finally(() => {
        scopes.delete(scope);
        if (--inFlight === 0) idle?.();
      });
  };

  let listener: Listener;
  try {
    listener = await listen(handler, options.port ?? options.config.port, "127.0.0.1", guard.limits);
  } catch (err) {
    // The port is taken (often by another window's gateway): leave nothing half-open.
    await team?.close();
    await ledger.close();
    await lock.release();
    throw err;
  }
  let closing: Promise<void> | undefined;
  /** Moves the running shutdown's deadline earlier (never later). */
  let hurry: ((deadlineMs: number) => void) | undefined;

  /** A new price file applies live; an invalid one is logged and the table in force stays. */
  const stopPriceWatch = watchPriceFile(ledgerDir, () => {
    void loadPriceTable(ledgerDir)
      .then((next) => {
        prices = next;
        log.info(`prices: ${next.info.source} ${next.info.date} in force (${priceFilePath(ledgerDir)})`);
        return apply(currentConfig);
      })
      .catch((err) => log.error(`prices: ${(err as Error).message}; the prices in force stay`));
  });
  url = `http://127.0.0.1:${listener.port}`;
  await lock.advertise(url);
  log.info(`gateway on ${url}, ledger in ${ledgerDirOf(options.config)}`);

  return {
    port: listener.port,
    url,
    api,
    inbound: {
      get bufferedBytes() {
        return guard.budget.bufferedBytes;
      },
      get peakBufferedBytes() {
        return guard.budget.peakBufferedBytes;
      },
      get connections() {
        return listener.connections;
      },
    },
    reconfigure(config) {
      return apply(config);
    },
    block(reason) {
      if (blocked !== reason) log.error(reason);
      blocked = reason;
    },
    unblock() {
      if (blocked !== undefined) log.info("the settings are valid again: Bedrock calls are admitted");
      blocked = undefined;
    },
    onCall(fn) {
      api.events.on("call", fn);
      return () => api.events.off("call", fn);
    },
    close(closeOptions = {}) {
      const deadlineMs = closeOptions.deadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
      if (closing) {
        hurry?.(deadlineMs);
        return closing;
      }
      closing = shutDown(deadlineMs);
      return closing;
    },
  };

  async function shutDown(deadlineMs: number): Promise<void> {
    const started = Date.now();
    const drained = inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve));
    const closingListener = listener.close(deadlineMs + STOP_GRACE_MS); // stops accepting at once
    api.endStreams();
    stopPriceWatch();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      let due = started + deadlineMs;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(resolve, Math.max(0, due - Date.now()));
      };
      hurry = (ms) => {
        due = Math.min(due, Date.now() + ms);
        arm();
      };
      arm();
    });
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
    if (inFlight > 0) {
      const message = "the gateway shut down with this call in flight; charged its worst case";
      log.warn(`stopping ${inFlight} call(s) still in flight after the shutdown deadline; each is charged its worst case`);
      // Settled (journaled) before anything closes: the ledger must hold them when the process exits.
      await Promise.all([...scopes].map((scope) => scope.stop(message)));
      await withinGrace(drained);
    }
    await withinGrace(closingListener);
    await applying.catch(() => undefined);
    await team?.close();
    await ledger.close();
    await lock.release();
  }
}

/** Waits for `p`, but no longer than the stop grace (what is left is destroyed by its owner). */
async function withinGrace(p: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)))]);
  clearTimeout(timer);
}

function buildContext(config: Config, ledger: Ledger, options: GatewayOptions, log: Logger, now: () => Date, engineCaps: CapConfig[], inbound: InboundGuard, table: PriceTable): GatewayContext {
  const timeZone = timeZoneOf(config);
  return {
    config,
    prices: new PriceBook(config.pricing, table),
    engine: new BudgetEngine(engineCaps, timeZone),
    ledger,
    credentials: options.credentials ?? credentialSource(config.awsProfile),
    inbound,
    log,
    user: userOf(config),
    timeZone,
    now,
    publish: () => undefined,
  };
}

/**
 * Spend already settled in the current windows counts against the caps after a restart, charged
 * to the window each call reserved in (as live). `only` limits the replay to caps that are new.
 */
async function replaySpend(ctx: GatewayContext, only?: Set<string>): Promise<void> {
  const now = ctx.now();
  const since = ctx.config.caps
    .filter((cap) => !only || only.has(capId(cap)))
    .map((cap) => windowBounds(cap.window, ctx.timeZone, now).start)
    .reduce<Date | undefined>((a, b) => (a && a < b ? a : b), undefined);
  if (!since) return;
  for await (const record of ctx.ledger.settledSince(since)) {
    const amount = BigInt(record.costPicos);
    if (amount <= 0n) continue;
    const at = new Date(record.startedAt);
    if (!only) {
      ctx.engine.recordSpent({ modelId: record.modelId, baseModelId: record.baseModelId, amount, at });
      continue;
    }
    for (const id of ctx.engine.applicableCaps(record.modelId, record.baseModelId)) {
      if (only.has(id)) ctx.engine.recordExternalSpent(id, at, amount);
    }
  }
}
