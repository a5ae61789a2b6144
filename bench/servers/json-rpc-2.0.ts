/** json-rpc-2.0's JSONRPCServer over `ws`: what a Node user might pick instead. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { JSONRPCServer } from "json-rpc-2.0";
import { WebSocketServer } from "ws";
import { READY } from "../wire.ts";
import { announce } from "./control.ts";

const rpc = new JSONRPCServer();
rpc.addMethod("add", ([a, b]: [number, number]) => a + b);
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.send(READY);
  ws.on("message", async (data) => {
    const response = await rpc.receiveJSON(String(data));
    if (response) ws.send(JSON.stringify(response));
  });
});
http.listen(0, "127.0.0.1", () => announce((http.address() as AddressInfo).port));
