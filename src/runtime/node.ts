/**
 * `switchboard/node`: serve a gateway with `@hono/node-server` v2 and a `ws` server we
 * configure: `maxPayload` from the gateway's limits (oversized frames close 1009 before
 * they are held whole), no permessage-deflate, TCP_NODELAY, and each flush corked into
 * one socket write. Upgrades go through our own helper (`node-upgrade.ts`), which keeps no
 * request alive per connection.
 */
import { type HttpBindings, serve as serveHono } from "@hono/node-server";
import type { Socket } from "node:net";
import { once } from "node:events";
import { Readable, Writable } from "node:stream";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { type Gateway, gatewayCore } from "../gateway/gateway.ts";
import type { SocketAdapter } from "../gateway/hono.ts";
import type { QueueFlusher, TransportSocket } from "../transport/transport.ts";
import { SUBPROTOCOL } from "../gateway/auth.ts";
import { acceptUpgrades } from "./node-upgrade.ts";
import { upgradeWebSocket } from "./node-route.ts";
import { baseUrl, guardFor, resolveServeOptions, type ServeOptions, type Server } from "./serve-options.ts";

export type { ServeOptions, Server };
export { upgradeWebSocket };

/**
 * Serves `gateway` at `options.path` (default `/api/ws`) behind `gateway.guard()`.
 * `serve()` answers WebSocket upgrades itself: any other WebSocket route on `options.app`
 * takes `upgradeWebSocket` from `switchboard/node`, not `@hono/node-server`'s.
 *
 * @example
 * ```ts
 * import { createGateway } from "switchboard";
 * import { serve } from "switchboard/node";
 *
 * const gateway = createGateway({ methods: { "math.add": ([a, b]: [number, number]) => a + b } });
 * const server = await serve(gateway, { port: 0 });
 * console.error(server.url);
 * await server.close();
 * ```
 */
export async function serve(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  const { hostname, port, path, app, closeTimeoutMs } = resolveServeOptions(options);
  const wss = new WebSocketServer({
    noServer: true,
    WebSocket: GatewayWebSocket,
    maxPayload: gateway.limits.maxMessageBytes,
    perMessageDeflate: false,
    // Answer only our own subprotocol, never a token offered beside it.
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  // The TCP socket under each WebSocket, for corking.
  const tcp = new WeakMap<WebSocket, Socket>();
  // Liveness: a ping every half `peerTimeoutMs`; a peer that has sent nothing since the last one is cut.
  const heard = new WeakSet<WebSocket>();
  // One listener for every socket (`this` is the socket), not a closure per connection.
  function alive(this: WebSocket) {
    heard.add(this);
  }
  const opened = (ws: WebSocket, socket: Socket) => {
    socket.setNoDelay(true);
    tcp.set(ws, socket);
    heard.add(ws);
    ws.on("pong", alive).on("message", alive);
  };

  const adapter: SocketAdapter = {
    socket: (ctx) => new NodeSocket(ctx.raw as WebSocket, tcp.get(ctx.raw as WebSocket)!),
    peer(c) {
      const { remoteAddress, remotePort } = (c.env as HttpBindings).incoming.socket;
      return `${remoteAddress}:${remotePort}`;
    },
    address: (c) => (c.env as HttpBindings).incoming.socket.remoteAddress,
  };

  app.get(path, guardFor(gateway, hostname, adapter), upgradeWebSocket(gatewayCore(gateway).handlerWith(adapter)));
  const server = serveHono({ fetch: app.fetch, hostname, port });
  acceptUpgrades(server, app, wss, opened);
  await once(server, "listening");
  // Started once the port is bound, so a failed listen leaves no timer behind.
  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (!heard.delete(ws)) ws.terminate();
      else ws.ping();
    }
  }, gateway.limits.peerTimeoutMs / 2);
  const bound = (server.address() as AddressInfo).port;

  return {
    url: baseUrl(hostname, bound),
    port: bound,
    async close() {
      clearInterval(pinger);
      await gateway.close({ timeoutMs: closeTimeoutMs });
      for (const ws of wss.clients) ws.terminate();
      const closed = once(server, "close");
      wss.close();
      server.close();
      if ("closeAllConnections" in server) server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * `ws`'s WebSocket, except that a close `ws` starts by itself, from inside its frame parser (a
 * frame over `maxPayload`: 1009; invalid UTF-8: 1007), first sends what the connection has
 * queued: the answers to requests that arrived before the bad frame, often in the same read.
 */
class GatewayWebSocket extends WebSocket {
  /** The transport writing to this socket, once the connection is open. */
  transport: QueueFlusher | undefined;

  override close(code?: number, reason?: string): void {
    this.transport?.flushQueued();
    super.close(code, reason);
  }
}

/** A `ws` socket as a transport socket: its `bufferedAmount`, and flushes corked on its TCP socket. */
class NodeSocket implements TransportSocket {
  readonly #ws: WebSocket;
  readonly #tcp: Socket;

  constructor(ws: WebSocket, tcp: Socket) {
    this.#ws = ws;
    this.#tcp = tcp;
  }

  send(text: string): void {
    this.#ws.send(text);
  }

  close(code?: number, reason?: string): void {
    this.#ws.close(code, reason);
  }

  get readyState(): number {
    return this.#ws.readyState;
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  bind(transport: QueueFlusher): void {
    (this.#ws as GatewayWebSocket).transport = transport;
  }

  cork(flush: () => void): void {
    this.#tcp.cork();
    try {
      flush();
    } finally {
      this.#tcp.uncork();
    }
  }
}

/** This process's stdin and stdout as web streams, for `serveStdio`. */
export function stdioStreams(): { input: ReadableStream<Uint8Array>; output: WritableStream<Uint8Array> } {
  return {
    input: Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
    output: Writable.toWeb(process.stdout) as WritableStream<Uint8Array>,
  };
}
