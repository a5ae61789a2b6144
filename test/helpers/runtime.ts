/** Which runtime runs the tests, and its `serve()` and WebSocket client. */
import type { Gateway, Logger } from "../../src/mod.ts";
import { createGateway, type GatewayOptions, type MethodTable } from "../../src/mod.ts";
import { gatewayCore } from "../../src/gateway/gateway.ts";
import type { ServeOptions, Server } from "../../src/runtime/serve-options.ts";

export const runtime: "node" | "deno" | "bun" = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** `serve()` of the runtime running the tests. */
export async function serveOn(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  const { serve } = (await import(`../../src/runtime/${runtime}.ts`)) as typeof import("../../src/runtime/node.ts");
  return serve(gateway, { port: 0, closeTimeoutMs: 1_000, ...options });
}

/** The WebSocket constructor: the global one, or `ws` on Node 20 (which has none). */
export async function webSocketClass(): Promise<typeof WebSocket> {
  if (typeof globalThis.WebSocket === "function") return globalThis.WebSocket;
  return (await import("ws")).WebSocket as unknown as typeof WebSocket;
}

export interface LogEntry {
  level: keyof Logger;
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A logger that keeps its entries for assertions. */
export function captureLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: keyof Logger) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ level, message, fields });
  };
  return { logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, entries };
}

/** A gateway served on this runtime at a free port, with captured logs; `gateway` shows its internals. */
export async function startGateway<M extends MethodTable>(
  options: Omit<GatewayOptions<M>, "logger">,
  serveOptions: ServeOptions = {},
) {
  const { logger, entries } = captureLogger();
  const gateway = gatewayCore(createGateway({ ...options, logger }));
  const server = await serveOn(gateway, serveOptions);
  const wsUrl = `${server.url.replace(/^http/, "ws")}${(serveOptions.path ?? "/api/ws").slice(1)}`;
  return { gateway, server, wsUrl, logs: entries, [Symbol.asyncDispose]: () => server.close() };
}

/** Resolves once `check()` is true, polling; rejects after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 3_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Rejects if `promise` has not settled within `ms` (a bound, so a hang fails instead of stalling the run). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((
    _,
    reject,
  ) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The command that runs a TypeScript file on the runtime running the tests (the real binary). */
export function runtimeCommand(script: string, args: string[] = []): [string, string[]] {
  if (runtime === "deno") return [process.execPath, ["run", "-A", script, ...args]];
  if (runtime === "bun") return [process.execPath, [script, ...args]];
  return [process.execPath, ["--import", "tsx", script, ...args]];
}

/** Sends a raw WebSocket upgrade request and resolves with the HTTP status the server answers (`RawSocket.status`). */
export async function upgradeStatus(wsUrl: string, headers: Record<string, string> = {}): Promise<number> {
  // Imported when used: raw-socket.ts imports this module.
  const { RawSocket } = await import("./raw-socket.ts");
  return RawSocket.status(wsUrl, headers);
}
