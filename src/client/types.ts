/**
 * Types that let `connect<typeof gateway>(url)` know every method's params and result, read
 * off the gateway's own definitions (type-only: nothing of the server is bundled).
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { ResumeResult } from "../jsonrpc/protocol.ts";

/** The params a method takes and the result it answers. */
export interface Signature<P = unknown, R = unknown> {
  /** The params `call` takes: the schema's input type, or a bare function's first parameter. */
  params: P;
  /** What `call` resolves with (a promise's value, not the promise). */
  result: R;
}

/** The signature of one entry of a gateway's method table. */
export type SignatureOf<D> = D extends { kind: "method"; handler: (params: never, ctx: never) => infer R } ? Signature<
    D extends { params?: StandardSchemaV1<infer I, unknown> } ? (unknown extends I ? unknown : I) : unknown,
    Awaited<R>
  >
  : D extends (params: infer P, ...rest: never[]) => infer R ? Signature<P, Awaited<R>>
  : Signature;

/** The built-in methods every gateway answers. */
export interface BuiltinSignatures {
  /** The heartbeat: answered at once, even while inline calls are queued. */
  "gateway.ping": Signature<undefined, { ok: true }>;
  /** Cancels this connection's request `id` (answered -32800, its `signal` aborted); false if it is not in flight. */
  "rpc.cancel": Signature<{ id: string | number }, { cancelled: boolean }>;
  /** The gateway's OpenRPC document: every method, built-ins included, with its params' JSON Schema. */
  "rpc.discover": Signature<undefined, unknown>;
  /** Replays the kept events after `after_seq` (default 0), attaches this connection, re-sends open server requests. */
  "session.resume": Signature<{ session_id: string; after_seq?: number }, ResumeResult>;
  /** Reads the kept events after `after_seq` and the open server requests, without attaching. */
  "session.events.since": Signature<
    { session_id: string; after_seq: number; epoch?: string },
    {
      events: SessionEvent[];
      count: number;
      latest_seq: number;
      truncated: boolean;
      epoch: string;
      open_requests: { id: string; method: string; params?: unknown }[];
    }
  >;
  /** Ends the session (reason `closed`); its viewers get `session.closed`. */
  "session.close": Signature<{ session_id: string }, { closed: true }>;
}

/** Method name → signature, for a gateway type (or anything with `methods`). */
export type SignaturesOf<G> =
  & (G extends { methods: infer M } ? { [K in keyof M & string]: SignatureOf<M[K]> }
    // deno-lint-ignore no-explicit-any -- without a gateway type, any params go and results are used without casts
    : Record<string, Signature<any, any>>)
  & BuiltinSignatures;

/** An event as the client delivers it: gateway-wide events have no `session_id` or `seq`. */
// deno-lint-ignore no-explicit-any -- untyped listeners read `payload` without casts
export interface SessionEvent<P = any> {
  /** The event's name, e.g. `message.delta` or `session.closed`. */
  type: string;
  /** The session it belongs to. */
  session_id?: string;
  /** Its number in the session: 1, 2, 3 … with no gaps. */
  seq?: number;
  /** As emitted; undefined when the emitter gave none. */
  payload: P;
}
