/**
 * The reference app's configuration: each option from its flag, else its environment
 * variable, else its default. Secrets (the access token, the API key) come from the
 * environment only, so they never show in a process listing.
 */

/** Everything `main.ts` needs to know to start. */
export interface AppConfig {
  help: boolean;
  stdio: boolean;
  host: string;
  port: number;
  /** The demo agent's pause before each word. */
  delayMs: number;
  /** The page's access token; undefined: a random one per start. */
  token: string | undefined;
  /** The Redis server that keeps the conversations, shared with other nodes; undefined: in memory. */
  redis: string | undefined;
  /** Serve Prometheus metrics at `/metrics`, behind the page's token. */
  metrics: boolean;
  /** How log lines look: `human` (`level message key=value …`) or `json` (one object per line). */
  logFormat: "human" | "json";
  /** What the gateway speaks on `/api/ws`: Switchboard's own protocol, or hermes-agent's (docs/hermes.md). */
  protocol: Protocol;
  /** Set when an OpenAI-compatible endpoint replaces the demo agent. */
  openai: { baseUrl: string; apiKey: string | undefined; model: string } | undefined;
}

/** The protocols the app can speak on `/api/ws` and stdio. */
export const PROTOCOLS = ["switchboard", "hermes"] as const;
/** One of `PROTOCOLS`. */
export type Protocol = (typeof PROTOCOLS)[number];

/** A flag or variable with a bad value, or an unknown flag. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** What `--help` prints. */
export const USAGE = `Switchboard reference agent app: a web chat with an agent, over the Switchboard gateway.

Usage: npm start -- [options]      (also: npx deno task start -- [options], npx bun run start [options], npx switchboard [options])

Options (flag, environment variable, default):
  --host H             SWITCHBOARD_HOST             127.0.0.1    address to listen on
  --port N             SWITCHBOARD_PORT             8787         port (0 = any free port)
  --stdio              -                            off          speak JSON-RPC on stdin/stdout instead (NDJSON)
  --delay-ms N         SWITCHBOARD_DELAY_MS         50           the demo agent's pause before each word
  --redis URL          SWITCHBOARD_REDIS_URL        -            keep conversations in Redis, shared with other nodes, e.g. redis://127.0.0.1:6379
  --metrics            SWITCHBOARD_METRICS=1        off          serve Prometheus metrics at /metrics, behind the token (not with --stdio)
  --log-format F       SWITCHBOARD_LOG_FORMAT       human        log lines (stderr) as human text or json, one object per line
  --protocol P         SWITCHBOARD_PROTOCOL         switchboard  speak switchboard or hermes (hermes-agent's clients; see docs/hermes.md)
  --openai-base-url U  SWITCHBOARD_OPENAI_BASE_URL  -            use an OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1
  --openai-model M     SWITCHBOARD_OPENAI_MODEL     gpt-4o-mini  the model to ask
  -                    SWITCHBOARD_OPENAI_API_KEY   -            sent as a bearer token to the endpoint
  -                    SWITCHBOARD_TOKEN            random       the page's access token (letters, digits, - . _ ~)
  -h, --help                                                     show this help

The web chat is at / (open the printed URL: it carries the access token), the gateway at
/api/ws, a health check at /healthz.
`;

const VALUE_FLAGS = [
  "--host",
  "--port",
  "--delay-ms",
  "--redis",
  "--log-format",
  "--protocol",
  "--openai-base-url",
  "--openai-model",
] as const;
type ValueFlag = (typeof VALUE_FLAGS)[number];

/** Reads `args` (without the program) and `env`; throws `ConfigError`. */
export function parseConfig(args: readonly string[], env: Record<string, string | undefined>): AppConfig {
  const flags = new Map<ValueFlag, string>();
  let help = false;
  let stdio = false;
  let metrics = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    // `deno task start -- …` passes the `--` on; there are no operands for it to set apart.
    if (arg === "--") continue;
    if (arg === "-h" || arg === "--help") help = true;
    else if (arg === "--stdio") stdio = true;
    else if (arg === "--metrics") metrics = true;
    else {
      const [name, inline] = arg.startsWith("--") && arg.includes("=")
        ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
        : [arg, undefined];
      if (!(VALUE_FLAGS as readonly string[]).includes(name)) {
        throw new ConfigError(`unknown option ${arg} (see --help)`);
      }
      const value = inline ?? args[++i];
      if (value === undefined) throw new ConfigError(`${name} needs a value`);
      flags.set(name as ValueFlag, value);
    }
  }
  const pick = (flag: ValueFlag, variable: string) => flags.get(flag) ?? nonEmpty(env[variable]);
  const baseUrl = pick("--openai-base-url", "SWITCHBOARD_OPENAI_BASE_URL");
  const token = nonEmpty(env.SWITCHBOARD_TOKEN);
  // The token travels in the WebSocket subprotocol list, which allows only token characters.
  if (token !== undefined && !/^[A-Za-z0-9._~-]+$/.test(token)) {
    throw new ConfigError("SWITCHBOARD_TOKEN may hold only letters, digits and - . _ ~");
  }
  return {
    help,
    stdio,
    host: pick("--host", "SWITCHBOARD_HOST") ?? "127.0.0.1",
    port: integer(pick("--port", "SWITCHBOARD_PORT") ?? "8787", "port", 65_535),
    delayMs: integer(pick("--delay-ms", "SWITCHBOARD_DELAY_MS") ?? "50", "delay", 60_000),
    token,
    redis: redisUrl(pick("--redis", "SWITCHBOARD_REDIS_URL")),
    metrics: metricsServed(metrics || onOff(env.SWITCHBOARD_METRICS, "SWITCHBOARD_METRICS"), stdio),
    logFormat: logFormat(pick("--log-format", "SWITCHBOARD_LOG_FORMAT") ?? "human"),
    protocol: protocolOf(pick("--protocol", "SWITCHBOARD_PROTOCOL") ?? "switchboard"),
    openai: baseUrl === undefined ? undefined : {
      baseUrl: httpUrl(baseUrl),
      apiKey: nonEmpty(env.SWITCHBOARD_OPENAI_API_KEY),
      model: pick("--openai-model", "SWITCHBOARD_OPENAI_MODEL") ?? "gpt-4o-mini",
    },
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function integer(text: string, what: string, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > max) {
    throw new ConfigError(`the ${what} must be a whole number from 0 to ${max}, not "${text}"`);
  }
  return value;
}

/** A yes/no variable: `1`/`true` or `0`/`false` (unset or empty: no). */
function onOff(text: string | undefined, variable: string): boolean {
  const value = nonEmpty(text)?.toLowerCase();
  if (value === undefined || value === "0" || value === "false") return false;
  if (value === "1" || value === "true") return true;
  throw new ConfigError(`${variable} must be 1 or 0, not "${text}"`);
}

function metricsServed(metrics: boolean, stdio: boolean): boolean {
  // /metrics is a route of the app's HTTP server, which --stdio does not start.
  if (metrics && stdio) throw new ConfigError("--metrics needs the HTTP server: it cannot go with --stdio");
  return metrics;
}

function logFormat(text: string): "human" | "json" {
  if (text !== "human" && text !== "json") throw new ConfigError(`the log format is human or json, not "${text}"`);
  return text;
}

function protocolOf(text: string): Protocol {
  if (!(PROTOCOLS as readonly string[]).includes(text)) {
    throw new ConfigError(`the protocol is ${PROTOCOLS.join(" or ")}, not "${text}"`);
  }
  return text as Protocol;
}

function redisUrl(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const protocol = URL.canParse(text) ? new URL(text).protocol : undefined;
  if (protocol !== "redis:" && protocol !== "rediss:") {
    throw new ConfigError(`the Redis URL must look like redis://127.0.0.1:6379, not "${text}"`);
  }
  return text;
}

function httpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`the OpenAI base URL is not a URL: "${text}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`the OpenAI base URL must be http or https: "${text}"`);
  }
  return url.href;
}
