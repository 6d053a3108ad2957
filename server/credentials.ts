/**
 * The gateway's own AWS credentials: the configured profile, else the default chain (environment,
 * shared files, SSO, container and instance roles) exactly as the SDKs resolve it. The chain is
 * memoized and refreshes before expiry; nothing here is ever logged.
 */
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import type { AwsCredentialIdentity } from "@smithy/types";

export type CredentialSource = () => Promise<AwsCredentialIdentity>;

export function credentialSource(profile?: string): CredentialSource {
  const provider = fromNodeProviderChain(profile ? { profile } : {});
  return () => provider();
}
