/**
 * How the app keeps its conversations, whichever protocol it speaks: each is a session whose
 * folded state is the conversation (`conversationState`), kept a while for a viewer's return,
 * on as long as a turn runs, and a bounded number of them per principal.
 */
import type { GatewayOptions, HandlerContext, Logger, MethodTable, SessionOptions, SessionSummary } from "../mod.ts";
import type { Agent } from "./agent.ts";
import { conversationState } from "./transcript.ts";

/** Options of `createAgentGateway` and `createHermesGateway`. */
export interface AgentGatewayOptions {
  agent: Agent;
  /** Who may connect (e.g. `tokenAuth`); without it, everyone is "anonymous" (as over stdio). */
  auth?: GatewayOptions<MethodTable>["auth"];
  logger?: Logger;
  /** How long a conversation nobody is viewing is kept (a reload, a network drop). Default `GRACE_MS`. */
  graceMs?: number;
  /**
   * Where the sessions and their conversations live: by default in this process's memory; a
   * shared store (`redisStore()` from `switchboard/redis`) keeps them for every node on it.
   */
  store?: SessionOptions["store"];
}

/** Sessions kept across all principals; one more ends the least recently active. */
const MAX_SESSIONS = 100;

/** Conversations one principal keeps; creating one more ends that principal's oldest. */
export const MAX_SESSIONS_PER_PRINCIPAL = 20;

/** How long a conversation without a viewer is kept before it ends (unless a turn is running). */
export const GRACE_MS = 20_000;

/** The gateway's `sessions` option for conversations kept for `graceMs` in `store`. */
export function conversationSessions({ graceMs = GRACE_MS, store }: AgentGatewayOptions): SessionOptions {
  return {
    graceMs,
    // A turn goes on while nobody watches (its answer is there on return); only an idle conversation ends.
    onOrphan: (session) => (session.running > 0 ? "defer" : "reap"),
    maxSessions: MAX_SESSIONS,
    state: conversationState,
    store,
  };
}

/** Whether the conversations live in a shared store: the folded state then follows the store, a moment after each emit. */
export function stateLags({ store }: AgentGatewayOptions): boolean {
  return store !== undefined && "shared" in store;
}

/** The caller's conversations as `ctx.sessions.all()` lists them (oldest first), newest first: what both lists answer. */
export function newestFirst(sessions: SessionSummary[]): SessionSummary[] {
  // Reversed first: the stable sort then keeps the newer of two created in the same millisecond first.
  return sessions.reverse().sort((a, b) => b.createdAt - a.createdAt);
}

/** Ends the caller's oldest conversations, wherever they live, so that one more stays within `MAX_SESSIONS_PER_PRINCIPAL`. */
export async function makeRoom(ctx: HandlerContext): Promise<void> {
  // `all()` is oldest first.
  const own = await ctx.sessions.all();
  for (const { id } of own.slice(0, Math.max(0, own.length - MAX_SESSIONS_PER_PRINCIPAL + 1))) {
    (await ctx.sessions.open(id)).close("evicted");
  }
}
