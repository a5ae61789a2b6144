/**
 * The small demo gateway `npm start` serves until the reference agent app exists:
 * arithmetic, an echo, a streaming method and a slow concurrent one.
 */
import * as v from "valibot";
import { createGateway, method, type Logger } from "../mod.ts";

/** Builds the demo gateway. */
export function demoGateway(logger?: Logger) {
  return createGateway({
    name: "switchboard-demo",
    logger,
    methods: {
      "math.add": ([a, b]: [number, number]) => a + b,
      echo: (params: unknown) => params,
      "demo.stream": method({
        params: v.object({ count: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100_000)) }),
        handler: ({ count }, ctx) => {
          for (let i = 1; i <= count; i++) ctx.connection.emit("demo.tick", { i });
          return { sent: count };
        },
      }),
      "demo.sleep": method({
        params: v.object({ ms: v.pipe(v.number(), v.minValue(0), v.maxValue(60_000)) }),
        concurrent: true,
        handler: ({ ms }, ctx) =>
          new Promise((resolve, reject) => {
            const timer = setTimeout(() => resolve({ slept: ms }), ms);
            ctx.signal.addEventListener("abort", () => {
              clearTimeout(timer);
              reject(ctx.signal.reason);
            });
          }),
      }),
    },
  });
}
