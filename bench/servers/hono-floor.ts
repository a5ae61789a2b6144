/**
 * The floor mounted through Switchboard's own `serve()` (its upgrade route and the runtime's
 * frame socket) but with no gateway behind it: JSON.parse, the call, JSON.stringify. Between the
 * floor and Switchboard, it splits the gap into what the runtime integration costs and what the
 * gateway core (connection, transport, codec, dispatch) costs.
 */
import type { Context } from "hono";
import { defaultLimits, type Gateway } from "../../src/mod.ts";
import type { FrameSocket } from "../../src/transport/transport.ts";
import { READY } from "../wire.ts";
import { announce } from "./control.ts";
import { floorCalls } from "./floor-calls.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const { serve } = (await import(`../../src/runtime/${runtime}.ts`)) as typeof import("../../src/runtime/node.ts");

const calls = floorCalls((socket: FrameSocket, text) => socket.send(text));

// Only what serve() uses of a gateway: its limits, guard, accept and close.
const gateway = {
  limits: { ...defaultLimits, maxBacklogBytes: 64 << 20 },
  guard: () => (_c: Context, next: () => Promise<void>) => next(),
  accept(_principal: string | undefined, socket: FrameSocket) {
    socket.attach({
      text: (frame) => calls.message(socket, frame),
      binary() {},
      oversized() {},
      flushQueued() {},
      ended: () => calls.close(socket),
    });
    socket.send(READY);
  },
  close: async () => {},
} as unknown as Gateway;

const server = await serve(gateway, { hostname: "127.0.0.1", port: 0 });
announce(server.port);
