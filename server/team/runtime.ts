/**
 * The team ledger as the gateway uses it: opens the store the `teamLedger` setting names, follows
 * team.json (the last valid version stays in force), and merges it with this member's settings.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Config } from "../config/schema";
import { teamFolderOf } from "../config/load";
import type { Logger } from "../log";
import { FolderTeamEngine } from "./folderStore";
import { RedisTeamEngine, type ReplayJournal } from "./redisStore";
import { isRedisUrl } from "./redisUrl";
import { mergeTeamCaps, parseTeamFileText, type EffectiveCaps, type TeamFile } from "./teamConfig";
import { redactUrl, type History, type TeamEngine } from "./teamEngine";

export interface TeamRuntimeOptions {
  config: Config;
  ledgerDir: string;
  user: string;
  history: History;
  /** The journal's positions, so the Redis store's replays resume where the last one ended. */
  journal?: ReplayJournal;
  log: Logger;
  now: () => Date;
}

export class TeamRuntime {
  private team: TeamFile | undefined;
  private readonly listeners: (() => void)[] = [];
  /** Errors of the current team.json when it is invalid (the last valid one stays in force). */
  teamFileErrors: string[] = [];

  private constructor(
    readonly store: TeamEngine,
    readonly key: string,
    private readonly log: Logger,
    /** The team ledger as messages name it (a redis password hidden). */
    private readonly where: string,
    private readonly unavailable: "block" | "personalOnly",
  ) {}

  static async open(o: TeamRuntimeOptions): Promise<TeamRuntime> {
    const ledger = o.config.teamLedger!;
    const writer = await writerId(o.ledgerDir);
    const unavailable = o.config.teamUnavailable ?? "block";
    const common = { team: teamNameOf(o.config), writer, history: o.history, log: o.log, now: o.now, unavailable };
    const store: TeamEngine = isRedisUrl(ledger)
      ? await RedisTeamEngine.open({ ...common, url: ledger, ...(o.journal ? { journal: o.journal } : {}) })
      : await FolderTeamEngine.open({ ...common, dir: teamFolderOf(ledger), member: o.user, machine: os.hostname() });
    const runtime = new TeamRuntime(store, runtimeKey(o.config), o.log, isRedisUrl(ledger) ? redactUrl(ledger) : teamFolderOf(ledger), unavailable);
    runtime.load(store.teamFileText());
    store.onTeamFile((text) => {
      if (runtime.load(text)) for (const l of runtime.listeners) l();
    });
    return runtime;
  }

  /** This member's caps and prices with team.json applied. */
  effective(config: Config, user: string): EffectiveCaps {
    const eff = mergeTeamCaps(config, this.team, user);
    for (const w of eff.warnings) this.log.debug(w);
    return eff;
  }

  /**
   * Why Bedrock calls must be refused because the team's caps are unknown: team.json is there but
   * invalid or unreadable with no earlier valid version in force (a start, or one removed since),
   * or it was never read (the store unreachable since the start) and teamUnavailable is "block".
   * Undefined when team.json is in force or absent. Read per call: a few fields.
   */
  unusable(): string | undefined {
    if (this.team !== undefined) return undefined;
    if (!this.store.teamFileRead()) {
      if (this.unavailable === "personalOnly") return undefined; // team caps unchecked, as documented
      const why = this.store.unreachableReason?.();
      return `Bedrock Budget refused this call: the team ledger (${this.where}) has not been readable since the gateway started${why ? ` (${why})` : ""}, so team.json's caps are unknown (teamUnavailable: "block"). Calls are admitted once it answers; check that it is reachable.`;
    }
    const refusal = this.store.teamFileRefusal();
    const why = refusal ?? (this.teamFileErrors.length > 0 ? `it is invalid: ${this.teamFileErrors.join("; ")}` : undefined);
    if (why === undefined) return undefined;
    return `Bedrock Budget refused this call: team.json in the team ledger (${this.where}) cannot be used (${why}), and no earlier valid version is in force, so the team's caps are unknown. Fix or remove team.json; calls are admitted again within seconds of a valid one.`;
  }

  /** Called after a valid change of team.json (or its removal). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /** Returns true when the team caps may have changed. */
  private load(text: string | undefined): boolean {
    if (text === undefined) {
      const had = this.team !== undefined;
      this.team = undefined;
      this.teamFileErrors = [];
      return had;
    }
    const parsed = parseTeamFileText(text);
    if (!parsed.ok) {
      this.teamFileErrors = parsed.errors;
      this.log.error(`invalid team.json in the team ledger:\n${parsed.errors.map((e) => `  - ${e}`).join("\n")}\nthe previous team configuration stays in force`);
      return false;
    }
    this.teamFileErrors = [];
    this.team = parsed.team;
    this.log.info("team.json loaded");
    return true;
  }
}

/** What identifies a team connection: changing any of these reopens the store. */
export function runtimeKey(config: Config): string {
  return JSON.stringify([config.teamLedger, teamNameOf(config), config.teamUnavailable ?? "block"]);
}

export function teamNameOf(config: Config): string {
  return config.team ?? "default";
}

/** A random id kept in the ledger folder: names this gateway's spend file and its replay marker. */
async function writerId(ledgerDir: string): Promise<string> {
  const file = path.join(ledgerDir, "team-writer-id");
  const existing = (await readFile(file, "utf8").catch(() => "")).trim();
  if (/^[a-f0-9]{16}$/.test(existing)) return existing;
  const id = randomBytes(8).toString("hex");
  await writeFile(file, `${id}\n`, { mode: 0o600 }); // as the ledger's other files: private to the user
  return id;
}
