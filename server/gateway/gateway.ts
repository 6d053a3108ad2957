/**
 * Assembles the gateway: ledger (recovered), budget engine (replayed from the ledger), prices,
 * credentials, and one loopback listener for Bedrock calls and the local API.
 */
import http from "node:http";
import { Caps, LocalCapStore } from "../budget/caps";
import { BudgetEngine } from "../budget/engine";
import { ledgerDirOf, timeZoneOf, userOf } from "../config/load";
import type { Config } from "../config/schema";
import { credentialSource, type CredentialSource } from "../credentials";
import { Ledger } from "../ledger/ledger";
import { windowBounds } from "../budget/windows";
import { JournalWriteError } from "../ledger/journal";
import { isLockHeld, lockLedger, type LedgerLock } from "../ledger/lock";
import { GatewaySecret } from "../ledger/secret";
import type { CallRecord } from "../ledger/types";
import { API_PATHS, type BlockedCause, type StatusResponse } from "../protocol";
import { repeatFilter, stderrLogger, type Logger, type RepeatLog } from "../log";
import { PriceBook, type PriceTable } from "../metering/prices";
import { loadPriceTable, priceFilePath, watchPriceFile, type PriceTableInfo } from "../metering/priceFile";
import { ProfileLookup } from "./profileLookup";
import type { GatewayContext } from "./context";
import { CallScope } from "./callScope";
import { CallPublisher } from "./publisher";
import { accessDenied, bedrockError } from "./errors";
import { inboundGuard, isLoopbackHost, type InboundGuard, type InboundLimits } from "./inbound";
import { listen, PHASE_HEADER, type AnyRequest, type AnyResponse, type Handler, type Listener, type ListenOptions } from "./listener";
import { LocalApi } from "./localApi";
import { attachDashboard } from "../dashboard/routes";
import { json, type Routes } from "../http";
import { answer, handleBedrock } from "./proxy";
import { cannotRecord, uncountedMessage, upstreamUnreachable } from "./errors";
import { runtimeKey, TeamRuntime } from "../team/runtime";
import { AlertJournal } from "../policy/alertJournal";
import { snsChannel, webhookChannel } from "../policy/alertChannels";
import { AlertDispatcher, type AlertSettings } from "../policy/alerts";
import { GatewayMetrics } from "./metrics";
import { CAP_ACTION_EVENT, capStatusDto, type CapActionEvent } from "./localApi";
import { readOne } from "../budget/historyPass";
import { CAPS_CHECKPOINT, type CapTally } from "../budget/capCheckpoint";
import { QUOTAS_CHECKPOINT, quotaReader, type QuotaTally } from "../policy/quotaCheckpoint";
import { openTallies } from "./openTallies";
import { AdmissionGate } from "./admissionGate";
import { capsInForce } from "../policy/plans";
import { RateLimiter } from "../policy/rateLimit";
import { ProfileCredentials } from "./callerCredentials";
import { SIMULATED_CREDENTIALS } from "../simulator/mode";
import { SIMULATED_HEADER } from "../simulator/server";

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
  /**
   * Try-it mode (`serve --simulate`): every call goes to this simulator instead of Bedrock, is
   * signed with no real credentials, and every answer carries x-bedrock-budget-simulated: true.
   */
  simulator?: { url: string };
  /** Routes mounted beside the local API, built once it exists (default: the dashboard). */
  mount?: (api: LocalApi, ctx: () => GatewayContext) => Routes[];
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
  /** The status after each turn's settled calls (after their onCall), and after a change of what it shows that no call brought (today's totals moved to a new time zone). */
  onStatus(listener: (status: StatusResponse) => void): () => void;
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
/**
 * How long a port still taken while the ledger's lock is free is tried again: the gateway that held
 * the ledger frees its port just after releasing the lock (see teardown).
 */
const PORT_HANDOVER_MS = 500;
/** At first it is tried again at once (each turn of the event loop), then every PORT_RETRY_MS. */
const PORT_SPIN_MS = 50;
const PORT_RETRY_MS = 10;

/** True when a request quota (per day or month) applies to some caller: their counts must come from the journal. */
function hasQuota(config: Config): boolean {
  const limits = [config.rateLimit, ...Object.values(config.tiers ?? {}).map((t) => t.rateLimit)];
  return limits.some((l) => l?.requestsPerDay !== undefined || l?.requestsPerMonth !== undefined);
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  return Gateway.start(options);
}

/** The parts open while the gateway runs; teardown closes what was opened, in one place. */
interface Resources {
  lock: LedgerLock;
  /** Bound whenever the lock is held (see lockAndBind), freed only after it is released. */
  listener: Listener;
  ledger?: Ledger;
  team?: TeamRuntime;
  alerts?: AlertDispatcher;
}

/**
 * One running gateway and its state: the context calls see (swapped whole on reconfigure), the
 * caps (one for its life), the team runtime, the price table, the listener and the calls in flight.
 */
export class Gateway implements RunningGateway {
  readonly api: LocalApi;
  private readonly metrics: GatewayMetrics;
  /** The address, known once the listener is open (empty before: the local API reports none). */
  private address = "";
  private readonly guard: InboundGuard;
  private readonly logRepeat: RepeatLog;
  private readonly caps: Caps;
  /** The personal caps' totals by the replay rule, kept in the ledger's checkpoint (set once open's replay is done). */
  private capTally: CapTally | undefined;
  /** Request counts of the journal by the quota replay rule, in the ledger's time zone, kept in its checkpoint (once any quota applied). */
  private quotaTally: QuotaTally | undefined;
  /** Every caller's bucket and request counts: kept across settings changes, rebuilt from the journal on open. */
  private readonly rateLimiter = new RateLimiter();
  /** Shut while the journal is counted into a cap or quota that starts from zero (see AdmissionGate). */
  private readonly admissions = new AdmissionGate();
  /** The time zone the request counts were last replayed in (none yet): quotas count from the journal once they apply. */
  private quotasReplayedIn: string | undefined;
  private readonly ledgerDir: string;
  private ctx!: GatewayContext;
  private currentConfig: Config;
  private applying: Promise<void> = Promise.resolve();
  private blocked: string | undefined;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  /** One per Bedrock request in flight: what close() stops when the deadline passes. */
  private readonly scopes = new Set<CallScope>();
  private stopPriceWatch: () => void = () => undefined;
  /** Settled calls on their way to listeners (set once open). */
  private publisher: CallPublisher | undefined;
  private closing: Promise<void> | undefined;
  /** Moves the running shutdown's deadline earlier (never later). */
  private hurry: ((deadlineMs: number) => void) | undefined;

  /** Opens the ledger, team store and listener; whatever fails leaves nothing open. */
  static async start(given: GatewayOptions): Promise<Gateway> {
    const log = given.log ?? stderrLogger(given.config.logLevel);
    if (given.simulator && given.config.teamLedger) log.warn(`teamLedger is not used in simulate mode: simulated spend never reaches the team; the caps and prices of its team.json are not applied, and team caps in these settings count this simulated ledger alone`);
    const options = given.simulator ? { ...given, config: withoutTeamLedger(given.config) } : given;
    const now = options.now ?? (() => new Date());
    const ledgerDir = ledgerDirOf(options.config);
    const guard = inboundGuard(options.limits);
    let serve: Handler | undefined;
    // Until the gateway is ready every call is refused, never forwarded.
    const res = await lockAndBind(ledgerDir, (req, r) => (serve ?? starting)(req, r), options.port ?? options.config.port, guard.limits);
    try {
      const ledger = (res.ledger = await Ledger.open(ledgerDir, { now, timeZone: timeZoneOf(options.config), durability: options.config.durability }));
      /** The built-in table with the ledger's price file (bedrock-budget prices update) applied; an invalid file stops the start. */
      const prices = await loadPriceTable(ledgerDir);
      const alertJournal = await AlertJournal.open(ledgerDir, now());
      if (alertJournal.skipped > 0) log.warn(`alerts: skipped ${alertJournal.skipped} unreadable line(s) of ${alertJournal.journal.file}`);
      if (alertJournal.problem) log.warn(`alerts: ${alertJournal.problem}`);
      const gateway = new Gateway(options, log, now, ledgerDir, ledger, prices, res, alertJournal.journal, guard, res.listener);
      serve = await gateway.open();
      return gateway;
    } catch (err) {
      await res.listener.drain(STOP_GRACE_MS);
      await teardown(res);
      throw err;
    }
  }

  private constructor(
    private readonly options: GatewayOptions,
    private readonly log: Logger,
    private readonly now: () => Date,
    ledgerDir: string,
    private readonly ledger: Ledger,
    private prices: { table: PriceTable; info: PriceTableInfo },
    private readonly res: Resources,
    private readonly alertJournal: AlertJournal,
    guard: InboundGuard,
    private readonly listener: Listener,
  ) {
    this.ledgerDir = ledgerDir;
    this.currentConfig = options.config;
    this.blocked = options.blocked;
    this.guard = guard;
    this.caps = new Caps(new LocalCapStore(new BudgetEngine([], timeZoneOf(options.config)), () => this.ctx.timeZone, now));
    // A failed count outlasts any settings fix (only a restart clears it): it is the reason to show.
    const blocked = () => (this.admissions.failure === undefined ? this.blockedCause() : { reason: uncountedMessage(this.admissions.failure), by: "ledger" as const });
    this.api = new LocalApi(() => this.ctx, () => this.address, () => this.inFlight, blocked, () => this.prices);
    this.metrics = new GatewayMetrics(() => this.caps.status(this.now()), () => this.ledger.secret);
    this.logRepeat = repeatFilter(log, 60_000, () => now().getTime());
    // A call stops running for the quota recount in the turn its settle is journaled (and tallied).
    ledger.onSettled((record) => this.rateLimiter.finished(record.id));
  }

  get port(): number {
    return this.listener.port;
  }

  get url(): string {
    return this.address;
  }

  private history = (since: Date) => this.ledger.settledSince(since);

  /** Opens the rest; what it returns serves the listener's requests from then on. */
  private async open(): Promise<Handler> {
    const { options, log, now } = this;
    this.res.team = options.config.teamLedger ? await this.openTeam(options.config) : undefined;
    const { next, fresh } = await this.assemble(options.config);
    this.ctx = next;
    // Simulated: no control-plane look-ups (there are no credentials); profiles are priced at the dearest rate.
    if (!options.simulator) this.ctx.profiles = new ProfileLookup({ ledgerDir: this.ledgerDir, credentials: () => this.ctx.credentials(), log, now });
    await this.openTallies(fresh);
    const alerts = (this.res.alerts = new AlertDispatcher(
      this.alertJournal,
      () => this.caps.status(this.now()).map(capStatusDto),
      (name, target) => (name === "webhook" ? webhookChannel(target) : snsChannel(target, () => this.ctx.credentials())),
      log,
      now,
    ));
    this.ctx.alerts = alerts;
    // A warn cap that let a call through past its limit tells the channels (once per cap and window).
    this.api.events.on(CAP_ACTION_EVENT, (e: CapActionEvent) => {
      if (e.action === "warn") alerts.capWarned(e.capId);
    });
    // After the answer and once per turn: listeners are told, nothing the caller waits for.
    const publisher = (this.publisher = new CallPublisher(
      (records) => {
        for (const record of records) this.metrics.record(record);
        this.api.publishAll(records);
        alerts.scheduleCheck();
      },
      (err) => log.error(`telling listeners of settled calls failed: ${(err as Error).stack ?? err}`),
    ));
    this.ctx.publish = (record) => publisher.publish(record);
    alerts.configure(alertSettings(this.ctx.config, this.ctx.user, this.options.simulator !== undefined));
    await this.replayQuotas(this.ctx);
    const mount = options.mount ?? ((api, ctx) => [attachDashboard(api, ctx)]);
    const routes: Routes[] = [this.metrics, ...mount(this.api, () => this.ctx), this.api];
    this.address = `http://127.0.0.1:${this.listener.port}`;
    for (const r of routes) r.afterListening?.();
    /** A new price file applies live; an invalid one is logged and the table in force stays. */
    this.stopPriceWatch = watchPriceFile(this.ledgerDir, () => {
      void loadPriceTable(this.ledgerDir)
        .then(async (next) => {
          // The table is in force (status, later settings changes) only once a context priced by it is.
          await this.apply(this.currentConfig, next);
          log.info(`prices: ${next.info.source} ${next.info.date} in force (${priceFilePath(this.ledgerDir)})`);
        })
        .catch((err) => log.error(`prices: ${(err as Error).message}; the prices in force stay`));
    });
    await this.res.lock.advertise(this.url);
    log.info(`gateway on ${this.url}, ledger in ${this.ledgerDir}`);
    return (req, res) => this.handle(req, res, routes);
  }

  get inbound(): RunningGateway["inbound"] {
    const { guard, listener } = this;
    return {
      get bufferedBytes() {
        return guard.budget.bufferedBytes;
      },
      get peakBufferedBytes() {
        return guard.budget.peakBufferedBytes;
      },
      get connections() {
        return listener.connections;
      },
    };
  }

  reconfigure(config: Config): Promise<void> {
    return this.apply(this.options.simulator ? withoutTeamLedger(config) : config);
  }

  /** Why every Bedrock call is refused now: invalid settings, or team caps that cannot be known. */
  private refusingAll(): string | undefined {
    return this.blockedCause()?.reason;
  }

  /** refusingAll's reason and what it comes from (the status bar names it). */
  private blockedCause(): BlockedCause | undefined {
    if (this.blocked !== undefined) return { reason: this.blocked, by: "settings" };
    const team = this.res.team?.unusable();
    return team === undefined ? undefined : { reason: team, by: "team" };
  }

  block(reason: string): void {
    if (this.blocked !== reason) this.log.error(reason);
    this.blocked = reason;
  }

  unblock(): void {
    if (this.blocked !== undefined) this.log.info("the settings are valid again: Bedrock calls are admitted");
    this.blocked = undefined;
  }

  onCall(fn: (record: CallRecord) => void): () => void {
    this.api.events.on("call", fn);
    return () => this.api.events.off("call", fn);
  }

  onStatus(fn: (status: StatusResponse) => void): () => void {
    this.api.events.on("status", fn);
    return () => this.api.events.off("status", fn);
  }

  close(closeOptions: { deadlineMs?: number } = {}): Promise<void> {
    const deadlineMs = closeOptions.deadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
    if (this.closing) {
      this.hurry?.(deadlineMs);
      return this.closing;
    }
    this.closing = this.shutDown(deadlineMs);
    return this.closing;
  }

  /** The caps' totals and the quota tally at open (from the ledger's checkpoint where it holds them), kept in its next checkpoints. */
  private async openTallies(fresh: string[]): Promise<void> {
    const tallies = await openTallies(this.caps, fresh, this.ledger, { timeZone: this.ledger.timeZone, now: this.now(), quotaApplies: hasQuota(this.ctx.config) });
    this.capTally = tallies.caps;
    this.ledger.addCheckpointPart(CAPS_CHECKPOINT, tallies.caps);
    this.quotaTally = tallies.quotas;
    if (tallies.quotas) this.ledger.addCheckpointPart(QUOTAS_CHECKPOINT, tallies.quotas);
  }

  /**
   * Request quotas survive a restart: once any quota is configured, the journal's calls of this
   * month (each caller's, in the configured time zone) are counted by the replay rule (quotaReader).
   * Throttled and quota-refused calls did not count live, so they do not count here.
   */
  private async replayQuotas(ctx: GatewayContext): Promise<void> {
    const { config, timeZone } = ctx;
    this.rateLimiter.quotasInForce = hasQuota(config);
    if (!this.rateLimiter.quotasInForce) {
      this.quotasReplayedIn = undefined; // uncounted from now: a quota given later counts the journal again
      return;
    }
    if (this.quotasReplayedIn === timeZone) return;
    this.quotasReplayedIn = timeZone;
    const since = windowBounds("month", timeZone, this.now()).start;
    const count = (caller: string, at: Date) => this.rateLimiter.count(caller, at, timeZone);
    // Calls past the plan and not yet settled count once each, after the journal's: a recount
    // cannot see them, and they are not counted live again. The journal's reading leaves them out.
    const countRunning = (running: { caller: string; at: Date }[]) => {
      for (const c of running) if (c.at >= since) count(c.caller, c.at);
    };
    this.rateLimiter.resetCounts(); // calls counted live before a quota applied are in the journal too
    // The tally has counted every journaled call so far by this same rule: no need to read the journal again.
    if (this.quotaTally?.timeZone === timeZone) {
      this.rateLimiter.restoreCounts(this.quotaTally.counts());
      return countRunning(this.rateLimiter.runningCalls());
    }
    // Live, calls wait at the admission gate while the counts are partial.
    await this.admissions.shutWhile(async () => {
      const running = this.rateLimiter.runningCalls();
      try {
        await readOne(this.history, quotaReader(since, count, new Set(running.map((c) => c.id))));
      } catch (err) {
        throw new Error(`counting this month's journal into the request quotas failed: ${(err as Error).message}`);
      }
      countRunning(running);
    });
  }

  /** Team caps come from team.json and the settings; the local engine keeps the personal ones. */
  private async openTeam(config: Config): Promise<TeamRuntime> {
    const runtime = await TeamRuntime.open({ config, ledgerDir: this.ledgerDir, user: userOf(config), history: this.history, journal: this.ledger, log: this.log, now: this.now });
    runtime.onChange(() => {
      if (this.res.team !== runtime) return;
      void this.apply(this.currentConfig).catch((err) => this.log.error(`applying team.json: ${(err as Error).message}`));
    });
    return runtime;
  }

  /**
   * A context for `config` (team.json merged in), and the ids of caps that start from zero (replay
   * history into them). Live (`previous` given), their replay starts at once, behind the admission
   * gate: `counted` settles when it is done.
   */
  private async assemble(settings: Config, previous?: GatewayContext, table: PriceTable = this.prices.table): Promise<{ next: GatewayContext; fresh: string[]; counted?: Promise<void> }> {
    // The tiers' caps, one wall per caller, join the top-level caps: every store sees them alike.
    const config: Config = { ...settings, caps: capsInForce(settings) };
    const team = this.res.team;
    const timeZone = timeZoneOf(config);
    const eff = team?.effective(config, userOf(config));
    const effective: Config = eff ? { ...config, caps: [...eff.personal, ...eff.team], pricing: eff.pricing } : config;
    const engineCaps = eff ? eff.personal : config.caps;
    const next = buildContext(effective, this.ledger, this.options, { log: this.log, logRepeat: this.logRepeat }, this.now, this.caps, this.guard, table, this.rateLimiter, this.admissions);
    if (eff) next.prices = new PriceBook(eff.pricing, table, eff.teamPricing); // team.json's prices can only raise rates
    if (team && eff) await team.store.setCaps(eff.team, eff.teamTimeZone);
    this.caps.team = team?.store;
    // A new zone makes every personal cap fresh: its windows move, so this window's journal is counted again.
    const fresh = this.caps.local.engine.setCaps(engineCaps, timeZone);
    // The tally stays in the zone it opened in: its totals name that zone, so a start in another one replays whole.
    this.capTally?.setCaps(engineCaps);
    // Shut in the same turn as setCaps: no call is decided on a fresh cap before its history is in.
    const counted = previous && fresh.length > 0 ? this.countIntoFresh(fresh) : undefined;
    if (previous) {
      next.publish = previous.publish;
      next.alerts = previous.alerts;
      next.profiles = previous.profiles; // answers already learned stay
      // Keep resolved (memoized) credentials unless the profile changed: SSO look-ups are slow.
      if (previous.config.awsProfile === config.awsProfile) next.credentials = previous.credentials;
      if (previous.callerProfiles.sameNames(next.callerProfiles.names)) next.callerProfiles = previous.callerProfiles;
    }
    return { next, fresh, ...(counted ? { counted } : {}) };
  }

  /**
   * Counts this window's journal into caps that start from zero while the gateway runs, with calls
   * held at the admission gate meanwhile. The calls running now are left out: setCaps gave the
   * fresh caps their reservations, so they count when they settle.
   */
  private countIntoFresh(fresh: string[]): Promise<void> {
    const running = this.caps.local.engine.heldCallIds();
    return this.admissions.shutWhile(async () => {
      try {
        await this.caps.replay(this.history, new Set(fresh), running);
      } catch (err) {
        throw new Error(`counting this window's journal into cap(s) ${fresh.map((id) => `"${id}"`).join(", ")} failed: ${(err as Error).message}`);
      }
    });
  }

  /** Applies settings (or a team.json change) live; serialised, so overlapping changes apply in order. Swaps only the parts that changed. */
  private apply(config: Config, prices?: { table: PriceTable; info: PriceTableInfo }): Promise<void> {
    // After a change that failed (its caller heard why), the next one still applies.
    this.applying = this.applying.catch(() => undefined).then(async () => {
      this.currentConfig = config;
      const team = this.res.team;
      if (runtimeKey(config) !== (team?.key ?? runtimeKey({ ...config, teamLedger: undefined }))) {
        this.res.team = config.teamLedger ? await this.openTeam(config) : undefined;
        await team?.close();
      }
      const { next, counted } = await this.assemble(config, this.ctx, prices?.table ?? this.prices.table);
      this.log.setLevel(config.logLevel);
      this.ctx = next;
      if (prices) this.prices = prices; // a new price table is in force once a context priced by it is
      await counted;
      this.res.alerts?.configure(alertSettings(next.config, next.user, this.options.simulator !== undefined));
      await this.replayQuotas(next);
      this.moveToday(next.timeZone);
    });
    return this.applying;
  }

  /**
   * Today's totals follow the time zone once the ledger has re-read the journal into the new zone's
   * days. They decide nothing, so neither calls nor later settings changes wait for that read.
   */
  private moveToday(timeZone: string): void {
    void this.ledger.setTimeZone(timeZone).then(
      (moved) => {
        if (moved) this.api.publishStatus();
      },
      (err: unknown) => this.log.error(`moving today's totals to the time zone ${timeZone} failed; they stay in ${this.ledger.timeZone} until a restart: ${(err as Error).message}`),
    );
  }

  private handle(req: AnyRequest, res: AnyResponse, routes: readonly Routes[]): void {
    const log = this.log;
    if (!isLoopbackHost(req)) {
      return answer(res, accessDenied("Bedrock Budget answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1])."));
    }
    if (this.options.simulator) res.setHeader(SIMULATED_HEADER, "true");
    const rawPath = req.url ?? "/";
    const mounted = routes.find((r) => r.handles(rawPath));
    if (mounted) {
      return void mounted.handle(req, res).catch((err) => {
        log.error(`${mounted.name}: ${(err as Error).message}`);
        // The page or script that asked hears of it rather than wait: an error answer, or a cut one once it has begun.
        if (!res.headersSent) json(res, 500, { message: `Bedrock Budget failed to answer this ${mounted.name} request: ${(err as Error).message}` });
        else req.destroy();
      });
    }
    this.inFlight++;
    const scope = new CallScope((seconds) => this.metrics.admitted(seconds));
    this.scopes.add(scope);
    // Catch-all: whatever escapes a call is logged and answered; the gateway serves on.
    // While refusingAll() says why, no call is forwarded; a verified caller's is journaled and told why (handleRead).
    handleBedrock(this.ctx, req, res, scope, () => this.refusingAll())
      .catch((err) => {
        const unrecorded = err instanceof JournalWriteError; // a full or read-only disk: expected, named, retryable
        if (unrecorded) this.logRepeat("warn", `journal:${err.code ?? err.message}`, `refused a call: ${err.message}`);
        else log.error(`unexpected failure: ${(err as Error).stack ?? err}`);
        try {
          answer(res, unrecorded ? cannotRecord(err.message) : upstreamUnreachable(`Bedrock Budget failed on this call: ${(err as Error).message}`));
        } catch (answerErr) {
          log.error(`could not answer after the failure: ${(answerErr as Error).message}`);
        }
      })
      .finally(() => {
        this.scopes.delete(scope);
        if (--this.inFlight === 0) this.idle?.();
      });
  }

  private async shutDown(deadlineMs: number): Promise<void> {
    const started = Date.now();
    const drained = this.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.idle = resolve));
    // New connections are answered 503 at once; the port stays bound until the ledger is released (teardown).
    const closingListener = this.listener.drain(deadlineMs + STOP_GRACE_MS);
    this.api.endStreams();
    this.stopPriceWatch();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      let due = started + deadlineMs;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(resolve, Math.max(0, due - Date.now()));
      };
      this.hurry = (ms) => {
        due = Math.min(due, Date.now() + ms);
        arm();
      };
      arm();
    });
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
    if (this.inFlight > 0) {
      const message = "the gateway shut down with this call in flight; charged its worst case";
      this.log.warn(`stopping ${this.inFlight} call(s) still in flight after the shutdown deadline; each is charged its worst case`);
      // Settled (journaled) before anything closes: the ledger must hold them when the process exits.
      await Promise.all([...this.scopes].map((scope) => scope.stop(message)));
      await withinGrace(drained);
    }
    await withinGrace(closingListener);
    await this.applying.catch(() => undefined);
    this.publisher?.flush(); // listeners hear every settled call before the ledger closes
    await teardown(this.res);
  }
}

/**
 * Closes what a gateway opened, last opened first: the alert channels, the team store, the ledger,
 * then the lock, then the port. A step that fails does not skip the next ones, and the lock is released whatever
 * failed (the ledger's handles are closed, or abandoned by a close that failed half-way): a lock
 * kept by this live process would refuse Restart Gateway and every other window until it exits.
 * The first failure is thrown once the lock is released.
 */
async function teardown(res: Resources): Promise<void> {
  let failure: { err: unknown } | undefined;
  try {
    for (const close of [() => res.alerts?.close(), () => res.team?.close(), () => res.ledger?.close()]) {
      try {
        await close();
      } catch (err) {
        failure ??= { err };
      }
    }
  } finally {
    try {
      await res.lock.release();
    } finally {
      // Only now: the gateway taking over (waiting for the lock) binds the port next. Freed before
      // the lock, it stayed free while this one closed its ledger and that one opened it.
      res.listener.unbind();
    }
  }
  if (failure) throw failure.err;
}

/**
 * Binds the port and locks the ledger, at once, not once the ledger is open: free meanwhile (a
 * take-over, the ledger's recovery), another local process could bind it and receive the signed
 * calls of terminals routed to it. The port is bound before the lock is taken, so it is bound
 * whenever this gateway holds the lock. Taken while a live gateway holds the lock: that one is
 * followed (LedgerLocked, as the lock decides). Taken while the lock is free: the gateway before is
 * freeing it just after releasing the lock (teardown), so it is tried again for up to `handoverMs`
 * (tests lengthen it), unless its holder answers as another program (see listenAgain).
 */
export async function lockAndBind(dir: string, handler: Handler, port: number, limits: Partial<ListenOptions>, handoverMs = PORT_HANDOVER_MS): Promise<Resources> {
  let listener: Listener;
  try {
    listener = await listen(handler, port, "127.0.0.1", limits);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || port === 0) throw err;
    const again = (await isLockHeld(dir)) ? undefined : await listenAgain(handler, port, limits, handoverMs).catch(() => undefined);
    if (!again) {
      // A gateway that took the lock meanwhile (one starting holds the port first) is followed too.
      if (await isLockHeld(dir)) await (await lockLedger(dir)).release(); // throws LedgerLocked (released just now: the port is still someone's)
      // The ledger's secret, as the ledger's open made it before the port was bound first: with it
      // the caller tells this user's gateway on another ledger (it cannot prove this secret) from another program.
      await GatewaySecret.load(dir).catch(() => undefined);
      throw err;
    }
    listener = again;
  }
  try {
    return { lock: await lockLedger(dir), listener };
  } catch (err) {
    // Connections accepted meanwhile were only ever answered 503 "starting" (nothing forwarded or
    // journaled), and would stay so: closed before the caller goes on to follow the ledger's holder,
    // so a client's open h2 session or keep-alive connection retries against whoever serves next.
    await listener.drain(STOP_GRACE_MS);
    listener.unbind();
    throw err;
  }
}

/**
 * Binds `port`, taken now but about to be freed by the gateway that released the ledger. Meanwhile
 * the holder is asked what it is: one that answers as anything but a gateway of ours starting or
 * stopping will not free it, and is reported at once instead of after `handoverMs`.
 */
async function listenAgain(handler: Handler, port: number, limits: Partial<ListenOptions>, handoverMs: number): Promise<Listener> {
  const started = Date.now();
  let foreign = false;
  // Asked alongside the binds, not before them: a gateway handing the port over is not waited for.
  const stopAsking = askHolder(port, () => (foreign = true));
  try {
    for (;;) {
      const waited = Date.now() - started;
      // Once free the port goes to whoever binds first, and another local process may be trying too.
      await new Promise((resolve) => (waited < PORT_SPIN_MS ? setImmediate(resolve) : setTimeout(resolve, PORT_RETRY_MS)));
      if (foreign) throw Object.assign(new Error(`port ${port} is held by a program that is not a gateway handing it over`), { code: "EADDRINUSE" });
      try {
        return await listen(handler, port, "127.0.0.1", limits);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || Date.now() - started >= handoverMs) throw err;
      }
    }
  } finally {
    stopAsking();
  }
}

/**
 * Asks what holds `port` by a request on the health path; `foreign` runs if it answers anything but
 * a 503 (a gateway of ours starting or stopping, marked with PHASE_HEADER, or an older one, not
 * marked) or the marker, or does not answer in HTTP. A holder that does
 * not answer, or closes the connection unanswered (as a gateway freeing the port may), is not
 * judged: it is waited for as before. Returns what stops asking.
 */
function askHolder(port: number, foreign: () => void): () => void {
  const req = http.get({ host: "127.0.0.1", port, path: API_PATHS.health, agent: false }, (res) => {
    // A 503 without the marker may be an older gateway of ours handing the port over: waited for, as before the marker.
    if (res.statusCode !== 503 && res.headers[PHASE_HEADER] === undefined) foreign();
    req.destroy();
  });
  req.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code?.startsWith("HPE_")) foreign(); // it answered, but not as an HTTP server
  });
  return () => req.destroy();
}

/** Every request while the gateway opens: refused (503, which the SDKs retry), nothing forwarded or journaled. */
function starting(req: AnyRequest, res: AnyResponse): void {
  if (!isLoopbackHost(req)) {
    return answer(res, accessDenied("Bedrock Budget answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1])."));
  }
  if (req.httpVersionMajor === 1) res.setHeader("connection", "close"); // the body is left unread
  answer(res, bedrockError(503, "ServiceUnavailableException", "Bedrock Budget's gateway on this port is starting; retry in a moment.", { "retry-after": "1", [PHASE_HEADER]: "starting" }));
}

/** Waits for `p`, but no longer than the stop grace (what is left is destroyed by its owner). */
async function withinGrace(p: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)))]);
  clearTimeout(timer);
}

function buildContext(config: Config, ledger: Ledger, options: GatewayOptions, { log, logRepeat }: Pick<GatewayContext, "log" | "logRepeat">, now: () => Date, caps: Caps, inbound: InboundGuard, table: PriceTable, rateLimiter: RateLimiter, admissions: AdmissionGate): GatewayContext {
  const timeZone = timeZoneOf(config);
  const simulator = options.simulator;
  return {
    // Simulated: the simulator is the only upstream, whatever a reloaded config says.
    config: simulator ? { ...config, upstreamEndpoint: simulator.url } : config,
    ...(simulator ? { simulated: true } : {}),
    prices: new PriceBook(config.pricing, table),
    caps,
    ledger,
    credentials: simulator ? async () => SIMULATED_CREDENTIALS : (options.credentials ?? credentialSource(config.awsProfile)),
    callerProfiles: new ProfileCredentials(ProfileCredentials.namesIn(config)),
    rateLimiter,
    admissions,
    inbound,
    log,
    logRepeat,
    user: userOf(config),
    timeZone,
    now,
    publish: () => undefined,
    alerts: { capWarned: () => undefined },
  };
}

/**
 * The alert channels' settings: where alerts go (user settings only) and at which thresholds.
 * Simulated spend tells no channel: a team's webhook would read it as real.
 */
/**
 * Simulated: no team ledger, whatever the settings say (a reload included). Simulated spend in the
 * team's spend files or Redis would count against teammates' real team caps. As without a team
 * ledger, team.json's caps and prices are not applied, and team caps in the settings count the
 * simulated ledger alone.
 */
function withoutTeamLedger(config: Config): Config {
  const { teamLedger: _unused, ...rest } = config;
  return rest;
}

function alertSettings(config: Config, user: string, simulated: boolean): AlertSettings {
  return {
    targets: simulated ? {} : { ...(config.alertWebhook ? { webhook: config.alertWebhook } : {}), ...(config.alertSnsTopicArn ? { sns: config.alertSnsTopicArn } : {}) },
    thresholds: config.alertThresholds,
    user,
  };
}
