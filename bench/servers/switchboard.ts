/** Switchboard through `serve()` on whichever runtime runs this file. */
import { createGateway, silentLogger, type HandlerContext } from "../../src/mod.ts";
import { announce } from "./control.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const { serve } = (await import(`../../src/runtime/${runtime}.ts`)) as typeof import("../../src/runtime/node.ts");

const gateway = createGateway({
  logger: silentLogger,
  limits: { maxConnections: 10_000, maxBacklogBytes: 64 << 20 },
  methods: {
    add: ([a, b]: [number, number]) => a + b,
    stream: ({ count }: { count: number }, ctx: HandlerContext) => {
      for (let i = 0; i < count; i++) ctx.connection.emit("message.delta", { text: "tok", i });
      return count;
    },
  },
});
const server = await serve(gateway, { port: 0 });
announce(server.port);
