/**
 * `switchboard/bun`: serve a gateway with `Bun.serve`: `maxPayloadLength` from the gateway's
 * limits (1009), no compression, each flush corked, and a dropped send treated as a failed one
 * (never silently lost).
 *
 * The gateway's route upgrades with `server.upgrade` itself, and its sockets' frames go
 * straight to their connection: `hono/bun`'s handlers build a `MessageEvent`, a `WSContext` and
 * a `URL` for every frame, which cost more CPU than the whole gateway's own work per request.
 * Any other WebSocket route on the app (with `hono/bun`'s `upgradeWebSocket`) still works: its
 * sockets go to `hono/bun`'s handlers.
 *
 * Liveness is the shared ping (as on Node): Bun's own `idleTimeout` rounds 1–7 s up to 8 s and
 * pings on a 4-second clock, so it cannot keep a `peerTimeoutMs` of a few seconds or less.
 */
import type { Server as BunServer, ServerWebSocket } from "bun";
import type { Context } from "hono";
import { type BunWebSocketData, websocket as honoWebSocket } from "hono/bun";
import { offeredProtocols } from "../gateway/auth.ts";
import type { Gateway, GatewayCore } from "../gateway/gateway.ts";
import { principalOf } from "../gateway/hono.ts";
import type { FrameSink, FrameSocket } from "../transport/transport.ts";
import {
  answeredProtocol,
  type LiveSocket,
  type RuntimeServe,
  type ServeOptions,
  type Server,
  serveWith,
} from "./serve-options.ts";

export type { ServeOptions, Server };

/**
 * A gateway connection's socket, kept as the Bun socket's `data`: a frame socket and a live
 * socket, with the connection to open once Bun has opened the socket.
 */
class BunSocket implements FrameSocket, LiveSocket {
  heard = true;
  /**
   * While Bun runs this socket's `message` handler, it holds the socket corked: the transport
   * then sends at once (`corked`), with no queue and no microtask per request, and a nested
   * `cork()` of ours cost ~0.2 µs per streamed event. Writes outside a handler (timers, other
   * sockets) are queued and corked by us: uncorked, every frame was its own write (5.5 µs
   * each instead of 0.25).
   */
  handling = false;
  ws: ServerWebSocket<BunSocket> | undefined;
  sink: FrameSink | undefined;
  /** Opens the gateway connection (once, when Bun has opened the socket). */
  readonly opened: (socket: BunSocket) => void;

  constructor(opened: (socket: BunSocket) => void) {
    this.opened = opened;
  }

  send(text: string): void {
    // Bun answers 0 when it dropped the frame; -1 means queued under backpressure.
    if (this.ws!.sendText(text) === 0) throw new Error("frame dropped by the socket");
  }

  close(code?: number, reason?: string): void {
    this.ws!.close(code, reason);
  }

  get bufferedAmount(): number {
    return this.ws!.getBufferedAmount();
  }

  get corked(): boolean {
    return this.handling;
  }

  cork(flush: () => void): void {
    this.ws!.cork(flush);
  }

  attach(sink: FrameSink): void {
    this.sink = sink;
  }

  ping(): void {
    this.ws!.ping();
  }

  terminate(): void {
    this.ws!.terminate();
  }
}

/** A socket of another route (`hono/bun`'s), kept alive by the same pings. */
class HonoLiveSocket implements LiveSocket {
  heard = true;
  readonly #ws: ServerWebSocket<unknown>;

  constructor(ws: ServerWebSocket<unknown>) {
    this.#ws = ws;
  }

  ping(): void {
    this.#ws.ping();
  }

  terminate(): void {
    this.#ws.terminate();
  }
}

type AnySocket = ServerWebSocket<BunSocket | (BunWebSocketData & { live?: HonoLiveSocket })>;

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
export function serve(gateway: Gateway, options: ServeOptions = {}): Promise<Server> {
  return serveWith(gateway, options, onBun);
}

const bunServer = (c: Context) => c.env as BunServer<unknown>;

/** The Bun parts of `serve()`. */
function onBun(gateway: GatewayCore): RuntimeServe {
  const live = new Set<LiveSocket>();
  const websocket = {
    open(ws: AnySocket) {
      const data = ws.data;
      if (data instanceof BunSocket) {
        data.ws = ws as ServerWebSocket<BunSocket>;
        live.add(data);
        data.opened(data);
      } else {
        live.add(data.live = new HonoLiveSocket(ws));
        honoWebSocket.open(ws as ServerWebSocket<BunWebSocketData>);
      }
    },
    message(ws: AnySocket, message: string | Buffer) {
      // `ws.data` is a call into Bun: read once per frame.
      const data = ws.data;
      if (!(data instanceof BunSocket)) {
        data.live!.heard = true;
        return honoWebSocket.message(ws as ServerWebSocket<BunWebSocketData>, message);
      }
      data.heard = true;
      data.handling = true;
      try {
        if (typeof message === "string") data.sink?.text(message);
        else data.sink?.binary();
      } finally {
        data.handling = false;
      }
    },
    close(ws: AnySocket, code: number, reason: string) {
      const data = ws.data;
      if (data instanceof BunSocket) {
        live.delete(data);
        const sink = data.sink;
        data.sink = undefined;
        sink?.ended(code);
      } else {
        live.delete(data.live!);
        honoWebSocket.close(ws as ServerWebSocket<BunWebSocketData>, code, reason);
      }
    },
    pong(ws: AnySocket) {
      const data = ws.data;
      (data instanceof BunSocket ? data : data.live!).heard = true;
    },
    maxPayloadLength: gateway.limits.maxMessageBytes,
    perMessageDeflate: false,
    // Our own backlog cap (1013) comes first; Bun's limit is only a backstop.
    backpressureLimit: gateway.limits.maxBacklogBytes * 2,
    // Off: the shared pings keep liveness.
    idleTimeout: 0,
  };
  return {
    route(c) {
      const principal = principalOf(c);
      const ip = bunServer(c).requestIP(c.req.raw);
      const peer = ip ? `${ip.address}:${ip.port}` : "unknown";
      const socket = new BunSocket((opened) => gateway.accept(principal, opened, peer));
      const protocol = answeredProtocol(offeredProtocols(c));
      const headers = protocol ? { "Sec-WebSocket-Protocol": protocol } : undefined;
      if (!bunServer(c).upgrade(c.req.raw, { data: socket, headers })) {
        return c.text("expected a WebSocket upgrade", 400);
      }
      // Bun answers the upgrade itself; this response is not sent.
      return new Response(null);
    },
    address: (c) => bunServer(c).requestIP(c.req.raw)?.address,
    // deno-lint-ignore require-await -- a `Bun.serve` that fails to bind throws: rejects, as on the other runtimes
    async listen(app, hostname, port) {
      const server = Bun.serve({ hostname, port, fetch: app.fetch, websocket });
      return {
        port: server.port!,
        sockets: live,
        stop: () => server.stop(true),
      };
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
