/**
 * Reads the `bedrockBudget` settings for the background process and the client's own use, through
 * settingsModel.ts: never VS Code's merged section, which a repository's unregistered dotted keys
 * reach (see there). The registered keys and scopes come from this extension's own package.json.
 */
import * as vscode from "vscode";
import { registeredSettings, SECTION, trustedSettings, trustedValue, type RegisteredSetting, type SettingsReader } from "./settingsModel";

export class TrustedSettings {
  private readonly registered: ReadonlyMap<string, RegisteredSetting>;

  constructor(packageJson: unknown) {
    this.registered = new Map(registeredSettings(packageJson).map((s) => [s.key, s]));
  }

  /** The whole section, as the server is given it. */
  all(): Record<string, unknown> {
    return trustedSettings([...this.registered.values()], reader());
  }

  /** One registered key's value (undefined for a key the extension does not register). */
  get(key: string): unknown {
    const setting = this.registered.get(key);
    return setting ? trustedValue(setting, reader()) : undefined;
  }
}

// Read afresh each time: settings change while the window is open. Machine- and window-scoped
// values do not vary by folder, so no resource is passed.
function reader(): SettingsReader {
  const config = vscode.workspace.getConfiguration(SECTION);
  return {
    inspect: (key) => config.inspect(key),
    get: (key) => config.get(key),
    keys: () => {
      const merged = vscode.workspace.getConfiguration().get(SECTION);
      return merged !== null && typeof merged === "object" ? Object.keys(merged) : [];
    },
  };
}
