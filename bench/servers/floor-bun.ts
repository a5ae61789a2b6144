/** The floor on Bun: Bun.serve's websocket, JSON.parse, the call, JSON.stringify — nothing more. */
import { payload, READY } from "../wire.ts";
import { announce } from "./control.ts";

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (request, server) => (server.upgrade(request) ? undefined : new Response("upgrade", { status: 426 })),
  websocket: {
    perMessageDeflate: false,
    open: (ws) => void ws.send(READY),
    message(ws, data) {
      const m = JSON.parse(String(data));
      if (m.method === "add") return void ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params[0] + m.params[1] }));
      for (let i = 0; i < m.params.count; i++) {
        ws.send(JSON.stringify({ jsonrpc: "2.0", method: "event", params: { type: "message.delta", payload: payload(i) } }));
      }
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params.count }));
    },
  },
});
announce(server.port!);
