/** Switchboard through `serve()` on whichever runtime runs this file. */
import { createGateway, type HandlerContext, silentLogger } from "../../src/mod.ts";
import { payload } from "../wire.ts";
import { announce } from "./control.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const { serve } = (await import(`../../src/runtime/${runtime}.ts`)) as typeof import("../../src/runtime/node.ts");

const gateway = createGateway({
  logger: silentLogger,
  // Room for the idle workload's connections and for a whole stream queued in one tick
  // (200,000 events ≈ 27 MB); the floors have no such caps. The 1×1 latency client sends
  // over 10,000 requests/s on one connection, past the default rate limit of 5,000.
  limits: { maxConnections: 10_000, maxBacklogBytes: 64 << 20, messagesPerSecond: 1_000_000 },
  methods: {
    add: ([a, b]: [number, number]) => a + b,
    stream: ({ count }: { count: number }, ctx: HandlerContext) => {
      for (let i = 0; i < count; i++) ctx.connection.emit("message.delta", payload(i));
      return count;
    },
    // The session workloads: viewers join with the built-in `session.resume`.
    "session.create": (_params: unknown, ctx: HandlerContext) => ({ session_id: ctx.sessions.create().id }),
    broadcast: ({ session_id, count }: { session_id: string; count: number }, ctx: HandlerContext) => {
      const session = ctx.session(session_id);
      for (let i = 0; i < count; i++) session.emit("message.delta", payload(i));
      return count;
    },
  },
});
const server = await serve(gateway, { hostname: "127.0.0.1", port: 0 });
announce(server.port);
