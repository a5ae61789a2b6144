/**
 * What an agent backend is (one `reply` per user prompt, streaming through a `Turn`), and the
 * built-in demo agent: a scripted, deterministic answer streamed word by word at a human pace,
 * with a simulated tool that needs the user's approval. It needs no model and no network.
 */

/** A message of the conversation so far, in the shape chat models take. */
export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

/** The outcome of asking to use a tool. */
export interface ToolUse {
  allowed: boolean;
  /** What the tool returned, when it ran. */
  output?: string;
}

/** What an agent gets for one turn. */
export interface Turn {
  readonly prompt: string;
  /** The conversation before this prompt (finished turns only). */
  readonly history: readonly ChatMessage[];
  /** Aborted when the user interrupts the turn or the session ends. */
  readonly signal: AbortSignal;
  /** Streams `text` to the user. */
  say(text: string): void;
  /** Asks the user to approve running `tool` with `input`; runs `run` only if allowed. */
  useTool(tool: string, input: Record<string, unknown>, run: () => string): Promise<ToolUse>;
}

/** An agent backend. */
export interface Agent {
  /** Shown on the page, e.g. "demo" or "openai:gpt-4o-mini". */
  readonly name: string;
  /** Answers `turn.prompt`; resolves when the answer is complete; rejects on failure or interrupt. */
  reply(turn: Turn): Promise<void>;
}

/** A failure whose message is meant for the user (an endpoint down, a bad answer). */
export class AgentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgentError";
  }
}

/** The demo agent's simulated tool: a fixed listing; nothing on disk is read. */
const LISTING = ["README.md", "package.json", "src/", "test/"];

/**
 * The demo agent's answer to `prompt`: the text it streams first; whether it then asks for
 * the tool (a prompt that mentions files); and what it says after the user allowed or denied.
 */
export function demoScript(prompt: string): { intro: string; wantsTool: boolean; allowed: string; denied: string } {
  const words = prompt.trim().split(/\s+/).filter(Boolean);
  const quoted = words.join(" ");
  const quote = quoted.length > 60 ? `${quoted.slice(0, 59)}…` : quoted;
  const wantsTool = /\bfiles?\b/i.test(prompt);
  return {
    intro:
      `You asked: “${quote}” (${words.length} ${
        words.length === 1 ? "word" : "words"
      }). I am the demo agent built into Switchboard, ` +
      "so this answer is scripted rather than thought up, but it travels the way a real model's would: one word at a time, " +
      "each word a numbered session event. Cut the network or reload the page while I talk, and the page picks up exactly " +
      "where it left off, with nothing missing and nothing said twice. " +
      (wantsTool
        ? "To answer that, I would like to list the project's files."
        : "Ask me which files the project has to see a tool request that needs your approval, or press Stop to interrupt me mid-sentence."),
    wantsTool,
    allowed: `The listing shows ${LISTING.length} entries: ${
      LISTING.join(", ")
    }. It came from a simulated tool, so nothing on your disk was read.`,
    denied:
      "You declined, so I did not look. A project like this one usually keeps its code in src/ and its tests in test/, but that is a guess.",
  };
}

/**
 * The built-in demo agent: streams `demoScript(prompt)` one word per `delayMs`. A prompt that
 * mentions files makes it ask to run the simulated `list_files` tool; allow and deny lead to
 * different answers.
 */
export function demoAgent({ delayMs }: { delayMs: number }): Agent {
  const speak = async (turn: Turn, text: string) => {
    // Each piece is a word with the white space around it, so the pieces join back into `text`.
    for (const word of text.match(/\s*\S+\s*/g) ?? []) {
      await pause(delayMs, turn.signal);
      turn.say(word);
    }
  };
  return {
    name: "demo",
    async reply(turn) {
      const script = demoScript(turn.prompt);
      await speak(turn, script.intro);
      if (!script.wantsTool) return;
      const use = await turn.useTool("list_files", { path: "." }, () => LISTING.join("\n"));
      await speak(turn, use.allowed ? script.allowed : script.denied);
    },
  };
}

/** Resolves after `ms`; rejects with the signal's reason as soon as it is aborted. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
