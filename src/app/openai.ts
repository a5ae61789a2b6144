/**
 * An agent backed by any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama,
 * llama.cpp's server, vLLM…): `POST {baseUrl}/chat/completions` with `stream: true`, read as
 * server-sent events with `fetch`. Interrupting aborts the request. Every failure — no
 * connection, an HTTP error, a stream that is not what it should be — becomes an `AgentError`
 * that names the endpoint and says what went wrong.
 */
import { type Agent, AgentError } from "./agent.ts";
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

/** An agent that streams its answers from an OpenAI-compatible endpoint. */
export function openAIAgent({ baseUrl, apiKey, model }: OpenAIOptions): Agent {
  const url = new URL("chat/completions", baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`).href;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  return {
    name: `openai:${model}`,
    async reply(turn) {
      const messages = [...turn.history, { role: "user", content: turn.prompt }];
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers,
          body: JSON.stringify({ model, messages, stream: true }),
          signal: turn.signal,
        });
      } catch (error) {
        if (turn.signal.aborted) throw error;
        throw new AgentError(`cannot reach ${url}: ${describe(error)}`);
      }
      if (!response.ok) throw new AgentError(`${url} answered HTTP ${response.status}${await errorDetail(response)}`);
      if (!response.body) throw new AgentError(`${url} answered without a body`);
      let finished = false;
      try {
        for await (const { data } of readSse(response.body)) {
          if (data === "[DONE]") {
            finished = true;
            break;
          }
          const chunk = parseChunk(url, data);
          const choice = chunk.choices?.[0];
          const text = choice?.delta?.content;
          if (typeof text === "string") turn.say(text);
          if (choice?.finish_reason) finished = true;
        }
      } catch (error) {
        if (turn.signal.aborted || error instanceof AgentError) throw error;
        if (error instanceof SseError) throw new AgentError(`${url} sent a bad event stream: ${error.message}`);
        throw new AgentError(`the stream from ${url} broke off: ${describe(error)}`);
      }
      if (!finished) throw new AgentError(`the stream from ${url} ended before the answer was complete`);
    },
  };
}

interface Chunk {
  choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[];
  error?: { message?: unknown };
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
