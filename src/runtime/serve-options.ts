import { type Context, Hono, type MiddlewareHandler } from "hono";
import type { Gateway } from "../gateway/gateway.ts";
import { LOOPBACK_HOSTS, type SocketAdapter } from "../gateway/hono.ts";

/** Options of `serve()` on every runtime. */
export interface ServeOptions {
  /** Default "127.0.0.1". */
  hostname?: string;
  /** Default 8787; 0 picks a free port. */
  port?: number;
  /** Where the gateway is mounted. Default "/api/ws". */
  path?: string;
  /** An app to serve; the gateway route is added to it. Default: a new Hono app. */
  app?: Hono;
  /** How long `close()` waits for clients to finish the close handshake. Default 5 s. */
  closeTimeoutMs?: number;
}

/** A running server. */
export interface Server {
  /** The HTTP base, e.g. `http://127.0.0.1:8787/`. */
  readonly url: string;
  /** The port listened on: the one picked when `port` was 0. */
  readonly port: number;
  /** Graceful: stops accepting, closes every client with 1001, then stops listening. */
  close(): Promise<void>;
}

/** The parts of `ServeOptions` every runtime resolves the same way. */
export function resolveServeOptions(
  options: ServeOptions,
): { hostname: string; port: number; path: string; app: Hono; closeTimeoutMs: number } {
  return {
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 8787,
    path: options.path ?? "/api/ws",
    app: options.app ?? new Hono(),
    closeTimeoutMs: options.closeTimeoutMs ?? 5_000,
  };
}

/**
 * `gateway.guard()` for a server bound to `hostname`: on a loopback address, only loopback
 * names may appear in `Host`, so a rebinding DNS name cannot reach the gateway from a web page;
 * the client's address comes from the runtime's adapter, for the per-address limits.
 */
export function guardFor(gateway: Gateway, hostname: string, adapter: SocketAdapter): MiddlewareHandler {
  const loopback = hostname === "localhost" || hostname === "::1" || hostname.startsWith("127.");
  const address = (c: Context) => adapter.address(c);
  return gateway.guard(loopback ? { hosts: LOOPBACK_HOSTS, address } : { address });
}

/** The HTTP base URL for a bound address (IPv6 hosts in brackets). */
export function baseUrl(hostname: string, port: number): string {
  return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/`;
}
