/**
 * A session's conversation, as a pure fold of its events (`conversationState`, the gateway's
 * `sessions.state`): the gateway keeps it with the session — in memory, or in the shared store
 * where another node picks it up — so `session.history` at seq N holds exactly what events
 * 1…N say, and a page can render it and then apply the events after N. `runTurn` only emits
 * events; it reads the folded state once, at the start of a turn.
 *
 * Events (all with `turn_id`): `message.user {text}`, `message.delta {text}`,
 * `tool.request {call_id, tool, input}`, `tool.result {call_id, outcome, output?}`,
 * `message.complete {status, error?}`. A delta extends the turn's last text part, or starts
 * a new one after a tool part. `session.interrupted` (no `turn_id`: a node took the session
 * over from one that died) ends every running turn as `cut`.
 */
import { ErrorCode, RpcError, type SessionHandle, type SessionState } from "../mod.ts";
import { type Agent, AgentError, type ChatMessage, type ToolUse, type Turn } from "./agent.ts";

/** Turns one chat may hold: nothing a client sends may grow without bound. */
export const MAX_TURNS = 200;

/** How a tool request ended. */
export type ToolOutcome = "allowed" | "denied" | "cancelled";

/** A piece of an answer: streamed text, or a tool the agent asked to run. */
export type Part =
  | { kind: "text"; text: string }
  | {
    kind: "tool";
    call_id: string;
    tool: string;
    input: Record<string, unknown>;
    outcome?: ToolOutcome;
    output?: string;
  };

/**
 * Where a turn is: still answering, or how it ended — `cut` when the node running it died
 * (its session was taken over by another node, which cannot carry on its work).
 */
export type TurnStatus = "running" | "done" | "interrupted" | "error" | "cut";

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

/** How one turn ended, as `prompt.submit` answers. */
export interface TurnOutcome {
  turn_id: string;
  status: Exclude<TurnStatus, "running" | "cut">;
  error?: string;
}

// The payloads as `runTurn` emits them; `apply` reads only these fields.
type EventPayload = {
  turn_id?: string;
  text?: string;
  call_id?: string;
  tool?: string;
  input?: Record<string, unknown>;
  outcome?: ToolOutcome;
  output?: string;
  status?: TurnStatus;
  error?: string;
};

/** Folds a session's events into its `Conversation`; `createGateway({ sessions: { state: conversationState } })`. */
export const conversationState: SessionState<Conversation> = {
  initial: () => ({ turns: [] }),
  apply(state, { type, payload }) {
    const p = (payload ?? {}) as EventPayload;
    if (type === "session.interrupted") {
      for (const turn of state.turns) if (turn.status === "running") cut(turn);
      return state;
    }
    if (type === "message.user") {
      state.turns.push({ turn_id: p.turn_id!, prompt: p.text!, parts: [], status: "running" });
      return state;
    }
    // Newest first: the turn an event is about is almost always the last.
    const turn = state.turns.findLast((t) => t.turn_id === p.turn_id);
    if (!turn) return state;
    switch (type) {
      case "message.delta": {
        const last = turn.parts.at(-1);
        if (last?.kind === "text") last.text += p.text;
        else turn.parts.push({ kind: "text", text: p.text! });
        break;
      }
      case "tool.request":
        // A copy: the state must not share objects with the emitted payload.
        turn.parts.push({ kind: "tool", call_id: p.call_id!, tool: p.tool!, input: structuredClone(p.input!) });
        break;
      case "tool.result": {
        const part = turn.parts.find((q) => q.kind === "tool" && q.call_id === p.call_id);
        if (part?.kind !== "tool") break;
        part.outcome = p.outcome;
        if (p.output !== undefined) part.output = p.output;
        break;
      }
      case "message.complete":
        turn.status = p.status!;
        if (p.error !== undefined) turn.error = p.error;
        break;
    }
    return state;
  },
};

/** A turn that will never finish: so are its open tool requests (the library cancelled them). */
function cut(turn: TurnRecord): void {
  turn.status = "cut";
  for (const part of turn.parts) if (part.kind === "tool" && part.outcome === undefined) part.outcome = "cancelled";
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

/** The finished turns as chat messages, for a model. */
export function messages(conversation: Conversation): ChatMessage[] {
  return conversation.turns
    .filter((turn) => turn.status !== "running")
    .flatMap((turn) => {
      const answer = turn.parts.flatMap((part) => (part.kind === "text" ? [part.text.trim()] : [])).join("\n\n");
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
}

/**
 * Runs one turn of `agent` in `session`: emits the prompt, streams the answer, and ends with
 * `message.complete`. A chat past `MAX_TURNS` answers -32600 instead. Resolves with how it
 * ended; rejects only for a bug (an agent failure that is not an `AgentError`), after ending
 * the turn.
 */
export async function runTurn(
  session: SessionHandle,
  { agent, prompt, signal, lagging }: RunTurnOptions,
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
  session.emit("message.user", { turn_id, text: prompt });
  const finish = (status: TurnOutcome["status"], error?: string): TurnOutcome => {
    const outcome = { turn_id, status, ...(error === undefined ? {} : { error }) };
    session.emit("message.complete", outcome);
    return outcome;
  };
  try {
    await agent.reply(turnOf(session, turn_id, prompt, history, signal));
    // An agent that ignored the interrupt was cut short all the same: `say` drops text after it.
    return finish(signal.aborted ? "interrupted" : "done");
  } catch (error) {
    if (signal.aborted) return finish("interrupted");
    // Only an AgentError's message is for the user; anything else is a bug, logged by the caller.
    if (error instanceof AgentError) return finish("error", error.message);
    finish("error", "the agent failed (see the server log)");
    throw error;
  }
}

/** What the agent gets for one turn: each thing it does is emitted as an event. */
function turnOf(
  session: SessionHandle,
  turn_id: string,
  prompt: string,
  history: ChatMessage[],
  signal: AbortSignal,
): Turn {
  let calls = 0;
  return {
    prompt,
    history,
    signal,
    say(text) {
      if (signal.aborted || text === "") return;
      session.emit("message.delta", { turn_id, text });
    },
    async useTool(tool, input, run): Promise<ToolUse> {
      signal.throwIfAborted();
      const call_id = `${turn_id}-c${++calls}`;
      session.emit("tool.request", { turn_id, call_id, tool, input });
      const settle = (outcome: ToolOutcome, output?: string) =>
        session.emit("tool.result", { turn_id, call_id, outcome, ...(output === undefined ? {} : { output }) });
      let answer: unknown;
      try {
        answer = await session.request("approval", { session_id: session.id, turn_id, call_id, tool, input }, {
          signal,
        });
      } catch (error) {
        settle("cancelled");
        // The client could not answer (no handler, an error): treat it as a refusal, not a crash.
        if (error instanceof RpcError && !signal.aborted) return { allowed: false };
        throw error;
      }
      if ((answer as { decision?: unknown } | null)?.decision !== "allow") {
        settle("denied");
        return { allowed: false };
      }
      const output = run();
      settle("allowed", output);
      return { allowed: true, output };
    },
  };
}

/** 32 random bits in hex: with the turn count, an id that stays unique when the count read was stale. */
function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
}
