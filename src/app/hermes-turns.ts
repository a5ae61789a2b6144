/**
 * Turns in hermes mode: `prompt.submit` answers before the turn streams, so each turn runs as
 * the session's own work (`session.run`), not as the call's; a prompt sent while a turn runs
 * waits in its session's queue and runs after it. The queue lives on this node only.
 */
import type { Logger, SessionHandle } from "../mod.ts";
import type { Agent } from "./agent.ts";
import type { Asker } from "./asker.ts";
import { runTurn } from "./transcript.ts";

/** Prompts one session may have waiting behind its running turn; one more is refused. */
export const MAX_QUEUED = 8;

/** What runs a session's turns. */
export interface TurnsOptions {
  agent: Agent;
  asker: Asker;
  /** As `runTurn`'s `lagging`: the folded state may lag the events (a shared store). */
  lagging: boolean;
  log: Logger;
}

/** The turns running on this node and the prompts waiting behind them, per session. */
export class HermesTurns {
  readonly #options: TurnsOptions;
  /** Sessions with a turn running here, each with its owner and the prompts waiting behind it (oldest first). */
  readonly #queues = new Map<string, { principal: string; prompts: string[] }>();

  constructor(options: TurnsOptions) {
    this.#options = options;
  }

  /** Whether a turn of session `id` runs on this node. */
  running(id: string): boolean {
    return this.#queues.has(id);
  }

  /** Prompts of session `id` waiting behind its running turn. */
  queued(id: string): number {
    return this.#queues.get(id)?.prompts.length ?? 0;
  }

  /**
   * Runs `prompt` in `session` now ("streaming"), or after the turns already there ("queued").
   * Never waits for the turn: its answer streams as session events.
   */
  submit(session: SessionHandle, prompt: string): "streaming" | "queued" {
    const queue = this.#queues.get(session.id);
    if (queue) {
      queue.prompts.push(prompt);
      return "queued";
    }
    this.#queues.set(session.id, { principal: session.principal, prompts: [prompt] });
    void this.#drain(session);
    return "streaming";
  }

  /** Drops the prompts waiting in session `id` if `principal` owns it; how many there were. */
  dropQueued(id: string, principal: string): number {
    const queue = this.#queues.get(id);
    return queue?.principal === principal ? queue.prompts.splice(0).length : 0;
  }

  /** Runs the session's prompts one after the other until none is left (or the session ends). */
  async #drain(session: SessionHandle): Promise<void> {
    const { agent, asker, lagging, log } = this.#options;
    const queue = this.#queues.get(session.id)!.prompts;
    try {
      for (let prompt = queue.shift(); prompt !== undefined && !session.closed; prompt = queue.shift()) {
        const text = prompt;
        try {
          const outcome = await session.run((signal) =>
            runTurn(session, { agent, prompt: text, signal, lagging, asker })
          );
          if (outcome.error !== undefined) log.warn("agent turn failed", { agent: agent.name, error: outcome.error });
        } catch (error) {
          // The turn ended with `message.complete {status: "error"}` already; this is a bug to log.
          log.error("agent turn crashed", { agent: agent.name, error });
        }
      }
    } finally {
      this.#queues.delete(session.id);
    }
  }
}
