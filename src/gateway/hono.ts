/**
 * Hono integration: `gateway.handler` (the `(c) => WSEvents` any Hono `upgradeWebSocket` takes,
 * for a gateway mounted in one's own app) and `gateway.guard()` (middleware before the upgrade).
 * `serve()` from a runtime module mounts its own route instead (src/runtime/).
 */
import type { Context, MiddlewareHandler } from "hono";
import type { WSContext, WSEvents } from "hono/ws";
import type { FrameSink, FrameSocket } from "../transport/transport.ts";
import { offeredProtocols, SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from "./auth.ts";
import type { GatewayCore } from "./gateway.ts";
import type { RefusalReason } from "./telemetry.ts";

/** Where `guard()` leaves the principal, for the route that opens the connection. */
const PRINCIPAL = "switchboard.principal";

/** The principal `guard()` admitted the request as; undefined on a route mounted without the guard. */
export function principalOf(c: Context): string | undefined {
  return c.get(PRINCIPAL as never) as string | undefined;
}

/** `gateway.handler`: `(c) => WSEvents` for any Hono helper; every call is one connection. */
export function createHandler(gateway: () => GatewayCore): (c: Context) => WSEvents {
  return (c) => new ConnectionEvents(gateway, principalOf(c));
}

/**
 * One connection's `WSEvents`, and Hono's `WSContext` as its `FrameSocket`: Hono delivers the
 * events, they go to the connection. A class, so that its methods are shared: an object literal
 * of methods made five closures and a scope for every connection (~0.4 KB each idle one).
 */
class ConnectionEvents implements WSEvents, FrameSocket {
  readonly #gateway: () => GatewayCore;
  readonly #principal: string | undefined;
  #ws: WSContext | undefined;
  #sink: FrameSink | undefined;

  constructor(gateway: () => GatewayCore, principal: string | undefined) {
    this.#gateway = gateway;
    this.#principal = principal;
  }

  onOpen(_event: Event, ws: WSContext): void {
    this.#ws = ws;
    this.#gateway().accept(this.#principal, this, "unknown");
  }

  onMessage(event: MessageEvent): void {
    if (typeof event.data === "string") this.#sink?.text(event.data);
    else this.#sink?.binary();
  }

  onClose(event: CloseEvent): void {
    // Let go of the connection: Deno keeps a socket the peer dropped without a close frame
    // (and so its listeners, and these events) for about 30 s more.
    const sink = this.#sink;
    this.#sink = undefined;
    sink?.ended(event.code);
  }

  onError(): void {
    // `hono/bun` calls `onError` detached from its object (`this` undefined) when another
    // handler threw; the connection then hears of the close from `onClose`.
    if (this) this.onClose({ code: 1006 } as CloseEvent);
  }

  send(text: string): void {
    this.#ws!.send(text);
  }

  close(code?: number, reason?: string): void {
    this.#ws!.close(code, reason);
  }

  /** The raw socket's: a standard WebSocket's (or `ws`'s) `bufferedAmount`, or Bun's `getBufferedAmount()`. */
  get bufferedAmount(): number | undefined {
    const raw = this.#ws?.raw as { bufferedAmount?: unknown; getBufferedAmount?: () => number } | undefined;
    if (typeof raw?.bufferedAmount === "number") return raw.bufferedAmount;
    return raw?.getBufferedAmount?.();
  }

  attach(sink: FrameSink): void {
    this.#sink = sink;
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
  // Each refusal is counted by its reason (`switchboard.connections.refused`).
  const refuse = (c: Context, reason: RefusalReason, text: string, status: 400 | 401 | 403 | 429 | 503) => {
    gateway.telemetry?.refused.add(reason);
    return c.text(text, status);
  };
  return async (c, next) => {
    if (gateway.closing) return refuse(c, "shutdown", "gateway is shutting down", 503);
    if (gateway.connections.size >= gateway.limits.maxConnections) {
      return refuse(c, "capacity", "too many connections", 503);
    }
    const address = policy.address?.(c);
    const refused = address === undefined ? undefined : gateway.admitAddress(address);
    if (refused === 429) return refuse(c, "address_rate", "too many connection attempts from this address", 429);
    if (refused === 503) return refuse(c, "address_capacity", "too many connections from this address", 503);
    const host = c.req.header("host") ?? "";
    if (host !== "" && !wellFormedHost(host)) return refuse(c, "bad_host", "malformed Host header", 400);
    if (hosts && !hosts.includes(hostName(host))) return refuse(c, "host", "host not allowed", 403);
    const origin = c.req.header("origin");
    if (origin !== undefined && !origins.has(origin) && !sameOrigin(origin, host)) {
      return refuse(c, "origin", "origin not allowed", 403);
    }
    const protocols = offeredProtocols(c);
    if (protocols.some((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX)) && protocols[0] !== SUBPROTOCOL) {
      return refuse(c, "token_protocol", `offer ${SUBPROTOCOL} first, then the token`, 400);
    }
    if (auth) {
      const principal = await auth(c);
      if (principal === null) return refuse(c, "unauthenticated", "unauthorized", 401);
      if (gateway.connectionsOf(principal) >= gateway.limits.maxConnectionsPerPrincipal) {
        return refuse(c, "principal_capacity", "too many connections", 503);
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
