/** The one rule for which caps apply to a call: a cap's model glob against the model id or its base model id. */
import picomatch from "picomatch";

/** Answers whether a cap applies to a call on `modelId` (or on the base model it resolves to). */
export type CapMatcher = (modelId: string, baseModelId?: string) => boolean;

/**
 * The matcher of a cap scoped by `glob` (undefined: every model). Bash globs so `*` crosses `/`
 * in ARNs; model ids are matched case-insensitively.
 */
export function capMatcher(glob: string | undefined): CapMatcher {
  if (glob === undefined) return () => true;
  const matches = picomatch(glob, { bash: true, nocase: true, dot: true });
  return (modelId, baseModelId) => matches(modelId) || (baseModelId !== undefined && matches(baseModelId));
}

/** The caps (each with its matcher) that apply to a call. */
export function capsFor<C extends { id: string; matches: CapMatcher }>(caps: readonly C[], modelId: string, baseModelId?: string): C[] {
  return caps.filter((c) => c.matches(modelId, baseModelId));
}
