/** rpc-websockets' server (over `ws`): what a Node user might pick instead. */
import { Server } from "rpc-websockets";
import { READY } from "../wire.ts";
import { announce } from "./control.ts";

const server = new Server({ host: "127.0.0.1", port: 0 });
// rpc-websockets keeps a method table per URL path ("namespace"); the client connects to /api/ws.
server.register("add", (params) => (params as [number, number])[0] + (params as [number, number])[1], "/api/ws");
// The same first frame as the others, so one client drives them all.
server.on("connection", (ws: { send(text: string): void }) => ws.send(READY));
server.on("listening", () => announce((server.wss.address() as { port: number }).port));
