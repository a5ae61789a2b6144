/**
 * Hono integration: `gateway.handler` (the `(c) => WSEvents` any `upgradeWebSocket` takes)
 * and `gateway.guard()` (middleware before the upgrade).
 */
import type { Context, MiddlewareHandler } from "hono";
import type { WSContext, WSEvents } from "hono/ws";
import { CloseCode, standardSocket, type TransportSocket } from "../transport/transport.ts";
import type { Connection } from "./connection.ts";
import { offeredProtocols, SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from "./auth.ts";
import type { GatewayCore } from "./gateway.ts";

/** How a runtime turns Hono's WebSocket context into a transport socket, and names the peer. */
export interface SocketAdapter {
  socket(ws: WSContext): TransportSocket;
  /** The peer's address and port, for logs. */
  peer(c: Context): string;
  /** The peer's address, for the per-address limits; undefined where the runtime does not tell. */
  address(c: Context): string | undefined;
}

/**
 * The adapter for any Hono helper: the standard WebSocket surface of `WSContext`, and
 * `bufferedAmount` from the raw socket where it is a standard WebSocket (or `ws`).
 */
export const wsContextAdapter: SocketAdapter = {
  socket(ws) {
    return standardSocket(ws, ws.raw ?? {});
  },
  peer: () => "unknown",
  address: () => undefined,
};

const BINARY = "Binary frames are not supported: send JSON-RPC as text frames";

/**
 * Where `createHandler`'s `WSEvents` keep the connection's frame receiver, for a runtime
 * adapter that gets each frame's data from the runtime itself: Hono's Bun helper builds a
 * `MessageEvent` and a `WSContext` (with a parsed `URL`) for every frame, which measured more
 * than the whole gateway's own work per message. Takes a text frame's string or any binary
 * data; never throws (what would reach `onError` on Hono's path tears the connection down here too).
 */
export const RECEIVE: unique symbol = Symbol("switchboard.receive");

/** The `WSEvents` `createHandler` returns. */
export interface GatewayEvents extends WSEvents {
  [RECEIVE](data: unknown): void;
}

/** Where `guard()` leaves the principal for the handler. */
const PRINCIPAL = "switchboard.principal";

/** Builds `(c) => WSEvents` for a gateway; every call is one connection. */
export function createHandler(gateway: () => GatewayCore, adapter: SocketAdapter): (c: Context) => GatewayEvents {
  return (c) =>
    new ConnectionEvents(gateway, adapter, adapter.peer(c), c.get(PRINCIPAL as never) as string | undefined);
}

/**
 * One connection's `WSEvents`. A class, so that its methods are shared: an object literal of
 * methods made five closures and a scope for every connection (~0.4 KB each idle one).
 */
class ConnectionEvents implements GatewayEvents {
  readonly #gateway: () => GatewayCore;
  readonly #adapter: SocketAdapter;
  readonly #peer: string;
  readonly #principal: string | undefined;
  #connection: Connection | undefined;

  constructor(gateway: () => GatewayCore, adapter: SocketAdapter, peer: string, principal: string | undefined) {
    this.#gateway = gateway;
    this.#adapter = adapter;
    this.#peer = peer;
    this.#principal = principal;
  }

  [RECEIVE](data: unknown): void {
    const connection = this.#connection;
    if (!connection) return;
    try {
      if (typeof data === "string") connection.receive(data);
      else connection.reject(BINARY);
    } catch {
      // Not expected (receive answers bad input itself), but never leave a socket open that
      // the gateway no longer counts or serves.
      connection.close(CloseCode.Internal, "receive_failed");
      connection.teardown("receive_failed");
    }
  }

  onOpen(_event: Event, ws: WSContext): void {
    const socket = this.#adapter.socket(ws);
    const gateway = this.#gateway();
    // With `auth`, a principal comes only from guard(): a route mounted without it gets none.
    if (this.#principal === undefined && gateway.requiresAuth) {
      gateway.log.warn("connection refused", { peer: this.#peer, reason: "unauthenticated" });
      socket.close(CloseCode.Policy, "unauthenticated");
      return;
    }
    this.#connection = gateway.open(socket, this.#peer, this.#principal);
  }

  onMessage(event: MessageEvent): void {
    this[RECEIVE](event.data);
  }

  onClose(event: CloseEvent): void {
    // Let go of the connection: Deno keeps a socket the peer dropped without a close frame
    // (and so its listeners, and these events) for about 30 s more.
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.teardown(`peer_closed_${event.code}`);
  }

  onError(): void {
    // `hono/bun` calls `onError` detached from its object (`this` undefined) when another
    // handler threw; the connection then hears of the close from `onClose`.
    if (this) this.#connection?.teardown("socket_error");
  }
}

/** Options of `gateway.guard()`. */
export interface GuardOptions {
  /**
   * Host names (without port) the `Host` header may carry. Against DNS rebinding, `serve()`
   * sets the loopback names when it binds to a loopback address; set it the same way when you
   * mount the gateway in your own app on 127.0.0.1.
   */
  hosts?: string[];
  /**
   * The client's address (no port), for the per-address limits; `serve()` sets it. Without
   * it those limits do not apply. Behind a proxy, this is the proxy's address.
   */
  address?: (c: Context) => string | undefined;
}

/** What `createGuard` checks, from the gateway's options and `guard()`'s. */
export interface GuardPolicy extends GuardOptions {
  auth?: (c: Context) => string | null | Promise<string | null>;
  origins?: string[];
}

/** The host names of loopback addresses, as a `Host` header carries them. */
export const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/**
 * Whether a `Host` header value is a host with an optional port (`127.0.0.1:99999999`, `[::1`
 * are not). Each runtime otherwise treated a bad one its own way: Node's upgrade failed to build
 * its URL (400), Bun's helper threw building one (500), Deno let it through to the upgrade.
 */
function wellFormedHost(host: string): boolean {
  return !/[/?#@\s]/.test(host) && URL.canParse(`http://${host}`);
}

/** The host name of a `Host` header value (`[::1]:8787` → `[::1]`). */
function hostName(host: string): string {
  const end = host.startsWith("[") ? host.indexOf("]") + 1 : host.indexOf(":");
  return (end > 0 ? host.slice(0, end) : host).toLowerCase();
}

/**
 * The guard middleware (docs/architecture.md, Security), in order: 503 when closing or at the connection cap;
 * 429 over the client address's attempt rate, 503 at its connection cap; 400 for a malformed `Host`; 403 for a `Host` off the list or a foreign `Origin`; 400 for a token in the subprotocol
 * list without `switchboard.v1` first (Hono's helpers answer the first offered protocol, so
 * the token would be echoed); 401 when `auth` refuses; 503 at the principal's cap.
 */
export function createGuard(gateway: GatewayCore, policy: GuardPolicy): MiddlewareHandler {
  const { auth, hosts } = policy;
  const origins = new Set(policy.origins);
  return async (c, next) => {
    if (gateway.closing) return c.text("gateway is shutting down", 503);
    if (gateway.connections.size >= gateway.limits.maxConnections) return c.text("too many connections", 503);
    const address = policy.address?.(c);
    const refused = address === undefined ? undefined : gateway.admitAddress(address);
    if (refused === 429) return c.text("too many connection attempts from this address", 429);
    if (refused === 503) return c.text("too many connections from this address", 503);
    const host = c.req.header("host") ?? "";
    if (host !== "" && !wellFormedHost(host)) return c.text("malformed Host header", 400);
    if (hosts && !hosts.includes(hostName(host))) return c.text("host not allowed", 403);
    const origin = c.req.header("origin");
    if (origin !== undefined && !origins.has(origin) && !sameOrigin(origin, host)) {
      return c.text("origin not allowed", 403);
    }
    const protocols = offeredProtocols(c);
    if (protocols.some((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX)) && protocols[0] !== SUBPROTOCOL) {
      return c.text(`offer ${SUBPROTOCOL} first, then the token`, 400);
    }
    if (auth) {
      const principal = await auth(c);
      if (principal === null) return c.text("unauthorized", 401);
      if (gateway.connectionsOf(principal) >= gateway.limits.maxConnectionsPerPrincipal) {
        return c.text("too many connections", 503);
      }
      c.set(PRINCIPAL as never, principal as never);
    }
    await next();
  };
}

/** Whether a browser's `Origin` is the page the gateway itself serves (same host and port). */
function sameOrigin(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
