/**
 * The credentials of the AWS profiles named as keys of `callers` (or in a cap's `callers`): a call signed with one of them is
 * verified against it and re-signed with it, so several callers with their own plans share one
 * gateway and AWS sees each call's own principal. Profiles load from the shared files through
 * credentials.ts (memoized); a name that is no profile (a user name) fails at once and matches nothing.
 */
import type { AwsCredentialIdentity } from "@smithy/types";
import { profileCredentialSource, type CredentialSource } from "../credentials";
import type { Config } from "../config/schema";

/** Access key ids (AKIA…, ASIA…) and API-key ids are not profile names. */
const NOT_A_PROFILE = /^(?:(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}|apikey:.*)$/;

export interface CallerMatch {
  credentials: AwsCredentialIdentity;
  profile: string;
}

/** Two or more `callers` profiles hold one access key: the gateway cannot tell whose plan a call signed with it is on. */
export class SharedAccessKeyError extends Error {
  constructor(readonly profiles: readonly string[]) {
    super(
      `the profiles ${profiles.map((p) => JSON.stringify(p)).join(" and ")} named in callers hold the same access key, so the gateway cannot tell whose plan a call signed with it is on; ` +
        `give each caller its own access key, or name only one of these profiles in callers`,
    );
  }
}

export class ProfileCredentials {
  private readonly sources: ReadonlyMap<string, CredentialSource>;

  constructor(readonly names: readonly string[], sourceFor: (profile: string) => CredentialSource = profileCredentialSource) {
    this.sources = new Map(names.map((name) => [name, sourceFor(name)]));
  }

  /** Loads every profile again from the shared files (each at most once per REREAD_AFTER_MS); true when any was re-read. */
  async reread(): Promise<boolean> {
    const done = await Promise.all([...this.sources.values()].map((source) => source.reread?.() ?? Promise.resolve(false)));
    return done.some(Boolean);
  }

  /** The names that may be AWS profiles: keys of `callers`, and the callers a cap names. */
  static namesIn(config: Pick<Config, "callers"> & Partial<Pick<Config, "caps">>): string[] {
    const names = new Set([...Object.keys(config.callers ?? {}), ...(config.caps ?? []).flatMap((c) => c.callers ?? [])]);
    return [...names].filter((name) => !NOT_A_PROFILE.test(name)).sort();
  }

  /** True when this set serves exactly the same profile names (its memoized credentials can be kept). */
  sameNames(names: readonly string[]): boolean {
    return names.length === this.names.length && names.every((n, i) => n === this.names[i]);
  }

  /**
   * The profile whose credentials have this access key id, if any; profiles that cannot be loaded match nothing.
   * Throws SharedAccessKeyError when more than one profile holds it (never a silent pick).
   */
  async find(accessKeyId: string): Promise<CallerMatch | undefined> {
    const found = await Promise.all(
      [...this.sources].map(async ([profile, source]) => {
        try {
          const credentials = await source();
          return credentials.accessKeyId === accessKeyId ? { credentials, profile } : undefined;
        } catch {
          return undefined; // not a profile (a user name), or one that cannot be loaded now
        }
      }),
    );
    const matches = found.filter((m): m is CallerMatch => m !== undefined);
    if (matches.length > 1) throw new SharedAccessKeyError(matches.map((m) => m.profile));
    return matches[0];
  }
}
