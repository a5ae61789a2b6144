/**
 * WebSocket upgrades for `serve()` on Deno: a Hono helper over `Deno.upgradeWebSocket`, in
 * place of `hono/deno`'s. It answers `switchboard.v1` when offered (never a token offered
 * beside it), hands frames to a gateway connection's `RECEIVE` without Hono's per-frame
 * wrapping, and keeps less per connection: `hono/deno` builds a `URL` and a `WSContext` over
 * an object literal of closures for every socket (see `ws-context.ts`).
 */
import { defineWebSocketHelper } from "hono/ws";
import { RECEIVE, type GatewayEvents } from "../gateway/hono.ts";
import { offeredProtocols, SUBPROTOCOL } from "../gateway/auth.ts";
import { socketContext } from "./ws-context.ts";

/** Options of `upgradeWebSocket` on Deno. */
export interface DenoUpgradeOptions {
  /** Seconds of silence before Deno pings the peer, and as long again for its pong (see `Deno.UpgradeWebSocketOptions`). */
  idleTimeout?: number;
}

/** Hono's `upgradeWebSocket` for Deno, as `serve()` mounts the gateway with it. */
export const upgradeWebSocket = defineWebSocketHelper<unknown, DenoUpgradeOptions>((c, events, options) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return;
  const protocol = offeredProtocols(c).includes(SUBPROTOCOL) ? SUBPROTOCOL : undefined;
  const { response, socket } = Deno.upgradeWebSocket(c.req.raw, { protocol, idleTimeout: options?.idleTimeout });
  attach(socket, events);
  return response;
});

/** Wires the socket to `events`; apart from the helper, so these closures hold nothing of the request. */
function attach(socket: WebSocket, events: Partial<GatewayEvents>): void {
  const ctx = socketContext(socket);
  socket.onopen = (event) => events.onOpen?.(event, ctx);
  socket.onmessage = events[RECEIVE] ? (event) => events[RECEIVE]!(event.data) : (event) => events.onMessage?.(event, ctx);
  socket.onclose = (event) => events.onClose?.(event, ctx);
  socket.onerror = (event) => events.onError?.(event, ctx);
}
