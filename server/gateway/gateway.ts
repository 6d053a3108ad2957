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
import { lockLedger } from "../ledger/lock";
import type { CallRecord } from "../ledger/types";
import { stderrLogger, type Logger } from "../log";
import { PriceBook } from "../metering/prices";
import type { GatewayContext } from "./context";
import { accessDenied } from "./errors";
import { inboundGuard, isLoopbackHost, type InboundGuard, type InboundLimits } from "./inbound";
import { listen, type AnyRequest, type AnyResponse, type Listener } from "./listener";
import { LocalApi } from "./localApi";
import { attachDashboard, DashboardRoutes } from "../dashboard/routes";
import { answer, handleBedrock } from "./proxy";
import { upstreamUnreachable } from "./errors";
import { attachTeam, runtimeKey, TeamRuntime } from "../team/runtime";

export interface GatewayOptions {
  config: Config;
  /** Overrides config.port (0 picks a free port). */
  port?: number;
  credentials?: CredentialSource;
  log?: Logger;
  now?: () => Date;
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
  onCall(listener: (record: CallRecord) => void): () => void;
  /** Stops accepting, lets calls in flight settle, flushes the ledger. */
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const log = options.log ?? stderrLogger(options.config.logLevel);
  const now = options.now ?? (() => new Date());
  const ledgerDir = ledgerDirOf(options.config);
  const lock = await lockLedger(ledgerDir);
  let ledger: Ledger;
  try {
    ledger = await Ledger.open(ledgerDir, { now, timeZone: timeZoneOf(options.config) });
  } catch (err) {
    await lock.release();
    throw err;
  }
  const history = (since: Date) => ledger.settledSince(since);
  const guard = inboundGuard(options.limits);
  let team: TeamRuntime | undefined;
  let ctx: GatewayContext;
  try {
    team = options.config.teamLedger ? await openTeam(options.config) : undefined;
    ctx = (await assemble(options.config)).next;
  } catch (err) {
    await team?.close();
    await ledger.close();
    await lock.release();
    throw err;
  }
  await replaySpend(ctx);

  let inFlight = 0;
  let idle: (() => void) | undefined;
  let url = "";
  const api = new LocalApi(() => ctx, () => url, () => inFlight);
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
    const next = buildContext(effective, ledger, options, log, now, engineCaps, guard);
    if (team && eff) await team.store.setCaps(eff.team, eff.teamTimeZone);
    attachTeam(next, team?.store);
    if (previous) {
      next.engine = previous.engine;
      next.publish = previous.publish;
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
    inFlight++;
    handleBedrock(ctx, req, res)
      .catch((err) => {
        log.error(`unexpected failure: ${(err as Error).stack ?? err}`);
        answer(res, upstreamUnreachable(`Bedrock Budget failed on this call: ${(err as Error).message}`));
      })
      .finally(() => {
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
    onCall(fn) {
      api.events.on("call", fn);
      return () => api.events.off("call", fn);
    },
    async close() {
      const drained = inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve));
      const closing = listener.close(); // stops accepting at once
      api.endStreams();
      await drained;
      await closing;
      await applying.catch(() => undefined);
      await team?.close();
      await ledger.close();
      await lock.release();
    },
  };
}

function buildContext(config: Config, ledger: Ledger, options: GatewayOptions, log: Logger, now: () => Date, engineCaps: CapConfig[], inbound: InboundGuard): GatewayContext {
  const timeZone = timeZoneOf(config);
  return {
    config,
    prices: new PriceBook(config.pricing),
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
