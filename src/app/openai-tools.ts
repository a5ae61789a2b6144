/**
 * The tools the OpenAI-compatible agent offers its model, in the chat-completions `tools`
 * format, and how one call of them runs: `list_files` (the demo's simulated listing) through
 * `turn.useTool`, so that the user approves it, and `ask_user` through `turn.clarify`.
 */
import { listFiles, type Turn } from "./agent.ts";

/** The `tools` of every request. */
export const TOOLS = [
  {
    type: "function",
    function: {
      name: "list_files",
      description: "Lists the project's files. The user must allow it first. " +
        "The listing is simulated: a fixed list, nothing on disk is read.",
      parameters: {
        type: "object",
        properties: { path: { type: "string", description: 'The directory to list, e.g. "."' } },
      },
    },
  },
  {
    type: "function",
    function: {
      name: "ask_user",
      description: "Asks the user a question and returns their answer, or says that they did not answer. " +
        "Give choices when the answer is one of a few.",
      parameters: {
        type: "object",
        properties: {
          question: { type: "string" },
          choices: { type: "array", items: { type: "string" } },
        },
        required: ["question"],
      },
    },
  },
];

/**
 * Runs the tool `name` with `argsJson` (the model's arguments, as streamed) in `turn`, and
 * answers the `role: "tool"` message's content: the tool's result, the user's refusal, or
 * what was wrong with the call (bad JSON, an unknown tool), which the model may then fix.
 */
export async function runToolCall(turn: Turn, name: string, argsJson: string): Promise<string> {
  let args: unknown;
  try {
    args = argsJson.trim() === "" ? {} : JSON.parse(argsJson);
  } catch {
    return `Error: the arguments are not valid JSON: ${argsJson.slice(0, 200)}`;
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    return "Error: the arguments must be a JSON object.";
  }
  switch (name) {
    case "list_files": {
      const use = await turn.useTool(name, args as Record<string, unknown>, listFiles);
      return use.allowed ? use.result! : "The user did not allow list_files to run.";
    }
    case "ask_user": {
      const { question, choices } = args as { question?: unknown; choices?: unknown };
      if (typeof question !== "string" || question.trim() === "") {
        return "Error: ask_user needs a question (a non-empty string).";
      }
      if (choices !== undefined && !(Array.isArray(choices) && choices.every((c) => typeof c === "string"))) {
        return "Error: choices must be a list of strings.";
      }
      return (await turn.clarify(question, choices)) ?? "The user did not answer.";
    }
    default:
      return `Error: there is no tool named ${JSON.stringify(name)}; the tools are list_files and ask_user.`;
  }
}
