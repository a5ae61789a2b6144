/**
 * How a turn asks its user something: the one part of a turn that depends on the protocol its
 * clients speak. `runTurn` emits the same events whoever asks; an `Asker` only puts the
 * question to the clients and brings the answer back.
 */
import type { SessionHandle } from "../mod.ts";

/** A tool the agent wants to run, put to the user for approval. */
export interface ApprovalQuestion {
  turn_id: string;
  tool_id: string;
  name: string;
  args: Record<string, unknown>;
}

/** A question the agent asks the user; `choices` empty means any answer. */
export interface ClarifyQuestion {
  turn_id: string;
  clarify_id: string;
  question: string;
  choices: string[];
}

/**
 * Puts questions to a session's clients. Each method resolves with the answer; rejects with
 * the signal's reason once `signal` is aborted, and with an `RpcError` when the clients could
 * not answer (the turn then takes it as a refusal, or as no answer).
 */
export interface Asker {
  /** Whether the user allows the tool to run. */
  approve(session: SessionHandle, question: ApprovalQuestion, signal: AbortSignal): Promise<boolean>;
  /** The user's answer, or null when they declined. */
  clarify(session: SessionHandle, question: ClarifyQuestion, signal: AbortSignal): Promise<string | null>;
}

/**
 * The `switchboard.v1` asker: server → client requests of the session. `approval
 * {session_id, turn_id, tool_id, name, args}` → `{decision: "allow" | "deny"}` (anything but
 * "allow" denies); `clarify {session_id, turn_id, clarify_id, question, choices}` →
 * `{answer: string | null}` (anything but a string is no answer).
 */
export const defaultAsker: Asker = {
  async approve(session, question, signal) {
    const reply = await session.request("approval", { session_id: session.id, ...question }, { signal });
    return (reply as { decision?: unknown } | null)?.decision === "allow";
  },
  async clarify(session, question, signal) {
    const reply = await session.request("clarify", { session_id: session.id, ...question }, { signal });
    const answer = (reply as { answer?: unknown } | null)?.answer;
    return typeof answer === "string" ? answer : null;
  },
};
