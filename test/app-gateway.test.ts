/**
 * The reference app's gateway in-process on this runtime: the conversation as a fold of its
 * events, what a chat may hold, and how long conversations are kept.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorCode, type RpcError, silentLogger, tokenAuth } from "../src/mod.ts";
import { connect, type SessionEvent } from "../src/client/mod.ts";
import type { Agent } from "../src/app/agent.ts";
import { type AgentGateway, createAgentGateway } from "../src/app/gateway.ts";
import { MAX_SESSIONS_PER_PRINCIPAL } from "../src/app/conversations.ts";
import { type Conversation, conversationState, MAX_ANSWER_CHARS, MAX_TURNS } from "../src/app/transcript.ts";
import { TestClient } from "./helpers/client.ts";
import { serveOn, until, webSocketClass } from "./helpers/runtime.ts";

test("conversationState folds a chat's events; session.interrupted ends every running turn as cut, its open tool cancelled and its open question unanswered", () => {
  const events: [string, unknown][] = [
    ["message.user", { turn_id: "t1", text: "hi" }],
    ["message.start", { turn_id: "t1" }],
    ["message.delta", { turn_id: "t1", text: "Hel" }],
    ["message.delta", { turn_id: "t1", text: "lo" }],
    ["clarify.start", { turn_id: "t1", clarify_id: "t1-clarify1", question: "Which?", choices: ["a", "b"] }],
    ["clarify.complete", { turn_id: "t1", clarify_id: "t1-clarify1", answer: "b" }],
    ["tool.start", { turn_id: "t1", tool_id: "t1-tool1", name: "list_files", args: { path: "." } }],
    ["status.update", { turn_id: "t1", kind: "tool", text: "Running list_files…" }],
    ["tool.complete", { turn_id: "t1", tool_id: "t1-tool1", name: "list_files", outcome: "allowed", result: "a\nb" }],
    ["message.delta", { turn_id: "t1", text: "Done." }],
    ["message.complete", { turn_id: "t1", status: "complete", text: "Hello\n\nDone." }],
    ["message.user", { turn_id: "t2-0a1b2c3d", text: "more" }],
    ["message.start", { turn_id: "t2-0a1b2c3d" }],
    ["message.delta", { turn_id: "t2-0a1b2c3d", text: "Wait" }],
    ["clarify.start", { turn_id: "t2-0a1b2c3d", clarify_id: "t2-0a1b2c3d-clarify1", question: "Sure?", choices: [] }],
    ["clarify.complete", { turn_id: "t2-0a1b2c3d", clarify_id: "t2-0a1b2c3d-clarify1", answer: null }],
    ["tool.start", { turn_id: "t2-0a1b2c3d", tool_id: "t2-0a1b2c3d-tool1", name: "list_files", args: {} }],
    ["clarify.start", { turn_id: "t2-0a1b2c3d", clarify_id: "t2-0a1b2c3d-clarify2", question: "Now?", choices: [] }],
    ["request.cancel", { id: "srq-1", reason: "owner_lost" }],
    ["session.interrupted", { reason: "owner_lost" }],
  ];
  let state: Conversation = conversationState.initial();
  events.forEach(([type, payload], i) => (state = conversationState.apply(state, { seq: i + 1, type, payload })));
  assert.deepEqual(state.turns, [
    {
      turn_id: "t1",
      prompt: "hi",
      status: "complete",
      parts: [
        { kind: "text", text: "Hello" },
        { kind: "clarify", clarify_id: "t1-clarify1", question: "Which?", choices: ["a", "b"], answer: "b" },
        {
          kind: "tool",
          tool_id: "t1-tool1",
          name: "list_files",
          args: { path: "." },
          outcome: "allowed",
          result: "a\nb",
        },
        { kind: "text", text: "Done." },
      ],
    },
    {
      turn_id: "t2-0a1b2c3d",
      prompt: "more",
      status: "cut",
      parts: [
        { kind: "text", text: "Wait" },
        { kind: "clarify", clarify_id: "t2-0a1b2c3d-clarify1", question: "Sure?", choices: [], answer: null },
        { kind: "tool", tool_id: "t2-0a1b2c3d-tool1", name: "list_files", args: {}, outcome: "cancelled" },
        { kind: "clarify", clarify_id: "t2-0a1b2c3d-clarify2", question: "Now?", choices: [], answer: null },
      ],
    },
  ]);
  assert.deepEqual(JSON.parse(JSON.stringify(state)), state, "the state is plain JSON");
});

/** An agent that says a little, asks a question, asks for a tool, and says what came of both. */
const askingAgent: Agent = {
  name: "asking",
  async reply(turn) {
    turn.say("Let me ");
    turn.say("check.");
    const answer = await turn.clarify("Which one?", ["this", "that"]);
    const use = await turn.useTool("list_files", { path: "." }, () => "a\nb");
    turn.say(`You chose ${answer ?? "nothing"}; the tool ${use.allowed ? `said ${use.result}` : "did not run"}.`);
  },
};

test("a turn over a real socket: its events in order, the approval and clarify requests as the client gets them, and what the answers lead to", async () => {
  const server = await serveOn(createAgentGateway({ agent: askingAgent, logger: silentLogger }));
  const WebSocket = await webSocketClass();
  const client = connect<AgentGateway>(`${server.url.replace(/^http/, "ws")}api/ws`, { WebSocket, reconnect: false });
  try {
    const events: SessionEvent[] = [];
    client.on("*", (event) => event.session_id && events.push(event));
    const asked: [string, unknown][] = [];
    let decision = "allow";
    let answer: string | null = "that";
    const handlers = [
      client.handle("approval", (params) => {
        asked.push(["approval", params]);
        return { decision };
      }),
      client.handle("clarify", (params) => {
        asked.push(["clarify", params]);
        return { answer };
      }),
    ];
    const { session_id } = await client.call("session.create", {});
    const of = (turn_id: string) =>
      events.filter((e) => e.payload.turn_id === turn_id).map((e) => [e.type, e.payload] as [string, unknown]);

    assert.deepEqual(await client.call("prompt.submit", { session_id, text: "go" }), {
      turn_id: "t1",
      status: "complete",
    });
    const t1 = { turn_id: "t1" };
    const tool = { ...t1, tool_id: "t1-tool1", name: "list_files" };
    const question = { ...t1, clarify_id: "t1-clarify1", question: "Which one?", choices: ["this", "that"] };
    assert.deepEqual(of("t1"), [
      ["message.user", { ...t1, text: "go" }],
      ["message.start", t1],
      ["message.delta", { ...t1, text: "Let me " }],
      ["message.delta", { ...t1, text: "check." }],
      ["clarify.start", question],
      ["clarify.complete", { ...t1, clarify_id: "t1-clarify1", answer: "that" }],
      ["tool.start", { ...tool, args: { path: "." } }],
      ["status.update", { ...t1, kind: "tool", text: "Running list_files…" }],
      ["tool.complete", { ...tool, outcome: "allowed", result: "a\nb" }],
      ["message.delta", { ...t1, text: "You chose that; the tool said a\nb." }],
      ["message.complete", { ...t1, status: "complete", text: "Let me check.\n\nYou chose that; the tool said a\nb." }],
    ]);
    assert.deepEqual(asked, [
      ["clarify", { session_id, ...question }],
      ["approval", { session_id, ...tool, args: { path: "." } }],
    ]);

    // A denial; an answer past MAX_ANSWER_CHARS is kept up to there.
    decision = "deny";
    answer = "x".repeat(MAX_ANSWER_CHARS + 10);
    await client.call("prompt.submit", { session_id, text: "again" });
    const kept = "x".repeat(MAX_ANSWER_CHARS);
    const ends = (turn_id: string) =>
      of(turn_id).filter(([type]) => ["clarify.complete", "tool.complete", "message.complete"].includes(type));
    assert.deepEqual(ends("t2"), [
      ["clarify.complete", { turn_id: "t2", clarify_id: "t2-clarify1", answer: kept }],
      ["tool.complete", { turn_id: "t2", tool_id: "t2-tool1", name: "list_files", outcome: "denied" }],
      ["message.complete", {
        turn_id: "t2",
        status: "complete",
        text: `Let me check.\n\nYou chose ${kept}; the tool did not run.`,
      }],
    ]);
    assert.equal(of("t2").filter(([type]) => type === "status.update").length, 0, "a denied tool does not run");

    // A client that cannot answer (no handler: it answers -32601) denies, and does not answer.
    for (const remove of handlers) remove();
    assert.deepEqual(await client.call("prompt.submit", { session_id, text: "third" }), {
      turn_id: "t3",
      status: "complete",
    });
    assert.deepEqual(ends("t3").map(([, payload]) => payload), [
      { turn_id: "t3", clarify_id: "t3-clarify1", answer: null },
      { turn_id: "t3", tool_id: "t3-tool1", name: "list_files", outcome: "cancelled" },
      { turn_id: "t3", status: "complete", text: "Let me check.\n\nYou chose nothing; the tool did not run." },
    ]);

    const history = await client.call("session.history", { session_id });
    assert.deepEqual(history.turns.map((t) => [t.status, t.parts.map((p) => p.kind)]), [
      ["complete", ["text", "clarify", "tool", "text"]],
      ["complete", ["text", "clarify", "tool", "text"]],
      ["complete", ["text", "clarify", "tool", "text"]],
    ]);
  } finally {
    client.close();
    await server.close();
  }
});

test("an interrupt while a question is open: the request is cancelled, the question ends unanswered, and the turn interrupted", async () => {
  const server = await serveOn(createAgentGateway({ agent: askingAgent, logger: silentLogger }));
  const WebSocket = await webSocketClass();
  const client = connect<AgentGateway>(`${server.url.replace(/^http/, "ws")}api/ws`, { WebSocket, reconnect: false });
  try {
    const events: SessionEvent[] = [];
    client.on("*", (event) => events.push(event));
    let cancelled = false;
    client.handle("clarify", (_, { signal }) =>
      new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          cancelled = true;
          reject(signal.reason);
        })
      ));
    const { session_id } = await client.call("session.create", {});
    const turn = client.call("prompt.submit", { session_id, text: "go" });
    await until(() => events.some((e) => e.type === "clarify.start"), 5_000, "the question");
    assert.deepEqual(await client.call("session.interrupt", { session_id }), { interrupted: 1 });
    assert.deepEqual(await turn, { turn_id: "t1", status: "interrupted" });
    assert.ok(cancelled, "the handler was aborted");
    assert.deepEqual(events.filter((e) => e.payload?.turn_id === "t1").slice(-2).map((e) => [e.type, e.payload]), [
      ["clarify.complete", { turn_id: "t1", clarify_id: "t1-clarify1", answer: null }],
      ["message.complete", { turn_id: "t1", status: "interrupted", text: "Let me check." }],
    ]);
    const [record] = (await client.call("session.history", { session_id })).turns;
    assert.equal(record!.status, "interrupted");
    assert.deepEqual(record!.parts.at(-1), {
      kind: "clarify",
      clarify_id: "t1-clarify1",
      question: "Which one?",
      choices: ["this", "that"],
      answer: null,
    });
  } finally {
    client.close();
    await server.close();
  }
});

test("a chat holds at most MAX_TURNS turns: the next prompt answers -32600 and the chat stays readable", async () => {
  const gateway = createAgentGateway({
    agent: {
      name: "echo",
      reply: (turn) => {
        turn.say("ok");
        return Promise.resolve();
      },
    },
    logger: silentLogger,
  });
  const server = await serveOn(gateway);
  try {
    const { client } = await TestClient.ready(`${server.url.replace(/^http/, "ws")}api/ws`);
    const { result } = await client.call("session.create", {});
    const session_id = result.session_id as string;
    for (let i = 1; i <= MAX_TURNS; i++) {
      assert.equal(
        (await client.call("prompt.submit", { session_id, text: `prompt ${i}` })).result?.status,
        "complete",
        `turn ${i}`,
      );
    }
    const refused = await client.call("prompt.submit", { session_id, text: "one more" });
    assert.equal(refused.error?.code, ErrorCode.InvalidRequest);
    assert.deepEqual(refused.error?.data, { max_turns: MAX_TURNS });
    assert.equal((await client.call("session.history", { session_id })).result?.turns.length, MAX_TURNS);
    await client.close();
  } finally {
    await server.close();
  }
});

/** An agent whose turns run until `release()` (or an interrupt). */
function heldAgent() {
  const held = new Set<() => void>();
  const agent: Agent = {
    name: "held",
    reply: (turn) =>
      new Promise<void>((resolve, reject) => {
        held.add(resolve);
        turn.signal.addEventListener("abort", () => reject(turn.signal.reason), { once: true });
      }),
  };
  return { agent, release: () => held.forEach((resolve) => resolve()) };
}

/** Resolves once `check()` resolves true, asking at most `tries` times, 20 ms apart. */
async function eventually(check: () => Promise<boolean>, what: string, tries = 250): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("a conversation nobody views ends after the grace period, unless a turn is running: that one is kept until its turn ends", async () => {
  const { agent, release } = heldAgent();
  const gateway = createAgentGateway({ agent, graceMs: 50, logger: silentLogger });
  const server = await serveOn(gateway);
  const url = `${server.url.replace(/^http/, "ws")}api/ws`;
  const WebSocket = await webSocketClass();
  const open = () => connect<AgentGateway>(url, { WebSocket, reconnect: false });
  const observer = open();
  try {
    const leaving = open();
    const idle = (await leaving.call("session.create", {})).session_id;
    const busy = (await leaving.call("session.create", {})).session_id;
    void leaving.call("prompt.submit", { session_id: busy, text: "take your time" }).catch(() => {});
    const listed = async () => (await observer.call("session.list", {})).sessions.map((s) => s.session_id);
    await eventually(async () => (await observer.call("session.list", {})).sessions.some((s) => s.running), "the turn");
    leaving.close();
    await eventually(async () => !(await listed()).includes(idle), "the idle conversation to end");
    // A conversation left later than the busy one: once it has ended, the busy one's grace has run out too.
    const later = open();
    const probe = (await later.call("session.create", {})).session_id;
    later.close();
    await eventually(async () => !(await listed()).includes(probe), "the later conversation to end");
    assert.deepEqual(await listed(), [busy], "the conversation with a running turn is kept");
    assert.equal((await observer.call("session.history", { session_id: busy })).turns[0]!.status, "running");
    release();
    await eventually(async () => !(await listed()).includes(busy), "the conversation to end after its turn");
  } finally {
    observer.close();
    await server.close();
  }
});

test("a principal keeps at most MAX_SESSIONS_PER_PRINCIPAL conversations: one more ends its oldest, and nobody else's", async () => {
  const gateway = createAgentGateway({
    agent: heldAgent().agent,
    auth: tokenAuth({ tokens: { "alice-token": "alice", "bob-token": "bob" } }),
    logger: silentLogger,
  });
  const server = await serveOn(gateway);
  const url = `${server.url.replace(/^http/, "ws")}api/ws`;
  const WebSocket = await webSocketClass();
  const alice = connect<AgentGateway>(url, { WebSocket, token: "alice-token", reconnect: false });
  const bob = connect<AgentGateway>(url, { WebSocket, token: "bob-token", reconnect: false });
  try {
    const bobs = (await bob.call("session.create", {})).session_id;
    const closed: SessionEvent[] = [];
    alice.on("session.closed", (event) => closed.push(event));
    const created: string[] = [];
    for (let i = 0; i <= MAX_SESSIONS_PER_PRINCIPAL; i++) {
      created.push((await alice.call("session.create", {})).session_id);
    }
    const [oldest, ...kept] = created;
    const listed = (await alice.call("session.list", {})).sessions.map((s) => s.session_id);
    assert.deepEqual(listed.toSorted(), kept.toSorted());
    await assert.rejects(
      alice.call("session.history", { session_id: oldest! }),
      (error: RpcError) => error.code === ErrorCode.SessionNotFound,
    );
    assert.deepEqual(closed.map((e) => [e.session_id, e.payload.reason]), [[oldest, "evicted"]]);
    assert.deepEqual((await bob.call("session.list", {})).sessions.map((s) => s.session_id), [bobs]);
  } finally {
    alice.close();
    bob.close();
    await server.close();
  }
});
