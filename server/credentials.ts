/**
 * AWS credentials. The gateway's own: the configured profile, else the default chain (environment,
 * shared files, SSO, container and instance roles) exactly as the SDKs resolve it, memoized and
 * refreshed before expiry. A caller's named profile: from the shared files only (static keys, SSO,
 * role assumption, credential_process; never the instance role), so a name that is no profile
 * fails at once. Both can be re-read on demand (a rotated key, a credentials file rewritten by
 * aws-vault, saml2aws or granted), at most once per REREAD_AFTER_MS. Nothing here is ever logged.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fromIni, fromNodeProviderChain } from "@aws-sdk/credential-providers";
import type { AwsCredentialIdentity } from "@smithy/types";
import { OutboundHttpsAgent } from "./httpsProxy";

/**
 * `profile`: the shared-files profile the credentials come from, when known (a caller on a tier may be named by it).
 * `reread`: loads them again from their source (the shared files read anew), unless that was done less than
 * REREAD_AFTER_MS ago; true when it did (or joined one in flight). A failed re-read keeps what was loaded.
 */
export type CredentialSource = (() => Promise<AwsCredentialIdentity>) & { readonly profile?: string; readonly reread?: () => Promise<boolean> };

/** At most one re-read of a source per this long, however many unknown keys arrive (a flood of bad keys reads no flood of files). */
export const REREAD_AFTER_MS = 5_000;

/** `reread` run at most once per REREAD_AFTER_MS; concurrent askers share the one in flight. */
export function boundedReread(reread: () => Promise<void>, now: () => number = Date.now): () => Promise<boolean> {
  let last: number | undefined;
  let running: Promise<void> | undefined;
  return async () => {
    if (running) {
      await running;
      return true;
    }
    const t = now();
    if (last !== undefined && t - last < REREAD_AFTER_MS) return false;
    last = t;
    running = reread()
      .catch(() => undefined) // what was loaded stays
      .finally(() => {
        running = undefined;
      });
    await running;
    return true;
  };
}

/** The STS and SSO clients a profile's credentials come from (AssumeRole, IAM Identity Center) go through HTTPS_PROXY too. */
function behindProxy(): { requestHandler: { httpsAgent: OutboundHttpsAgent } } {
  return { requestHandler: { httpsAgent: new OutboundHttpsAgent() } };
}

export function credentialSource(profile?: string, now: () => number = Date.now): CredentialSource {
  // ignoreCache: a re-resolution (forced, or at expiry) reads the shared files again, not the copy the process read first.
  const provider = fromNodeProviderChain({ ...(profile ? { profile } : {}), ignoreCache: true, clientConfig: behindProxy() });
  const name = chainProfileName(profile);
  const reread = boundedReread(async () => {
    await provider({ forceRefresh: true });
  }, now);
  return Object.assign(() => provider(), { reread }, name !== undefined ? { profile: name } : {});
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
  const provider = fromIni({ profile, ignoreCache: true, clientConfig: behindProxy() }); // each load reads the files anew
  let cached: { at: number; value: Promise<AwsCredentialIdentity> } | undefined;
  const reread = boundedReread(async () => {
    const value = await provider(); // a failure keeps what was loaded
    cached = { at: now(), value: Promise.resolve(value) };
  }, now);
  const source = () => {
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
  return Object.assign(source, { profile, reread });
  function load(t: number): Promise<AwsCredentialIdentity> {
    const value = provider();
    cached = { at: t, value };
    value.catch(() => undefined); // read by the next caller; never an unhandled rejection
    return value;
  }
}

/** How a profile gets its credentials, from the shared config and credentials files; undefined when it is not there. */
export type ProfileKind = "static" | "sso" | "role" | "process" | "other";

/**
 * SSO and role profiles give every process that resolves them a session key of its own: a caller using
 * one is verified only if the gateway holds the very same session. Read from the files, never logged.
 */
export async function profileKind(profile: string, env: NodeJS.ProcessEnv = process.env): Promise<ProfileKind | undefined> {
  const home = os.homedir();
  const configFile = env.AWS_CONFIG_FILE ?? path.join(home, ".aws", "config");
  const credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, ".aws", "credentials");
  const fromConfig = iniSection(await readFile(configFile, "utf8").catch(() => ""), profile === "default" ? ["default", "profile default"] : [`profile ${profile}`]);
  const fromCredentials = iniSection(await readFile(credentialsFile, "utf8").catch(() => ""), [profile]);
  if (!fromConfig && !fromCredentials) return undefined;
  const keys = new Set([...(fromConfig ?? []), ...(fromCredentials ?? [])]);
  if (keys.has("sso_session") || keys.has("sso_start_url") || keys.has("sso_account_id")) return "sso";
  if (keys.has("role_arn")) return "role";
  if (keys.has("credential_process")) return "process";
  if (keys.has("aws_access_key_id")) return "static";
  return "other";
}

/** The keys set in the first section named one of `names`, or undefined when there is none. */
function iniSection(text: string, names: string[]): string[] | undefined {
  let inside = false;
  let found: string[] | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      inside = names.includes(header[1]!.trim().replace(/\s+/g, " "));
      if (inside) found ??= [];
      continue;
    }
    const eq = line.indexOf("=");
    if (inside && eq > 0 && !line.startsWith("#") && !line.startsWith(";")) found!.push(line.slice(0, eq).trim().toLowerCase());
  }
  return found;
}
