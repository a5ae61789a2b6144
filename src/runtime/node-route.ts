/**
 * The Hono helper of `serve()` on Node: `upgradeWebSocket` for routes on an app served by
 * `serve()` from `switchboard/node`. The route only accepts; the server's `upgrade` listener
 * (`node-upgrade.ts`) completes the handshake. Kept apart from the listener, so the helper's
 * types need neither `ws` nor Node's.
 */
import { defineWebSocketHelper, type UpgradeWebSocket, type WSEvents } from "hono/ws";

/** Where the `upgrade` listener waits for the route's events. */
export const ACCEPT: unique symbol = Symbol("switchboard.accept");

/**
 * What a route hands the `upgrade` listener: Hono `WSEvents` (a route of `upgradeWebSocket`),
 * or, for the gateway's own route, what to do with the socket once upgraded.
 */
export type Accepted = WSEvents | ((socket: unknown) => void);

/** What the `upgrade` listener puts in an upgrade request's bindings. */
export interface UpgradeAccept {
  [ACCEPT]: (accepted: Accepted) => void;
}

/**
 * Hono's `upgradeWebSocket` for an app served by `serve()` from `switchboard/node`: the route
 * accepts, and the server answers 101 (an upgrade reaching the route any other way gets 500).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createGateway } from "switchboard";
 * import { serve, upgradeWebSocket } from "switchboard/node";
 *
 * const app = new Hono();
 * app.get("/echo", upgradeWebSocket(() => ({ onMessage: (event, ws) => ws.send(String(event.data)) })));
 * const server = await serve(createGateway({ methods: {} }), { app, port: 0 });
 * await server.close();
 * ```
 */
export const upgradeWebSocket: UpgradeWebSocket = defineWebSocketHelper((c, events) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return;
  const accept = (c.env as Partial<UpgradeAccept>)[ACCEPT];
  if (!accept) return new Response("WebSocket upgrades need serve() from switchboard/node", { status: 500 });
  accept(events);
  // Never sent: the listener completes the handshake instead.
  return new Response(null);
});
