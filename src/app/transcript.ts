/**
 * A session's conversation: every change is made and emitted as a session event in the same
 * synchronous step, so a snapshot (`session.history`) at seq N holds exactly what events
 * 1…N say, and a page can render it and then apply the events after N.
 *
 * Events (all with `turn_id`): `message.user {text}`, `message.delta {text}`,
 * `tool.request {call_id, tool, input}`, `tool.result {call_id, outcome, output?}`,
 * `message.complete {status, error?}`. A delta extends the turn's last text part, or starts
 * a new one after a tool part.
 */
import { ErrorCode, RpcError, type SessionHandle } from "../mod.ts";
import { type Agent, AgentError, type ChatMessage, type ToolUse, type Turn } from "./agent.ts";

/** Turns one chat may hold: with sessions kept for the life of the process, nothing a client sends may grow without bound. */
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

/** Where a turn is: still answering, or how it ended. */
export type TurnStatus = "running" | "done" | "interrupted" | "error";

/** One prompt and its answer. */
export interface TurnRecord {
  turn_id: string;
  prompt: string;
  parts: Part[];
  status: TurnStatus;
  error?: string;
}

/** What `session.history` answers. */
export interface Snapshot {
  /** The seq of the last event the snapshot includes; apply only later events to it. */
  seq: number;
  title: string;
  created_at: number;
  turns: TurnRecord[];
}

/** The conversation of one session. */
export class Transcript {
  readonly session: SessionHandle;
  readonly createdAt = Date.now();
  #turns: TurnRecord[] = [];
  #running = new Set<AbortController>();

  constructor(session: SessionHandle) {
    this.session = session;
  }

  /** The first prompt, shortened, or "New chat". */
  get title(): string {
    const first = this.#turns[0]?.prompt.trim().replace(/\s+/g, " ");
    if (!first) return "New chat";
    return first.length > 48 ? `${first.slice(0, 47)}…` : first;
  }

  get turns(): number {
    return this.#turns.length;
  }

  /** Turns still running. */
  get running(): number {
    return this.#running.size;
  }

  /** A deep copy, so later changes cannot leak into an answer not yet serialised. */
  snapshot(): Snapshot {
    return {
      seq: this.session.latestSeq,
      title: this.title,
      created_at: this.createdAt,
      turns: structuredClone(this.#turns),
    };
  }

  /** The finished turns as chat messages, for a model. */
  messages(): ChatMessage[] {
    return this.#turns
      .filter((turn) => turn.status !== "running")
      .flatMap((turn) => {
        const answer = turn.parts.flatMap((part) => (part.kind === "text" ? [part.text.trim()] : [])).join("\n\n");
        return answer
          ? [{ role: "user" as const, content: turn.prompt }, { role: "assistant" as const, content: answer }]
          : [];
      });
  }

  /** Stops every running turn; returns how many. */
  interrupt(): number {
    const count = this.#running.size;
    for (const controller of this.#running) controller.abort(new Error("interrupted"));
    return count;
  }

  /**
   * Runs one turn of `agent` for `prompt`: records and emits the prompt, streams the answer,
   * and ends with `message.complete`. A chat past `MAX_TURNS` answers -32600 instead. Resolves with how it ended; rejects only for a bug (an
   * agent failure that is not an `AgentError`), after ending the turn. `signal` (the call's)
   * also stops it.
   */
  async run(
    agent: Agent,
    prompt: string,
    signal: AbortSignal,
  ): Promise<{ turn_id: string; status: TurnStatus; error?: string }> {
    if (this.#turns.length >= MAX_TURNS) {
      throw new RpcError(ErrorCode.InvalidRequest, `This chat is full (${MAX_TURNS} turns): start a new chat`, {
        max_turns: MAX_TURNS,
      });
    }
    const history = this.messages();
    const record: TurnRecord = { turn_id: `t${this.#turns.length + 1}`, prompt, parts: [], status: "running" };
    this.#turns.push(record);
    const controller = new AbortController();
    this.#running.add(controller);
    const turnSignal = AbortSignal.any([signal, controller.signal]);
    this.session.emit("message.user", { turn_id: record.turn_id, text: prompt });
    try {
      await agent.reply(this.#turn(record, history, turnSignal));
      // An agent that ignored the interrupt was cut short all the same: `say` drops text after it.
      this.#finish(record, turnSignal.aborted ? "interrupted" : "done");
    } catch (error) {
      if (turnSignal.aborted) this.#finish(record, "interrupted");
      // Only an AgentError's message is for the user; anything else is a bug, logged by the caller.
      else {this.#finish(
          record,
          "error",
          error instanceof AgentError ? error.message : "the agent failed (see the server log)",
        );}
      if (!turnSignal.aborted && !(error instanceof AgentError)) throw error;
    } finally {
      this.#running.delete(controller);
    }
    return {
      turn_id: record.turn_id,
      status: record.status,
      ...(record.error === undefined ? {} : { error: record.error }),
    };
  }

  #turn(record: TurnRecord, history: ChatMessage[], signal: AbortSignal): Turn {
    const { session } = this;
    let calls = 0;
    return {
      prompt: record.prompt,
      history,
      signal,
      say(text) {
        if (signal.aborted || text === "") return;
        const last = record.parts.at(-1);
        if (last?.kind === "text") last.text += text;
        else record.parts.push({ kind: "text", text });
        session.emit("message.delta", { turn_id: record.turn_id, text });
      },
      async useTool(tool, input, run): Promise<ToolUse> {
        signal.throwIfAborted();
        const call_id = `${record.turn_id}-c${++calls}`;
        const part: Part & { kind: "tool" } = { kind: "tool", call_id, tool, input };
        record.parts.push(part);
        session.emit("tool.request", { turn_id: record.turn_id, call_id, tool, input });
        const settle = (outcome: ToolOutcome, output?: string) => {
          part.outcome = outcome;
          if (output !== undefined) part.output = output;
          session.emit("tool.result", {
            turn_id: record.turn_id,
            call_id,
            outcome,
            ...(output === undefined ? {} : { output }),
          });
        };
        let answer: unknown;
        try {
          answer = await session.request("approval", {
            session_id: session.id,
            turn_id: record.turn_id,
            call_id,
            tool,
            input,
          }, { signal });
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

  #finish(record: TurnRecord, status: TurnStatus, error?: string): void {
    record.status = status;
    if (error !== undefined) record.error = error;
    this.session.emit("message.complete", {
      turn_id: record.turn_id,
      status,
      ...(error === undefined ? {} : { error }),
    });
  }
}
