/** The floor on Bun: Bun.serve's websocket, JSON.parse, the call, JSON.stringify — nothing more. */
import type { ServerWebSocket } from "bun";
import { READY } from "../wire.ts";
import { announce } from "./control.ts";
import { floorCalls } from "./floor-calls.ts";

const calls = floorCalls((ws: ServerWebSocket<unknown>, text) => void ws.send(text));
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (request, server) => (server.upgrade(request) ? undefined : new Response("upgrade", { status: 426 })),
  websocket: {
    perMessageDeflate: false,
    open: (ws) => void ws.send(READY),
    message: (ws, data) => calls.message(ws, String(data)),
    close: (ws) => calls.close(ws),
  },
});
announce(server.port!);
