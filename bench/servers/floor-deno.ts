/** The floor on Deno: Deno.serve + Deno.upgradeWebSocket, JSON.parse, the call, JSON.stringify. */
import { payload, READY } from "../wire.ts";
import { announce } from "./control.ts";

Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => announce(port) }, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onopen = () => socket.send(READY);
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.method === "add") return socket.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params[0] + m.params[1] }));
    for (let i = 0; i < m.params.count; i++) {
      socket.send(JSON.stringify({ jsonrpc: "2.0", method: "event", params: { type: "message.delta", payload: payload(i) } }));
    }
    socket.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params.count }));
  };
  return response;
});
