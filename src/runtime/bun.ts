/**
 * `switchboard/bun`: serve a gateway with `Bun.serve` and `upgradeWebSocket` / `websocket`
 * from `hono/bun`: `maxPayloadLength` from the gateway's limits (1009), no compression,
 * each flush corked, and a dropped send treated as a failed one (never silently lost).
 *
 * Frames from the peer skip Hono's per-message wrapping: `hono/bun`'s `message` handler builds
 * a `MessageEvent`, a `WSContext` and a `URL` for every frame, which cost more CPU than the
 * whole gateway's own work per request. Our `message` hands the frame's data straight to the
 * connection (`RECEIVE`); upgrades, `open` and `close` still go through `hono/bun`, and
 * events of any other handler mounted on the same server take Hono's path unchanged.
 *
 * Liveness is ours, as on Node: Bun's own `idleTimeout` rounds 1–7 s up to 8 s and pings on a
 * 4-second clock, so it cannot keep a `peerTimeoutMs` of a few seconds or less.
 */
import type { Server as BunServer, ServerWebSocket } from "bun";
import { type BunWebSocketData, upgradeWebSocket, websocket } from "hono/bun";
import { type Gateway, gatewayCore } from "../gateway/gateway.ts";
import type { SocketAdapter } from "../gateway/hono.ts";
import { type GatewayEvents, RECEIVE } from "../gateway/hono.ts";
import { baseUrl, guardFor, resolveServeOptions, type ServeOptions, type Server } from "./serve-options.ts";

export type { ServeOptions, Server };

/**
 * What `hono/bun`'s `upgradeWebSocket` leaves in `ws.data` (`events` is ours when `RECEIVE` is
 * set), plus `heard`: whether the peer sent anything since the last ping (a field, not a set,
 * because it is written on every frame).
 */
type HonoSocket = ServerWebSocket<BunWebSocketData & { events: Partial<GatewayEvents>; heard?: boolean }>;

/**
 * The socket whose frame is being handled. Bun keeps that socket corked while its `message`
 * handler runs, so the transport sends what is written to it then at once (`corked`): no queue
 * and no microtask per request, and a nested `cork()` of ours cost ~0.2 µs per streamed event.
 * Writes outside a handler (timers, other sockets) are queued and corked by us: uncorked, every
 * frame was its own write (5.5 µs each instead of 0.25).
 */
let handling: HonoSocket | undefined;

/** Hands a frame directly to a gateway connection, or to `hono/bun` for any other handler. */
function deliver(ws: HonoSocket, events: Partial<GatewayEvents>, message: string | Buffer): void {
  handling = ws;
  try {
    if (events[RECEIVE]) events[RECEIVE](message);
    else websocket.message(ws, message);
  } finally {
    handling = undefined;
  }
}

const adapter: SocketAdapter = {
  socket(ctx) {
    const ws = ctx.raw as ServerWebSocket<unknown>;
    return {
      send(text) {
        // Bun answers 0 when it dropped the frame; -1 means queued under backpressure.
        if (ws.sendText(text) === 0) throw new Error("frame dropped by the socket");
      },
      close(code, reason) {
        ws.close(code, reason);
      },
      get readyState() {
        return ws.readyState;
      },
      get bufferedAmount() {
        return ws.getBufferedAmount();
      },
      get corked() {
        return ws === handling;
      },
      cork(flush) {
        ws.cork(flush);
      },
    };
  },
  peer(c) {
    const address = (c.env as BunServer<unknown>).requestIP(c.req.raw);
    return address ? `${address.address}:${address.port}` : "unknown";
  },
  address: (c) => (c.env as BunServer<unknown>).requestIP(c.req.raw)?.address,
};

/**
 * Serves `gateway` at `options.path` (default `/api/ws`) behind `gateway.guard()`.
 *
 * @example
 * ```ts
 * import { createGateway } from "switchboard";
 * import { serve } from "switchboard/bun";
 *
 * const gateway = createGateway({ methods: { "math.add": ([a, b]: [number, number]) => a + b } });
 * const server = await serve(gateway, { port: 0 });
 * console.error(server.url);
 * await server.close();
 * ```
 */
// deno-lint-ignore require-await -- async like the other runtimes' `serve()`: a `Bun.serve` that fails to bind rejects
export async function serve(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  const { hostname, port, path, app, closeTimeoutMs } = resolveServeOptions(options);
  app.get(path, guardFor(gateway, hostname, adapter), upgradeWebSocket(gatewayCore(gateway).handlerWith(adapter)));
  const sockets = new Set<HonoSocket>();
  const server = Bun.serve({
    hostname,
    port,
    fetch: app.fetch,
    websocket: {
      ...websocket,
      open(ws: HonoSocket) {
        sockets.add(ws);
        ws.data.heard = true;
        websocket.open(ws);
      },
      close(ws: HonoSocket, code: number, reason: string) {
        sockets.delete(ws);
        websocket.close(ws, code, reason);
      },
      message(ws: HonoSocket, message: string | Buffer) {
        // `ws.data` is a call into Bun: read once per frame.
        const data = ws.data;
        data.heard = true;
        deliver(ws, data.events, message);
      },
      pong(ws: HonoSocket) {
        ws.data.heard = true;
      },
      maxPayloadLength: gateway.limits.maxMessageBytes,
      perMessageDeflate: false,
      // Our own backlog cap (1013) comes first; Bun's limit is only a backstop.
      backpressureLimit: gateway.limits.maxBacklogBytes * 2,
      // Off: the pinger below keeps liveness.
      idleTimeout: 0,
    },
  });
  // Liveness: a ping every half `peerTimeoutMs`; a peer that has sent nothing since the last one
  // is cut. Started once the port is bound, so a failed `Bun.serve` leaves no timer behind.
  const pinger = setInterval(() => {
    for (const ws of sockets) {
      if (!ws.data.heard) ws.terminate();
      else {
        ws.data.heard = false;
        ws.ping();
      }
    }
  }, gateway.limits.peerTimeoutMs / 2);
  const bound = server.port!;
  return {
    url: baseUrl(hostname, bound),
    port: bound,
    async close() {
      clearInterval(pinger);
      await gateway.close({ timeoutMs: closeTimeoutMs });
      await server.stop(true);
    },
  };
}

/** This process's stdin and stdout as web streams, for `serveStdio`. */
export function stdioStreams(): { input: ReadableStream<Uint8Array>; output: WritableStream<Uint8Array> } {
  const stdout = Bun.stdout.writer();
  return {
    input: Bun.stdin.stream(),
    output: new WritableStream<Uint8Array>({
      async write(chunk) {
        stdout.write(chunk);
        await stdout.flush();
      },
    }),
  };
}
