/**
 * The one configuration schema. VS Code settings `bedrockBudget.<key>` and the standalone config
 * file's `<key>` are the same keys, validated here and nowhere else.
 */
import path from "node:path";
import { z } from "zod";
import { isInvokeModelId } from "../metering/modelId";
import { MAX_TAGS, TAG_KEY_RE, TAG_RULE, TAG_VALUE_RE } from "./tags";
import { RESERVED_KEY_MESSAGE, reservedKeyPath } from "./reservedKeys";
import { redisUrlProblem } from "../team/redisUrl";

/** arn:<partition>:sns:<region>:<account>:<topic>; the region decides where the SNS client publishes. */
export const SNS_TOPIC_ARN = /^arn:aws(-[a-z]+)*:sns:([a-z]{2}(-gov)?-[a-z]+-\d):(\d{12}):([A-Za-z0-9_-]{1,256}(\.fifo)?)$/;

/** An access key id, an AWS profile name, an `apikey:<hash>` id or a user name. */
const callerName = z.string().min(1).max(200).regex(/^[^\s,]+$/, "a caller: an access key id, an AWS profile name, an apikey:<16 hex> id or a user name (no spaces or commas)");
const positiveUsd = z.number().positive().finite().max(1_000_000_000);
const pricePer1M = z.number().nonnegative().finite().max(1_000_000);

export const capSchema = z.strictObject({
  id: z.string().min(1).max(100).regex(/^[\w.:-]+$/, "use letters, digits, '.', ':', '_' or '-'").optional().describe("Name shown in refusals and alerts; derived from scope, window and model when unset."),
  scope: z.enum(["personal", "team"]).default("personal").describe("Whose spend counts: this machine's (personal) or the team's."),
  window: z.enum(["day", "week", "month"]).describe("The period the limit covers, in the configured time zone (weeks start on Monday)."),
  limitUsd: positiveUsd.describe("The most that may be spent in one window, in US dollars."),
  model: z.string().min(1).optional().describe("Glob over model ids; the cap applies to every model when unset."),
  action: z
    .enum(["block", "warn", "downgrade", "clamp"])
    .optional()
    .describe(
      "What the cap does to a call that would pass its limit: `block` (the default) refuses it; `warn` lets it through, counts it and says so (response header, editor notification, ledger); `downgrade` sends calls to `downgradeTo` once spent + reserved + the call's worst case reach `downgradeAt` of the limit; `clamp` lowers the call's max output tokens so its worst case fits what is left. Team caps support `block` only.",
    ),
  downgradeTo: z
    .string()
    .min(1)
    .max(2048)
    .refine(isInvokeModelId, "a Bedrock model id, inference profile or model ARN, as InvokeModel accepts it (for example amazon.nova-lite-v1:0)")
    .optional().describe("With `action: downgrade`: the model id calls go to instead (for InvokeModel, one with the same request body format)."),
  downgradeAt: z.number().min(0).max(1).optional().describe("With `action: downgrade`: the fraction of the limit (spent + reserved + the call's worst case) from which calls are downgraded; 0.8 when unset."),
  callers: z
    .array(callerName)
    .min(1)
    .max(1000)
    .optional()
    .describe("Who the cap applies to: access key ids, AWS profile names (named as keys of `callers`), `apikey:<16 hex>` ids of Bedrock API keys, or user names; every caller when unset. The listed callers share the cap's one wall."),
  // The calls' own tag grammar: a tag no call can carry would leave the cap silently matching nothing.
  tags: z
    .record(z.string().regex(TAG_KEY_RE, TAG_RULE), z.string().regex(TAG_VALUE_RE, TAG_RULE))
    .refine((t) => Object.keys(t).length <= MAX_TAGS, `at most ${MAX_TAGS} tags`)
    .optional()
    .describe("The cap applies only to calls carrying every one of these tags (`X-Bedrock-Budget-Tags` header, Converse `requestMetadata`); every call when unset."),
});

export const rateLimitSchema = z
  .strictObject({
    requestsPerSecond: z.number().positive().finite().max(100_000).optional().describe("Steady rate each caller may send, in requests per second (token bucket refill); unlimited when unset. Over it: HTTP 429 ThrottlingException with Retry-After, which the SDKs retry."),
    burst: z.number().int().min(1).max(100_000).optional().describe("Requests a caller may send at once before the rate applies (bucket size); defaults to requestsPerSecond rounded up."),
    requestsPerDay: z.number().int().min(1).max(1_000_000_000).optional().describe("Requests each caller may send per day, in the configured time zone. Over it: HTTP 400 ServiceQuotaExceededException, not retried."),
    requestsPerMonth: z.number().int().min(1).max(1_000_000_000).optional().describe("Requests each caller may send per calendar month, in the configured time zone."),
  })
  .refine((r) => r.burst === undefined || r.requestsPerSecond !== undefined, { message: "burst needs requestsPerSecond", path: ["burst"] });

export const tierSchema = z.strictObject({
  rateLimit: rateLimitSchema.optional().describe("This tier's rate limit and quotas: each field set here replaces the top-level `rateLimit` field for the tier's callers."),
  caps: z
    .array(capSchema.superRefine(checkCapRules).refine((c) => c.callers === undefined, { message: "a tier cap applies to each caller of the tier; set callers in the top-level callers key, not here", path: ["callers"] }))
    .max(100)
    .optional()
    .describe("Caps for each caller of this tier: every caller gets its own wall of each (a tier cap is per caller, as per-agent caps)."),
});

/**
 * Rules across a cap's keys, applied wherever caps are read (settings, team.json): `downgrade`
 * needs a model to go to, and a team cap is enforced by a shared store that knows only `block`.
 */
export function checkCapRules(cap: CapConfig, ctx: z.RefinementCtx): void {
  const action = capAction(cap);
  if (action === "downgrade" && cap.downgradeTo === undefined) {
    ctx.addIssue({ code: "custom", path: ["downgradeTo"], message: 'a cap with action "downgrade" needs "downgradeTo", the model id calls go to instead' });
  }
  for (const key of ["downgradeTo", "downgradeAt"] as const) {
    if (action !== "downgrade" && cap[key] !== undefined) {
      ctx.addIssue({ code: "custom", path: [key], message: `"${key}" applies only to a cap with action "downgrade" (this one is "${action}")` });
    }
  }
  if (cap.scope === "team" && action !== "block") {
    ctx.addIssue({
      code: "custom",
      path: ["action"],
      message: `a team cap can only block: the team's shared store does not apply "${action}"; use a personal cap for warn, downgrade or clamp`,
    });
  }
}

export const priceOverrideSchema = z.strictObject({
  inputPer1M: pricePer1M.describe("USD per million input tokens."),
  outputPer1M: pricePer1M.describe("USD per million output tokens."),
  cacheReadPer1M: pricePer1M.optional(),
  cacheWritePer1M: pricePer1M.optional(),
  cacheWrite1hPer1M: pricePer1M.optional(),
  maxOutputTokens: z.number().int().positive().optional(),
  hourlyUsd: positiveUsd.optional().describe("Provisioned throughput: what the model costs per hour (AWS bills it hourly, not per token). Shown on the dashboard; set the per-token rates to 0."),
});

const per1kUnits = pricePer1M.optional();
export const guardrailPricingSchema = z.strictObject({
  contentPolicy: per1kUnits,
  topicPolicy: per1kUnits,
  wordPolicy: per1kUnits,
  sensitiveInformationPolicy: per1kUnits,
  contextualGroundingPolicy: per1kUnits,
  automatedReasoningPolicy: per1kUnits,
});

/**
 * A folder setting is absolute or under the home folder: a relative one would resolve against the
 * folder the gateway happens to start in, so two starts could keep two ledgers (each cap counting
 * half the spend) or two machines miss each other's team folder.
 */
export function isFolderPath(p: string): boolean {
  return path.isAbsolute(p) || isUnderHome(p);
}
/** `~` alone or `~/…` (`~\…` on Windows): expanded against the home folder. */
export function isUnderHome(p: string): boolean {
  return /^~([\\/]|$)/.test(p);
}
/** Any `scheme://` value: the team ledger is then a URL (only redis:// and rediss:// are accepted), not a folder. */
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const FOLDER_PATH_RULE = "an absolute path or one under ~/ (a relative path would depend on the folder the gateway starts in)";

export const configSchema = z.strictObject({
  user: z.string().min(1).max(200).optional().describe("Who the ledger records as the caller; defaults to the OS user name."),
  caps: z.array(capSchema.superRefine(checkCapRules)).default([]).describe("Dollar caps. Every cap that applies to a call must admit its worst case, or the call is refused before it reaches Bedrock."),
  rateLimit: rateLimitSchema.optional().describe("Usage plan of every caller (each caller its own bucket and counts): a token bucket (`requestsPerSecond`, `burst`) and request quotas (`requestsPerDay`, `requestsPerMonth`). A tier's `rateLimit` replaces fields for its callers."),
  tiers: z
    .record(z.string().min(1).max(64).regex(/^[\w.-]+$/, "use letters, digits, '.', '_' or '-'"), tierSchema)
    .optional()
    .describe("Usage plans by name (e.g. basic, professional, enterprise): a rate limit and caps for each caller of the tier. Callers join a tier in `callers`."),
  callers: z
    .record(callerName, z.string().min(1).max(64))
    .optional()
    .describe("Callers and their tier: keys are access key ids, AWS profile names (the gateway then also accepts calls signed with that profile's credentials, and re-signs them with the same), `apikey:<16 hex of sha256(key)>` ids or user names; values name a tier of `tiers`."),
  pricing: z.record(z.string().min(1), priceOverrideSchema).default({}).describe("Price overrides per model id or glob, in USD per million tokens; they win over the built-in table."),
  ledgerDir: z.string().min(1).refine(isFolderPath, FOLDER_PATH_RULE).optional().describe("Folder of the journal and state (an absolute path, or one under ~/); defaults to ~/.bedrock-budget."),
  upstreamEndpoint: z
    .url({ protocol: /^https?$/ })
    .optional()
    // Calls go to Bedrock's own paths (/model/…) on this host: a base path would be dropped (the gateway refuses each call); said when the settings are read.
    .refine((v) => v === undefined || !URL.canParse(v) || ["", "/"].includes(new URL(v).pathname), "scheme, host and port only, such as https://bedrock-runtime.us-east-1.amazonaws.com: calls go to Bedrock's own paths on that host, so a path would be dropped")
    // Calls carry the caller's prompts, their SigV4 signatures and the answers: over http:// anyone on the network path reads them. The webhook's rule: http:// to this machine only (a local simulator, fake or LocalStack).
    .refine((v) => v === undefined || !URL.canParse(v) || new URL(v).protocol !== "http:" || isAlertWebhookUrl(v), "http:// only to this machine (localhost, 127.0.0.1, [::1]): elsewhere the signed calls and the model's answers would cross the network in clear; use https:// (LocalStack answers it too)")
    .describe("Where calls go; defaults to https://bedrock-runtime.<region>.amazonaws.com."),
  region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, "an AWS region such as us-east-1").optional().describe("Region for calls made with a Bedrock API key (SigV4 calls carry their own); defaults to us-east-1."),
  awsProfile: z.string().min(1).optional().describe("AWS profile whose credentials verify callers' signatures and sign calls to Bedrock; the default credential chain when unset."),
  port: z.number().int().min(0).max(65535).default(8777).describe("Loopback port of the gateway; 0 picks a free one. Windows on one machine share the gateway on this port."),
  timeZone: z.string().min(1).optional().refine((tz) => tz === undefined || isTimeZone(tz), "an IANA time zone such as Europe/Paris").describe("IANA time zone of the cap windows; the system's when unset."),
  guardrailPricing: guardrailPricingSchema
    .optional()
    .describe("USD per 1,000 text units for each guardrail policy. When set, ApplyGuardrail calls are priced, reserved against caps and charged; when unset they are forwarded and recorded at $0."),
  allowUnmeteredOperations: z.boolean().default(false).describe("Forward requests the gateway cannot meter instead of refusing them."),
  allowApiKeys: z.boolean().default(false).describe("Accept Bedrock API keys (`Authorization: Bearer …`) and forward them as they are. Off by default: the gateway cannot check an API key, so any local process could spend through it; SigV4 callers are checked against the gateway's own credentials."),
  durability: z
    .enum(["process", "machine"])
    .default("process")
    .describe("What the ledger waits for before a call is forwarded and before it is answered: `process` (the default) has its journal line written, which survives the gateway being killed, and syncs it to disk in the background within 100 ms (a power loss may lose the last 100 ms of records); `machine` syncs each line to disk first (survives a power loss, costs a disk sync twice per call). Read at start-up."),
  maxRequestBytes: z.number().int().min(1024).max(100 * 1024 * 1024).default(25 * 1024 * 1024).describe("Largest request body the gateway accepts, in bytes."),
  logLevel: z.enum(["error", "warn", "info", "debug"]).default("info").describe("How much the gateway logs."),
  alertThresholds: z
    .array(z.number().int().min(1).max(100))
    .max(10)
    .default([50, 80, 90, 100])
    .describe("Percentages of a cap at which to notify, once per window each."),
  alertWebhook: z
    .string()
    .refine(isAlertWebhookUrl, "an https:// URL (http:// only to a loopback host: localhost, 127.0.0.1, [::1])")
    .refine((text) => !hasUrlCredentials(text), "holds a user name or password, which cannot be sent (a request to such a URL is refused, and the failure would print it): use a URL that carries its secret in the path, as Slack's and Teams' do")
    .optional()
    .describe(
      "Incoming-webhook URL (Slack, Microsoft Teams, or any receiver of JSON) the gateway posts `{\"text\": …}` to when a cap crosses one of `alertThresholds`, once per cap, window and threshold. Alerts leave the machine: user settings only, never a workspace.",
    ),
  alertSnsTopicArn: z
    .string()
    .regex(SNS_TOPIC_ARN, "an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:bedrock-budget")
    .optional()
    .describe("Amazon SNS topic the gateway publishes to (with its own AWS credentials, in the ARN's region) when a cap crosses one of `alertThresholds`, once per cap, window and threshold. User settings only, never a workspace."),
  routeTerminals: z.boolean().default(true).describe("Set AWS_ENDPOINT_URL_BEDROCK_RUNTIME and ANTHROPIC_BEDROCK_BASE_URL (read by Anthropic's Bedrock SDK) in new VS Code terminals and debug sessions."),
  codeLens: z.boolean().default(true).describe("Show a cost estimate over each Bedrock call in the code."),
  warnMissingMaxTokens: z.boolean().default(true).describe("Warn on a Bedrock call that sets no max tokens (unbounded output cost)."),
  warnOverCap: z.boolean().default(true).describe("Warn on a Bedrock call whose worst case alone exceeds what is left of a cap."),
  teamLedger: z
    .string()
    .min(1)
    .optional()
    .refine((v) => v === undefined || !URL_SCHEME.test(v) || /^rediss?:\/\/[^/?#]+/i.test(v), "a folder path, or a redis:// or rediss:// URL with a host")
    .refine((v) => v === undefined || URL_SCHEME.test(v) || isFolderPath(v), FOLDER_PATH_RULE)
    // The team store's own reading of the address, now: found only when it connects, a bad one
    // stopped the start on a stack trace, and a live reload kept the old settings in force.
    .superRefine((v, ctx) => {
      // Only a redis URL with a host: one without is the refinement above's to name.
      const problem = v !== undefined && /^rediss?:\/\/[^/?#]/i.test(v) ? redisUrlProblem(v) : undefined;
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    })
    .describe("Where team caps are shared: a folder the team already shares (team.json + one spend file per machine; soft wall, overshoot up to what is spent between two syncs), or a `redis://` / `rediss://` URL (exact, hard team wall across machines). Team caps are counted on this machine alone when unset."),
  team: z.string().min(1).max(64).regex(/^[\w.-]+$/, "use letters, digits, '.', '_' or '-'").optional().describe("Name of the team: a subfolder of the team ledger folder and a key namespace in Redis; `default` when unset."),
  teamUnavailable: z.enum(["block", "personalOnly"]).optional().describe("When the team ledger cannot be reached: `block` (the default) refuses calls that a team cap applies to (fail closed); `personalOnly` admits them under personal caps alone and counts them to the team once it is back."),
  whenGatewayDown: z
    .enum(["block", "direct"])
    .optional()
    .describe("While the gateway is starting, stopped or failed: `block` (the default) keeps VS Code terminals and debug sessions pointed at it, so their Bedrock calls fail with a connection error; `direct` lets them call Bedrock directly, unmetered."),
  tags: z
    .record(z.string().regex(TAG_KEY_RE, TAG_RULE), z.string().regex(TAG_VALUE_RE, TAG_RULE))
    .refine((t) => Object.keys(t).length <= MAX_TAGS, `at most ${MAX_TAGS} tags`)
    .optional()
    .describe("Default cost-allocation tags of every call (e.g. {\"project\": \"chatbot\"}); a call's Converse requestMetadata and then its X-Bedrock-Budget-Tags header win over them key by key. `bedrock-budget report` totals by each tag value."),
});

export type CapConfig = z.infer<typeof capSchema>;
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;
export type TierConfig = z.infer<typeof tierSchema>;
export type PriceOverride = z.infer<typeof priceOverrideSchema>;
export type GuardrailPricing = z.infer<typeof guardrailPricingSchema>;
export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export type ConfigResult = { ok: true; config: Config } | { ok: false; errors: string[] };

/** Validates raw settings; every error names the key (e.g. `caps[1].limitUsd`) and what is wrong. */
export function parseConfig(raw: unknown): ConfigResult {
  const { config, problems } = checkConfig(raw);
  return problems.length === 0 ? { ok: true, config } : { ok: false, errors: problems.map((p) => `${p.path}: ${p.message}`) };
}

/** One invalid value: its top-level key (none when the whole document is not an object), where in it, and what is wrong. */
export interface ConfigProblem {
  key?: string;
  path: string;
  message: string;
}

type ConfigKey = keyof typeof configSchema.shape;
const CONFIG_KEYS = Object.keys(configSchema.shape) as ConfigKey[];

/**
 * Validates key by key with the schema's own per-key parsers, so one bad value does not discard
 * the others: each invalid key takes its value in `fallback` (the last good settings) or, without
 * one, its default, and is reported. Unknown keys are reported (settingsCheck blocks on them: one may be a misspelt money key).
 */
export function checkConfig(raw: unknown, fallback?: Config): { config: Config; problems: ConfigProblem[] } {
  // Nothing given is no settings; a document of `null` is not settings (a file saved half-edited), so it counts as invalid.
  const input = raw === undefined ? {} : raw;
  const problems: ConfigProblem[] = [];
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    problems.push({ path: formatIssuePath([]), message: `expected an object of settings, not ${input === null ? "null" : Array.isArray(input) ? "an array" : typeof input}` });
  }
  const values: Record<string, unknown> = problems.length ? {} : (input as Record<string, unknown>);
  for (const key of Object.keys(values)) {
    if (!Object.hasOwn(configSchema.shape, key)) problems.push({ key, path: key, message: "not a Bedrock Budget setting (misspelt?)" }); // own keys: `constructor`, `__proto__` are not settings
  }
  const config: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const result = configSchema.shape[key].safeParse(values[key]);
    let value: unknown = result.data;
    const reserved = reservedKeyPath(values[key]);
    if (reserved) {
      problems.push({ key, path: formatIssuePath([key, ...reserved]), message: RESERVED_KEY_MESSAGE });
      value = fallback ? fallback[key] : configSchema.shape[key].safeParse(undefined).data;
    } else if (!result.success) {
      for (const issue of result.error.issues) problems.push({ key, path: formatIssuePath([key, ...issue.path]), message: issue.message });
      value = fallback ? fallback[key] : configSchema.shape[key].safeParse(undefined).data;
    } else if (key === "callers" && value !== undefined) {
      const tiers = values.tiers;
      const unknown = Object.entries(value as Record<string, string>).find(([, tier]) => typeof tiers !== "object" || tiers === null || !Object.hasOwn(tiers, tier));
      if (unknown) {
        problems.push({ key, path: `${key}.${unknown[0]}`, message: `names tier "${unknown[1]}", which is not a key of tiers` });
        value = fallback ? fallback.callers : undefined;
      }
    } else if (key === "tiers" && value !== undefined) {
      const dup = Object.entries(value as Record<string, TierConfig>).map(([name, t]) => [name, firstDuplicateCapId(t.caps ?? [])] as const).find(([, d]) => d);
      if (dup) {
        problems.push({ key, path: `${key}.${dup[0]}.caps`, message: `two caps have the id "${dup[1]}"` });
        value = fallback ? fallback.tiers : undefined;
      }
    } else if (key === "caps") {
      const duplicate = firstDuplicateCapId(value as CapConfig[]);
      if (duplicate) {
        problems.push({ key, path: key, message: `two caps have the id "${duplicate}"` });
        value = fallback ? fallback.caps : [];
      }
    }
    if (value !== undefined) config[key] = value;
  }
  // Every key was parsed by its own schema entry above, so this is a Config.
  return { config: config as Config, problems };
}

export type CapAction = "block" | "warn" | "downgrade" | "clamp";

/** A cap's action; `block` when unset. */
export function capAction(cap: Pick<CapConfig, "action">): CapAction {
  return cap.action ?? "block";
}

/** The fraction of a downgrade cap's limit from which it downgrades; 0.8 when unset. */
export const DEFAULT_DOWNGRADE_AT = 0.8;

/** Stable id of a cap: its own id, else one derived from what it limits. */
export function capId(cap: CapConfig): string {
  return cap.id ?? `${cap.scope}-${cap.window}${cap.model ? `-${cap.model}` : ""}`;
}

function firstDuplicateCapId(caps: CapConfig[]): string | undefined {
  const seen = new Set<string>();
  for (const cap of caps) {
    const id = capId(cap);
    if (seen.has(id)) return id;
    seen.add(id);
  }
  return undefined;
}

/** `caps[1].limitUsd`: where a zod issue is, as the user writes the key; `root` names the whole document. */
export function formatIssuePath(path: PropertyKey[], root = "(config)"): string {
  if (path.length === 0) return root;
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`))
    .join("");
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** A URL with a user name or password (`https://user:pw@host/`): fetch refuses to send to one. */
export function hasUrlCredentials(text: string): boolean {
  try {
    const url = new URL(text);
    return url.username !== "" || url.password !== "";
  } catch {
    return false;
  }
}

/** An alert webhook must be https://, or http:// to this machine (a local relay or test receiver): alerts name caps and spend. */
export function isAlertWebhookUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && (url.hostname === "localhost" || url.hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(url.hostname));
}
