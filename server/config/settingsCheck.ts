/**
 * What a bad setting does, decided per key (pure): a bad value of a harmless, window-scoped key is
 * ignored and reported; a bad value of a key that decides money makes the gateway refuse every
 * metered call until it is fixed. Never a silent default for a key that decides money.
 */
import { checkConfig, type Config } from "./schema";

/**
 * Keys whose bad value costs nothing, so a workspace may set them. Every other key decides money
 * (caps, with each cap's `action`, `downgradeTo` and `downgradeAt`: a workspace must not turn a block cap into warn; pricing, guardrailPricing, upstreamEndpoint, region, awsProfile, ledgerDir, port, user,
 * timeZone, teamLedger, team, teamUnavailable, allowUnmeteredOperations, maxRequestBytes,
 * allowApiKeys, whenGatewayDown, alertWebhook and alertSnsTopicArn (where alerts, which name
 * caps and spend, leave the machine: a repository must not point them at its own URL), tags (a
 * cap may be scoped to a tag, so a workspace must not re-tag calls out of it), the usage plans
 * rateLimit, tiers and callers (machine-scoped: a workspace may not set a plan, which could
 * loosen one), routeTerminals: turning it off sends
 * terminals to Bedrock unmetered, so a repository may not, and alertThresholds: they also decide
 * when the webhook and SNS channels speak, so `[]` from a repository would silence them), and so
 * does any key added later until it is listed here:
 * forgetting to classify a key fails closed.
 */
export const HARMLESS_KEYS: ReadonlySet<string> = new Set(["logLevel", "codeLens", "warnMissingMaxTokens", "warnOverCap"]);

export function decidesMoney(key: string): boolean {
  return !HARMLESS_KEYS.has(key);
}

export interface SettingsCheck {
  /** Valid values; an invalid one is replaced by its last good value (or its default). */
  config: Config;
  /** Every invalid value, each naming its setting as the user writes it (`bedrockBudget.caps[0].limitUsd: …`). */
  errors: string[];
  /** Those of `errors` that decide money: while any is left, metered calls are refused. */
  blocking: string[];
}

/** Checks settings against the one schema; `prefix` is how the user names a key (`bedrockBudget.` in VS Code). */
export function checkSettings(raw: unknown, previous: Config | undefined, prefix = ""): SettingsCheck {
  const { config, problems } = checkConfig(raw, previous);
  const errors: string[] = [];
  const blocking: string[] = [];
  for (const problem of problems) {
    const where = problem.key === undefined && prefix ? prefix.replace(/\.$/, "") : prefix + problem.path;
    const text = `${where}: ${problem.message}`;
    errors.push(text);
    // A document that is not an object, a key that decides money, or a key that is not a setting
    // (`Caps` for `caps`: the cap it meant is missing, so the default would be no cap at all).
    if (problem.key === undefined || decidesMoney(problem.key)) blocking.push(text);
  }
  return { config, errors, blocking };
}

/** The refusal every metered call gets while `blocking` settings are invalid: what, why, and how to fix it. */
export function blockedMessage(blocking: string[], howToFix: string): string {
  const one = blocking.length === 1;
  return (
    `Bedrock Budget refuses Bedrock calls until ${one ? "this setting is" : "these settings are"} fixed: ${blocking.join("; ")}. ` +
    `${one ? "It decides" : "They decide"} caps, prices, credentials or where calls go, so the gateway does not guess a default. ${howToFix}`
  );
}
