/**
 * Turns a model id as a caller sends it (already URL-decoded) into the base model a price row is
 * written for: system inference-profile prefixes and ARNs are stripped; opaque ARNs (application
 * inference profiles, provisioned or custom models, prompts, routers) have no base model we can know
 * without a control-plane call, so `baseModelId` is undefined and the caller prices them as unknown.
 */

export type ProfileKind = "global" | "geographic" | "none";

export type ArnKind =
  | "foundation-model"
  | "inference-profile"
  | "application-inference-profile"
  | "provisioned-model"
  | "custom-model"
  | "custom-model-deployment"
  | "imported-model"
  | "prompt"
  | "prompt-router"
  | "default-prompt-router"
  | "other";

export interface ParsedModelId {
  requestedId: string;
  /** The foundation model id (e.g. `anthropic.claude-sonnet-4-5-20250929-v1:0`), or undefined when opaque. */
  baseModelId: string | undefined;
  /** `global.` profiles, geographic profiles (`us.`, `eu.`, …), or neither (an in-region call). */
  profile: ProfileKind;
  /** The profile prefix when there is one ("us", "global", …). */
  profilePrefix?: string;
  /** Set when the id was an ARN. */
  arnKind?: ArnKind;
  /** The ARN's region, when it names one (an ARN call is billed in its own region). */
  arnRegion?: string;
}

/** System inference-profile prefixes; `us-gov` must be tried before `us`. */
const PROFILE_PREFIXES = ["us-gov", "global", "apac", "us", "eu", "jp", "au", "ca"] as const;

const ARN = /^arn:aws(?:-[a-z-]+)?:bedrock:([a-z0-9-]*):(\d*):([a-z-]+)\/(.+)$/;

const KNOWN_ARN_KINDS: ReadonlySet<string> = new Set<ArnKind>([
  "foundation-model",
  "inference-profile",
  "application-inference-profile",
  "provisioned-model",
  "custom-model",
  "custom-model-deployment",
  "imported-model",
  "prompt",
  "prompt-router",
  "default-prompt-router",
]);

export function parseModelId(requestedId: string): ParsedModelId {
  const id = requestedId.trim();
  const arn = ARN.exec(id);
  if (!arn) return { requestedId, ...stripProfile(id) };

  const [, region = "", , kindText = "", resource = ""] = arn;
  const arnKind: ArnKind = KNOWN_ARN_KINDS.has(kindText) ? (kindText as ArnKind) : "other";
  const where = region ? { arnRegion: region } : {};
  if (arnKind === "foundation-model") {
    return { requestedId, baseModelId: resource, profile: "none", arnKind, ...where };
  }
  if (arnKind === "inference-profile") {
    return { requestedId, ...stripProfile(resource), arnKind, ...where };
  }
  // Everything else names a resource whose model only the control plane knows.
  return { requestedId, baseModelId: undefined, profile: "none", arnKind, ...where };
}

function stripProfile(id: string): Pick<ParsedModelId, "baseModelId" | "profile" | "profilePrefix"> {
  for (const prefix of PROFILE_PREFIXES) {
    if (id.startsWith(prefix + ".") && id.length > prefix.length + 1) {
      return {
        baseModelId: id.slice(prefix.length + 1),
        profile: prefix === "global" ? "global" : "geographic",
        profilePrefix: prefix,
      };
    }
  }
  return { baseModelId: id, profile: "none" };
}

/**
 * Bedrock's own modelId patterns (botocore data/bedrock-runtime/2023-09-30/service-2.json):
 * `InvokeModelIdentifier` (InvokeModel, InvokeModelWithResponseStream; `ConversationalModelId`,
 * for Converse, accepts the same strings as a whole-string match) and, for CountTokens,
 * `FoundationModelVersionIdentifier`. The service model's patterns are not anchored; they are
 * applied here to the whole id, as the service does.
 */
const INVOKE_MODEL_IDENTIFIER = new RegExp(
  "^(?:" +
    "(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:(([0-9]{12}:custom-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}/[a-z0-9]{12})|(:foundation-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|([0-9]{12}:imported-model/[a-z0-9]{12})|([0-9]{12}:provisioned-model/[a-z0-9]{12})|([0-9]{12}:custom-model-deployment/[a-z0-9]{12})|([0-9]{12}:(inference-profile|application-inference-profile)/[a-zA-Z0-9-:.]+)))" +
    "|([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63}))|(([0-9a-zA-Z][_-]?)+)|([a-zA-Z0-9-:.]+)$" +
    "|(^(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:prompt/[0-9a-zA-Z]{10}(?::[0-9]{1,5})?))$" +
    "|(^arn:aws:sagemaker:[a-z0-9-]+:[0-9]{12}:endpoint/[a-zA-Z0-9-]+$)" +
    "|(^arn:aws(-[^:]+)?:bedrock:([0-9a-z-]{1,20}):([0-9]{12}):(default-)?prompt-router/[a-zA-Z0-9-:.]+$)" +
    ")$",
);
export const INVOKE_MODEL_ID_MAX = 2048;

/** Whether `id` is a model id InvokeModel and Converse accept (the gateway's routes, a cap's `downgradeTo`). */
export function isInvokeModelId(id: string): boolean {
  return id.length <= INVOKE_MODEL_ID_MAX && INVOKE_MODEL_IDENTIFIER.test(id);
}
