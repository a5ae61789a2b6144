/**
 * The reference app's OpenAI-compatible backend: the SSE parser on its own, then the agent
 * against a fake chat-completions server on loopback — streaming, the request it sends,
 * interrupt (the request is aborted), every kind of failure as a clear `AgentError`, and
 * function calling through the app's gateway over a real socket: approval, denial, a question
 * to the user, bad calls, and a model that never stops calling.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../src/mod.ts";
import { connect, type SessionEvent } from "../src/client/mod.ts";
import { AgentError, type ChatMessage, listFiles, type Turn } from "../src/app/agent.ts";
import { type AgentGateway, createAgentGateway } from "../src/app/gateway.ts";
import { MAX_TOOL_ROUNDS, openAIAgent } from "../src/app/openai.ts";
import { TOOLS } from "../src/app/openai-tools.ts";
import { readSse, SseError, type SseEvent } from "../src/app/sse.ts";
import { fakeOpenAI, type FakeReply, streamChunks, streamToolCalls } from "./helpers/app.ts";
import { serveOn, until, webSocketClass, within } from "./helpers/runtime.ts";

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
    clarify: () => Promise.reject(new Error("no questions here")),
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
      tools: TOOLS,
    });
    assert.deepEqual(request!.body.tools.map((tool) => tool.function.name), ["list_files", "ask_user"]);
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
    // Bounded: a reply that never ends fails the test instead of stalling the run.
    await within(assert.rejects(reply, (error) => !(error instanceof AgentError)), 10_000, "the interrupted reply");
    await until(() => fake.aborted === 1, 5_000, "the endpoint to see the request aborted");
    assert.equal(fake.requests[0]!.headers.authorization, undefined, "no key, no header");
  } finally {
    await within(fake.close(), 10_000, "the fake endpoint's close");
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

/**
 * The app's gateway with an `openAIAgent` on the fake endpoint answering `reply`, and a client
 * over a real socket that records every session event and every server request, answering
 * approvals with `decision` and questions with `answer`.
 */
async function openAIChat(reply: FakeReply) {
  const fake = await fakeOpenAI(reply);
  const agent = openAIAgent({ baseUrl: fake.baseUrl, model: "m" });
  const server = await serveOn(createAgentGateway({ agent, logger: silentLogger }));
  const client = connect<AgentGateway>(`${server.url.replace(/^http/, "ws")}api/ws`, {
    WebSocket: await webSocketClass(),
    reconnect: false,
  });
  const chat = {
    fake,
    client,
    events: [] as SessionEvent[],
    asked: [] as [string, Record<string, unknown>][],
    decision: "allow",
    answer: null as string | null,
    /** The events of the turn `turn_id`, as [type, payload]. */
    of: (turn_id: string) =>
      chat.events.filter((e) => e.payload?.turn_id === turn_id).map((e) => [e.type, e.payload] as [string, unknown]),
    close: async () => {
      client.close();
      await server.close();
      await fake.close();
    },
  };
  client.on("*", (event) => chat.events.push(event));
  client.handle("approval", (params) => {
    chat.asked.push(["approval", params]);
    return { decision: chat.decision };
  });
  client.handle("clarify", (params) => {
    chat.asked.push(["clarify", params]);
    return { answer: chat.answer };
  });
  return chat;
}

/** Answers the first request with `first` and every later one with `then`. */
function firstThen(first: FakeReply, then: FakeReply): FakeReply {
  let count = 0;
  return (request, res) => (count++ === 0 ? first : then)(request, res);
}

const listCall = { id: "call_ls", name: "list_files", args: '{"path":"."}' };

test("openAIAgent calls list_files: the user's approval, tool.start and tool.complete, the result sent back as a tool message, then the final text", async () => {
  const chat = await openAIChat(
    firstThen(streamToolCalls([listCall], "Let me look."), streamChunks(["Four ", "entries."])),
  );
  try {
    const { session_id } = await chat.client.call("session.create", {});
    assert.deepEqual(await chat.client.call("prompt.submit", { session_id, text: "which files?" }), {
      turn_id: "t1",
      status: "complete",
    });
    const tool = { turn_id: "t1", tool_id: "t1-tool1", name: "list_files" };
    assert.deepEqual(chat.asked, [["approval", { session_id, ...tool, args: { path: "." } }]]);
    assert.deepEqual(chat.of("t1").filter(([type]) => type.startsWith("tool.") || type === "message.complete"), [
      ["tool.start", { ...tool, args: { path: "." } }],
      ["tool.complete", { ...tool, outcome: "allowed", result: listFiles() }],
      ["message.complete", { turn_id: "t1", status: "complete", text: "Let me look.\n\nFour entries." }],
    ]);
    assert.equal(chat.fake.requests.length, 2);
    assert.deepEqual(chat.fake.requests[1]!.body.messages, [
      { role: "user", content: "which files?" },
      {
        role: "assistant",
        content: "Let me look.",
        tool_calls: [{ id: "call_ls", type: "function", function: { name: "list_files", arguments: '{"path":"."}' } }],
      },
      { role: "tool", tool_call_id: "call_ls", content: listFiles() },
    ]);
    assert.deepEqual(chat.fake.requests[1]!.body.tools, TOOLS);
    const [turn] = (await chat.client.call("session.history", { session_id })).turns;
    assert.deepEqual(turn!.parts.map((part) => part.kind), ["text", "tool", "text"]);
  } finally {
    await chat.close();
  }
});

test("openAIAgent: a denied list_files runs nothing, and the model is told the user did not allow it", async () => {
  const chat = await openAIChat(firstThen(streamToolCalls([listCall]), streamChunks(["Fine."])));
  chat.decision = "deny";
  try {
    const { session_id } = await chat.client.call("session.create", {});
    assert.equal((await chat.client.call("prompt.submit", { session_id, text: "which files?" })).status, "complete");
    assert.deepEqual(chat.of("t1").filter(([type]) => type === "tool.complete" || type === "status.update"), [
      ["tool.complete", { turn_id: "t1", tool_id: "t1-tool1", name: "list_files", outcome: "denied" }],
    ]);
    const sent = chat.fake.requests[1]!.body.messages;
    assert.deepEqual(sent[1], {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_ls", type: "function", function: { name: "list_files", arguments: '{"path":"."}' } }],
    });
    assert.deepEqual(sent[2], {
      role: "tool",
      tool_call_id: "call_ls",
      content: "The user did not allow list_files to run.",
    });
  } finally {
    await chat.close();
  }
});

test("openAIAgent: ask_user is a clarify question to the user — its answer, or that there was none, goes back to the model", async () => {
  const ask = { id: "call_ask", name: "ask_user", args: '{"question":"Short or long?","choices":["short","long"]}' };
  const chat = await openAIChat((request, res) =>
    (request.body.messages.at(-1)!.role === "tool" ? streamChunks(["Noted."]) : streamToolCalls([ask]))(request, res)
  );
  chat.answer = "long";
  try {
    const { session_id } = await chat.client.call("session.create", {});
    assert.equal((await chat.client.call("prompt.submit", { session_id, text: "explain" })).status, "complete");
    const question = {
      turn_id: "t1",
      clarify_id: "t1-clarify1",
      question: "Short or long?",
      choices: ["short", "long"],
    };
    assert.deepEqual(chat.asked, [["clarify", { session_id, ...question }]], "no approval for a question");
    assert.deepEqual(chat.of("t1").filter(([type]) => type.startsWith("clarify.") || type.startsWith("tool.")), [
      ["clarify.start", question],
      ["clarify.complete", { turn_id: "t1", clarify_id: "t1-clarify1", answer: "long" }],
    ]);
    assert.deepEqual(chat.fake.requests[1]!.body.messages.at(-1), {
      role: "tool",
      tool_call_id: "call_ask",
      content: "long",
    });

    chat.answer = null;
    assert.equal((await chat.client.call("prompt.submit", { session_id, text: "again" })).status, "complete");
    assert.deepEqual(chat.fake.requests[3]!.body.messages.at(-1), {
      role: "tool",
      tool_call_id: "call_ask",
      content: "The user did not answer.",
    });
  } finally {
    await chat.close();
  }
});

test("openAIAgent: calls with bad JSON arguments, an unknown tool or a bad ask_user are answered with what is wrong, nothing runs, and the turn goes on", async () => {
  const calls = [
    { id: "call_a", name: "list_files", args: '{"path": ".' },
    { id: "call_b", name: "rm_rf", args: "{}" },
    { id: "call_c", name: "ask_user", args: '{"choices":[1,2]}' },
    { id: "call_d", name: "list_files", args: "[1]" },
  ];
  const chat = await openAIChat(firstThen(streamToolCalls(calls), streamChunks(["Sorry."])));
  try {
    const { session_id } = await chat.client.call("session.create", {});
    assert.deepEqual(await chat.client.call("prompt.submit", { session_id, text: "go" }), {
      turn_id: "t1",
      status: "complete",
    });
    assert.deepEqual(chat.asked, []);
    assert.deepEqual(chat.of("t1").map(([type]) => type), [
      "message.user",
      "message.start",
      "message.delta",
      "message.complete",
    ]);
    const sent = chat.fake.requests[1]!.body.messages;
    assert.deepEqual(
      (sent[1]!.tool_calls as { id: string; function: { arguments: string } }[]).map((
        c,
      ) => [c.id, c.function.arguments]),
      calls.map((c) => [c.id, c.args]),
      "each call whole, told apart by its index",
    );
    const results = sent.slice(2).map((m) => [m.tool_call_id, m.content]);
    assert.equal(results.length, 4);
    assert.deepEqual(results.map(([id]) => id), ["call_a", "call_b", "call_c", "call_d"]);
    assert.match(results[0]![1] as string, /^Error: the arguments are not valid JSON: \{"path": "\.$/);
    assert.match(results[1]![1] as string, /^Error: there is no tool named "rm_rf"/);
    assert.match(results[2]![1] as string, /^Error: ask_user needs a question/);
    assert.equal(results[3]![1], "Error: the arguments must be a JSON object.");
  } finally {
    await chat.close();
  }
});

test(`openAIAgent: a model that calls tools more than ${MAX_TOOL_ROUNDS} rounds in a turn ends it with a clear error`, async () => {
  const chat = await openAIChat(streamToolCalls([listCall]));
  try {
    const { session_id } = await chat.client.call("session.create", {});
    const outcome = await chat.client.call("prompt.submit", { session_id, text: "loop" });
    assert.equal(outcome.status, "error");
    assert.match(
      outcome.error!,
      /^http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions kept calling tools: more than 8 rounds/,
    );
    assert.equal(chat.fake.requests.length, MAX_TOOL_ROUNDS + 1);
    assert.equal(chat.asked.length, MAX_TOOL_ROUNDS, "each round's call was put to the user");
    assert.deepEqual(chat.of("t1").at(-1), [
      "message.complete",
      { turn_id: "t1", status: "error", text: "", error: outcome.error },
    ]);
  } finally {
    await chat.close();
  }
});
