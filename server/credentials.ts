/**
 * AWS credentials. The gateway's own: the configured profile, else the default chain (environment,
 * shared files, SSO, container and instance roles) exactly as the SDKs resolve it, memoized and
 * refreshed before expiry. A caller's named profile: from the shared files only (static keys, SSO,
 * role assumption, credential_process; never the instance role), so a name that is no profile
 * fails at once. Nothing here is ever logged.
 */
import { fromIni, fromNodeProviderChain } from "@aws-sdk/credential-providers";
import type { AwsCredentialIdentity } from "@smithy/types";

/** `profile`: the shared-files profile the credentials come from, when known (a caller on a tier may be named by it). */
export type CredentialSource = (() => Promise<AwsCredentialIdentity>) & { readonly profile?: string };

export function credentialSource(profile?: string): CredentialSource {
  const provider = fromNodeProviderChain(profile ? { profile } : {});
  const name = chainProfileName(profile);
  return Object.assign(() => provider(), name !== undefined ? { profile: name } : {});
}

/**
 * The profile the SDKs' default chain reads, as it decides: `profile`, else AWS_PROFILE (which
 * makes it skip the environment's keys), else the environment's keys when set (no profile), else "default".
 */
export function chainProfileName(profile: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (profile) return profile;
  if (env.AWS_PROFILE) return env.AWS_PROFILE;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return undefined;
  return "default";
}

/** Credentials are refreshed this long before they expire. */
const REFRESH_BEFORE_MS = 5 * 60_000;
/** A profile that could not be loaded is not tried again for this long (a caller's every call asks). */
const RETRY_FAILED_AFTER_MS = 30_000;

/** The credentials of a named profile from the shared config and credentials files, memoized (failures briefly too). */
export function profileCredentialSource(profile: string, now: () => number = Date.now): CredentialSource {
  const provider = fromIni({ profile });
  let cached: { at: number; value: Promise<AwsCredentialIdentity> } | undefined;
  return () => {
    const t = now();
    if (cached) {
      const current = cached;
      return current.value.then(
        (c) => (c.expiration && c.expiration.getTime() - REFRESH_BEFORE_MS <= t ? load(t) : c),
        (err: unknown) => (t - current.at >= RETRY_FAILED_AFTER_MS ? load(t) : Promise.reject(err)),
      );
    }
    return load(t);
  };
  function load(t: number): Promise<AwsCredentialIdentity> {
    const value = provider();
    cached = { at: t, value };
    value.catch(() => undefined); // read by the next caller; never an unhandled rejection
    return value;
  }
}
