/**
 * `switchboard/deno`: serve a gateway with `Deno.serve` and our own upgrade route
 * (`deno-upgrade.ts`). Deno's WebSocket has no frame-size option, so oversized frames are
 * closed with 1009 by the connection once received. Liveness is Deno's own `idleTimeout`:
 * Deno's WebSocket has no ping of ours to send.
 */
import type { Gateway } from "../gateway/gateway.ts";
import { gatewayRoute } from "./deno-upgrade.ts";
import { type ServeOptions, type Server, serveWith } from "./serve-options.ts";

export type { ServeOptions, Server };

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
export function serve(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  return serveWith(gateway, options, (core) => ({
    // Deno pings after `idleTimeout` / 2 s of silence and closes a peer still silent as long
    // again (measured: `idleTimeout` 4 → ping at 2 s, 1001 at 4 s), so a silent peer is closed
    // after `idleTimeout` = ½ `peerTimeoutMs`, as Node and Bun close one after ½–1 ×. A socket
    // the peer dropped stays in Deno's memory until that timer fires (≤ ¼ `peerTimeoutMs`).
    route: gatewayRoute(core, Math.max(1, Math.round(core.limits.peerTimeoutMs / 2000))),
    address: (c) => (c.env as Deno.ServeHandlerInfo<Deno.NetAddr>).remoteAddr.hostname,
    async listen(app, hostname, port) {
      const listening = Promise.withResolvers<Deno.NetAddr>();
      const server = Deno.serve({ hostname, port, onListen: (addr) => listening.resolve(addr) }, app.fetch);
      return { port: (await listening.promise).port, stop: () => server.shutdown() };
    },
  }));
}

/** This process's stdin and stdout as web streams, for `serveStdio`. */
export function stdioStreams(): { input: ReadableStream<Uint8Array>; output: WritableStream<Uint8Array> } {
  return { input: Deno.stdin.readable, output: Deno.stdout.writable };
}
