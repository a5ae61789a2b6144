/**
 * Types that let `connect<typeof gateway>(url)` know every method's params and result, read
 * off the gateway's own definitions (type-only: nothing of the server is bundled).
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { ResumeResult } from "../sessions/session.ts";

/** The params a method takes and the result it answers. */
export interface Signature<P = unknown, R = unknown> {
  params: P;
  result: R;
}

/** The signature of one entry of a gateway's method table. */
export type SignatureOf<D> = D extends { kind: "method"; handler: (params: any, ctx: any) => infer R } ? Signature<
    D extends { params?: StandardSchemaV1<infer I, any> } ? (unknown extends I ? unknown : I) : unknown,
    Awaited<R>
  >
  : D extends (params: infer P, ...rest: any[]) => infer R ? Signature<P, Awaited<R>>
  : Signature;

/** The built-in methods every gateway answers. */
export interface BuiltinSignatures {
  "gateway.ping": Signature<undefined, { ok: true }>;
  "rpc.cancel": Signature<{ id: string | number }, { cancelled: boolean }>;
  "rpc.discover": Signature<undefined, unknown>;
  "session.resume": Signature<{ session_id: string; after_seq?: number }, ResumeResult>;
  "session.events.since": Signature<
    { session_id: string; after_seq: number },
    { events: SessionEvent[]; latest_seq: number; truncated: boolean }
  >;
  "session.close": Signature<{ session_id: string }, { closed: true }>;
}

/** Method name → signature, for a gateway type (or anything with `methods`). */
export type SignaturesOf<G> =
  & (G extends { methods: infer M } ? { [K in keyof M & string]: SignatureOf<M[K]> }
    : Record<string, Signature<any, any>>)
  & BuiltinSignatures;

/** An event as the client delivers it: gateway-wide events have no `session_id` or `seq`. */
export interface SessionEvent<P = any> {
  type: string;
  session_id?: string;
  seq?: number;
  payload: P;
}
