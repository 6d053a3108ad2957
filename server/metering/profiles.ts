/**
 * What an application inference profile stands for, read from the control plane's answer
 * (GetInferenceProfile `models[].modelArn`): the one model behind it, and whether it routes like a
 * global profile, a geographic one, or stays in one region (the rate differs). Pure: the lookup
 * itself is in profileLookup.ts.
 */
import { parseModelId, type ProfileKind } from "./modelId";

/** The model behind an application inference profile, as the price book uses it. */
export interface ResolvedProfile {
  baseModelId: string;
  profile: ProfileKind;
  /** The model ARNs the control plane listed (kept for the record and the dashboard). */
  modelArns: string[];
  /** When the control plane answered (ISO time). */
  resolvedAt: string;
}

/** A lookup that did not give a model: priced at the dearest rate, and said so. */
export interface FailedProfile {
  failed: string;
}

export type ProfileAnswer = ResolvedProfile | FailedProfile;

export function isResolved(answer: ProfileAnswer | undefined): answer is ResolvedProfile {
  return answer !== undefined && "baseModelId" in answer;
}

/**
 * Reads `models[].modelArn` of a GetInferenceProfile answer. One base model is required (a profile
 * naming two different models cannot be priced as either). A model ARN without a region (as global
 * profiles list) makes it global, the cheapest kind, so only that positive sign makes it global;
 * several regions make it geographic; one region is an in-region call. Geographic and in-region
 * cost the same (the regional premium), so a wrong guess between those two costs nothing.
 */
export function profileFromModels(profileArn: string, models: readonly { modelArn?: string | undefined }[] | undefined, at: Date): ProfileAnswer {
  const arns = (models ?? []).map((m) => m.modelArn).filter((a): a is string => typeof a === "string" && a.length > 0);
  if (arns.length === 0) return { failed: `the control plane named no model behind ${profileArn}` };
  const bases = new Set<string>();
  const regions = new Set<string>();
  let global = false;
  for (const arn of arns) {
    const parsed = parseModelId(arn);
    if (parsed.baseModelId === undefined) return { failed: `the model behind ${profileArn} is itself opaque (${arn})` };
    bases.add(parsed.baseModelId);
    if (parsed.profile === "global" || (parsed.arnKind !== undefined && parsed.arnRegion === undefined)) global = true;
    if (parsed.arnRegion) regions.add(parsed.arnRegion);
  }
  if (bases.size !== 1) return { failed: `${profileArn} names ${bases.size} different models (${[...bases].join(", ")})` };
  const profile: ProfileKind = global ? "global" : regions.size > 1 ? "geographic" : "none";
  return { baseModelId: [...bases][0]!, profile, modelArns: arns, resolvedAt: at.toISOString() };
}
