/**
 * WebSocket upgrades for `serve()` on Deno: a Hono helper over `Deno.upgradeWebSocket`, in
 * place of `hono/deno`'s. It answers `switchboard.v1` when offered (never a token offered
 * beside it), hands frames to a gateway connection's `RECEIVE` without Hono's per-frame
 * wrapping, and keeps less per connection: `hono/deno` builds a `URL` and a `WSContext` over
 * an object literal of closures for every socket (see `ws-context.ts`).
 */
import { defineWebSocketHelper, type WSContext } from "hono/ws";
import { type GatewayEvents, RECEIVE } from "../gateway/hono.ts";
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

/**
 * Wires the socket to `events`; apart from the helper, so nothing here holds the request. One
 * listener object (`handleEvent`) for every event type: `on…` handlers cost a closure and a
 * wrapper each, ~0.8 KB per idle connection for three of them.
 */
function attach(socket: WebSocket, events: Partial<GatewayEvents>): void {
  const listener = new SocketListener(socket, events);
  socket.addEventListener("open", listener);
  socket.addEventListener("message", listener);
  socket.addEventListener("close", listener);
  // Without a gateway connection's fast path, `events` may want errors too; a gateway
  // connection hears of the close that follows any error.
  if (!events[RECEIVE]) socket.addEventListener("error", listener);
}

class SocketListener {
  readonly #events: Partial<GatewayEvents>;
  readonly #ctx: WSContext<WebSocket>;

  constructor(socket: WebSocket, events: Partial<GatewayEvents>) {
    this.#events = events;
    this.#ctx = socketContext(socket);
  }

  handleEvent(event: Event): void {
    const events = this.#events;
    switch (event.type) {
      case "message":
        if (events[RECEIVE]) events[RECEIVE]((event as MessageEvent).data);
        else events.onMessage?.(event as MessageEvent, this.#ctx);
        return;
      case "open":
        return events.onOpen?.(event, this.#ctx);
      case "close":
        return events.onClose?.(event as CloseEvent, this.#ctx);
      case "error":
        return events.onError?.(event, this.#ctx);
    }
  }
}
