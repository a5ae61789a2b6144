/**
 * Hono integration: `gateway.handler` (the `(c) => WSEvents` any `upgradeWebSocket` takes)
 * and `gateway.guard()` (middleware before the upgrade).
 */
import type { Context, MiddlewareHandler } from "hono";
import type { WSContext, WSEvents } from "hono/ws";
import { CloseCode, standardSocket, type TransportSocket } from "../transport/transport.ts";
import type { Connection } from "./connection.ts";
import type { Gateway } from "./gateway.ts";

/** How a runtime turns Hono's WebSocket context into a transport socket, and names the peer. */
export interface SocketAdapter {
  socket(ws: WSContext): TransportSocket;
  peer(c: Context): string;
}

/**
 * The adapter for any Hono helper: the standard WebSocket surface of `WSContext`, and
 * `bufferedAmount` from the raw socket where it is a standard WebSocket (or `ws`).
 */
export const wsContextAdapter: SocketAdapter = {
  socket(ws) {
    const raw = ws.raw as { bufferedAmount?: unknown } | undefined;
    return standardSocket(ws, {
      bufferedAmount: () => (typeof raw?.bufferedAmount === "number" ? raw.bufferedAmount : undefined),
    });
  },
  peer: () => "unknown",
};

const BINARY = "Binary frames are not supported: send JSON-RPC as text frames";

/** Where `guard()` leaves the principal for the handler. */
const PRINCIPAL = "switchboard.principal";

/** Builds `(c) => WSEvents` for a gateway; every call is one connection. */
export function createHandler(gateway: () => Gateway, adapter: SocketAdapter): (c: Context) => WSEvents {
  return (c) => {
    const peer = adapter.peer(c);
    const principal = c.get(PRINCIPAL as never) as string | undefined;
    let connection: Connection | undefined;
    return {
      onOpen(_event, ws) {
        const socket = adapter.socket(ws);
        // With `auth`, a principal comes only from guard(): a route mounted without it gets none.
        if (principal === undefined && gateway().requiresAuth) {
          gateway().log.warn("connection refused", { peer, reason: "unauthenticated" });
          socket.close(CloseCode.Policy, "unauthenticated");
          return;
        }
        connection = gateway().open(socket, peer, principal);
      },
      onMessage(event) {
        if (!connection) return;
        const data = event.data;
        if (typeof data === "string") connection.receive(data);
        else connection.reject(BINARY);
      },
      onClose(event) {
        connection?.teardown(`peer_closed_${event.code}`);
      },
      onError() {
        connection?.teardown("socket_error");
      },
    };
  };
}

/**
 * The guard middleware: 503 when the gateway is closing or at its connection cap; with
 * `auth`, 401 unless it names a principal, which the handler then gives the connection.
 */
export function createGuard(gateway: Gateway, auth?: (c: Context) => string | null | Promise<string | null>): MiddlewareHandler {
  return async (c, next) => {
    if (gateway.closing) return c.text("gateway is shutting down", 503);
    if (gateway.connections.size >= gateway.limits.maxConnections) return c.text("too many connections", 503);
    if (auth) {
      const principal = await auth(c);
      if (principal === null) return c.text("unauthorized", 401);
      c.set(PRINCIPAL as never, principal as never);
    }
    await next();
  };
}
