/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A pluggable logger. The gateway logs through it and nowhere else (never to stdout). */
export interface Logger {
  /** Per-message detail, e.g. a response dropped because its connection had closed. */
  debug(message: string, fields?: LogFields): void;
  /** Lifecycle, e.g. a connection closed, with its counters. */
  info(message: string, fields?: LogFields): void;
  /** Trouble the gateway handled, e.g. a slow consumer or a refused connection. */
  warn(message: string, fields?: LogFields): void;
  /** Failures, e.g. a handler that threw something other than an `RpcError`. */
  error(message: string, fields?: LogFields): void;
}

/** A log level, named after its `Logger` method: `debug` < `info` < `warn` < `error`. */
export type LogLevel = keyof Logger;

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * A logger writing one line per entry to `console.error` (stderr on every server runtime):
 * `level message key=value …`, values JSON-encoded. Entries below `level` are dropped.
 */
export function consoleLogger(level: LogLevel = "info"): Logger {
  const min = rank[level];
  const line = (at: LogLevel) => (message: string, fields?: LogFields) => {
    if (rank[at] < min) return;
    let text = `${at} ${message}`;
    if (fields) { for (const key in fields) text += ` ${key}=${format(fields[key])}`; }
    console.error(text);
  };
  return { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };
}

function format(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.stack ?? String(value));
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return JSON.stringify(String(value));
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A client-supplied value (a method name, an id) as logs may show it: at most `max`
 * characters, so a log line never carries a message body.
 */
export function preview(value: unknown, max = 64): unknown {
  if (typeof value !== "string") return value;
  return value.length <= max ? value : `${value.slice(0, max)}… (${value.length} chars)`;
}
