/**
 * The credentials of the AWS profiles named as keys of `callers`: a call signed with one of them is
 * verified against it and re-signed with it, so several callers with their own plans share one
 * gateway and AWS sees each call's own principal. Profiles load through credentials.ts (memoized);
 * a key that names no profile (a user name, an access key id) simply matches nothing here.
 */
import type { AwsCredentialIdentity } from "@smithy/types";
import { credentialSource, type CredentialSource } from "../credentials";
import type { Config } from "../config/schema";

/** Access key ids (AKIA…, ASIA…) and API-key ids are not profile names. */
const NOT_A_PROFILE = /^(?:(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}|apikey:.*)$/;

export interface CallerMatch {
  credentials: AwsCredentialIdentity;
  profile: string;
}

export class ProfileCredentials {
  private readonly sources: ReadonlyMap<string, CredentialSource>;

  constructor(readonly names: readonly string[], sourceFor: (profile: string) => CredentialSource = credentialSource) {
    this.sources = new Map(names.map((name) => [name, sourceFor(name)]));
  }

  /** The `callers` keys that may name AWS profiles. */
  static namesIn(config: Pick<Config, "callers">): string[] {
    return Object.keys(config.callers).filter((name) => !NOT_A_PROFILE.test(name)).sort();
  }

  /** True when this set serves exactly the same profile names (its memoized credentials can be kept). */
  sameNames(names: readonly string[]): boolean {
    return names.length === this.names.length && names.every((n, i) => n === this.names[i]);
  }

  /** The profile whose credentials have this access key id, if any; profiles that cannot be loaded match nothing. */
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
    return found.find((m) => m !== undefined);
  }
}
