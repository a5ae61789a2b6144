/**
 * Hermes' `prompt.submit` and `session.interrupt`: a prompt is answered at once (`streaming`,
 * or `queued` behind the running turn) and its turn streams as session events; an interrupt
 * stops the running turn (its `message.complete` says `interrupted`) and drops the queue.
 */
import * as v from "valibot";
import { method, RpcError } from "../mod.ts";
import { HERMES_ERRORS } from "./hermes-errors.ts";
import { type HermesTurns, MAX_QUEUED } from "./hermes-turns.ts";
import { conversationOf, MAX_TURNS } from "./transcript.ts";

/** `prompt.submit {session_id, text}` → `{status}`, and `session.interrupt {session_id}` → `{status}`. */
export function hermesPromptMethods(turns: HermesTurns) {
  return {
    "prompt.submit": method({
      params: v.looseObject({
        session_id: v.pipe(v.string(), v.maxLength(128)),
        text: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(20_000)),
      }),
      handler: async (p, ctx) => {
        const session = await ctx.sessions.open(p.session_id);
        const queued = turns.queued(session.id);
        // Refused now: the turn runs after this answer, which could no longer say so.
        if (conversationOf(session.state).turns.length + queued >= MAX_TURNS) {
          throw new RpcError(HERMES_ERRORS.refused, `This chat is full (${MAX_TURNS} turns): start a new chat`, {
            max_turns: MAX_TURNS,
          });
        }
        if (queued >= MAX_QUEUED) {
          throw new RpcError(HERMES_ERRORS.refused, `The session is busy: ${MAX_QUEUED} prompts are waiting already`, {
            max_queued: MAX_QUEUED,
          });
        }
        return { status: turns.submit(session, p.text) };
      },
    }),
    "session.interrupt": method({
      params: v.looseObject({ session_id: v.pipe(v.string(), v.maxLength(128)) }),
      handler: async (p, ctx) => {
        // Before the interrupt: the turn it stops must not make way for the next prompt.
        const dropped = turns.dropQueued(p.session_id, ctx.connection.principal);
        // Wherever the turn runs. Not `open()`: that would bind this call to the session, and the interrupt would abort it too.
        const stopped = await ctx.sessions.interrupt(p.session_id);
        return { status: stopped || dropped > 0 ? "interrupted" : "not_interrupted" };
      },
    }),
  };
}
