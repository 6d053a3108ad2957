/**
 * The one rule for which caps apply to a call: a cap's scope (model glob, callers, tags) against
 * the call's subject (model id or base model id, who called, the call's tags).
 */
import picomatch from "picomatch";

/** What a cap can be scoped by, as the config writes it (every part optional: unset applies to all). */
export interface CapScope {
  /** Glob over model ids. */
  model?: string;
  /** Access key ids, AWS profile names, `apikey:<hash>` ids or user names; the cap applies to calls of any of them. */
  callers?: readonly string[];
  /** Every pair must be among the call's tags. */
  tags?: Readonly<Record<string, string>>;
}

/** Who made a call, on what, with which tags: everything a cap can be scoped by. */
export interface CallSubject {
  modelId: string;
  baseModelId?: string;
  /** The SigV4 access key id, or `apikey:<sha256 prefix>`; unknown (a code lens, an old journal line): caller-scoped caps do not apply. */
  caller?: string;
  /** The AWS profile whose credentials verified the call, when it was one named in `callers`. */
  callerProfile?: string;
  /** The ledger's user. */
  user?: string;
  tags?: Readonly<Record<string, string>>;
}

/** Answers whether a cap applies to a call: a subject, or (model id, base model id) for a call whose caller and tags are unknown. */
export type CapMatcher = (subject: CallSubject | string, baseModelId?: string) => boolean;

/**
 * The matcher of a cap scoped by `scope` (a glob alone, or undefined: every call). Bash globs so
 * `*` crosses `/` in ARNs; model ids are matched case-insensitively; callers and tags exactly.
 */
export function capMatcher(scope: CapScope | string | undefined): CapMatcher {
  const { model, callers, tags } = typeof scope === "string" ? { model: scope } : (scope ?? {});
  const matchesModel = model === undefined ? () => true : picomatch(model, { bash: true, nocase: true, dot: true });
  const callerSet = callers === undefined ? undefined : new Set(callers);
  const tagPairs = tags === undefined ? [] : Object.entries(tags);
  return (subjectOrModel, base) => {
    // Stryker disable next-line ConditionalExpression: `baseModelId: undefined` matches as no base model too.
    const s: CallSubject = typeof subjectOrModel === "string" ? { modelId: subjectOrModel, ...(base !== undefined ? { baseModelId: base } : {}) } : subjectOrModel;
    if (!(matchesModel(s.modelId) || (s.baseModelId !== undefined && matchesModel(s.baseModelId)))) return false;
    if (callerSet && !callerNames(s).some((name) => callerSet.has(name))) return false;
    return tagPairs.every(([k, v]) => s.tags?.[k] === v);
  };
}

/** The names a call's caller goes by, most specific first: access key id (or API key hash), profile, user. */
export function callerNames(s: Pick<CallSubject, "caller" | "callerProfile" | "user">): string[] {
  return [s.caller, s.callerProfile, s.user].filter((n): n is string => n !== undefined && n !== "");
}

/** True when a cap is scoped by who calls or by tags: a code lens, which knows neither, cannot tell whether it applies. */
export function scopedBeyondModel(scope: CapScope): boolean {
  return scope.callers !== undefined || (scope.tags !== undefined && Object.keys(scope.tags).length > 0);
}

/** The caps (each with its matcher) that apply to a call. */
export function capsFor<C extends { id: string; matches: CapMatcher }>(caps: readonly C[], subject: CallSubject | string, baseModelId?: string): C[] {
  return caps.filter((c) => c.matches(subject, baseModelId));
}
