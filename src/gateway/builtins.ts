/** The built-in methods every gateway answers (DESIGN §3). */
import * as v from "valibot";
import { IdSchema } from "../jsonrpc/schema.ts";
import type { Connection } from "./connection.ts";
import { method, toEntry, type MethodEntry } from "./method.ts";

const PONG = { ok: true } as const;

/** Built-in method entries; `discover` returns the gateway's OpenRPC document. */
export function builtinMethods(discover: () => unknown): MethodEntry[] {
  return [
    // Answered before anything queued, so a client can tell a busy gateway from a dead one.
    toEntry("gateway.ping", () => PONG, "immediate"),
    toEntry(
      "rpc.cancel",
      method({
        params: v.object({ id: IdSchema }),
        handler: (p, ctx) => ({ cancelled: p.id !== null && (ctx.connection as Connection).cancel(p.id) }),
      }),
      "immediate",
    ),
    toEntry("rpc.discover", discover, "concurrent"),
  ];
}
