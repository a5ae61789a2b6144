/**
 * `switchboard/client`: connect to a Switchboard gateway from a browser, Node, Deno or Bun
 * (web standards only), and never lose an event across a reconnect.
 *
 * @example
 * ```ts
 * import { connect } from "switchboard/client";
 * import type { gateway } from "./server.ts"; // the server's `createGateway(…)`: types only
 *
 * const client = connect<typeof gateway>("ws://127.0.0.1:8787/api/ws");
 * await client.ready;
 * client.on("message.delta", (event) => console.log(event.payload));
 * client.handle("approval", () => ({ choice: "once" }));
 * const { session_id } = await client.call("session.create", {});
 * ```
 */
import { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from "../jsonrpc/protocol.ts";
import { Client, type ClientOptions, type Dial } from "./client.ts";

export { Client, ConnectionLost } from "./client.ts";
export type {
  CallOptions,
  Channel,
  ChannelEvents,
  ClientOptions,
  ConnectionState,
  Dial,
  ReadyPayload,
  RequestHandler,
  ResumeReport,
} from "./client.ts";
export type { BackoffOptions } from "./backoff.ts";
export type { BuiltinSignatures, SessionEvent, Signature, SignatureOf, SignaturesOf } from "./types.ts";
export { ErrorCode, RpcError } from "../jsonrpc/errors.ts";

/**
 * What the client uses of a WebSocket: the standard one (browsers, Deno, Bun, Node ≥ 22) and
 * the `ws` package's both fit, with no cast.
 */
export interface ClientWebSocket {
  /** Set once: every text frame's `data`. */
  onmessage: EventHandler<{ data: unknown }> | null;
  /** Set once: the close, with its code and reason. */
  onclose: EventHandler<{ code: number; reason: string }> | null;
  /** Set once: errors are followed by a close, which is what counts. */
  onerror: EventHandler<unknown> | null;
  /** Sends a text frame. */
  send(data: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
}

/**
 * An event handler property. Declared through a method, whose parameter is checked both ways,
 * so that a socket whose handler takes a richer event (the DOM's `MessageEvent`, `ws`'s own)
 * still fits.
 */
export type EventHandler<E> = { handle(event: E): void }["handle"];

/** A WebSocket class: the global `WebSocket`, or the `ws` package's on Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => ClientWebSocket;

/** Options of `connect`. */
export interface ConnectOptions extends ClientOptions {
  /** Sent in the subprotocol list as `switchboard.token.<token>`, after `switchboard.v1`. */
  token?: string;
  /** Fetches a fresh single-use ticket before every (re)connect; sent as `?ticket=`. */
  ticket?: () => string | Promise<string>;
  /** The WebSocket constructor. Default: the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
}

/**
 * Connects to the gateway at `url` (`ws://` or `wss://`) and keeps connected: reconnects
 * with backoff, resumes followed sessions, and sends `gateway.ping` heartbeats (an unanswered
 * one drops the connection). Type it with the gateway: `connect<typeof gateway>(url)`.
 */
export function connect<G = unknown>(url: string, options: ConnectOptions = {}): Client<G> {
  return new Client<G>(webSocketDial(url, options), options);
}

/** A `Dial` over a standard WebSocket. */
function webSocketDial(
  url: string,
  { token, ticket, WebSocket: WS = globalThis.WebSocket }: ConnectOptions = {},
): Dial {
  if (typeof WS !== "function") {
    throw new TypeError("no WebSocket constructor: pass options.WebSocket (e.g. the ws package's on Node 20)");
  }
  return async (events) => {
    let target = url;
    if (ticket) target += `${url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(await ticket())}`;
    const socket = token === undefined ? new WS(target) : new WS(target, [SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX + token]);
    socket.onmessage = (event) => events.onMessage(String(event.data));
    socket.onclose = (event) => events.onClose(event.code, event.reason);
    // A failed connect is followed by close, which reconnects; an unhandled error event would throw (ws on Node).
    socket.onerror = () => {};
    return {
      send: (text) => socket.send(text),
      close: (code, reason) => socket.close(code, reason),
    };
  };
}
