/**
 * Hermes' session methods over the app's conversations: create, resume / activate (attach this
 * connection and answer a snapshot), list, history, and `session.events.since`. A session's
 * runtime id and its stored id are the same Switchboard session id, under which the gateway's
 * store (memory, or Redis) keeps it: a reload reopens a chat by that id.
 */
import * as v from "valibot";
import { type HandlerContext, method, type SessionHandle } from "../mod.ts";
import type { Agent } from "./agent.ts";
import { openRequestsOf } from "./hermes-requests.ts";
import type { HermesTurns } from "./hermes-turns.ts";
import { makeRoom, newestFirst } from "./conversations.ts";
import { answerOf, type Conversation, conversationOf, runningTurns, titleOf } from "./transcript.ts";

/** A transcript row as hermes' clients render them. */
export interface HermesMessage {
  role: "user" | "assistant";
  content: string;
}

const SessionId = v.pipe(v.string(), v.maxLength(128));
// Hermes' clients send more (cols, profile, lazy…): what the app has no use for is ignored.
const SessionParams = v.looseObject({ session_id: SessionId });

/** The conversation as rows: each finished turn's prompt and answer, and a running turn's prompt. */
function messagesOf(conversation: Conversation): HermesMessage[] {
  return conversation.turns.flatMap((turn) => {
    const answer = turn.status === "running" ? "" : answerOf(turn);
    const user: HermesMessage = { role: "user", content: turn.prompt };
    return answer ? [user, { role: "assistant" as const, content: answer }] : [user];
  });
}

/** The session's live settings, as `info`. */
function infoOf(agent: Agent) {
  // `list_files` is the one tool either agent runs (asking the user is not a tool here).
  return { model: agent.name, tools: ["list_files"] };
}

/**
 * `session.create`, `session.resume`, `session.activate`, `session.list`, `session.history`
 * and `session.events.since` in hermes' shapes. `turns` tells which sessions run a turn here.
 */
export function hermesSessionMethods(agent: Agent, turns: HermesTurns) {
  /** What resume and activate answer: the conversation, whether a turn runs, and the open requests. */
  const liveSnapshot = async (ctx: HandlerContext, session: SessionHandle) => {
    const conversation = conversationOf(session.state);
    const messages = messagesOf(conversation);
    const current = conversation.turns.at(-1);
    const inflight = current?.status === "running"
      ? { user: current.prompt, assistant: answerOf(current), streaming: true }
      : undefined;
    return {
      session_id: session.id,
      stored_session_id: session.id,
      message_count: messages.length,
      messages,
      info: infoOf(agent),
      running: turns.running(session.id) || runningTurns(conversation) > 0,
      ...(inflight && { inflight }),
      queued: turns.queued(session.id),
      open_requests: await openRequestsOf(ctx, session.id),
    };
  };
  /** Attaches the calling connection from now on, then answers the snapshot. */
  const attach = method({
    params: SessionParams,
    handler: async (p, ctx) => {
      // Attached first: an event emitted meanwhile is in the snapshot and also arrives live, never in neither.
      await ctx.sessions.resume(p.session_id);
      return await liveSnapshot(ctx, await ctx.sessions.open(p.session_id));
    },
  });
  return {
    "session.create": method({
      params: v.optional(v.looseObject({ close_on_disconnect: v.optional(v.boolean()) }), {}),
      handler: async (p, ctx) => {
        await makeRoom(ctx);
        const session = ctx.sessions.create({ closeOnDisconnect: p.close_on_disconnect === true });
        return {
          session_id: session.id,
          stored_session_id: session.id,
          message_count: 0,
          messages: [],
          info: infoOf(agent),
        };
      },
    }),
    "session.resume": attach,
    "session.activate": attach,
    "session.list": method({
      params: v.optional(v.looseObject({ limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))) }), {}),
      handler: async (p, ctx) => {
        const sessions = newestFirst(await ctx.sessions.all())
          .map((summary) => {
            const conversation = conversationOf(summary.state);
            return {
              id: summary.id,
              title: titleOf(conversation),
              preview: conversation.turns[0]?.prompt.slice(0, 80) ?? "",
              // Seconds, as hermes' clients read `started_at`.
              started_at: summary.createdAt / 1000,
              message_count: messagesOf(conversation).length,
              source: "switchboard",
            };
          });
        return { sessions: sessions.slice(0, p.limit) };
      },
    }),
    "session.history": method({
      params: SessionParams,
      handler: async (p, ctx) => {
        const messages = messagesOf(conversationOf((await ctx.sessions.open(p.session_id)).state));
        return { count: messages.length, messages };
      },
    }),
    "session.events.since": method({
      params: v.looseObject({
        session_id: SessionId,
        last_seen: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
        replay_epoch: v.optional(v.pipe(v.string(), v.maxLength(128))),
      }),
      handler: async (p, ctx) => {
        // Attached first, so that the session's live events reach this connection from now on
        // (hermes' clients park them while this call runs, and drop those the replay holds).
        await ctx.sessions.resume(p.session_id);
        return await ctx.sessions.since(p.session_id, p.last_seen, p.replay_epoch);
      },
    }),
  };
}
