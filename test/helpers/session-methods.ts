/** Methods an app writes on top of sessions, shared by the session, client and fault tests. */
import * as v from "valibot";
import { method, type MethodTable, type SessionState } from "../../src/mod.ts";

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

/** A promise with its resolver, for handlers a test releases by hand. */
export function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

export const SessionParams = v.object({ session_id: v.string() });

/** What `countingState` keeps: how many events it folded, of which types, the last seq, and whether every seq came once, in order. */
export interface Counted {
  count: number;
  last: number;
  inOrder: boolean;
  types: Record<string, number>;
}

/** A session state for the tests (`sessions.state`): counts the events it folds. */
export const countingState: SessionState<Counted> = {
  initial: () => ({ count: 0, last: 0, inOrder: true, types: {} }),
  apply(state, event) {
    state.inOrder &&= event.seq === state.last + 1;
    state.last = event.seq;
    state.count++;
    state.types[event.type] = (state.types[event.type] ?? 0) + 1;
    return state;
  },
};

/** The methods an app would write on top of sessions: create, stream, ask, and a long turn. */
export function sessionMethods(turn?: { gate: Promise<void>; seen: { aborted?: boolean } }) {
  return {
    "session.create": method({
      params: v.optional(v.object({ close_on_disconnect: v.optional(v.boolean()) }), {}),
      handler: (p, ctx) => ({ session_id: ctx.sessions.create({ closeOnDisconnect: p.close_on_disconnect }).id }),
    }),
    // Emits `count` events, `chunk` per macrotask, so the stream spans many network turns.
    "demo.emit": method({
      params: v.object({
        session_id: v.string(),
        count: v.number(),
        chunk: v.optional(v.number(), 1_000_000),
        bytes: v.optional(v.number(), 0),
      }),
      concurrent: true,
      handler: async (p, ctx) => {
        const session = ctx.session(p.session_id);
        const pad = "x".repeat(p.bytes);
        for (let i = 1; i <= p.count; i++) {
          session.emit("message.delta", { i, pad });
          if (i % p.chunk === 0) await tick();
        }
        return { last: session.latestSeq };
      },
    }),
    // Emits the given events as they are.
    "demo.events": method({
      params: v.object({
        session_id: v.string(),
        events: v.array(v.object({ type: v.string(), payload: v.optional(v.unknown()) })),
      }),
      handler: (p, ctx) => {
        const session = ctx.session(p.session_id);
        for (const event of p.events) session.emit(event.type, event.payload);
        return { last: session.latestSeq };
      },
    }),
    // Asks the client for approval and reports the answer as a session event.
    "demo.ask": method({
      params: v.object({ session_id: v.string(), timeout_ms: v.optional(v.number()) }),
      concurrent: true,
      handler: async (p, ctx) => {
        const session = ctx.session(p.session_id);
        const answer = await session.request("approval", { command: "ls" }, { timeoutMs: p.timeout_ms });
        session.emit("approval.result", { answer });
        return { answer };
      },
    }),
    // The caller's session wherever it lives, with its state.
    "state.get": method({
      params: SessionParams,
      handler: async (p, ctx) => {
        const session = await ctx.sessions.open(p.session_id);
        return { seq: session.stateSeq, state: session.state, created_at: session.createdAt };
      },
    }),
    "sessions.all": method({
      handler: async (_, ctx) => ({ sessions: await ctx.sessions.all() }),
    }),
    "session.interrupt": method({
      params: SessionParams,
      handler: async (p, ctx) => ({ interrupted: await ctx.sessions.interrupt(p.session_id) }),
    }),
    // Work bound to the session that runs until it is interrupted (at most 10 s): answers why it stopped.
    "demo.wait": method({
      params: SessionParams,
      concurrent: true,
      handler: async (p, ctx) => {
        ctx.session(p.session_id);
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, 10_000);
          ctx.signal.addEventListener("abort", () => resolve(clearTimeout(timer)), { once: true });
        });
        return { reason: (ctx.signal.reason as { data?: { reason?: string } } | undefined)?.data?.reason ?? null };
      },
    }),
    // Work bound to the session, not to this call: answers at once; the work asks the client and
    // waits (at most 10 s) until answered or interrupted, and reports how it ended as a session event.
    "demo.background": method({
      params: SessionParams,
      handler: async (p, ctx) => {
        const session = await ctx.sessions.open(p.session_id);
        void session.run(async (signal) => {
          const answer = await session.request("approval", { command: "wait" }, { signal, timeoutMs: 10_000 })
            .catch(() => undefined);
          session.emit("background.done", {
            answer,
            reason: (signal.reason as { data?: { reason?: string } } | undefined)?.data?.reason ?? null,
          });
        });
        return { started: true };
      },
    }),
    // The library's session calls, for an app's own methods.
    "demo.attach": method({
      params: v.object({ session_id: v.string(), after_seq: v.optional(v.number()) }),
      handler: (p, ctx) => ctx.sessions.resume(p.session_id, { afterSeq: p.after_seq }),
    }),
    "demo.since": method({
      params: v.object({ session_id: v.string(), after_seq: v.number(), epoch: v.optional(v.string()) }),
      handler: (p, ctx) => ctx.sessions.since(p.session_id, p.after_seq, p.epoch),
    }),
    "demo.answer": method({
      params: v.object({ session_id: v.string(), request_id: v.string(), result: v.unknown() }),
      handler: async (p, ctx) => ({ answered: await ctx.sessions.answer(p.session_id, p.request_id, p.result) }),
    }),
    // What a client says it supports, kept per connection.
    "client.capabilities": method({
      params: v.object({ server_requests: v.boolean() }),
      handler: (p, ctx) => {
        ctx.connection.capabilities.serverRequests = p.server_requests;
        return { server_requests: ["approval"] };
      },
    }),
    // A turn that runs until the test opens its gate.
    "demo.turn": method({
      params: SessionParams,
      concurrent: true,
      handler: async (p, ctx) => {
        ctx.session(p.session_id);
        await turn?.gate;
        if (turn) turn.seen.aborted = ctx.signal.aborted;
        return { done: true };
      },
    }),
  } satisfies MethodTable;
}
