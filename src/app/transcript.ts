/**
 * A session's conversation, as a pure fold of its events (`conversationState`, the gateway's
 * `sessions.state`): the gateway keeps it with the session — in memory, or in the shared store
 * where another node picks it up — so `session.history` at seq N holds exactly what events
 * 1…N say, and a page can render it and then apply the events after N. `runTurn` only emits
 * events (`TurnEvents`); it reads the folded state once, at the start of a turn.
 *
 * A delta extends the turn's last text part, or starts a new one after a tool or clarify part.
 * `message.start` and `status.update` change nothing that lasts, so the fold skips them.
 * `session.interrupted` (no `turn_id`: a node took the session over from one that died) ends
 * every running turn as `cut`.
 */
import { ErrorCode, RpcError, type SessionHandle, type SessionState } from "../mod.ts";
import { type Agent, AgentError, type ChatMessage, type ToolUse, type Turn } from "./agent.ts";
import type { Asker } from "./asker.ts";

/** Turns one chat may hold: nothing a client sends may grow without bound. */
export const MAX_TURNS = 200;

/** The longest answer to a clarify question that is kept; a longer one is cut there. */
export const MAX_ANSWER_CHARS = 2_000;

/** How a tool request ended. */
export type ToolOutcome = "allowed" | "denied" | "cancelled";

/** How a turn ended, as `message.complete` says. */
export type TurnEnd = "complete" | "interrupted" | "error";

/** Every event a turn emits, by type: its payload. */
export interface TurnEvents {
  "message.user": { turn_id: string; text: string };
  "message.start": { turn_id: string };
  "message.delta": { turn_id: string; text: string };
  /** A passing note on what the agent does (`kind: "tool"`: a tool runs). */
  "status.update": { turn_id: string; kind: string; text: string };
  "tool.start": { turn_id: string; tool_id: string; name: string; args: Record<string, unknown> };
  "tool.complete": { turn_id: string; tool_id: string; name: string; outcome: ToolOutcome; result?: string };
  "clarify.start": { turn_id: string; clarify_id: string; question: string; choices: string[] };
  "clarify.complete": { turn_id: string; clarify_id: string; answer: string | null };
  /** `text`: the whole reply, its text parts joined (`replyText`). */
  "message.complete": { turn_id: string; status: TurnEnd; text: string; error?: string };
}

/** A piece of an answer: streamed text, a tool the agent asked to run, or a question it asked. */
export type Part =
  | { kind: "text"; text: string }
  | {
    kind: "tool";
    tool_id: string;
    name: string;
    args: Record<string, unknown>;
    outcome?: ToolOutcome;
    result?: string;
  }
  | {
    kind: "clarify";
    clarify_id: string;
    question: string;
    choices: string[];
    /** Absent while the question is open; null when it went unanswered. */
    answer?: string | null;
  };

/**
 * Where a turn is: still answering, or how it ended — `cut` when the node running it died
 * (its session was taken over by another node, which cannot carry on its work).
 */
export type TurnStatus = "running" | TurnEnd | "cut";

/** One prompt and its answer. */
export interface TurnRecord {
  turn_id: string;
  prompt: string;
  parts: Part[];
  status: TurnStatus;
  error?: string;
}

/** A session's conversation: what `conversationState` folds its events into. */
export interface Conversation {
  turns: TurnRecord[];
}

/** What `session.history` answers. */
export interface Snapshot {
  /** The seq of the last event the snapshot includes; apply only later events to it. */
  seq: number;
  title: string;
  created_at: number;
  turns: TurnRecord[];
}

/** How one turn ended: `message.complete`'s payload. */
export type TurnOutcome = TurnEvents["message.complete"];

/** Folds a session's events into its `Conversation`; `createGateway({ sessions: { state: conversationState } })`. */
export const conversationState: SessionState<Conversation> = {
  initial: () => ({ turns: [] }),
  apply(state, { type, payload }) {
    if (type === "session.interrupted") {
      for (const turn of state.turns) if (turn.status === "running") cut(turn);
      return state;
    }
    if (type === "message.user") {
      const p = payload as TurnEvents["message.user"];
      state.turns.push({ turn_id: p.turn_id, prompt: p.text, parts: [], status: "running" });
      return state;
    }
    // Newest first: the turn an event is about is almost always the last.
    const turn_id = (payload as { turn_id?: unknown } | undefined)?.turn_id;
    const turn = state.turns.findLast((t) => t.turn_id === turn_id);
    if (!turn) return state;
    switch (type) {
      case "message.delta": {
        const { text } = payload as TurnEvents["message.delta"];
        const last = turn.parts.at(-1);
        if (last?.kind === "text") last.text += text;
        else turn.parts.push({ kind: "text", text });
        break;
      }
      case "tool.start": {
        const p = payload as TurnEvents["tool.start"];
        // Copies: the state must not share objects with the emitted payload.
        turn.parts.push({ kind: "tool", tool_id: p.tool_id, name: p.name, args: structuredClone(p.args) });
        break;
      }
      case "tool.complete": {
        const p = payload as TurnEvents["tool.complete"];
        const part = turn.parts.find((q) => q.kind === "tool" && q.tool_id === p.tool_id);
        if (part?.kind !== "tool") break;
        part.outcome = p.outcome;
        if (p.result !== undefined) part.result = p.result;
        break;
      }
      case "clarify.start": {
        const p = payload as TurnEvents["clarify.start"];
        turn.parts.push({ kind: "clarify", clarify_id: p.clarify_id, question: p.question, choices: [...p.choices] });
        break;
      }
      case "clarify.complete": {
        const p = payload as TurnEvents["clarify.complete"];
        const part = turn.parts.find((q) => q.kind === "clarify" && q.clarify_id === p.clarify_id);
        if (part?.kind === "clarify") part.answer = p.answer;
        break;
      }
      case "message.complete": {
        const p = payload as TurnEvents["message.complete"];
        turn.status = p.status;
        if (p.error !== undefined) turn.error = p.error;
        break;
      }
    }
    return state;
  },
};

/** A turn that will never finish: so are its open questions (the library cancelled them). */
function cut(turn: TurnRecord): void {
  turn.status = "cut";
  for (const part of turn.parts) {
    if (part.kind === "tool" && part.outcome === undefined) part.outcome = "cancelled";
    if (part.kind === "clarify" && part.answer === undefined) part.answer = null;
  }
}

/** The conversation in `state` (`session.state`, or a summary's), empty before the first save. */
export function conversationOf(state: unknown): Conversation {
  return (state as Conversation | undefined) ?? conversationState.initial();
}

/** The first prompt, shortened, or "New chat". */
export function titleOf(conversation: Conversation): string {
  const first = conversation.turns[0]?.prompt.trim().replace(/\s+/g, " ");
  if (!first) return "New chat";
  return first.length > 48 ? `${first.slice(0, 47)}…` : first;
}

/** Turns still running. */
export function runningTurns(conversation: Conversation): number {
  return conversation.turns.filter((turn) => turn.status === "running").length;
}

/** `session.history`: the folded conversation, a deep copy so that later events cannot leak into an answer not yet serialised. */
export function snapshot(session: SessionHandle): Snapshot {
  const conversation = conversationOf(session.state);
  return {
    seq: session.stateSeq,
    title: titleOf(conversation),
    created_at: session.createdAt,
    turns: structuredClone(conversation.turns),
  };
}

/** A reply's text parts as one text: each trimmed, the empty ones left out, a blank line between them. */
export function replyText(texts: readonly string[]): string {
  return texts.map((text) => text.trim()).filter(Boolean).join("\n\n");
}

/** The text of a turn's answer, as its `message.complete.text` says (or, while it runs, would so far). */
export function answerOf(turn: TurnRecord): string {
  return replyText(turn.parts.flatMap((part) => (part.kind === "text" ? [part.text] : [])));
}

/** The finished turns as chat messages, for a model. */
export function messages(conversation: Conversation): ChatMessage[] {
  return conversation.turns
    .filter((turn) => turn.status !== "running")
    .flatMap((turn) => {
      const answer = answerOf(turn);
      return answer
        ? [{ role: "user" as const, content: turn.prompt }, { role: "assistant" as const, content: answer }]
        : [];
    });
}

/** Options of `runTurn`. */
export interface RunTurnOptions {
  agent: Agent;
  prompt: string;
  /** The call's signal: an interrupt, or the session's end, aborts it. */
  signal: AbortSignal;
  /**
   * Whether `session.state` may lag the events emitted (a shared store: it folds an event once
   * the store has it). Turn ids then get a random part, since the turn count read may be stale.
   */
  lagging: boolean;
  /** How the agent's tool requests and questions reach the user (`defaultAsker` for `switchboard.v1`). */
  asker: Asker;
}

/**
 * Runs one turn of `agent` in `session`: emits the prompt, streams the answer, and ends with
 * `message.complete`, whose payload it resolves with. A chat past `MAX_TURNS` answers -32600
 * instead. Rejects only for a bug (an agent failure that is not an `AgentError`), after
 * ending the turn.
 */
export async function runTurn(
  session: SessionHandle,
  { agent, prompt, signal, lagging, asker }: RunTurnOptions,
): Promise<TurnOutcome> {
  const conversation = conversationOf(session.state);
  if (conversation.turns.length >= MAX_TURNS) {
    throw new RpcError(ErrorCode.InvalidRequest, `This chat is full (${MAX_TURNS} turns): start a new chat`, {
      max_turns: MAX_TURNS,
    });
  }
  const history = messages(conversation);
  const count = conversation.turns.length + 1;
  // In memory the state folds inside `emit`, so the count is exact and `message.user` follows at once.
  const turn_id = lagging ? `t${count}-${randomSuffix()}` : `t${count}`;
  emit(session, "message.user", { turn_id, text: prompt });
  emit(session, "message.start", { turn_id });
  const { turn, texts } = turnOf(session, asker, turn_id, prompt, history, signal);
  const finish = (status: TurnEnd, error?: string): TurnOutcome => {
    const outcome = { turn_id, status, text: replyText(texts), ...(error === undefined ? {} : { error }) };
    emit(session, "message.complete", outcome);
    return outcome;
  };
  try {
    await agent.reply(turn);
    // An agent that ignored the interrupt was cut short all the same: `say` drops text after it.
    return finish(signal.aborted ? "interrupted" : "complete");
  } catch (error) {
    if (signal.aborted) return finish("interrupted");
    // Only an AgentError's message is for the user; anything else is a bug, logged by the caller.
    if (error instanceof AgentError) return finish("error", error.message);
    finish("error", "the agent failed (see the server log)");
    throw error;
  }
}

/** `session.emit`, typed by `TurnEvents`. */
function emit<T extends keyof TurnEvents>(session: SessionHandle, type: T, payload: TurnEvents[T]): void {
  session.emit(type, payload);
}

/**
 * What the agent gets for one turn: each thing it does is emitted as an event. `texts` collects
 * the turn's text parts as the fold will have them, for `message.complete`.
 */
function turnOf(
  session: SessionHandle,
  asker: Asker,
  turn_id: string,
  prompt: string,
  history: ChatMessage[],
  signal: AbortSignal,
): { turn: Turn; texts: string[] } {
  const texts: string[] = [];
  // Whether the next text starts a new part (the turn's first, or after a tool or a question).
  let newPart = true;
  let tools = 0;
  let questions = 0;
  const turn: Turn = {
    prompt,
    history,
    signal,
    say(text) {
      if (signal.aborted || text === "") return;
      if (newPart) texts.push(text);
      else texts[texts.length - 1] += text;
      newPart = false;
      emit(session, "message.delta", { turn_id, text });
    },
    async useTool(name, args, run): Promise<ToolUse> {
      signal.throwIfAborted();
      const tool_id = `${turn_id}-tool${++tools}`;
      newPart = true;
      emit(session, "tool.start", { turn_id, tool_id, name, args });
      const complete = (outcome: ToolOutcome, result?: string) =>
        emit(session, "tool.complete", {
          turn_id,
          tool_id,
          name,
          outcome,
          ...(result === undefined ? {} : { result }),
        });
      let allowed: boolean;
      try {
        allowed = await asker.approve(session, { turn_id, tool_id, name, args }, signal);
      } catch (error) {
        complete("cancelled");
        // The client could not answer (no handler, an error): treat it as a refusal, not a crash.
        if (error instanceof RpcError && !signal.aborted) return { allowed: false };
        throw error;
      }
      if (!allowed) {
        complete("denied");
        return { allowed: false };
      }
      emit(session, "status.update", { turn_id, kind: "tool", text: `Running ${name}…` });
      const result = run();
      complete("allowed", result);
      return { allowed: true, result };
    },
    async clarify(question, choices = []) {
      signal.throwIfAborted();
      const clarify_id = `${turn_id}-clarify${++questions}`;
      newPart = true;
      emit(session, "clarify.start", { turn_id, clarify_id, question, choices: [...choices] });
      let answer: string | null;
      try {
        answer = await asker.clarify(session, { turn_id, clarify_id, question, choices: [...choices] }, signal);
      } catch (error) {
        emit(session, "clarify.complete", { turn_id, clarify_id, answer: null });
        // As for a tool: a client that could not answer did not answer.
        if (error instanceof RpcError && !signal.aborted) return null;
        throw error;
      }
      answer = answer === null ? null : answer.slice(0, MAX_ANSWER_CHARS);
      emit(session, "clarify.complete", { turn_id, clarify_id, answer });
      return answer;
    },
  };
  return { turn, texts };
}

/** 32 random bits in hex: with the turn count, an id that stays unique when the count read was stale. */
function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
}
