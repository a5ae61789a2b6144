/**
 * The reference app's OpenAI-compatible backend: the SSE parser on its own, then the agent
 * against a fake chat-completions server on loopback — streaming, the request it sends,
 * interrupt (the request is aborted), and every kind of failure as a clear `AgentError`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AgentError, type ChatMessage, type Turn } from "../src/app/agent.ts";
import { openAIAgent } from "../src/app/openai.ts";
import { readSse, SseError, type SseEvent } from "../src/app/sse.ts";
import { fakeOpenAI, streamChunks } from "./helpers/app.ts";
import { until } from "./helpers/runtime.ts";

const encoder = new TextEncoder();

/** A byte stream of `chunks`. */
function bytes(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
      controller.close();
    },
  });
}

async function collect(body: ReadableStream<Uint8Array>): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const event of readSse(body)) events.push(event);
  return events;
}

test("readSse: fields, comments, multi-line data, every line ending, and a stream split at every byte", async () => {
  const text =
    ": a comment\r\ndata: one\r\n\r\nevent: custom\ndata:two\ndata:  lines\n\nid: 7\nretry: 10\n\ndata: ünï\r\rdata: last\n\ndata: never dispatched";
  const expected = [
    { event: "message", data: "one" },
    { event: "custom", data: "two\n lines" },
    { event: "message", data: "ünï" },
    { event: "message", data: "last" },
  ];
  assert.deepEqual(await collect(bytes([text])), expected);
  const all = encoder.encode(text);
  for (let at = 1; at < all.length; at++) {
    assert.deepEqual(await collect(bytes([all.slice(0, at), all.slice(at)])), expected, `split at byte ${at}`);
  }
});

test("readSse: a line longer than the limit is an SseError", async () => {
  await assert.rejects(collect(bytes([`data: ${"x".repeat(1 << 20)}`])), SseError);
});

/** A turn for the agent that records what it says. */
function turnFor(
  prompt: string,
  signal = new AbortController().signal,
  history: ChatMessage[] = [],
): Turn & { said: string[] } {
  const said: string[] = [];
  return {
    prompt,
    history,
    signal,
    said,
    say: (text) => said.push(text),
    useTool: () => Promise.reject(new Error("no tools here")),
  };
}

test("openAIAgent streams the deltas and sends the model, the history, the prompt and the key", async () => {
  const fake = await fakeOpenAI(streamChunks(["Hel", "lo", " there"]));
  try {
    const agent = openAIAgent({ baseUrl: fake.baseUrl, apiKey: "sk-test", model: "tiny" });
    assert.equal(agent.name, "openai:tiny");
    const history: ChatMessage[] = [
      { role: "user", content: "before" },
      { role: "assistant", content: "answer" },
    ];
    const turn = turnFor("hi", undefined, history);
    await agent.reply(turn);
    assert.deepEqual(turn.said, ["Hel", "lo", " there"]);
    const [request] = fake.requests;
    assert.equal(request!.headers.authorization, "Bearer sk-test");
    assert.deepEqual(request!.body, {
      model: "tiny",
      stream: true,
      messages: [...history, { role: "user", content: "hi" }],
    });
  } finally {
    await fake.close();
  }
});

test("openAIAgent: an interrupt aborts the request to the endpoint", async () => {
  const fake = await fakeOpenAI((_, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: "first" } }] })}\n\n`);
    // …and then nothing more: only the interrupt ends this answer.
  });
  try {
    const controller = new AbortController();
    const turn = turnFor("hi", controller.signal);
    const reply = openAIAgent({ baseUrl: fake.baseUrl, model: "m" }).reply(turn);
    await until(() => turn.said.length === 1, 5_000, "the first delta");
    controller.abort(new Error("interrupted"));
    await assert.rejects(reply, (error) => !(error instanceof AgentError));
    await until(() => fake.aborted === 1, 5_000, "the endpoint to see the request aborted");
    assert.equal(fake.requests[0]!.headers.authorization, undefined, "no key, no header");
  } finally {
    await fake.close();
  }
});

/** Asserts that the agent fails with an `AgentError` whose message matches every pattern. */
async function failsWith(baseUrl: string, patterns: RegExp[]): Promise<void> {
  const turn = turnFor("hi");
  await assert.rejects(openAIAgent({ baseUrl, model: "m" }).reply(turn), (error: unknown) => {
    assert.ok(error instanceof AgentError, `not an AgentError: ${error}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

test("openAIAgent: HTTP errors, bad event streams, endpoint errors and a cut stream are clear AgentErrors", async () => {
  const replies: Record<string, (res: import("node:http").ServerResponse) => void> = {
    http: (res) =>
      res.writeHead(401, { "content-type": "application/json" }).end(
        JSON.stringify({ error: { message: "Incorrect API key provided" } }),
      ),
    plain: (res) => res.writeHead(503).end("upstream busy"),
    json: (res) => res.writeHead(200, { "content-type": "text/event-stream" }).end("data: {not json\n\n"),
    error: (res) =>
      res.writeHead(200, { "content-type": "text/event-stream" }).end(
        `data: ${JSON.stringify({ error: { message: "model not found" } })}\n\n`,
      ),
    short: (res) =>
      res.writeHead(200, { "content-type": "text/event-stream" }).end(
        `data: ${JSON.stringify({ choices: [{ delta: { content: "half" } }] })}\n\n`,
      ),
  };
  let which = "";
  const fake = await fakeOpenAI((_, res) => replies[which]!(res));
  try {
    const url = /http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/;
    which = "http";
    await failsWith(fake.baseUrl, [url, /HTTP 401/, /Incorrect API key provided/]);
    which = "plain";
    await failsWith(fake.baseUrl, [url, /HTTP 503: upstream busy/]);
    which = "json";
    await failsWith(fake.baseUrl, [url, /bad event stream/, /not JSON/]);
    which = "error";
    await failsWith(fake.baseUrl, [url, /reported an error: model not found/]);
    which = "short";
    await failsWith(fake.baseUrl, [url, /ended before the answer was complete/]);
  } finally {
    await fake.close();
  }
});

test("openAIAgent: an endpoint that refuses the connection is a clear AgentError", async () => {
  const fake = await fakeOpenAI(() => {});
  const { baseUrl } = fake;
  await fake.close(); // nothing listens on that port now
  await failsWith(baseUrl, [/^cannot reach http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: /]);
});
