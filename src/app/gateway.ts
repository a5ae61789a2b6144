/**
 * The agent gateway: sessions that hold a conversation, prompts that stream the agent's
 * answer as session events, interrupts, history and the list of past sessions — built on the
 * public `switchboard` API only, as an application would.
 */
import * as v from "valibot";
import {
  createGateway,
  type GatewayOptions,
  type HandlerContext,
  type Logger,
  method,
  type MethodTable,
} from "../mod.ts";
import type { Agent } from "./agent.ts";
import { conversationOf, conversationState, runningTurns, runTurn, snapshot, titleOf } from "./transcript.ts";

/** Options of `createAgentGateway`. */
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
  store?: NonNullable<GatewayOptions<MethodTable>["sessions"]>["store"];
}

const SessionParams = v.object({ session_id: v.string() });

/** Sessions kept across all principals; one more ends the least recently active. */
const MAX_SESSIONS = 100;

/** Conversations one principal keeps; creating one more ends that principal's oldest. */
export const MAX_SESSIONS_PER_PRINCIPAL = 20;

/** How long a conversation without a viewer is kept before it ends (unless a turn is running). */
export const GRACE_MS = 20_000;

/** Ends the caller's oldest conversations, wherever they live, so that one more stays within `MAX_SESSIONS_PER_PRINCIPAL`. */
async function makeRoom(ctx: HandlerContext): Promise<void> {
  // `all()` is oldest first.
  const own = await ctx.sessions.all();
  for (const { id } of own.slice(0, Math.max(0, own.length - MAX_SESSIONS_PER_PRINCIPAL + 1))) {
    (await ctx.sessions.open(id)).close("evicted");
  }
}

/**
 * Builds the gateway behind `npm start`: `session.create`, `prompt.submit` (concurrent,
 * streams the answer), `session.interrupt`, `session.history`, `session.list`, plus the
 * built-ins. Each session's conversation is its folded events (`conversationState`), kept with
 * the session: with a shared `store`, a chat goes on from any node. A conversation nobody views
 * ends after `graceMs` unless a turn is running; a principal keeps at most
 * `MAX_SESSIONS_PER_PRINCIPAL`. The agent's tool use asks the client with an `approval`
 * request (`{session_id, turn_id, call_id, tool, input}` → `{decision: "allow" | "deny"}`).
 */
export function createAgentGateway({ agent, auth, logger, graceMs = GRACE_MS, store }: AgentGatewayOptions) {
  // With a shared store the folded state follows the store, a moment after each emit.
  const lagging = store !== undefined && "shared" in store;
  return createGateway({
    name: "switchboard-agent",
    auth,
    logger,
    // `shared`: conversations outlive this process (the page words its notices by it).
    ready: () => ({ agent: agent.name, ...(lagging ? { shared: true } : {}) }),
    sessions: {
      graceMs,
      // A turn goes on while nobody watches (its answer is there on return); only an idle conversation ends.
      onOrphan: (session) => (session.running > 0 ? "defer" : "reap"),
      maxSessions: MAX_SESSIONS,
      state: conversationState,
      store,
    },
    methods: {
      "session.create": method({
        params: v.optional(v.object({}), {}),
        handler: async (_, ctx) => {
          await makeRoom(ctx);
          return { session_id: ctx.sessions.create().id };
        },
      }),
      "prompt.submit": method({
        params: v.object({
          session_id: v.string(),
          text: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(20_000)),
        }),
        concurrent: true,
        handler: async (p, ctx) => {
          const session = await ctx.sessions.open(p.session_id);
          const outcome = await runTurn(session, { agent, prompt: p.text, signal: ctx.signal, lagging });
          if (outcome.error !== undefined) {
            ctx.log.warn("agent turn failed", { agent: agent.name, error: outcome.error });
          }
          return outcome;
        },
      }),
      "session.interrupt": method({
        params: SessionParams,
        handler: async (p, ctx) => {
          // How many turns run, as the conversation says.
          const summary = (await ctx.sessions.all()).find((s) => s.id === p.session_id);
          // Wherever the turn runs; a turn whose node died ends as `cut` (`session.interrupted`).
          // Not `open()`: that would bind this call to the session, and the interrupt would abort it too.
          const stopped = await ctx.sessions.interrupt(p.session_id);
          return { interrupted: stopped ? Math.max(runningTurns(conversationOf(summary?.state)), 1) : 0 };
        },
      }),
      "session.history": method({
        params: SessionParams,
        handler: async (p, ctx) => snapshot(await ctx.sessions.open(p.session_id)),
      }),
      "session.list": method({
        params: v.optional(v.object({}), {}),
        handler: async (_, ctx) => ({
          sessions: (await ctx.sessions.all())
            .map((summary) => {
              const conversation = conversationOf(summary.state);
              return {
                session_id: summary.id,
                seq: summary.latestSeq,
                title: titleOf(conversation),
                created_at: summary.createdAt,
                turns: conversation.turns.length,
                running: runningTurns(conversation),
              };
            })
            // Newest first; the stable sort keeps the newer of two created in the same millisecond first.
            .reverse()
            .sort((a, b) => b.created_at - a.created_at),
        }),
      }),
    },
  });
}

/** The agent gateway's type, for a typed client: `connect<AgentGateway>(url)`. */
export type AgentGateway = ReturnType<typeof createAgentGateway>;
