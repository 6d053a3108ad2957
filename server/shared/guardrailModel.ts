/**
 * Where a guardrail's spend is grouped by model, and which calls the call log shows under a model.
 * No imports: the dashboard page (webview/) uses it too.
 */

const GUARDRAIL_PREFIX = "guardrail/";

/**
 * The model id a guardrail's spend is recorded and grouped under: ApplyGuardrail calls are journaled
 * with it, and the reports put an attached guardrail's part of a model call there too, so one
 * guardrail is one row whichever way it was used.
 */
export function guardrailModelKey(guardrailId: string): string {
  return `${GUARDRAIL_PREFIX}${guardrailId}`;
}

/** Whether a model id is a guardrail's key (guardrailModelKey): spend that is a guardrail's, not a model's. */
export function isGuardrailModelKey(modelId: string): boolean {
  return modelId.startsWith(GUARDRAIL_PREFIX);
}

/**
 * Whether the call log lists a settled call under `model`: the model it named or its base model,
 * or, for `guardrail/<id>`, a model call with that guardrail attached (its part of the cost is
 * charted there, so the calls that make up the series are listed).
 */
export function callUnderModel(call: { modelId: string; baseModelId: string; guardrail?: { id: string } }, model: string): boolean {
  return call.modelId === model || call.baseModelId === model || (call.guardrail !== undefined && guardrailModelKey(call.guardrail.id) === model);
}
