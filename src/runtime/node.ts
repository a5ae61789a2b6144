/**
 * `switchboard/node`: serve a gateway with `@hono/node-server` v2 and a `ws` server we
 * configure: `maxPayload` from the gateway's limits (oversized frames close 1009 before
 * they are held whole), no permessage-deflate, TCP_NODELAY, and each flush corked into
 * one socket write. Upgrades go through our own listener (`node-upgrade.ts`), which keeps no
 * request alive per connection.
 */
import { type HttpBindings, serve as serveHono } from "@hono/node-server";
import type { Context } from "hono";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Readable, Writable } from "node:stream";
import { WebSocketServer } from "ws";
import type { Gateway, GatewayCore } from "../gateway/gateway.ts";
import { principalOf } from "../gateway/hono.ts";
import { acceptUpgrades, GatewayWebSocket } from "./node-upgrade.ts";
import { ACCEPT, type UpgradeAccept, upgradeWebSocket } from "./node-route.ts";
import { answeredProtocol, type RuntimeServe, type ServeOptions, type Server, serveWith } from "./serve-options.ts";

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
export function serve(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  return serveWith(gateway, options, onNode);
}

const bindings = (c: Context) => c.env as HttpBindings & Partial<UpgradeAccept>;

/** The Node parts of `serve()`. */
function onNode(gateway: GatewayCore): RuntimeServe {
  const wss = new WebSocketServer({
    noServer: true,
    WebSocket: GatewayWebSocket,
    maxPayload: gateway.limits.maxMessageBytes,
    perMessageDeflate: false,
    // Answer only our own subprotocol, never a token offered beside it.
    handleProtocols: (offered) => answeredProtocol(offered) ?? false,
  });
  return {
    route(c) {
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return c.text("expected a WebSocket upgrade", 400);
      const accept = bindings(c)[ACCEPT];
      if (!accept) return c.text("WebSocket upgrades need serve() from switchboard/node", 500);
      const principal = principalOf(c);
      const { remoteAddress, remotePort } = bindings(c).incoming.socket;
      const peer = `${remoteAddress}:${remotePort}`;
      // Made here, so it holds the principal and the peer, not the request.
      accept((socket) => gateway.accept(principal, socket as GatewayWebSocket, peer));
      // Never sent: the listener completes the handshake instead.
      return new Response(null);
    },
    address: (c) => bindings(c).incoming.socket.remoteAddress,
    async listen(app, hostname, port) {
      const server = serveHono({ fetch: app.fetch, hostname, port });
      acceptUpgrades(server, app, wss);
      await once(server, "listening");
      return {
        port: (server.address() as AddressInfo).port,
        sockets: wss.clients as Set<GatewayWebSocket>,
        async stop() {
          for (const ws of wss.clients) ws.terminate();
          const closed = once(server, "close");
          wss.close();
          server.close();
          if ("closeAllConnections" in server) server.closeAllConnections();
          await closed;
        },
      };
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
