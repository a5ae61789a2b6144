/**
 * The gateway's route on Deno: `Deno.upgradeWebSocket`, answering `switchboard.v1` when offered
 * (never a token offered beside it), and Deno's `WebSocket` as a frame socket (`DenoSocket`).
 * Neither `hono/deno`'s helper nor a `WSContext`: that helper builds a `URL` and a `WSContext`
 * over an object literal of closures for every socket, and a `MessageEvent` wrapper per frame.
 */
import type { Handler } from "hono";
import { offeredProtocols } from "../gateway/auth.ts";
import type { GatewayCore } from "../gateway/gateway.ts";
import { principalOf } from "../gateway/hono.ts";
import type { FrameSink, FrameSocket } from "../transport/transport.ts";
import { answeredProtocol } from "./serve-options.ts";

/**
 * The route that upgrades an admitted request and opens its gateway connection once the socket
 * is open. `idleTimeout` is Deno's own liveness: Deno pings a peer silent for half of it, and
 * closes one silent (no pong either) for all of it.
 */
export function gatewayRoute(gateway: GatewayCore, idleTimeout: number): Handler {
  return (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return c.text("expected a WebSocket upgrade", 400);
    const principal = principalOf(c);
    const addr = (c.env as Deno.ServeHandlerInfo<Deno.NetAddr>).remoteAddr;
    const peer = `${addr.hostname}:${addr.port}`;
    const protocol = answeredProtocol(offeredProtocols(c));
    // Not Deno's `protocol` option: it looks for the protocol in the offer split at ", " only, and
    // throws (a 500) for one separated by a bare comma, as the `ws` package sends it.
    const { response, socket } = Deno.upgradeWebSocket(c.req.raw, { idleTimeout });
    if (protocol) response.headers.set("sec-websocket-protocol", protocol);
    new DenoSocket(socket, (opened) => gateway.accept(principal, opened, peer));
    return response;
  };
}

/**
 * Deno's `WebSocket` as a frame socket. One listener object (`handleEvent`) for every event
 * type: `on…` handlers cost a closure and a wrapper each, ~0.8 KB per idle connection for three.
 */
class DenoSocket implements FrameSocket {
  readonly #socket: WebSocket;
  #opened: ((socket: DenoSocket) => void) | undefined;
  #sink: FrameSink | undefined;

  constructor(socket: WebSocket, opened: (socket: DenoSocket) => void) {
    this.#socket = socket;
    this.#opened = opened;
    socket.addEventListener("open", this);
    socket.addEventListener("message", this);
    socket.addEventListener("close", this);
  }

  send(text: string): void {
    this.#socket.send(text);
  }

  close(code?: number, reason?: string): void {
    this.#socket.close(code, reason);
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  attach(sink: FrameSink): void {
    this.#sink = sink;
  }

  handleEvent(event: Event): void {
    switch (event.type) {
      case "message": {
        const data = (event as MessageEvent).data;
        if (typeof data === "string") this.#sink?.text(data);
        else this.#sink?.binary();
        return;
      }
      case "open": {
        const opened = this.#opened!;
        this.#opened = undefined;
        return opened(this);
      }
      case "close": {
        // Let go of the connection, and the socket of this listener: Deno keeps a socket the
        // peer dropped without a close frame until its idle timer next fires, up to
        // `idleTimeout` / 2 s later (bench/RESULTS.md, "Reconnect churn").
        const sink = this.#sink;
        this.#sink = undefined;
        this.#socket.removeEventListener("open", this);
        this.#socket.removeEventListener("message", this);
        this.#socket.removeEventListener("close", this);
        return sink?.ended((event as CloseEvent).code);
      }
    }
  }
}
