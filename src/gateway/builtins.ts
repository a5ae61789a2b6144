/** The built-in methods every gateway answers (docs/protocol.md, Built-in methods). */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import * as v from "valibot";
import type { ResumeResult } from "../jsonrpc/protocol.ts";
import { IdSchema } from "../jsonrpc/schema.ts";
import type { CallContext } from "./context.ts";
import { type MethodEntry, type Mode, validated } from "./method.ts";

const PONG = { ok: true } as const;
const CLOSED = { closed: true } as const;
const SessionId = v.pipe(v.string(), v.maxLength(128));
const Seq = v.pipe(v.number(), v.integer(), v.minValue(0));

/** A built-in: its handler sees the call's internal context (`CallContext`). */
function builtin<S extends StandardSchemaV1>(
  name: string,
  mode: Mode,
  params: S,
  handler: (params: StandardSchemaV1.InferOutput<S>, ctx: CallContext) => unknown,
): MethodEntry {
  return {
    name,
    mode,
    params,
    invoke: (value, ctx) => validated(params, value, (valid) => handler(valid as StandardSchemaV1.InferOutput<S>, ctx)),
  };
}

/** Built-in method entries; `discover` returns the gateway's OpenRPC document. */
export function builtinMethods(discover: () => unknown): MethodEntry[] {
  return [
    // Answered before anything queued, so a client can tell a busy gateway from a dead one.
    { name: "gateway.ping", mode: "immediate", params: undefined, invoke: () => PONG },
    builtin(
      "rpc.cancel",
      "immediate",
      v.object({ id: IdSchema }),
      (p, ctx) => ({ cancelled: p.id !== null && ctx.connection.cancel(p.id) }),
    ),
    { name: "rpc.discover", mode: "concurrent", params: undefined, invoke: discover },
    // With the in-memory store session built-ins are synchronous, so replay and attach happen in one run:
    // nothing interleaves. With a shared store they read it; the connection holds its later calls until
    // the resume is answered, so they find the session here.
    builtin(
      "session.resume",
      "concurrent",
      v.object({
        session_id: SessionId,
        after_seq: v.optional(Seq, 0),
        epoch: v.optional(v.pipe(v.string(), v.maxLength(128))),
      }),
      (p, ctx) => resumeSession(ctx.connection, p.session_id, p.after_seq, p.epoch),
    ),
    builtin(
      "session.events.since",
      "concurrent",
      v.object({ session_id: SessionId, after_seq: Seq, epoch: v.optional(v.pipe(v.string(), v.maxLength(128))) }),
      (p, ctx) => ctx.connection.sessionRegistry.since(ctx.connection.principal, p.session_id, p.after_seq, p.epoch),
    ),
    builtin("session.close", "concurrent", v.object({ session_id: SessionId }), (p, ctx) => {
      const closing = ctx.connection.sessionRegistry.close(ctx.connection.principal, p.session_id);
      return closing instanceof Promise ? closing.then(() => CLOSED) : CLOSED;
    }),
  ];
}

/**
 * Attaches `connection` to its principal's session `id`, replaying after `afterSeq` (none
 * without it): `session.resume` and `ctx.sessions.resume()`. With a shared store it reads the
 * store, and the connection's later calls wait for it, so that they find the session here.
 */
export function resumeSession(
  connection: CallContext["connection"],
  id: string,
  afterSeq: number | undefined,
  epoch: string | undefined,
): ResumeResult | Promise<ResumeResult> {
  const registry = connection.sessionRegistry;
  const result = registry.resume(connection, id, afterSeq, epoch);
  const observer = registry.observer;
  if (result instanceof Promise) {
    connection.holdCalls(result);
    // A failed resume is counted by its answer's error code, not as a resume.
    if (observer) result.then((resumed) => observer.resumed(resumed), () => {});
  } else observer?.resumed(result);
  return result;
}

/** The built-ins an app may rename or drop (`createGateway({ builtins })`); `rpc.*` stay as they are. */
export type BuiltinName = "gateway.ping" | "session.resume" | "session.events.since" | "session.close";

/** The names of `BuiltinName`, for checking the `builtins` option at run time. */
export const RENAMEABLE_BUILTINS: ReadonlySet<string> = new Set<BuiltinName>([
  "gateway.ping",
  "session.resume",
  "session.events.since",
  "session.close",
]);
