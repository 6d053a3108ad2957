/** Editor settings → the one config schema. Pure. */
import { parseConfig, type ConfigResult } from "./schema";

/**
 * Settings UIs write "" or null for a cleared value; those mean "unset" (the default applies),
 * not an invalid value. Errors name the setting as the user sees it: `bedrockBudget.<key>`.
 */
export function configFromSettings(raw: unknown, prefix = "bedrockBudget."): ConfigResult {
  const cleaned: Record<string, unknown> = {};
  if (raw && typeof raw === "object" && !Array.isArray(raw)) {
    for (const [key, value] of Object.entries(raw)) {
      if (value === null || value === undefined || value === "") continue;
      cleaned[key] = value;
    }
  }
  const result = parseConfig(cleaned);
  return result.ok ? result : { ok: false, errors: result.errors.map((e) => (e.startsWith("(config)") ? e.replace("(config)", prefix.slice(0, -1)) : prefix + e)) };
}
