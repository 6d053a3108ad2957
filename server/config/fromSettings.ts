/** Editor settings → the one config schema, checked key by key. Pure. */
import type { Config } from "./schema";
import { checkSettings, type SettingsCheck } from "./settingsCheck";

export const SETTINGS_PREFIX = "bedrockBudget.";

/** How a user fixes a setting that blocks calls, in the editor. */
export const FIX_IN_EDITOR = "Correct it in your user settings (Preferences: Open User Settings) or remove it to use the default; calls are admitted again as soon as it is valid.";

/**
 * Settings UIs write "" or null for a cleared value; those mean "unset" (the default applies),
 * not an invalid value. Errors name the setting as the user sees it: `bedrockBudget.<key>`.
 */
export function configFromSettings(raw: unknown, previous?: Config, prefix = SETTINGS_PREFIX): SettingsCheck {
  // An editor with no section for us (another LSP client) may answer null: nothing is set.
  if (raw === null || raw === undefined) return checkSettings({}, previous, prefix);
  if (typeof raw !== "object" || Array.isArray(raw)) return checkSettings(raw, previous, prefix);
  const cleaned: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === null || value === undefined || value === "") continue;
    cleaned[key] = value;
  }
  return checkSettings(cleaned, previous, prefix);
}
