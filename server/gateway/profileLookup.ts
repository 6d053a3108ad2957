/**
 * Adapter: learns the model behind an application inference profile from the Bedrock control
 * plane (GetInferenceProfile, with the gateway's own credentials, in the ARN's region; the SDK
 * honours AWS_ENDPOINT_URL_BEDROCK; HTTPS_PROXY as every outbound call), keeps the answers in memory and in `profiles.json` in the
 * ledger folder (0600), so a restart offline still knows them. A call waits for a lookup at most
 * `waitMs`; after that, or on failure, it is priced at the dearest rate and the failure is said.
 */
import { open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import { BedrockClient, GetInferenceProfileCommand } from "@aws-sdk/client-bedrock";
import type { AwsCredentialIdentity } from "@smithy/types";
import { OutboundHttpsAgent } from "../httpsProxy";
import { FILE_MODE } from "../ledger/privateFiles";
import type { Logger } from "../log";
import { parseModelId } from "../metering/modelId";
import { isResolved, profileFromModels, type ProfileAnswer, type ResolvedProfile } from "../metering/profiles";

export const PROFILES_FILE = "profiles.json";
/** How long the first call through an unknown profile waits for the control plane. */
export const PROFILE_WAIT_MS = 3_000;
/** A failed lookup is not retried sooner than this (each retry would delay a call again). */
const RETRY_AFTER_MS = 60_000;
/** Each attempt of a lookup (its connection, and its answer) gives up after this: by default the SDK waits for ever. */
const LOOKUP_TIMEOUT_MS = 10_000;
const MAX_PROFILES = 1_000;
/**
 * At most this many failed lookups are remembered: each distinct ARN a caller names adds one, so a
 * process sending made-up ARNs would otherwise grow the gateway's memory for ever. Past it the
 * oldest goes first (that ARN may then be looked up again before its retry time: one more wait).
 */
export const MAX_FAILED_LOOKUPS = 1_000;
/**
 * Lookups under way at once, and waiting for one of those to end: each distinct unknown ARN (with a
 * region) starts one, so a process naming made-up profiles would otherwise send as many requests to
 * AWS at once. Past both, an ARN is not looked up for this call (priced at the dearest rate, as any
 * failed lookup) and is tried again on a later call.
 */
export const MAX_LOOKUPS_AT_ONCE = 4;
export const MAX_LOOKUPS_WAITING = 32;
/** Warnings about failed lookups written per minute; the rest are counted and said with the next one. */
export const MAX_LOOKUP_WARNINGS_PER_MINUTE = 10;

export interface ProfileLookupOptions {
  ledgerDir: string;
  credentials: () => Promise<AwsCredentialIdentity>;
  log: Logger;
  now?: () => Date;
  waitMs?: number;
  /** How long one attempt of the lookup may take (LOOKUP_TIMEOUT_MS). */
  lookupTimeoutMs?: number;
}

export class ProfileLookup {
  private readonly known = new Map<string, ResolvedProfile>();
  private readonly failures = new Map<string, { failed: string; at: number }>();
  private readonly pending = new Map<string, Promise<ProfileAnswer>>();
  private running = 0;
  private readonly waiting: { arn: string; until: number; settle: (answer: ProfileAnswer) => void }[] = [];
  private warnings = { since: 0, said: 0, unsaid: 0 };
  private loaded: Promise<void> | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: ProfileLookupOptions) {}

  /** Which file keeps the answers. */
  get file(): string {
    return path.join(this.options.ledgerDir, PROFILES_FILE);
  }

  /** The answers known now (for the dashboard). */
  entries(): [string, ResolvedProfile][] {
    return [...this.known.entries()];
  }

  /**
   * What `arn` stands for: a known answer at once; else a lookup, awaited at most `waitMs` (it goes
   * on in the background and serves later calls). Never throws.
   */
  async resolve(arn: string): Promise<ProfileAnswer> {
    await this.load();
    const known = this.known.get(arn);
    if (known) return known;
    const now = Date.now();
    const failure = this.failures.get(arn);
    if (failure && now - failure.at < RETRY_AFTER_MS) return { failed: failure.failed };
    const waitMs = this.options.waitMs ?? PROFILE_WAIT_MS;
    let lookup = this.pending.get(arn);
    if (!lookup) {
      const started = this.start(arn, now + waitMs);
      if (!started) {
        // Not noted as a failure: the next call through this ARN may find a free place.
        const failed = `not looked up: ${MAX_LOOKUPS_AT_ONCE} lookups of application inference profiles are under way and ${MAX_LOOKUPS_WAITING} more are waiting (a process naming many unknown profiles at once?); it is looked up again on a later call`;
        this.warn(`could not look up application inference profile ${arn}: ${failed}; its calls are priced at the dearest rate`);
        return { failed };
      }
      lookup = started.finally(() => this.pending.delete(arn));
      this.pending.set(arn, lookup);
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<ProfileAnswer>((resolve) => {
      timer = setTimeout(() => {
        const failed = `the control plane did not answer within ${waitMs} ms`;
        // Said once: until the retry time, later calls are priced at once instead of each waiting again for
        // the same lookup. It goes on, and its answer (or its own failure) replaces this when it comes.
        if (this.pending.get(arn) === lookup) this.noteFailure(arn, failed);
        resolve({ failed });
      }, waitMs);
    });
    try {
      return await Promise.race([lookup, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts a lookup, or queues it while MAX_LOOKUPS_AT_ONCE run; undefined when the queue is full too. */
  private start(arn: string, until: number): Promise<ProfileAnswer> | undefined {
    if (this.running < MAX_LOOKUPS_AT_ONCE) return this.run(arn);
    if (this.waiting.length >= MAX_LOOKUPS_WAITING) return undefined;
    return new Promise((settle) => this.waiting.push({ arn, until, settle }));
  }

  private run(arn: string): Promise<ProfileAnswer> {
    this.running++;
    return this.lookUp(arn)
      .catch((err: Error): ProfileAnswer => ({ failed: `GetInferenceProfile failed: ${err.message}`.slice(0, 300) }))
      .finally(() => {
        this.running--;
        this.next();
      });
  }

  /** Starts waiting lookups as places free up; one whose call stopped waiting for it (its wait timed out, noted as a failure) is dropped: nobody needs its answer before the retry time. */
  private next(): void {
    while (this.running < MAX_LOOKUPS_AT_ONCE && this.waiting.length > 0) {
      const { arn, until, settle } = this.waiting.shift()!;
      if (Date.now() >= until) settle({ failed: `not looked up: the lookups before it took longer than the call could wait` });
      else void this.run(arn).then(settle);
    }
  }

  /** At most MAX_LOOKUP_WARNINGS_PER_MINUTE lines a minute: each made-up ARN would otherwise write its own. */
  private warn(line: string): void {
    const now = Date.now();
    if (now - this.warnings.since >= 60_000) {
      if (this.warnings.unsaid > 0) line += ` (${this.warnings.unsaid} more failed lookup(s) since ${new Date(this.warnings.since).toISOString()} not logged)`;
      this.warnings = { since: now, said: 0, unsaid: 0 };
    }
    if (this.warnings.said >= MAX_LOOKUP_WARNINGS_PER_MINUTE) {
      this.warnings.unsaid++;
      return;
    }
    this.warnings.said++;
    this.options.log.warn(line);
  }

  private async lookUp(arn: string): Promise<ProfileAnswer> {
    const region = parseModelId(arn).arnRegion;
    let answer: ProfileAnswer;
    if (!region) {
      answer = { failed: `${arn} names no region` };
    } else {
      const timeout = this.options.lookupTimeoutMs ?? LOOKUP_TIMEOUT_MS;
      const client = new BedrockClient({ region, credentials: this.options.credentials, maxAttempts: 2, requestHandler: { connectionTimeout: timeout, requestTimeout: timeout, throwOnRequestTimeout: true, httpsAgent: new OutboundHttpsAgent() } });
      try {
        const out = await client.send(new GetInferenceProfileCommand({ inferenceProfileIdentifier: arn }));
        answer = profileFromModels(arn, out.models, this.options.now?.() ?? new Date());
      } catch (err) {
        const e = err as Error & { name?: string };
        answer = { failed: `GetInferenceProfile failed: ${e.name && e.name !== "Error" ? `${e.name}: ` : ""}${e.message}`.slice(0, 300) };
      } finally {
        client.destroy();
      }
    }
    if (isResolved(answer)) {
      this.failures.delete(arn);
      this.remember(arn, answer);
      this.options.log.info(`application inference profile ${arn} is ${answer.baseModelId} (${answer.profile}): priced as that model`);
    } else {
      this.noteFailure(arn, answer.failed);
      this.warn(`could not look up application inference profile ${arn}: ${answer.failed}; its calls are priced at the dearest rate`);
    }
    return answer;
  }

  /** Kept in the order of `at` (oldest first), so the expired and then the oldest are dropped from the front. */
  private noteFailure(arn: string, failed: string): void {
    const at = Date.now();
    this.failures.delete(arn);
    for (const [old, f] of this.failures) {
      // An expired failure holds nothing back any more (resolve looks up again): dropped whatever the size.
      if (at - f.at < RETRY_AFTER_MS && this.failures.size < MAX_FAILED_LOOKUPS) break;
      this.failures.delete(old);
    }
    this.failures.set(arn, { failed, at });
  }

  private remember(arn: string, answer: ResolvedProfile): void {
    if (this.known.size >= MAX_PROFILES && !this.known.has(arn)) this.known.delete(this.known.keys().next().value!);
    this.known.set(arn, answer);
    this.writing = this.writing.then(() => this.save()).catch((err: Error) => {
      this.options.log.warn(`could not save ${this.file}: ${err.message} (the answer is kept in memory)`);
    });
  }

  /** Reads the saved answers once; a missing or unreadable file is an empty start (said, not fatal). */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      let text: string;
      try {
        text = await readFile(this.file, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.options.log.warn(`could not read ${this.file}: ${(err as Error).message}`);
        return;
      }
      const saved = parseSaved(text);
      if (!saved) return this.options.log.warn(`${this.file} is not a list of looked-up profiles: ignored (profiles are looked up again)`);
      for (const [arn, p] of saved) this.known.set(arn, p);
    })();
    return this.loaded;
  }

  /** Written whole to a private temporary file, then renamed over the old one. */
  private async save(): Promise<void> {
    const tmp = `${this.file}.tmp`;
    await rm(tmp, { force: true });
    const fh = await open(tmp, "wx", FILE_MODE);
    try {
      await fh.writeFile(`${JSON.stringify({ version: 1, profiles: Object.fromEntries(this.known) }, null, 1)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }

  /** Waits for pending writes (tests, shutdown). */
  async flushed(): Promise<void> {
    await this.writing;
  }
}

function parseSaved(text: string): [string, ResolvedProfile][] | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const profiles = (json as { profiles?: unknown } | null)?.profiles;
  if (typeof profiles !== "object" || profiles === null || Array.isArray(profiles)) return undefined;
  const out: [string, ResolvedProfile][] = [];
  for (const [arn, p] of Object.entries(profiles as Record<string, unknown>)) {
    const r = p as Partial<ResolvedProfile> | null;
    if (typeof r?.baseModelId !== "string" || !["global", "geographic", "none"].includes(String(r.profile))) continue;
    out.push([arn, { baseModelId: r.baseModelId, profile: r.profile!, modelArns: Array.isArray(r.modelArns) ? r.modelArns.filter((a) => typeof a === "string") : [], resolvedAt: typeof r.resolvedAt === "string" ? r.resolvedAt : "" }]);
  }
  return out;
}
