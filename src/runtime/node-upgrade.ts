/**
 * WebSocket upgrades for `serve()` on Node: the `upgrade` listener behind our Hono helper
 * (`node-route.ts`), in place of `@hono/node-server`'s `upgradeWebSocket`.
 *
 * Why our own: `@hono/node-server`'s helper wires the socket's listeners inside the closure
 * that received the upgrade's Hono `Context`, so every open connection keeps that Context, its
 * `Request` and the `IncomingMessage` alive: ~10 KB per idle connection, measured with a heap
 * snapshot diff (bench/RESULTS.md), against a floor of ~3 KB. Here the route only hands its
 * `WSEvents` to the listener through the request's bindings; the socket's listeners are made
 * in a scope that holds nothing but the socket and those events. The gateway's own route hands
 * over a function instead, which opens a connection on the socket (`GatewayWebSocket`, a frame
 * socket itself): its frames reach the connection without a `MessageEvent` per frame.
 */
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Socket } from "node:net";
import type { Http2SecureServer, Http2Server } from "node:http2";
import type { Hono } from "hono";
import type { WSEvents } from "hono/ws";
import { type RawData, WebSocket, type WebSocketServer } from "ws";
import type { FrameSink, FrameSocket } from "../transport/transport.ts";
import { ACCEPT, type Accepted, type UpgradeAccept } from "./node-route.ts";
import type { LiveSocket } from "./serve-options.ts";
import { socketContext } from "./ws-context.ts";

/** The bindings an upgrade request runs with: `@hono/node-server`'s `HttpBindings` and `ACCEPT`. */
interface UpgradeBindings extends UpgradeAccept {
  incoming: IncomingMessage;
  outgoing: undefined;
}

/**
 * `ws`'s WebSocket as a frame socket (`wss` makes every socket one): TCP-corked flushes, liveness
 * (`heard`), and the sink its frames go to, through listeners shared by every socket (`this` is
 * the socket), so no closure is made per connection. A close `ws` starts by itself, from inside
 * its frame parser (a frame over `maxPayload`: 1009; invalid UTF-8: 1007), first sends what the
 * connection has queued: the answers to requests that arrived before the bad frame, often in
 * the same read.
 */
export class GatewayWebSocket extends WebSocket implements FrameSocket, LiveSocket {
  /** The TCP socket under it, for corking. */
  tcp: Socket | undefined;
  heard = true;
  #sink: FrameSink | undefined;

  attach(sink: FrameSink): void {
    this.#sink = sink;
    this.on("message", deliverFrame).on("close", deliverClose);
  }

  /** Delivers a frame to the attached sink. */
  frame(data: RawData, binary: boolean): void {
    this.heard = true;
    if (binary) this.#sink?.binary();
    else this.#sink?.text(String(data));
  }

  /** Tells the attached sink the socket closed, once. */
  ended(code: number): void {
    const sink = this.#sink;
    this.#sink = undefined;
    sink?.ended(code);
  }

  override close(code?: number, reason?: string): void {
    this.#sink?.flushQueued();
    super.close(code, reason);
  }

  cork(flush: () => void): void {
    this.tcp!.cork();
    try {
      flush();
    } finally {
      this.tcp!.uncork();
    }
  }
}

// `ws` calls its listeners with the socket as `this`: one `GatewayWebSocket` (see `wss` above).
function deliverFrame(this: WebSocket, data: RawData, binary: boolean): void {
  (this as GatewayWebSocket).frame(data, binary);
}

function deliverClose(this: WebSocket, code: number): void {
  (this as GatewayWebSocket).ended(code);
}

function heard(this: WebSocket): void {
  (this as GatewayWebSocket).heard = true;
}

// `ws` throws an error event nobody listens to; every error is followed by a close, which is what counts.
function ignore(): void {}

/**
 * Answers `upgrade` requests on `server` through `app`: a route that accepts completes the
 * handshake on `wss` (which must make `GatewayWebSocket`s); any other answer (a guard's
 * refusal, 404) goes back as a plain HTTP response.
 */
export function acceptUpgrades(
  server: HttpServer | Http2Server | Http2SecureServer,
  app: Hono,
  wss: WebSocketServer,
): void {
  server.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) => {
    // Whatever fails past the app (a throwing `onOpen`) drops this socket, never the server.
    upgrade(app, wss, request, socket, head).catch(() => socket.destroy());
  });
}

async function upgrade(
  app: Hono,
  wss: WebSocketServer,
  request: IncomingMessage,
  socket: Socket,
  head: Buffer,
): Promise<void> {
  // Errors on a socket mid-handshake (a peer that vanished) are ours to swallow.
  socket.on("error", ignore);
  let accepted: Accepted | undefined;
  let response: Response;
  try {
    const bindings: UpgradeBindings = { incoming: request, outgoing: undefined, [ACCEPT]: (a) => (accepted = a) };
    response = await app.fetch(upgradeRequest(request), bindings);
  } catch {
    return refuse(socket, 400);
  }
  if (!accepted) return refuse(socket, response.status, response);
  if (socket.destroyed) return;
  const use = accepted;
  wss.handleUpgrade(request, socket, head, (ws) => {
    socket.off("error", ignore);
    socket.setNoDelay(true);
    const gatewaySocket = ws as GatewayWebSocket;
    gatewaySocket.tcp = socket;
    ws.on("pong", heard).on("error", ignore);
    if (typeof use === "function") use(ws);
    else attachEvents(ws.on("message", heard), use);
  });
}

/** The `Request` Hono sees for an upgrade (headers only; an upgrade has no body). Throws on a malformed target. */
function upgradeRequest(request: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers.append(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return new Request(new URL(request.url ?? "/", `http://${request.headers.host ?? "localhost"}`), { headers });
}

/** Ends the handshake with `status`; a plain-text body (the guard's reason) goes along. */
async function refuse(socket: Socket, status: number, response?: Response): Promise<void> {
  const text = response?.headers.get("content-type")?.startsWith("text/plain")
    ? await response.text().catch(() => "")
    : "";
  if (socket.destroyed) return;
  const body = new TextEncoder().encode(text);
  const reason = STATUS_TEXT[status] ?? "";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: ${body.length}\r\n\r\n${text}`,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/**
 * Wires an open socket to a Hono route's `events`. Kept apart from the listener, so the closures
 * made here hold the socket and the events, not the request.
 */
function attachEvents(ws: WebSocket, events: WSEvents): void {
  const ctx = socketContext(ws);
  // Binary frames as Hono's helpers give them (text frames arrive as a Buffer either way).
  ws.binaryType = "arraybuffer";
  ws.on(
    "message",
    (data: RawData, binary: boolean) =>
      events.onMessage?.(new MessageEvent("message", { data: binary ? (data as ArrayBuffer) : String(data) }), ctx),
  );
  ws.on("close", (code: number, reason: Buffer) => events.onClose?.(closeEvent(code, String(reason)), ctx));
  ws.on("error", (error: Error) => events.onError?.(Object.assign(new Event("error"), { error }), ctx));
  events.onOpen?.(new Event("open"), ctx);
}

/** A `CloseEvent` (Node 20 has no global one). */
function closeEvent(code: number, reason: string): CloseEvent {
  return Object.assign(new Event("close"), { code, reason, wasClean: code !== 1006 }) as CloseEvent;
}
