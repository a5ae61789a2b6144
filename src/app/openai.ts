/**
 * An agent backed by any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama,
 * llama.cpp's server, vLLM…): `POST {baseUrl}/chat/completions` with `stream: true` and the
 * tools of `openai-tools.ts`, read as server-sent events with `fetch`. When the model calls
 * tools, each call runs in the turn (approval and questions included), the results go back as
 * `role: "tool"` messages, and the model is asked again, up to `MAX_TOOL_ROUNDS` times.
 * Interrupting aborts the request. Every failure — no connection, an HTTP error, a stream that
 * is not what it should be — becomes an `AgentError` that names the endpoint and says what
 * went wrong.
 */
import { type Agent, AgentError, type ChatMessage, type Turn } from "./agent.ts";
import { runToolCall, TOOLS } from "./openai-tools.ts";
import { readSse, SseError } from "./sse.ts";

/** Where and what to ask. */
export interface OpenAIOptions {
  /** The API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when given. */
  apiKey?: string;
  model: string;
}

/** Text shown of an endpoint's error body, at most. */
const ERROR_PREVIEW = 300;

/** Rounds of tool calls one turn may take; a model that asks for more fails the turn. */
export const MAX_TOOL_ROUNDS = 8;

/** Tool calls one answer may hold. */
const MAX_CALLS = 16;

/** A tool call as the model streamed it, and as it goes back in the assistant message. */
interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A message of the request: the conversation, then this turn's tool calls and their results. */
type RequestMessage =
  | ChatMessage
  | { role: "assistant"; content: string | null; tool_calls: ToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

/** An agent that streams its answers from an OpenAI-compatible endpoint, and runs the tools its model calls. */
export function openAIAgent({ baseUrl, apiKey, model }: OpenAIOptions): Agent {
  const url = new URL("chat/completions", baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`).href;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  return {
    name: `openai:${model}`,
    async reply(turn) {
      const messages: RequestMessage[] = [...turn.history, { role: "user", content: turn.prompt }];
      for (let round = 0;; round++) {
        const body = JSON.stringify({ model, messages, tools: TOOLS, stream: true });
        const { text, calls } = await streamAnswer(url, await post(url, headers, body, turn.signal), turn);
        if (calls.length === 0) return;
        if (round === MAX_TOOL_ROUNDS) {
          throw new AgentError(`${url} kept calling tools: more than ${MAX_TOOL_ROUNDS} rounds in one turn`);
        }
        // A call the endpoint gave no id still needs one, to pair it with its result.
        calls.forEach((call, i) => (call.id ||= `call_${round}_${i}`));
        messages.push({ role: "assistant", content: text || null, tool_calls: calls });
        for (const call of calls) {
          const content = await runToolCall(turn, call.function.name, call.function.arguments);
          messages.push({ role: "tool", tool_call_id: call.id, content });
        }
      }
    },
  };
}

/** The endpoint's answer to one request, checked to be a successful one with a body. */
async function post(url: string, headers: Record<string, string>, body: string, signal: AbortSignal) {
  let response: Response;
  try {
    response = await fetch(url, { method: "POST", headers, body, signal });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new AgentError(`cannot reach ${url}: ${describe(error)}`);
  }
  if (!response.ok) throw new AgentError(`${url} answered HTTP ${response.status}${await errorDetail(response)}`);
  if (!response.body) throw new AgentError(`${url} answered without a body`);
  return response.body;
}

/**
 * Reads one streamed answer: says its text as it arrives, and gathers the tool calls it
 * streams in pieces (`delta.tool_calls`: by `index`, the id and name once, the arguments in
 * chunks). Resolves with the whole text and the calls, in order (an id may still be empty).
 */
async function streamAnswer(
  url: string,
  body: ReadableStream<Uint8Array>,
  turn: Turn,
): Promise<{ text: string; calls: ToolCall[] }> {
  let text = "";
  const calls = new Map<number, ToolCall>();
  let finished = false;
  try {
    for await (const { data } of readSse(body)) {
      if (data === "[DONE]") {
        finished = true;
        break;
      }
      const choice = parseChunk(url, data).choices?.[0];
      const content = choice?.delta?.content;
      if (typeof content === "string") {
        text += content;
        turn.say(content);
      }
      for (const delta of toolCallDeltas(url, choice?.delta?.tool_calls)) {
        const index = typeof delta.index === "number" ? delta.index : calls.size;
        let call = calls.get(index);
        if (!call) {
          if (calls.size === MAX_CALLS) throw new AgentError(`${url} called more than ${MAX_CALLS} tools at once`);
          call = { id: "", type: "function", function: { name: "", arguments: "" } };
          calls.set(index, call);
        }
        if (typeof delta.id === "string" && !call.id) call.id = delta.id;
        const { name, arguments: args } = delta.function ?? {};
        if (typeof name === "string" && !call.function.name) call.function.name = name;
        if (typeof args === "string") call.function.arguments += args;
      }
      if (choice?.finish_reason) finished = true;
    }
  } catch (error) {
    if (turn.signal.aborted || error instanceof AgentError) throw error;
    if (error instanceof SseError) throw new AgentError(`${url} sent a bad event stream: ${error.message}`);
    throw new AgentError(`the stream from ${url} broke off: ${describe(error)}`);
  }
  if (!finished) throw new AgentError(`the stream from ${url} ended before the answer was complete`);
  return { text, calls: [...calls].sort(([a], [b]) => a - b).map(([, call]) => call) };
}

interface ToolCallDelta {
  index?: unknown;
  id?: unknown;
  function?: { name?: unknown; arguments?: unknown };
}

interface Chunk {
  choices?: { delta?: { content?: unknown; tool_calls?: unknown }; finish_reason?: unknown }[];
  error?: { message?: unknown };
}

/** A chunk's `delta.tool_calls` (none when absent), or an `AgentError` if it is not a list of objects. */
function toolCallDeltas(url: string, toolCalls: unknown): ToolCallDelta[] {
  if (toolCalls === undefined || toolCalls === null) return [];
  if (!Array.isArray(toolCalls) || !toolCalls.every((c) => typeof c === "object" && c !== null)) {
    throw new AgentError(`${url} sent a bad event stream: tool_calls that are not a list of calls`);
  }
  return toolCalls as ToolCallDelta[];
}

/** One `data:` payload of the stream, or an `AgentError` saying why it is not a usable chunk. */
function parseChunk(url: string, data: string): Chunk {
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch {
    throw new AgentError(`${url} sent a bad event stream: data that is not JSON: ${preview(data)}`);
  }
  if (typeof chunk !== "object" || chunk === null) {
    throw new AgentError(`${url} sent a bad event stream: ${preview(data)}`);
  }
  const { error } = chunk as Chunk;
  if (error) {
    throw new AgentError(
      `${url} reported an error: ${typeof error.message === "string" ? error.message : preview(JSON.stringify(error))}`,
    );
  }
  return chunk as Chunk;
}

/** ": <the endpoint's error message>" from an error response's body, if it has one. */
async function errorDetail(response: Response): Promise<string> {
  const body = await response.text().catch(() => "");
  if (!body.trim()) return "";
  try {
    const message = JSON.parse(body)?.error?.message;
    if (typeof message === "string") return `: ${preview(message)}`;
  } catch {
    // Not JSON: show the text itself.
  }
  return `: ${preview(body.trim())}`;
}

/** A network error's message with its cause (fetch hides ECONNREFUSED and the like in `cause`). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = cause?.code ?? cause?.message;
  return detail === undefined ? error.message : `${error.message} (${String(detail)})`;
}

function preview(text: string): string {
  return text.length > ERROR_PREVIEW ? `${text.slice(0, ERROR_PREVIEW)}…` : text;
}
