/** The built-in methods every gateway answers (docs/protocol.md, Built-in methods). */
import * as v from "valibot";
import { IdSchema } from "../jsonrpc/schema.ts";
import type { Connection } from "./connection.ts";
import { method, type MethodEntry, toEntry } from "./method.ts";

const PONG = { ok: true } as const;
const SessionId = v.pipe(v.string(), v.maxLength(128));
const Seq = v.pipe(v.number(), v.integer(), v.minValue(0));

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
    // Session built-ins are synchronous, so replay and attach happen in one run: nothing interleaves.
    toEntry(
      "session.resume",
      method({
        params: v.object({ session_id: SessionId, after_seq: v.optional(Seq, 0) }),
        handler: (p, ctx) => {
          const connection = ctx.connection as Connection;
          return connection.sessionRegistry.resume(connection, p.session_id, p.after_seq);
        },
      }),
      "concurrent",
    ),
    toEntry(
      "session.events.since",
      method({
        params: v.object({ session_id: SessionId, after_seq: Seq }),
        handler: (p, ctx) =>
          (ctx.connection as Connection).sessionRegistry.since(ctx.connection.principal, p.session_id, p.after_seq),
      }),
      "concurrent",
    ),
    toEntry(
      "session.close",
      method({
        params: v.object({ session_id: SessionId }),
        handler: (p, ctx) => {
          (ctx.connection as Connection).sessionRegistry.use(p.session_id, ctx.connection.principal).close("closed");
          return { closed: true };
        },
      }),
      "concurrent",
    ),
  ];
}

/** Names of the built-ins, which a gateway's own methods may not take. */
export const BUILTIN_NAMES = new Set(builtinMethods(() => undefined).map((entry) => entry.name));
