/**
 * The team side of admission: a store that several gateways share (a folder, or Redis), one of the
 * CapStores that server/budget/caps.ts reserves on (the local engine keeps the personal caps).
 * Window arithmetic and messages both team stores share.
 */
import type { CapFigure, CapSource, CapStore, Freshness, StoreReserveRequest, StoreReserveResult } from "../budget/caps";
import { capsFor, capMatcher, type CallSubject, type CapMatcher } from "../budget/capMatch";
import { windowBounds, type WindowBounds } from "../budget/windows";
import { scopeKey } from "../budget/engine";
import { capId, type CapConfig } from "../config/schema";
import type { CallRecord } from "../ledger/types";
import { formatUsd, usdToPicos, type Picos } from "../metering/money";

export type TeamSource = Exclude<CapSource, "local">;
export type TeamFreshness = Freshness;
export type TeamCapStatus = CapFigure & { team: Freshness };
export type TeamReserveRequest = StoreReserveRequest;
export type TeamReserveResult = StoreReserveResult;

/** A team store: one CapStore over caps several gateways share, which also carries team.json. */
export interface TeamEngine extends CapStore {
  readonly source: TeamSource;
  /** Team caps (and the zone of their windows). Caps new or changed start from the store's figures / the journal. */
  setCaps(caps: CapConfig[], timeZone: string): Promise<void>;
  status(now: Date): TeamCapStatus[];
  /** team.json's text as the store holds it (undefined: none), and changes to it. */
  teamFileText(): string | undefined;
  /** Why the team.json there is could not be read (not a regular file, too large); undefined once one is read, or when there is none. */
  teamFileRefusal(): string | undefined;
  /** Whether team.json has been looked for at least once (found, absent or refused): until then its caps are unknown. */
  teamFileRead(): boolean;
  /** Why the store cannot be reached now, when it says (undefined while it is reachable). */
  unreachableReason?(): string | undefined;
  onTeamFile(listener: (text: string | undefined) => void): void;
  close(): Promise<void>;
}

/** Settled spend to replay: the journal's settled calls since a time. */
export type History = (since: Date) => AsyncIterable<CallRecord>;

export interface TeamCap {
  id: string;
  cap: CapConfig;
  limit: Picos;
  matches: CapMatcher;
}

/** The team caps and the zone of their windows: matching and window arithmetic shared by both stores. */
export class TeamCaps {
  private caps: TeamCap[] = [];
  private readonly cache = new Map<string, WindowBounds>();
  // Stryker disable next-line StringLiteral: set() names the zone before any window is computed.
  timeZone = "UTC";

  set(caps: CapConfig[], timeZone: string): { fresh: string[] } {
    const old = new Map(this.caps.map((c) => [c.id, c.cap]));
    const zoneChanged = timeZone !== this.timeZone;
    this.timeZone = timeZone;
    this.cache.clear();
    this.caps = caps.map((cap) => ({
      id: capId(cap),
      cap,
      limit: usdToPicos(cap.limitUsd),
      matches: capMatcher(cap),
    }));
    const fresh = this.caps.filter((c) => zoneChanged || old.get(c.id)?.window !== c.cap.window || scopeKey(old.get(c.id)!) !== scopeKey(c.cap)).map((c) => c.id);
    return { fresh };
  }

  all(): readonly TeamCap[] {
    return this.caps;
  }

  get(id: string): TeamCap | undefined {
    return this.caps.find((c) => c.id === id);
  }

  /** Ids of the team caps that apply to a call (a subject, or a model id whose caller and tags are unknown). */
  applicable(subject: CallSubject | string, baseModelId?: string): string[] {
    return capsFor(this.caps, subject, baseModelId).map((c) => c.id);
  }

  /** The window of `cap` containing `at` (the last one found is cached: computing one costs a few Intl calls). */
  bounds(cap: TeamCap, at: Date): WindowBounds {
    const cached = this.cache.get(cap.id);
    const t = at.getTime();
    // Stryker disable next-line EqualityOperator: at the window's first instant a recomputation gives the same window.
    if (cached && t >= cached.start.getTime() && t < cached.end.getTime()) return cached;
    const b = windowBounds(cap.cap.window, this.timeZone, at);
    // Stryker disable next-line CallExpression: the cache saves Intl calls only.
    this.cache.set(cap.id, b);
    return b;
  }

  /** The earliest start of any team cap's current window: how far back a journal replay reads. */
  earliestStart(now: Date): Date | undefined {
    // Stryker disable next-line EqualityOperator: of two equal dates either is the earliest.
    return this.caps.map((c) => this.bounds(c, now).start).reduce<Date | undefined>((a, b) => (a && a < b ? a : b), undefined);
  }
}

/** Refusal text when the shared store cannot be reached and teamUnavailable is "block". */
export function unreachableMessage(where: string, capIds: string[]): string {
  return (
    `Bedrock Budget refused this call: the team ledger (${where}) is unreachable, so team cap ` +
    `${capIds.map((id) => `"${id}"`).join(", ")} cannot be checked (teamUnavailable: "block"). ` +
    `Personal caps are still enforced; retry when the team ledger is back.`
  );
}

export function teamUsd(picos: Picos): string {
  return formatUsd(picos);
}

/** Redacts the password of every redis URL in a text (a URL alone, or a message that quotes one) for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/(rediss?:\/\/)([^@/\s]*)@/gi, (_m, scheme: string, auth: string) => `${scheme}${auth.includes(":") ? `${auth.split(":")[0]}:***` : "***"}@`);
}
