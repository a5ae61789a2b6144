/** The floor on Deno: Deno.serve + Deno.upgradeWebSocket, JSON.parse, the call, JSON.stringify. */
import { READY } from "../wire.ts";
import { announce } from "./control.ts";
import { floorCalls } from "./floor-calls.ts";

const calls = floorCalls((socket: WebSocket, text) => socket.send(text));
Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => announce(port) }, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onopen = () => socket.send(READY);
  socket.onmessage = (event) => calls.message(socket, event.data);
  socket.onclose = () => calls.close(socket);
  return response;
});
