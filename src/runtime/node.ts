/**
 * `switchboard/node`: serve a gateway with `@hono/node-server` v2 and a `ws` server we
 * configure: `maxPayload` from the gateway's limits (oversized frames close 1009 before
 * they are held whole), no permessage-deflate, TCP_NODELAY, and each flush corked into
 * one socket write.
 */
import { serve as serveHono, upgradeWebSocket, type HttpBindings } from "@hono/node-server";
import type { Socket } from "node:net";
import { once } from "node:events";
import { Readable, Writable } from "node:stream";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { Gateway, SocketAdapter } from "../mod.ts";
import { standardSocket } from "../transport/transport.ts";
import { SUBPROTOCOL } from "../gateway/auth.ts";
import { baseUrl, guardFor, resolveServeOptions, type Server, type ServeOptions } from "./serve-options.ts";

export type { Server, ServeOptions };

/**
 * Serves `gateway` at `options.path` (default `/api/ws`) behind `gateway.guard()`.
 *
 * @example
 * const server = await serve(gateway, { port: 0 });
 * console.error(server.url);
 * await server.close();
 */
export async function serve(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  const { hostname, port, path, app, closeTimeoutMs } = resolveServeOptions(options);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: gateway.limits.maxMessageBytes,
    perMessageDeflate: false,
    // Answer only our own subprotocol, never a token offered beside it.
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  // The TCP socket under each WebSocket, for corking; registered before the server's own listener.
  const tcp = new WeakMap<WebSocket, Socket>();
  // Liveness: a ping every half `peerTimeoutMs`; a peer that has sent nothing since the last one is cut.
  const heard = new WeakSet<WebSocket>();
  wss.on("connection", (ws: WebSocket, request) => {
    request.socket.setNoDelay(true);
    tcp.set(ws, request.socket);
    heard.add(ws);
    const alive = () => heard.add(ws);
    ws.on("pong", alive).on("message", alive);
  });

  const adapter: SocketAdapter = {
    socket(ctx) {
      const ws = ctx.raw as WebSocket;
      const socket = tcp.get(ws);
      const cork = (flush: () => void) => {
        socket!.cork();
        try {
          flush();
        } finally {
          socket!.uncork();
        }
      };
      return standardSocket(ws, { bufferedAmount: () => ws.bufferedAmount, cork: socket ? cork : undefined });
    },
    peer(c) {
      const { remoteAddress, remotePort } = (c.env as HttpBindings).incoming.socket;
      return `${remoteAddress}:${remotePort}`;
    },
  };

  app.get(path, guardFor(gateway, hostname), upgradeWebSocket(gateway.handlerWith(adapter)));
  const server = serveHono({ fetch: app.fetch, hostname, port, websocket: { server: wss } });
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
      server.close();
      if ("closeAllConnections" in server) server.closeAllConnections();
      await closed;
    },
  };
}

/** This process's stdin and stdout as web streams, for `serveStdio`. */
export function stdioStreams(): { input: ReadableStream<Uint8Array>; output: WritableStream<Uint8Array> } {
  return {
    input: Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
    output: Writable.toWeb(process.stdout) as WritableStream<Uint8Array>,
  };
}
