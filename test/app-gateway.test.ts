/**
 * The reference app's gateway in-process on this runtime: the conversation as a fold of its
 * events, what a chat may hold, and how long conversations are kept.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorCode, type RpcError, silentLogger, tokenAuth } from "../src/mod.ts";
import { connect, type SessionEvent } from "../src/client/mod.ts";
import type { Agent } from "../src/app/agent.ts";
import { type AgentGateway, createAgentGateway, MAX_SESSIONS_PER_PRINCIPAL } from "../src/app/gateway.ts";
import { type Conversation, conversationState, MAX_TURNS } from "../src/app/transcript.ts";
import { TestClient } from "./helpers/client.ts";
import { serveOn, webSocketClass } from "./helpers/runtime.ts";

test("conversationState folds a chat's events; session.interrupted ends every running turn as cut, its open tool cancelled", () => {
  const events: [string, unknown][] = [
    ["message.user", { turn_id: "t1", text: "hi" }],
    ["message.delta", { turn_id: "t1", text: "Hel" }],
    ["message.delta", { turn_id: "t1", text: "lo" }],
    ["tool.request", { turn_id: "t1", call_id: "t1-c1", tool: "list_files", input: { path: "." } }],
    ["tool.result", { turn_id: "t1", call_id: "t1-c1", outcome: "allowed", output: "a\nb" }],
    ["message.delta", { turn_id: "t1", text: "Done." }],
    ["message.complete", { turn_id: "t1", status: "done" }],
    ["message.user", { turn_id: "t2-0a1b2c3d", text: "more" }],
    ["message.delta", { turn_id: "t2-0a1b2c3d", text: "Wait" }],
    ["tool.request", { turn_id: "t2-0a1b2c3d", call_id: "t2-0a1b2c3d-c1", tool: "list_files", input: {} }],
    ["request.cancel", { id: "srq-1", reason: "owner_lost" }],
    ["session.interrupted", { reason: "owner_lost" }],
  ];
  let state: Conversation = conversationState.initial();
  events.forEach(([type, payload], i) => (state = conversationState.apply(state, { seq: i + 1, type, payload })));
  assert.deepEqual(state.turns, [
    {
      turn_id: "t1",
      prompt: "hi",
      status: "done",
      parts: [
        { kind: "text", text: "Hello" },
        {
          kind: "tool",
          call_id: "t1-c1",
          tool: "list_files",
          input: { path: "." },
          outcome: "allowed",
          output: "a\nb",
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
        { kind: "tool", call_id: "t2-0a1b2c3d-c1", tool: "list_files", input: {}, outcome: "cancelled" },
      ],
    },
  ]);
  assert.deepEqual(JSON.parse(JSON.stringify(state)), state, "the state is plain JSON");
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
        "done",
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
