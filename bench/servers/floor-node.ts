/** The floor on Node: `ws` on node:http, JSON.parse, the call, JSON.stringify — nothing more. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { payload, READY } from "../wire.ts";
import { announce } from "./control.ts";

const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.send(READY);
  ws.on("message", (data) => {
    const m = JSON.parse(String(data));
    if (m.method === "add") return ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params[0] + m.params[1] }));
    for (let i = 0; i < m.params.count; i++) {
      ws.send(JSON.stringify({ jsonrpc: "2.0", method: "event", params: { type: "message.delta", payload: payload(i) } }));
    }
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params.count }));
  });
});
http.listen(0, "127.0.0.1", () => announce((http.address() as AddressInfo).port));
