/** Reads the standalone config file: the same keys and validation as the VS Code settings. */
import { lstatSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { duplicateKeys } from "./duplicateKeys";
import { isUnderHome, parseConfig, type Config } from "./schema";

export class ConfigError extends Error {
  constructor(readonly source: string, readonly problems: string[]) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

export async function loadConfigFile(file: string): Promise<Config> {
  return validated(await readConfigFile(file), file);
}

/** The file's JSON, not yet validated; a ConfigError when it cannot be read or parsed. */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(file, [`not valid JSON: ${(err as Error).message}`]);
  }
  const duplicates = duplicateKeys(text);
  if (duplicates.length > 0) {
    throw new ConfigError(file, duplicates.map((key) => `${key}: set twice; JSON keeps only the last, so the first would be dropped without a word. Keep one`));
  }
  return value;
}

/**
 * Whether anything is at `file`, a broken symbolic link included: such a file is read (and its
 * error reported), never taken for "no configuration", which would run without caps.
 */
export function configFileThere(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ENOTDIR";
  }
}

export function validated(raw: unknown, source: string): Config {
  const result = parseConfig(raw);
  if (!result.ok) throw new ConfigError(source, result.errors);
  return result.config;
}

export const DEFAULT_LEDGER_DIR = path.join(os.homedir(), ".bedrock-budget");
export const DEFAULT_CONFIG_FILE = path.join(DEFAULT_LEDGER_DIR, "config.json");

export function ledgerDirOf(config: Pick<Config, "ledgerDir">): string {
  return config.ledgerDir ? path.resolve(expandHome(config.ledgerDir)) : DEFAULT_LEDGER_DIR;
}

export function userOf(config: Config): string {
  if (config.user) return config.user;
  try {
    return os.userInfo().username;
  } catch {
    return "unknown";
  }
}

export function timeZoneOf(config: Config): string {
  return config.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The team ledger folder `teamLedger` names (not a redis:// URL), `~` expanded as for ledgerDir. */
export function teamFolderOf(teamLedger: string): string {
  return path.resolve(expandHome(teamLedger));
}

function expandHome(p: string): string {
  return isUnderHome(p) ? path.join(os.homedir(), p.slice(1)) : p;
}
