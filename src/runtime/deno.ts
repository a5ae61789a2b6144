/**
 * `switchboard/deno`: serve a gateway with `Deno.serve` and our `upgradeWebSocket`
 * (`deno-upgrade.ts`). Deno's WebSocket has no frame-size option, so oversized frames are
 * closed with 1009 by the connection once received.
 */
import { upgradeWebSocket } from "./deno-upgrade.ts";
import { type Gateway, gatewayCore } from "../gateway/gateway.ts";
import type { SocketAdapter } from "../gateway/hono.ts";
import { baseUrl, guardFor, resolveServeOptions, type ServeOptions, type Server } from "./serve-options.ts";

export type { ServeOptions, Server };

const adapter: SocketAdapter = {
  // Deno's WebSocket is standard, `bufferedAmount` included: it is a transport socket as it is.
  socket: (ctx) => ctx.raw as WebSocket,
  peer(c) {
    const addr = (c.env as Deno.ServeHandlerInfo<Deno.NetAddr>).remoteAddr;
    return `${addr.hostname}:${addr.port}`;
  },
  address: (c) => (c.env as Deno.ServeHandlerInfo<Deno.NetAddr>).remoteAddr.hostname,
};

/**
 * Serves `gateway` at `options.path` (default `/api/ws`) behind `gateway.guard()`.
 *
 * @example
 * ```ts
 * import { createGateway } from "switchboard";
 * import { serve } from "switchboard/deno";
 *
 * const gateway = createGateway({ methods: { "math.add": ([a, b]: [number, number]) => a + b } });
 * const server = await serve(gateway, { port: 0 });
 * console.error(server.url);
 * await server.close();
 * ```
 */
export async function serve(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  const { hostname, port, path, app, closeTimeoutMs } = resolveServeOptions(options);
  // Liveness: Deno pings after `idleTimeout` s of silence and closes a peer that does not pong
  // within as long again, so half of `peerTimeoutMs` each.
  const idleTimeout = Math.max(1, Math.round(gateway.limits.peerTimeoutMs / 2000));
  app.get(
    path,
    guardFor(gateway, hostname, adapter),
    upgradeWebSocket(gatewayCore(gateway).handlerWith(adapter), { idleTimeout }),
  );
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({ hostname, port, onListen: (addr) => listening.resolve(addr) }, app.fetch);
  const addr = await listening.promise;
  return {
    url: baseUrl(hostname, addr.port),
    port: addr.port,
    async close() {
      await gateway.close({ timeoutMs: closeTimeoutMs });
      await server.shutdown();
    },
  };
}

/** This process's stdin and stdout as web streams, for `serveStdio`. */
export function stdioStreams(): { input: ReadableStream<Uint8Array>; output: WritableStream<Uint8Array> } {
  return { input: Deno.stdin.readable, output: Deno.stdout.writable };
}
