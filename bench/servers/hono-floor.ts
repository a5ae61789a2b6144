/**
 * The floor mounted through Switchboard's own `serve()` (Hono's upgrade helper and our
 * runtime adapter) but with no gateway behind it: JSON.parse, the call, JSON.stringify.
 * Between the floor and Switchboard, it splits the gap into what the runtime integration
 * costs and what the gateway core (connection, transport, codec, dispatch) costs.
 */
import type { Context } from "hono";
import type { WSEvents } from "hono/ws";
import { defaultLimits, type Gateway } from "../../src/mod.ts";
import type { SocketAdapter } from "../../src/gateway/hono.ts";
import { READY } from "../wire.ts";
import { announce } from "./control.ts";
import { floorCalls } from "./floor-calls.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const { serve } = (await import(`../../src/runtime/${runtime}.ts`)) as typeof import("../../src/runtime/node.ts");

function handler(adapter: SocketAdapter): (c: Context) => WSEvents {
  const calls = floorCalls((socket: ReturnType<SocketAdapter["socket"]>, text) => socket.send(text));
  return () => {
    let socket: ReturnType<SocketAdapter["socket"]>;
    return {
      onOpen(_event, ws) {
        socket = adapter.socket(ws);
        socket.send(READY);
      },
      onMessage: (event) => calls.message(socket, event.data as string),
      onClose: () => calls.close(socket),
    };
  };
}

// Only what serve() uses of a gateway: its limits, guard, handler and close.
const gateway = {
  limits: { ...defaultLimits, maxBacklogBytes: 64 << 20 },
  guard: () => (_c: Context, next: () => Promise<void>) => next(),
  handlerWith: handler,
  close: async () => {},
} as unknown as Gateway;

const server = await serve(gateway, { hostname: "127.0.0.1", port: 0 });
announce(server.port);
