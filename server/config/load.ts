/** Reads the standalone config file: the same keys and validation as the VS Code settings. */
import { lstatSync } from "node:fs";
import { readFile, realpath, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { duplicateKeys } from "./duplicateKeys";
import { systemTimeZone } from "./systemTimeZone";
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
  const unsafe = await strangerCanWrite(file).catch((err: NodeJS.ErrnoException) => `cannot check who may write the file (${err.code ?? err.message})`);
  if (unsafe) throw new ConfigError(file, [unsafe]);
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
 * Why another local user could change this file's caps (and have them applied live), if they
 * can: it is writable by everyone, owned by another user (not root), or in a folder everyone may
 * write without the sticky bit (the file could be replaced). Not group-writable: with one group
 * per user (umask 002) that is the usual, harmless case. POSIX systems only.
 */
async function strangerCanWrite(file: string): Promise<string | undefined> {
  if (process.platform === "win32" || typeof process.getuid !== "function") return undefined;
  const uid = process.getuid();
  const target = await realpath(file);
  const st = await stat(target);
  const shown = target === file ? file : `${file} (${target})`;
  if (st.mode & 0o002) return `${shown} is writable by every user of this machine, who could change its caps; run chmod o-w ${JSON.stringify(target)}`;
  if (st.uid !== uid && st.uid !== 0) return `${shown} belongs to another user (uid ${st.uid}), who could change its caps; use a file of your own`;
  const dir = await stat(path.dirname(target));
  if (dir.mode & 0o002 && !(dir.mode & 0o1000)) return `${path.dirname(target)} is writable by every user, who could replace ${path.basename(target)}; keep the file in a folder of your own`;
  return undefined;
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
  return config.timeZone ?? systemTimeZone();
}

/** The team ledger folder `teamLedger` names (not a redis:// URL), `~` expanded as for ledgerDir. */
export function teamFolderOf(teamLedger: string): string {
  return path.resolve(expandHome(teamLedger));
}

function expandHome(p: string): string {
  return isUnderHome(p) ? path.join(os.homedir(), p.slice(1)) : p;
}
