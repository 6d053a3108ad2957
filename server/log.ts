/** One small logger interface: the CLI writes to stderr, the language server to its console. */
export type LogLevel = "error" | "warn" | "info" | "debug";
const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  setLevel(level: LogLevel): void;
}

export function createLogger(sink: (level: LogLevel, line: string) => void, level: LogLevel = "info"): Logger {
  let current = level;
  const at = (l: LogLevel) => (message: string) => {
    if (ORDER[l] <= ORDER[current]) sink(l, message);
  };
  return {
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    setLevel: (l) => {
      current = l;
    },
  };
}

/** `label` marks every line (`[simulated]` in try-it mode). */
export const stderrLogger = (level: LogLevel = "info", label?: string) =>
  createLogger((l, line) => process.stderr.write(`${new Date().toISOString()} ${l.padEnd(5)} ${label ? `${label} ` : ""}${line}\n`), level);

export const silentLogger = () => createLogger(() => undefined, "error");
