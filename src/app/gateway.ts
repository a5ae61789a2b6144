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
import { Transcript } from "./transcript.ts";

/** Options of `createAgentGateway`. */
export interface AgentGatewayOptions {
  agent: Agent;
  /** Who may connect (e.g. `tokenAuth`); without it, everyone is "anonymous" (as over stdio). */
  auth?: GatewayOptions<MethodTable>["auth"];
  logger?: Logger;
  /** How long a conversation nobody is viewing is kept (a reload, a network drop). Default `GRACE_MS`. */
  graceMs?: number;
}

const SessionParams = v.object({ session_id: v.string() });

/** Sessions kept across all principals; one more ends the least recently active. */
const MAX_SESSIONS = 100;

/** Conversations one principal keeps; creating one more ends that principal's oldest. */
export const MAX_SESSIONS_PER_PRINCIPAL = 20;

/** How long a conversation without a viewer is kept before it ends (unless a turn is running). */
export const GRACE_MS = 20_000;

/**
 * Builds the gateway behind `npm start`: `session.create`, `prompt.submit` (concurrent,
 * streams the answer), `session.interrupt`, `session.history`, `session.list`, plus the
 * built-ins. A conversation nobody views ends after `graceMs` unless a turn is running; a
 * principal keeps at most `MAX_SESSIONS_PER_PRINCIPAL`. The agent's tool use asks the client
 * with an `approval` request (`{session_id, turn_id, call_id, tool, input}` →
 * `{decision: "allow" | "deny"}`).
 */
export function createAgentGateway({ agent, auth, logger, graceMs = GRACE_MS }: AgentGatewayOptions) {
  const transcripts = new Map<string, Transcript>();
  // The session's owner check comes first (`ctx.session` answers -32001 for anyone else's).
  const transcriptOf = (ctx: HandlerContext, sessionId: string) => transcripts.get(ctx.session(sessionId).id)!;

  return createGateway({
    name: "switchboard-agent",
    auth,
    logger,
    ready: () => ({ agent: agent.name }),
    sessions: {
      graceMs,
      // A turn goes on while nobody watches (its answer is there on return); only an idle conversation ends.
      onOrphan: (session) => (session.running > 0 ? "defer" : "reap"),
      maxSessions: MAX_SESSIONS,
      hooks: { closed: (session) => transcripts.delete(session.id) },
    },
    methods: {
      "session.create": method({
        params: v.optional(v.object({}), {}),
        handler: (_, ctx) => {
          // `list()` is in creation order: the first is the principal's oldest.
          const own = ctx.sessions.list();
          if (own.length >= MAX_SESSIONS_PER_PRINCIPAL) own[0]!.close("evicted");
          const session = ctx.sessions.create();
          transcripts.set(session.id, new Transcript(session));
          return { session_id: session.id };
        },
      }),
      "prompt.submit": method({
        params: v.object({
          session_id: v.string(),
          text: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(20_000)),
        }),
        concurrent: true,
        handler: async (p, ctx) => {
          const outcome = await transcriptOf(ctx, p.session_id).run(agent, p.text, ctx.signal);
          if (outcome.error !== undefined) {
            ctx.log.warn("agent turn failed", { agent: agent.name, error: outcome.error });
          }
          return outcome;
        },
      }),
      "session.interrupt": method({
        params: SessionParams,
        handler: (p, ctx) => ({ interrupted: transcriptOf(ctx, p.session_id).interrupt() }),
      }),
      "session.history": method({
        params: SessionParams,
        handler: (p, ctx) => transcriptOf(ctx, p.session_id).snapshot(),
      }),
      "session.list": method({
        params: v.optional(v.object({}), {}),
        handler: (_, ctx) => ({
          sessions: ctx.sessions
            .list()
            .flatMap((session) => {
              const transcript = transcripts.get(session.id);
              return transcript
                ? [{
                  session_id: session.id,
                  seq: session.latestSeq,
                  title: transcript.title,
                  created_at: transcript.createdAt,
                  turns: transcript.turns,
                  running: transcript.running,
                }]
                : [];
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
