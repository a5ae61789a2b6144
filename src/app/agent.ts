/**
 * What an agent backend is (one `reply` per user prompt, streaming through a `Turn`), and the
 * built-in demo agent: a scripted, deterministic answer streamed word by word at a human pace,
 * with a simulated tool that needs the user's approval and a question with choices. It needs
 * no model and no network.
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
  result?: string;
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
  /** Asks the user to approve running the tool `name` with `args`; runs `run` only if allowed. */
  useTool(name: string, args: Record<string, unknown>, run: () => string): Promise<ToolUse>;
  /** Asks the user `question`, offering `choices` (none: any answer); null when they did not answer. */
  clarify(question: string, choices?: string[]): Promise<string | null>;
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

/** The simulated tool's fixed listing: nothing on disk is read. */
const LISTING = ["README.md", "package.json", "src/", "test/"];

/** The simulated `list_files` tool of the demo and OpenAI agents: a fixed listing, one entry a line. */
export function listFiles(): string {
  return LISTING.join("\n");
}

/** The demo agent's question, when a prompt asks for one. */
export const DEMO_QUESTION = { question: "Do you want the short answer or the long one?", choices: ["short", "long"] };

/** The demo agent's answer to one prompt. */
export interface DemoScript {
  /** What it streams first. */
  intro: string;
  /** Whether it then asks `DEMO_QUESTION` (a prompt with "clarify" or "ask me" in it). */
  wantsClarify: boolean;
  /** What it says after the user's answer to `DEMO_QUESTION` (null: no answer). */
  answered(answer: string | null): string;
  /** Whether it then asks to run the simulated tool (a prompt that mentions files). */
  wantsTool: boolean;
  /** What it says after the user allowed the tool. */
  allowed: string;
  /** What it says after the user denied it. */
  denied: string;
}

/** The demo agent's answer to `prompt`: see `DemoScript`. */
export function demoScript(prompt: string): DemoScript {
  const words = prompt.trim().split(/\s+/).filter(Boolean);
  const quote = clip(words.join(" "));
  const wantsTool = /\bfiles?\b/i.test(prompt);
  const wantsClarify = /\bclarify\b|\bask me\b/i.test(prompt);
  const short = "The short answer: every word you see is a numbered session event, and none is ever lost.";
  const long = "The long answer: every word you see is a numbered session event. The server keeps the recent ones, " +
    "so a page that reconnects or reloads asks for what came after the last one it drew, and a question still open, " +
    "like the one I just asked, is sent again to whoever comes back.";
  return {
    intro:
      `You asked: “${quote}” (${words.length} ${
        words.length === 1 ? "word" : "words"
      }). I am the demo agent built into Switchboard, ` +
      "so this answer is scripted rather than thought up, but it travels the way a real model's would: one word at a time, " +
      "each word a numbered session event. Cut the network or reload the page while I talk, and the page picks up exactly " +
      "where it left off, with nothing missing and nothing said twice. " +
      (wantsClarify
        ? "First, a question."
        : wantsTool
        ? "To answer that, I would like to list the project's files."
        : "Ask me which files the project has to see a tool request that needs your approval, say “clarify” to get a " +
          "question with choices, or press Stop to interrupt me mid-sentence."),
    wantsClarify,
    answered(answer) {
      if (answer === null) return "You did not answer, so I will leave it there.";
      if (answer === "long") return long;
      if (answer === "short") return short;
      return `You answered “${clip(answer)}”, which is not one of the choices, so here is the short one. ${short}`;
    },
    wantsTool,
    allowed: `The listing shows ${LISTING.length} entries: ${
      LISTING.join(", ")
    }. It came from a simulated tool, so nothing on your disk was read.`,
    denied:
      "You declined, so I did not look. A project like this one usually keeps its code in src/ and its tests in test/, but that is a guess.",
  };
}

/** `text` cut to 60 characters, for quoting it back. */
function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/**
 * The built-in demo agent: streams `demoScript(prompt)` one word per `delayMs`. A prompt that
 * asks for a question ("clarify", "ask me") gets `DEMO_QUESTION` first, and an answer that
 * depends on the choice; one that mentions files makes it ask to run the simulated `list_files`
 * tool, and allow and deny lead to different answers.
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
      if (script.wantsClarify) {
        const answer = await turn.clarify(DEMO_QUESTION.question, DEMO_QUESTION.choices);
        await speak(turn, script.answered(answer));
      }
      if (script.wantsTool) {
        const use = await turn.useTool("list_files", { path: "." }, listFiles);
        await speak(turn, use.allowed ? script.allowed : script.denied);
      }
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
