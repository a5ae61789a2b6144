/**
 * What every runtime's `serve()` shares (docs/architecture.md, "Where the runtimes differ"): the
 * options, the gateway route behind `guard()`, listening, liveness pings where the runtime has
 * no liveness of its own, and the graceful close. A runtime module gives `serveWith` only what
 * differs: how its route upgrades a request, how it listens, and its client's address.
 */
import { type Context, type Handler, Hono } from "hono";
import { type Gateway, type GatewayCore, gatewayCore } from "../gateway/gateway.ts";
import { LOOPBACK_HOSTS } from "../gateway/hono.ts";
import { SUBPROTOCOL } from "../jsonrpc/protocol.ts";

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

/** A socket the shared liveness pings: heard from since the last ping or not. */
export interface LiveSocket {
  /** Set by the runtime module on every frame and pong; cleared at each ping. */
  heard: boolean;
  ping(): void;
  /** Drops the connection at once (no close handshake: the peer is not answering). */
  terminate(): void;
}

/** A runtime listening. */
export interface Listening {
  /** The port bound. */
  port: number;
  /** The sockets to keep alive with pings, where the runtime has no liveness of its own. */
  sockets?: Iterable<LiveSocket>;
  /** Stops listening and drops whatever sockets are left (the gateway has closed them). */
  stop(): Promise<void>;
}

/** What differs between runtimes, for one gateway. */
export interface RuntimeServe {
  /** The route behind `guard()` that upgrades the request and opens its gateway connection. */
  route: Handler;
  /** The client's address, for the per-address limits. */
  address(c: Context): string | undefined;
  /** Serves `app` on `hostname:port`; resolves once bound (rejects if it cannot bind). */
  listen(app: Hono, hostname: string, port: number): Promise<Listening>;
}

/** `serve()`: `runtime` makes the runtime's parts for the gateway; the rest is the same everywhere. */
export async function serveWith(
  gateway: Gateway,
  options: ServeOptions,
  runtime: (gateway: GatewayCore) => RuntimeServe,
): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  const app = options.app ?? new Hono();
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  const { route, address, listen } = runtime(gatewayCore(gateway));
  // On a loopback address only loopback names may appear in `Host`, so a rebinding DNS name
  // cannot reach the gateway from a web page.
  const loopback = hostname === "localhost" || hostname === "::1" || hostname.startsWith("127.");
  app.get(options.path ?? "/api/ws", gateway.guard({ address, ...(loopback ? { hosts: LOOPBACK_HOSTS } : {}) }), route);
  const listening = await listen(app, hostname, options.port ?? 8787);
  // Started once the port is bound, so a failed listen leaves no timer behind.
  const pinger = listening.sockets && keepAlive(listening.sockets, gateway.limits.peerTimeoutMs / 2);
  return {
    url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${listening.port}/`,
    port: listening.port,
    async close() {
      clearInterval(pinger);
      await gateway.close({ timeoutMs: closeTimeoutMs });
      await listening.stop();
    },
  };
}

/**
 * Liveness by ping: every `intervalMs`, a socket heard from since the last ping is pinged
 * again, one not heard from is dropped. A silent peer is thus dropped between one and two
 * intervals after it went quiet (the runtime modules ping every half `peerTimeoutMs`).
 */
function keepAlive(sockets: Iterable<LiveSocket>, intervalMs: number): ReturnType<typeof setInterval> {
  return setInterval(() => {
    for (const socket of sockets) {
      if (!socket.heard) socket.terminate();
      else {
        socket.heard = false;
        socket.ping();
      }
    }
  }, intervalMs);
}

/** The subprotocol to answer for those `offered`: ours when offered, never another (a token offered beside it). */
export function answeredProtocol(offered: Iterable<string>): string | undefined {
  for (const protocol of offered) if (protocol === SUBPROTOCOL) return SUBPROTOCOL;
  return undefined;
}
