/**
 * `switchboard/client`: connect to a Switchboard gateway from a browser, Node, Deno or Bun
 * (web standards only), and never lose an event across a reconnect.
 *
 * @example
 * import { connect } from "switchboard/client";
 * const client = connect<typeof gateway>("ws://127.0.0.1:8787/api/ws", { token });
 * await client.ready;
 * client.on("message.delta", (event) => render(event.payload));
 * client.handle("approval", async (params) => ({ choice: "once" }));
 * const { session_id } = await client.call("session.create", {});
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

/** The standard WebSocket constructor shape (the global one, or `ws`'s on Node 20). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

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
export function webSocketDial(
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
