/**
 * Switchboard as deployed, for `bench/faults.ts`: `serve()` on whichever runtime runs this
 * file, every limit at its default, and a session whose stream runs on whether or not anyone
 * reads it (an agent's turn does not wait for its viewers).
 */
import * as v from "valibot";
import { createGateway, type HandlerContext, method, silentLogger } from "../../src/mod.ts";
import { announce } from "./control.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const { serve } = (await import(`../../src/runtime/${runtime}.ts`)) as typeof import("../../src/runtime/node.ts");

/** Events per macrotask: the stream yields between runs, so other connections get their turn. */
const RUN = 100;

const gateway = createGateway({
  logger: silentLogger,
  methods: {
    add: ([a, b]: [number, number]) => a + b,
    "session.create": (_params: unknown, ctx: HandlerContext) => ({ session_id: ctx.sessions.create().id }),
    "session.stream": method({
      params: v.object({ session_id: v.string(), count: v.number(), bytes: v.number() }),
      concurrent: true,
      handler: async ({ session_id, count, bytes }, ctx) => {
        const session = ctx.session(session_id);
        const pad = "x".repeat(bytes);
        for (let i = 1; i <= count && !ctx.signal.aborted; i++) {
          session.emit("message.delta", { i, pad });
          if (i % RUN === 0) await new Promise((resolve) => setTimeout(resolve, 0));
        }
        return count;
      },
    }),
  },
});
const server = await serve(gateway, { hostname: "127.0.0.1", port: 0 });
announce(server.port);
