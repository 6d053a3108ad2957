/**
 * Runs the gateway inside the language server process, or follows another window's: the first
 * process to take the ledger (and port) serves it; others find it through the ledger's lock file
 * or the port's health route, relay its live events, and take over when it goes away. A gateway
 * is followed only when it proves it holds this user's secret (a challenge on its health route):
 * another local user's process on the port never receives this user's calls.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ledgerDirOf } from "../config/load";
import type { Config } from "../config/schema";
import { startGateway, type RunningGateway } from "../gateway/gateway";
import { LedgerLocked, ledgerOwner, lockFileOf } from "../ledger/lock";
import { GatewaySecret, newChallenge } from "../ledger/secret";
import type { CallRecord } from "../ledger/types";
import type { Logger } from "../log";
import { API_PATHS, TOKEN_HEADER, type GatewayStateNotification, type HealthResponse, type StatusResponse } from "../protocol";
import { parseSse } from "../shared/sse";
import { describeListener, gatewayOnAnotherLedger, isOwnUid, listenerUid, OWN_GATEWAY_ON_ANOTHER_LEDGER } from "./portHolder";

export interface HostEvents {
  state(params: GatewayStateNotification.Params): void;
  status(status: StatusResponse): void;
  call(record: CallRecord): void;
}

/** Watches a folder (fs.watch's shape; tests give their own). `file` is null where the platform does not tell. */
export type WatchDir = (dir: string, options: { persistent: boolean }, listener: (event: string, file: string | Buffer | null) => void) => FSWatcher;

type Role = { kind: "leader"; gateway: RunningGateway; stopEvents: () => void } | { kind: "follower"; url: string; stop: () => void } | { kind: "none" };

/** What answers at a candidate URL: this user's gateway (proved), a process claiming to be one, or something else. */
type Probe = { kind: "verified" } | { kind: "impostor"; pid?: number } | { kind: "other" };

const RETRY_MS = [200, 500, 1_000, 2_000, 5_000];
/**
 * While a live process of this machine holds the ledger and does not answer (a gateway starting,
 * or one stopping: its calls in flight may take its shutdown deadline, 10 s for `serve`, and the
 * grace after it), look again this often, for this long, before calling it an error.
 */
const HOLDER_POLL_MS = 200;
const HOLDER_WAIT_MS = 15_000;

export class GatewayHost {
  private role: Role = { kind: "none" };
  private config: Config | undefined;
  private stopped = false;
  private retry = 0;
  /** Since when a live local process has held the ledger without answering (unset once anything else happened). */
  private holderSince: number | undefined;
  private latest: StatusResponse | undefined;
  /** Why Bedrock calls are refused (settings that decide money are invalid); a leader's gateway starts and stays blocked while set. */
  private blocked: string | undefined;

  /** The one pending retry: a restart or stop cancels it, so retries never run in several chains at once. */
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly events: HostEvents,
    /** Waits between attempts, the last repeated (tests shorten them). */
    private readonly retryMs: readonly number[] = RETRY_MS,
    /** How long a live local holder of the ledger that does not answer is waited for, still starting. */
    private readonly holderWaitMs = HOLDER_WAIT_MS,
    /** How often that holder is looked at again, besides when its lock file changes (tests lengthen it). */
    private readonly holderPollMs = HOLDER_POLL_MS,
    /** How the ledger folder is watched while the host waits for the lock (tests give names or none). */
    private readonly watchDir: WatchDir = (dir, options, listener) => watch(dir, options, listener),
  ) {}

  /** Watches the held ledger's lock file while this host waits for it (see pollHolder). */
  private holderWatch: FSWatcher | undefined;

  get url(): string | undefined {
    return this.role.kind === "leader" ? this.role.gateway.url : this.role.kind === "follower" ? this.role.url : undefined;
  }

  /** True while this process relays another process's gateway (whose settings decide its calls). */
  get follows(): boolean {
    return this.role.kind === "follower";
  }

  get lastStatus(): StatusResponse | undefined {
    return this.latest;
  }

  /** Operations run one at a time: a settings change arriving while the gateway starts waits for it. */
  private queue: Promise<unknown> = Promise.resolve();
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  start(config: Config, blocked?: string): Promise<void> {
    return this.serial(() => {
      this.blocked = blocked;
      return this.doStart(config);
    });
  }

  /** `blocked`: refuse Bedrock calls with this reason until a later call passes none. */
  reconfigure(config: Config, blocked?: string): Promise<void> {
    return this.serial(() => this.doReconfigure(config, blocked));
  }

  restart(): Promise<void> {
    return this.serial(() => this.doRestart());
  }

  /**
   * Stops for good. `deadlineMs`: how long a serving gateway lets calls in flight finish before it
   * stops them, charges them their worst case and journals them (the gateway's default if absent).
   */
  stop(options: { deadlineMs?: number } = {}): Promise<void> {
    return this.serial(async () => {
      this.stopped = true;
      await this.release(options.deadlineMs);
    });
  }

  private async doStart(config: Config): Promise<void> {
    this.clearRetry(); // this attempt replaces a pending one
    this.config = config;
    this.stopped = false;
    this.holderSince = undefined;
    this.events.state({ state: "starting" });
    await this.takeRole();
  }

  /** New settings: applied live by a leader; a port or ledger change means serving anew. */
  private async doReconfigure(config: Config, blocked: string | undefined): Promise<void> {
    const blockChanged = this.blocked !== blocked;
    this.blocked = blocked;
    // Block before applying anything, unblock only once the valid settings are in force.
    if (blocked !== undefined && this.role.kind === "leader") this.role.gateway.block(blocked);
    if (blocked !== undefined && this.role.kind === "follower" && blockChanged) this.log.error(`${blocked} (the gateway of another window serves this machine with its own settings)`);
    if (this.config && JSON.stringify(this.config) === JSON.stringify(config)) {
      // editors repeat themselves; only the blocked state may have changed
      if (this.role.kind === "leader" && blockChanged) {
        if (blocked === undefined) this.role.gateway.unblock();
        this.publishStatus(this.role.gateway.api.status());
      }
      return;
    }
    const previous = this.config;
    this.config = config;
    if (this.role.kind === "leader" && previous && previous.port === config.port && ledgerDirOf(previous) === ledgerDirOf(config)) {
      const gateway = this.role.gateway;
      try {
        await gateway.reconfigure(config);
        if (blocked === undefined) gateway.unblock();
      } finally {
        this.publishStatus(gateway.api.status()); // after a change that failed too: the status says why calls are refused
      }
      return;
    }
    if (this.role.kind === "follower" && previous && previous.port === config.port && ledgerDirOf(previous) === ledgerDirOf(config)) {
      this.log.info("settings changed; the gateway of another window serves this machine and keeps its own caps until it stops");
      return;
    }
    await this.doRestart();
  }

  private async doRestart(): Promise<void> {
    await this.release();
    if (this.config) await this.doStart(this.config);
  }

  private async release(deadlineMs?: number): Promise<void> {
    this.clearRetry();
    const role = this.role;
    this.role = { kind: "none" };
    if (role.kind === "leader") {
      role.stopEvents();
      // A close that fails has still released the ledger: a restart goes on to serve it again.
      await role.gateway.close(deadlineMs !== undefined ? { deadlineMs } : {}).catch((err: unknown) => this.log.error(`closing the gateway: ${(err as Error).message}`));
    } else if (role.kind === "follower") {
      role.stop();
    }
  }

  private async takeRole(): Promise<void> {
    const config = this.config;
    if (!config || this.stopped) return;
    try {
      const gateway = await startGateway({ config, log: this.log, ...(this.blocked !== undefined ? { blocked: this.blocked } : {}) });
      // The gateway tells of a turn's settled calls together: the editor gets each call, then one
      // status after them; and a status when what it shows moved without a call (a new time zone's today).
      const stopCalls = gateway.onCall((record) => this.events.call(record));
      const stopStatus = gateway.onStatus((status) => this.publishStatus(status));
      const stopEvents = () => {
        stopCalls();
        stopStatus();
      };
      this.role = { kind: "leader", gateway, stopEvents };
      this.retry = 0;
      this.holderSince = undefined;
      this.events.state({ state: "ready", url: gateway.url, role: "leader", token: gateway.api.token() });
      this.publishStatus(gateway.api.status());
      return;
    } catch (err) {
      const taken = err instanceof LedgerLocked || (err as NodeJS.ErrnoException).code === "EADDRINUSE";
      if (!taken) {
        this.fail(`the gateway could not start: ${(err as Error).message}`);
        return;
      }
      let found: Awaited<ReturnType<GatewayHost["findCompatibleGateway"]>>;
      try {
        found = await this.findCompatibleGateway(config);
      } catch (e) {
        this.fail(`the gateway could not start: ${(e as Error).message}`);
        return;
      }
      if (found.url) {
        this.follow(found.url, found.secret);
        return;
      }
      if (err instanceof LedgerLocked) {
        // A live process of this machine holds the ledger without answering: usually another
        // window's gateway starting, or stopping (both hold the port and answer 503 meanwhile; a
        // stopping one frees it just after releasing the lock, once its calls in flight are
        // settled). Look again soon and when the lock file changes, for a while.
        // Not a gateway on another machine: nothing here will answer for it.
        const firstLook = this.holderSince === undefined;
        this.holderSince ??= Date.now();
        if (err.host === undefined && Date.now() - this.holderSince < this.holderWaitMs) {
          if (firstLook) this.log.info(`the ledger is held by pid ${err.pid}, which does not answer yet (a gateway starting or stopping); looking again shortly`);
          this.pollHolder(err.dir);
          return;
        }
        this.fail(err.host !== undefined ? `the gateway could not start: ${err.message}` : silentHolder(err));
      } else {
        const uid = await listenerUid(config.port);
        if (found.impostor && uid !== undefined && isOwnUid(uid)) {
          // Your own gateway on another ledger: it holds that ledger's secret, not this one's.
          const what = gatewayOnAnotherLedger(config.port, found.impostor.pid, await describeListener(config.port));
          this.fail(`${what}: ${OWN_GATEWAY_ON_ANOTHER_LEDGER}. Nothing is sent to it. Stop it, or set bedrockBudget.port to a free port`, true);
        } else {
          const holder = (await describeListener(config.port)) ?? "another program";
          const unknownUser = uid === undefined ? "your own gateway on another ledger, " : "";
          const what = found.impostor
            ? `${holder}${found.impostor.pid ? ` (it claims pid ${found.impostor.pid})` : ""} that answers as a Bedrock Budget gateway but cannot prove it holds your secret (${unknownUser}another user's gateway, or one impersonating it)`
            : holder;
          this.fail(`port ${config.port} is used by ${what}; nothing is sent to it. Set bedrockBudget.port to a free port`, true);
        }
      }
      this.scheduleRetry();
    }
  }

  /**
   * This user's gateway already serving this ledger (from its lock file) or this port (by its
   * health route), proved by the challenge; else whether a process claiming to be one is there.
   */
  private async findCompatibleGateway(config: Config): Promise<{ url?: string; secret: GatewaySecret; impostor?: { pid?: number } }> {
    const dir = ledgerDirOf(config);
    const secret = await GatewaySecret.load(dir);
    const owner = await ledgerOwner(dir);
    const candidates = [owner?.url, config.port ? `http://127.0.0.1:${config.port}` : undefined].filter((u): u is string => !!u);
    let impostor: { pid?: number } | undefined;
    for (const url of candidates) {
      const probe = await probeGateway(url, secret);
      if (probe.kind === "verified") return { url, secret };
      if (probe.kind === "impostor") {
        this.log.warn(`${url} answers as a Bedrock Budget gateway but failed the secret challenge; not following it`);
        impostor ??= probe.pid ? { pid: probe.pid } : {};
      }
    }
    return { secret, ...(impostor ? { impostor } : {}) };
  }

  private follow(url: string, secret: GatewaySecret): void {
    const controller = new AbortController();
    this.role = { kind: "follower", url, stop: () => controller.abort() };
    this.retry = 0; // a take-over later starts its retries afresh
    this.holderSince = undefined;
    this.events.state({ state: "ready", url, role: "follower", token: secret.token() });
    this.log.info(`another window's gateway serves ${url}; following it`);
    void this.readEvents(url, secret.token(), controller.signal).then(() => {
      if (controller.signal.aborted || this.stopped) return;
      // The leader went away (its window closed): take over, or follow whoever did.
      this.log.info(`the gateway at ${url} stopped; taking over`);
      this.role = { kind: "none" };
      this.events.state({ state: "starting" });
      this.scheduleRetry(true);
    });
  }

  /** Reads the leader's server-sent events until the stream ends or fails. */
  private async readEvents(url: string, token: string, signal: AbortSignal): Promise<void> {
    try {
      const res = await fetch(`${url}${API_PATHS.events}`, { signal, headers: { [TOKEN_HEADER]: token } });
      if (!res.ok || !res.body) return;
      const bad = (err: Error) => this.log.warn(`unreadable event from the gateway: ${err.message}`);
      for await (const e of parseSse(res.body, signal, bad)) {
        if (e.event === "status") this.publishStatus(e.data);
        else this.events.call(e.data);
      }
    } catch {
      // aborted, or the leader went away
    }
  }

  private publishStatus(status: StatusResponse): void {
    this.latest = status;
    this.events.status(status);
  }

  private fail(message: string, strangerOnPort = false): void {
    this.log.error(message);
    this.events.state({ state: "error", message, ...(strangerOnPort ? { strangerOnPort: true as const } : {}) });
  }

  /** The next look while the ledger's holder does not answer yet: soon, and without moving the retries' back-off. */
  private pollHolder(dir: string): void {
    if (this.stopped) return;
    this.clearRetry();
    const look = () => {
      this.clearRetry();
      void this.serial(() => (this.role.kind === "none" ? this.takeRole() : Promise.resolve()));
    };
    this.retryTimer = setTimeout(look, this.holderPollMs);
    this.retryTimer.unref();
    // Also the moment the lock file changes: a stopping gateway frees its port right after releasing
    // the lock, and until this one locks and binds it another local process could take it.
    this.watchLock(dir, look);
  }

  /**
   * Calls `look` when the ledger's lock file in `dir` changes (a release removes it; a new owner or
   * an advertised URL rewrites it). A watch that names no file (some platforms) fires for every
   * write in the folder, the journal's too (many a second): then the lock file is read, one read at
   * a time, and compared with the one this wait began with.
   */
  private watchLock(dir: string, look: () => void): void {
    try {
      const lockFile = lockFileOf(dir);
      const name = path.basename(lockFile);
      const lockText = () => readFile(lockFile, "utf8").catch(() => undefined);
      let reading = false;
      let again = false;
      const lockChanged = async (): Promise<void> => {
        if (reading) {
          again = true;
          return;
        }
        reading = true;
        try {
          do {
            again = false;
            const [before, now] = await Promise.all([seen, lockText()]);
            if (this.holderWatch !== watcher) return; // this wait ended meanwhile
            if (now !== before) return look();
          } while (again);
        } finally {
          reading = false;
        }
      };
      const watcher = (this.holderWatch = this.watchDir(dir, { persistent: false }, (_event, file) => {
        if (this.holderWatch !== watcher) return; // a look ended this wait already
        if (file === null) void lockChanged();
        else if (String(file) === name) look();
      }));
      watcher.on("error", () => watcher.close()); // the timer still looks
      // The lock as this wait began; released already (since it was found held): look now.
      const seen = lockText();
      void seen.then((text) => text === undefined && this.holderWatch === watcher && look());
    } catch {
      // no watching here (a network share, the watch limit): the timer alone looks
    }
  }

  /** Cancels the pending attempt, timed or on the lock's change. */
  private clearRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.holderWatch?.close();
    this.holderWatch = undefined;
  }

  private scheduleRetry(immediate = false): void {
    if (this.stopped) return;
    const delay = immediate ? 0 : this.retryMs[Math.min(this.retry++, this.retryMs.length - 1)]!;
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.serial(() => (this.role.kind === "none" ? this.takeRole() : Promise.resolve()));
    }, delay);
    this.retryTimer.unref();
  }
}

/** The ledger is held by a live process of this machine that has not answered as a gateway for a while. */
function silentHolder(err: LedgerLocked): string {
  const file = lockFileOf(err.dir);
  return (
    `the ledger in ${err.dir} is held by pid ${err.pid} on this machine (${file}), which does not answer as a Bedrock Budget gateway. ` +
    `If it is a gateway that is stuck, end it; if pid ${err.pid} is not a Bedrock Budget gateway, remove ${file}; or set bedrockBudget.ledgerDir to another folder`
  );
}

/** Asks `url` to prove it holds `secret` (a fresh challenge; the answer is bound to its port). */
export async function probeGateway(url: string, secret: GatewaySecret): Promise<Probe> {
  const challenge = newChallenge();
  try {
    const res = await fetch(`${url}${API_PATHS.health}?challenge=${challenge}`, { signal: AbortSignal.timeout(1_500) });
    const health = (await res.json()) as Partial<HealthResponse>;
    if (health.product !== "bedrock-budget") return { kind: "other" };
    if (health.apiVersion === 1 && secret.verify(challenge, Number(new URL(url).port || 80), health.proof)) return { kind: "verified" };
    return typeof health.pid === "number" ? { kind: "impostor", pid: health.pid } : { kind: "impostor" };
  } catch {
    return { kind: "other" };
  }
}
