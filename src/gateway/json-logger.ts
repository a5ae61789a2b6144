/** `jsonLogger`: the `Logger` that writes JSON lines, for log collectors. */
import { isSpanContextValid, trace } from "@opentelemetry/api";
import type { LogFields, Logger, LogLevel } from "./logger.ts";

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The logger's own keys: a field of the same name is left out rather than overwrite one. */
const OWN_KEYS = new Set(["time", "level", "message", "trace_id", "span_id"]);

/**
 * A logger writing one JSON object per line to `console.error` (stderr on every server
 * runtime): `time` (ISO 8601), `level`, `message`, then the entry's fields under their own
 * names, and `trace_id`/`span_id` when an OpenTelemetry span is active (as it is in a handler
 * when the application registered a tracer and a context manager). An `Error` field becomes its
 * stack. Entries below `level` are dropped.
 */
export function jsonLogger(level: LogLevel = "info"): Logger {
  const min = rank[level];
  const line = (at: LogLevel) => (message: string, fields?: LogFields) => {
    if (rank[at] < min) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level: at, message };
    const span = trace.getActiveSpan()?.spanContext();
    if (span && isSpanContextValid(span)) {
      entry.trace_id = span.traceId;
      entry.span_id = span.spanId;
    }
    if (fields) { for (const key in fields) if (!OWN_KEYS.has(key)) entry[key] = fields[key]; }
    console.error(serialise(entry));
  };
  return { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };
}

/** One line of JSON, whatever the fields hold: errors as their stack, BigInts as text, anything unserialisable as text. */
function serialise(entry: Record<string, unknown>): string {
  try {
    return JSON.stringify(entry, readable);
  } catch {
    // A cycle, or a value whose toJSON throws: each field on its own, as text if it must be.
    const safe: Record<string, unknown> = {};
    for (const key in entry) {
      try {
        safe[key] = JSON.parse(JSON.stringify(entry[key], readable) ?? "null");
      } catch {
        safe[key] = String(entry[key]);
      }
    }
    return JSON.stringify(safe);
  }
}

function readable(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.stack ?? String(value);
  if (typeof value === "bigint") return value.toString();
  return value;
}
