#!/usr/bin/env node
/**
 * The reference agent app: `npm start` (also `deno task start`, `bun run start`). Serves the
 * web chat at `/`, the gateway at `/api/ws` and `/healthz`, and prints the page's URL with
 * its access token; or, with `--stdio`, speaks the same protocol on stdin/stdout. With
 * `--protocol hermes` the gateway speaks hermes-agent's protocol instead (no web chat), and the
 * app prints the URL a hermes client dials. `--help` lists the options.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { jsonLogger, Tickets, tokenAuth } from "../mod.ts";
import { serveStdio } from "../stdio.ts";
import { type Agent, demoAgent } from "./agent.ts";
import { type AppConfig, ConfigError, parseConfig, USAGE } from "./config.ts";
import type { AgentGatewayOptions } from "./conversations.ts";
import { createAgentGateway } from "./gateway.ts";
import { createHermesGateway } from "./hermes.ts";
import { hermesSite } from "./hermes-site.ts";
import { openAIAgent } from "./openai.ts";
import { bundlePageScript } from "./page-script.ts";
import { type PageAssets, siteApp } from "./site.ts";

type Runtime = typeof import("../runtime/node.ts");
type Metrics = typeof import("./metrics.ts");

/** This runtime's `serve()` and stdio; every runtime module has the Node one's shape. */
async function loadRuntime(): Promise<Runtime> {
  const name = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
  // Not a literal, so that type-checking for one runtime does not pull in another's module.
  return await import(`../runtime/${name}.ts`);
}

/**
 * The page's files. Run from source, the page script is bundled with the client now, in
 * memory; the package ships it bundled already (`npm run build`), with no bundler installed.
 */
async function loadPage(): Promise<PageAssets> {
  const page = (name: string) => fileURLToPath(new URL(`./page/${name}`, import.meta.url));
  const fromSource = import.meta.url.endsWith(".ts");
  const [html, css, js] = await Promise.all([
    readFile(page("index.html"), "utf8"),
    readFile(page("style.css"), "utf8"),
    fromSource ? bundlePageScript(page("app.js")) : readFile(page("app.js"), "utf8"),
  ]);
  return { html, css, js };
}

function chooseAgent(config: AppConfig): Agent {
  return config.openai ? openAIAgent(config.openai) : demoAgent({ delayMs: config.delayMs });
}

/** The gateway of the configured protocol. */
function createAppGateway(config: AppConfig, options: AgentGatewayOptions) {
  return config.protocol === "hermes" ? createHermesGateway(options) : createAgentGateway(options);
}

/**
 * The store for `--redis`, connected; undefined without it. Exits with one line if the `redis`
 * package is missing (an optional peer dependency) or Redis cannot be reached.
 */
async function openStore(url: string | undefined) {
  if (url === undefined) return undefined;
  let redis: typeof import("../runtime/redis.ts");
  try {
    // Imported only now: an installed copy may lack the `redis` package, and needs it only for --redis.
    redis = await import("../runtime/redis.ts");
  } catch (error) {
    if (!/\bredis\b/.test(String(error))) throw error;
    console.error("switchboard: --redis needs the redis package beside switchboard: npm install redis");
    process.exit(1);
  }
  try {
    return await redis.redisStore({ url });
  } catch (error) {
    // "cannot reach Redis at redis://…: <reason>", one line.
    console.error(`switchboard: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}

/**
 * `--metrics`: the meter provider registered (before the gateway is made) and the `/metrics`
 * route's handler. Exits with one line if the OpenTelemetry SDK packages (optional peer
 * dependencies) are missing.
 */
async function registerMetrics(principalOf: Parameters<Metrics["registerMetrics"]>[0]) {
  let metrics: Metrics;
  try {
    metrics = await import("./metrics.ts");
  } catch (error) {
    if (!/@opentelemetry\//.test(String(error))) throw error;
    console.error(
      "switchboard: --metrics needs the OpenTelemetry SDK beside switchboard: npm install @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus",
    );
    process.exit(1);
  }
  return metrics.registerMetrics(principalOf);
}

/** 128 random bits, URL- and subprotocol-safe. */
function randomToken(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// `process` is global on Node, Bun and Deno 2 alike.
let config: AppConfig;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`switchboard: ${error.message}`);
  process.exit(2);
}

if (config.help) {
  process.stdout.write(USAGE);
} else if (config.stdio) {
  const [runtime, store] = await Promise.all([loadRuntime(), openStore(config.redis)]);
  const logger = config.logFormat === "json" ? jsonLogger() : undefined;
  const gateway = createAppGateway(config, { agent: chooseAgent(config), store, logger });
  await serveStdio(gateway, runtime.stdioStreams());
  await gateway.close(); // ends sessions and their timers, so the process can exit
} else {
  const token = config.token ?? randomToken();
  const tokens = { [token]: "user" };
  // Before the store and the gateway are made: they look for a meter provider when made.
  const metricsRoute = config.metrics ? await registerMetrics(tokenAuth({ tokens })) : undefined;
  const hermes = config.protocol === "hermes";
  // Hermes mode serves no page, so it bundles none.
  const [runtime, assets, store] = await Promise.all([
    loadRuntime(),
    hermes ? undefined : loadPage(),
    openStore(config.redis),
  ]);
  const tickets = new Tickets();
  const agent = chooseAgent(config);
  const logger = config.logFormat === "json" ? jsonLogger() : undefined;
  // Hermes' clients can carry the token only in the URL's query (which may end up in access logs).
  const auth = tokenAuth({ tokens, tickets, queryToken: hermes });
  const gateway = createAppGateway(config, { agent, auth, store, logger });
  const ticketRoute = tickets.route(tokenAuth({ tokens }));
  const app = assets ? siteApp(assets, ticketRoute) : hermesSite(ticketRoute);
  if (metricsRoute) app.get("/metrics", metricsRoute);
  const server = await runtime.serve(gateway, { app, hostname: config.host, port: config.port }).catch((error) => {
    if ((error as { code?: unknown } | null)?.code !== "EADDRINUSE") throw error;
    // Node, Deno (Deno.errors.AddrInUse) and Bun all set this code.
    console.error(
      `switchboard: ${config.host}:${config.port} is in use: start with --port 0 for any free port, or pick one with --port N or SWITCHBOARD_PORT`,
    );
    process.exit(1);
  });
  const wsUrl = `${server.url.replace(/^http/, "ws")}api/ws`;
  console.error(
    `switchboard: agent "${agent.name}", gateway at ${wsUrl}${hermes ? " (hermes protocol)" : ""}${
      config.redis === undefined ? "" : ", conversations in Redis"
    }`,
  );
  // stdout carries only the URL to open (hermes: to dial), so a script can read it.
  console.log(hermes ? `${wsUrl}?token=${token}` : `${server.url}#token=${token}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once("SIGINT", stop).once("SIGTERM", stop);
}
