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

/** Logs a message that may repeat, under a key naming what repeats. */
export type RepeatLog = (level: Exclude<LogLevel, "debug">, key: string, message: string) => void;

/**
 * Says a repeating message (same key) once, then at most once per `intervalMs` with how often it
 * came in between: a full disk or an unpriced model in a retry loop would write a line per call
 * and bury everything else in the log. Keys are the caller's to choose (a model id, a reason).
 */
export function repeatFilter(log: Logger, intervalMs = 60_000, now: () => number = Date.now): RepeatLog {
  const seen = new Map<string, { saidAt: number; since: number }>();
  return (level, key, message) => {
    const t = now();
    const s = seen.get(key);
    if (s && t - s.saidAt < intervalMs) {
      s.since++;
      return;
    }
    if (!s && seen.size >= 1_000) seen.clear(); // bounded: keys come from calls (model ids)
    log[level](s && s.since > 0 ? `${message} (${s.since} more time(s) since ${new Date(s.saidAt).toISOString()})` : message);
    seen.set(key, { saidAt: t, since: 0 });
  };
}
