/** The floor on Node: `ws` on node:http, JSON.parse, the call, JSON.stringify — nothing more. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { READY } from "../wire.ts";
import { announce } from "./control.ts";
import { floorCalls } from "./floor-calls.ts";

const calls = floorCalls((ws: WebSocket, text) => ws.send(text));
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.send(READY);
  ws.on("message", (data) => calls.message(ws, String(data)));
  ws.on("close", () => calls.close(ws));
});
http.listen(0, "127.0.0.1", () => announce((http.address() as AddressInfo).port));
