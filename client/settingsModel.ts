/**
 * The `bedrockBudget` settings as the user, not a repository, set them (pure: no `vscode`, tested
 * alone). VS Code drops a workspace's value by scope only for a key the extension registers; an
 * unregistered dotted key in a repository's .vscode/settings.json, such as
 * `"bedrockBudget.pricing.*": {"inputPer1M": 0, …}`, passes that filter and is merged into the
 * user's `pricing` object by `getConfiguration().get("bedrockBudget")`. So the section is built key
 * by key from the registered keys only: a machine-scoped key from the user's settings (else its
 * default) alone, and only a window-scoped key (a harmless one) from the effective value.
 */

export const SECTION = "bedrockBudget";

/** One key package.json registers under `bedrockBudget.`, and whether a workspace may set it. */
export interface RegisteredSetting {
  key: string;
  workspaceMay: boolean;
}

/** The layers of one setting, as `WorkspaceConfiguration.inspect` gives them (the ones used here). */
export interface SettingLayers {
  defaultValue?: unknown;
  /** User settings (local, or Remote settings in a remote window). */
  globalValue?: unknown;
}

/** What VS Code answers about one key of the section (`WorkspaceConfiguration` narrowed to two calls). */
export interface SettingsReader {
  inspect(key: string): SettingLayers | undefined;
  /** The effective value: default, user, workspace and folder values merged. */
  get(key: string): unknown;
  /** The top-level keys the merged section holds, registered or not. */
  keys(): string[];
}

/**
 * The keys package.json's `contributes.configuration` registers (generated from the one config
 * schema by scripts/sync-settings.ts), each with its declared scope. Only `window` lets a workspace
 * in: a key with any other scope, or none, is read from user settings (fail closed).
 */
export function registeredSettings(packageJson: unknown): RegisteredSetting[] {
  const configuration = (packageJson as { contributes?: { configuration?: unknown } } | undefined)?.contributes?.configuration;
  const blocks = (Array.isArray(configuration) ? configuration : [configuration]) as Array<{ properties?: Record<string, { scope?: unknown }> } | undefined>;
  const prefix = `${SECTION}.`;
  return blocks.flatMap((block) =>
    Object.entries(block?.properties ?? {})
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, property]) => ({ key: name.slice(prefix.length), workspaceMay: property.scope === "window" })),
  );
}

/** One key's value: the effective one if a workspace may set it, else the user's, else the default. */
export function trustedValue(setting: RegisteredSetting, reader: SettingsReader): unknown {
  if (setting.workspaceMay) return reader.get(setting.key);
  const layers = reader.inspect(setting.key);
  return layers?.globalValue !== undefined ? layers.globalValue : layers?.defaultValue;
}

/**
 * The section as the server may see it: registered keys, each from the layers it trusts; and a
 * key the extension does not register that the user's own settings set (`"bedrockBudget.cap"`
 * for `caps`), so the server names it and blocks: dropped here, the caps it meant would be missing
 * without a word. Such a key from a repository's settings is left out (it cannot block calls).
 */
export function trustedSettings(settings: readonly RegisteredSetting[], reader: SettingsReader): Record<string, unknown> {
  const section: Record<string, unknown> = {};
  for (const setting of settings) {
    const value = trustedValue(setting, reader);
    if (value !== undefined) section[setting.key] = value;
  }
  const registered = new Set(settings.map((s) => s.key));
  for (const key of reader.keys()) {
    if (registered.has(key) || Object.hasOwn(section, key)) continue;
    const users = reader.inspect(key)?.globalValue;
    if (users !== undefined) section[key] = users;
  }
  return section;
}

/**
 * The answer to one item of a workspace/configuration request: for our section (whole, a key of
 * it, or the whole configuration that contains it) built from `trusted`, never VS Code's merged
 * value; for any other section, VS Code's own answer.
 */
export function answerItem(section: string | null | undefined, vscodeAnswer: unknown, trusted: () => Record<string, unknown>): unknown {
  if (!section) {
    const whole = vscodeAnswer !== null && typeof vscodeAnswer === "object" && !Array.isArray(vscodeAnswer);
    return whole ? { ...vscodeAnswer, [SECTION]: trusted() } : vscodeAnswer;
  }
  if (section === SECTION) return trusted();
  if (!section.startsWith(`${SECTION}.`)) return vscodeAnswer;
  // A key of the section, or deeper: walked as VS Code's get("a.b") walks, in the trusted object.
  let value: unknown = trusted();
  for (const part of section.slice(SECTION.length + 1).split(".")) {
    value = value !== null && typeof value === "object" && Object.hasOwn(value, part) ? (value as Record<string, unknown>)[part] : undefined;
  }
  return value ?? null;
}
