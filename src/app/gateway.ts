/**
 * The agent gateway: sessions that hold a conversation, prompts that stream the agent's
 * answer as session events, interrupts, history and the list of past sessions — built on the
 * public `switchboard` API only, as an application would.
 */
import * as v from "valibot";
import { createGateway, method } from "../mod.ts";
import { defaultAsker } from "./asker.ts";
import { type AgentGatewayOptions, conversationSessions, makeRoom, newestFirst, stateLags } from "./conversations.ts";
import { conversationOf, runningTurns, runTurn, snapshot, titleOf, type TurnOutcome } from "./transcript.ts";

const SessionParams = v.object({ session_id: v.string() });

/**
 * Builds the gateway behind `npm start`: `session.create`, `prompt.submit` (concurrent,
 * streams the answer), `session.interrupt`, `session.history`, `session.list`, plus the
 * built-ins. Each session's conversation is its folded events (`conversationState`), kept with
 * the session: with a shared `store`, a chat goes on from any node. A conversation nobody views
 * ends after `graceMs` unless a turn is running; a principal keeps at most
 * `MAX_SESSIONS_PER_PRINCIPAL`. The agent asks the client with server requests
 * (`defaultAsker`): `approval` before it runs a tool, `clarify` for a question.
 */
export function createAgentGateway(options: AgentGatewayOptions) {
  const { agent, auth, logger } = options;
  const lagging = stateLags(options);
  return createGateway({
    name: "switchboard-agent",
    auth,
    logger,
    // `shared`: conversations outlive this process (the page words its notices by it).
    ready: () => ({ agent: agent.name, ...(lagging ? { shared: true } : {}) }),
    sessions: conversationSessions(options),
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
        // How the turn ended, without its text: the client has it from the events.
        handler: async (p, ctx): Promise<Omit<TurnOutcome, "text">> => {
          const session = await ctx.sessions.open(p.session_id);
          const { text: _text, ...outcome } = await runTurn(session, {
            agent,
            prompt: p.text,
            signal: ctx.signal,
            lagging,
            asker: defaultAsker,
          });
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
          sessions: newestFirst(await ctx.sessions.all())
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
            }),
        }),
      }),
    },
  });
}

/** The agent gateway's type, for a typed client: `connect<AgentGateway>(url)`. */
export type AgentGateway = ReturnType<typeof createAgentGateway>;
