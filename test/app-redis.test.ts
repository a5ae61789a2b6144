/**
 * The reference agent app on Redis: app processes of the runtime under test (`--redis`, or
 * `SWITCHBOARD_REDIS_URL`) sharing one private redis-server. A chat started on one node is
 * listed, read, continued and resumed on another; the model's history crosses nodes; a node
 * killed mid-turn leaves its chat to the others, minus the running turn; the per-principal cap
 * counts every node's chats; a Redis restart loses the chats and new ones work at once; a Redis
 * that cannot be reached stops the app at start with one line.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Client, connect, type SessionEvent } from "../src/client/mod.ts";
import { demoScript } from "../src/app/agent.ts";
import type { AgentGateway } from "../src/app/gateway.ts";
import { MAX_SESSIONS_PER_PRINCIPAL } from "../src/app/conversations.ts";
import type { Snapshot } from "../src/app/transcript.ts";
import { fakeOpenAI, runApp, type RunningApp, startApp, streamChunks } from "./helpers/app.ts";
import { freePort, RedisServer } from "./helpers/redis-server.ts";
import { until, webSocketClass } from "./helpers/runtime.ts";

/** One access token for every node, as `npm run cluster` gives them. */
const TOKEN = "shared-test-token";

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.start();
});
after(() => redis.stop());

/** An app node on the test's Redis (by flag, or by `SWITCHBOARD_REDIS_URL` when `byEnv`). */
function node(args: string[] = [], byEnv = false): Promise<RunningApp> {
  const env: Record<string, string> = { SWITCHBOARD_TOKEN: TOKEN };
  if (byEnv) env.SWITCHBOARD_REDIS_URL = redis.url;
  return startApp(byEnv ? args : ["--redis", redis.url, ...args], env);
}

/** A client of `app` that records every session event; `decide` answers approvals. */
async function clientOf(app: RunningApp, decide: () => "allow" | "deny" = () => "allow") {
  const client: Client<AgentGateway> = connect<AgentGateway>(app.wsUrl, {
    token: TOKEN,
    WebSocket: await webSocketClass(),
    reconnect: false,
  });
  const events: SessionEvent[] = [];
  client.on("*", (event) => events.push(event));
  client.handle("approval", () => ({ decision: decide() }));
  const text = (turnId: string) =>
    events.filter((e) => e.type === "message.delta" && e.payload.turn_id === turnId).map((e) => e.payload.text).join(
      "",
    );
  return { client, events, text, ready: await client.ready };
}

/** Resolves with `check()`'s first defined answer, asking at most `tries` times, 50 ms apart. */
async function eventually<T>(check: () => Promise<T | undefined>, what: string, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const answer = await check();
    if (answer !== undefined) return answer;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const textOf = (turn: Snapshot["turns"][number]) =>
  turn.parts.flatMap((part) => (part.kind === "text" ? [part.text] : [])).join("");

test("--redis with nothing listening, or SWITCHBOARD_REDIS_URL so: one line on stderr, exit status 1", async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  for (const run of [await runApp(["--redis", url]), await runApp([], { env: { SWITCHBOARD_REDIS_URL: url } })]) {
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, new RegExp(`^switchboard: cannot reach Redis at ${url}: .+\\n$`));
  }
});

test("a chat started on one node is listed, read, continued and resumed on another (one by --redis, one by SWITCHBOARD_REDIS_URL)", async () => {
  const [a, b] = await Promise.all([node(["--delay-ms", "1"]), node(["--delay-ms", "1"], true)]);
  const onA = await clientOf(a);
  const onB = await clientOf(b);
  try {
    assert.equal(onA.ready.shared, true, "gateway.ready says the conversations are shared");
    const { session_id } = await onA.client.call("session.create", {});
    const first = await onA.client.call("prompt.submit", { session_id, text: "hello there" });
    assert.equal(first.status, "complete");
    assert.match(first.turn_id, /^t1-[0-9a-f]{8}$/);
    assert.equal(onA.text(first.turn_id), demoScript("hello there").intro);
    const latest = onA.events.at(-1)!.seq;

    // On the other node: listed (from the saved state, at most about a second behind), and read.
    const listed = await eventually(async () => {
      const { sessions } = await onB.client.call("session.list", {});
      return sessions[0]?.turns === 1 && sessions[0].running === 0 ? sessions : undefined;
    }, "the chat listed on B with its finished turn");
    assert.deepEqual(listed.map((s) => [s.session_id, s.title, s.turns, s.running, s.seq]), [[
      session_id,
      "hello there",
      1,
      0,
      latest,
    ]]);
    const history = (await onB.client.call("session.history", { session_id })) as Snapshot;
    assert.equal(history.seq, latest);
    assert.equal(history.title, "hello there");
    assert.deepEqual(history.turns.map((t) => [t.turn_id, t.status, textOf(t)]), [[
      first.turn_id,
      "complete",
      demoScript("hello there").intro,
    ]]);

    // Continued on B, with an approval answered there.
    onB.client.follow(session_id, history.seq);
    await onB.client.call("session.resume", { session_id, after_seq: history.seq });
    const second = await onB.client.call("prompt.submit", { session_id, text: "which files are there?" });
    assert.equal(second.status, "complete");
    assert.match(second.turn_id, /^t2-/);
    const files = demoScript("which files are there?");
    assert.equal(onB.text(second.turn_id), files.intro + files.allowed);

    // A's viewer got B's events, and A's state folded them.
    await until(() => onA.events.some((e) => e.type === "message.complete" && e.payload.turn_id === second.turn_id));
    const onASnapshot = (await onA.client.call("session.history", { session_id })) as Snapshot;
    assert.deepEqual(onASnapshot.turns.map((t) => t.status), ["complete", "complete"]);
    assert.deepEqual(onASnapshot.turns[1]!.parts.map((p) => p.kind), ["text", "tool", "text"]);
    const seqs = onA.events.filter((e) => e.session_id === session_id).map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "A saw every seq once, in order");

    // A fresh client on A resumes from the start: every event once, in order, the same as B's node wrote them.
    const late = await clientOf(a);
    try {
      const resumed = await late.client.call("session.resume", { session_id, after_seq: 0 });
      assert.equal(resumed.truncated, false);
      await until(() => late.events.length >= resumed.latest_seq, 10_000, "the replay");
      assert.deepEqual(late.events.map((e) => e.seq), seqs);
      assert.equal(late.text(second.turn_id), files.intro + files.allowed);
    } finally {
      late.client.close();
    }
  } finally {
    onA.client.close();
    onB.client.close();
    await Promise.all([a.close(), b.close()]);
  }
});

test("the model's history crosses nodes: a turn on B sends the turn finished on A", async () => {
  const fake = await fakeOpenAI(streamChunks(["From ", "the fake."]));
  const args = ["--openai-base-url", fake.baseUrl];
  const [a, b] = await Promise.all([node(args), node(args)]);
  const onA = await clientOf(a);
  const onB = await clientOf(b);
  try {
    const { session_id } = await onA.client.call("session.create", {});
    assert.equal((await onA.client.call("prompt.submit", { session_id, text: "hi" })).status, "complete");
    // No resume first: `prompt.submit` finds the session in Redis, with its conversation.
    assert.equal((await onB.client.call("prompt.submit", { session_id, text: "again" })).status, "complete");
    assert.deepEqual(fake.requests[1]!.body.messages, [
      { role: "user", content: "hi" },
      { role: "assistant", content: "From the fake." },
      { role: "user", content: "again" },
    ]);
  } finally {
    onA.client.close();
    onB.client.close();
    await Promise.all([a.close(), b.close(), fake.close()]);
  }
});

test("a node killed mid-turn (kill -9): on another node the chat is still there, its running turn ends as cut (session.interrupted), and a new turn works", async () => {
  const [a, b] = await Promise.all([node(["--delay-ms", "40"]), node(["--delay-ms", "1"])]);
  const onA = await clientOf(a);
  const onB = await clientOf(b);
  try {
    const { session_id } = await onA.client.call("session.create", {});
    assert.equal((await onA.client.call("prompt.submit", { session_id, text: "first" })).status, "complete");
    const running = onA.client.call("prompt.submit", { session_id, text: "tell me a story" }).catch(() => "lost");
    // B follows the chat: its viewer gets the running turn's words as they come.
    const attached = await onB.client.call("session.resume", { session_id, after_seq: 0 });
    onB.client.follow(session_id, attached.latest_seq);
    await until(
      () => onB.events.filter((e) => e.type === "message.delta" && /^t2-/.test(e.payload.turn_id)).length >= 3,
      10_000,
      "the second answer to start",
    );
    await a.kill("SIGKILL");
    assert.equal(await running, "lost");

    // A new prompt on B takes the session over (once A's lease lapsed): the dead turn is cut first.
    const third = await onB.client.call("prompt.submit", { session_id, text: "are you there?" });
    assert.equal(third.status, "complete");
    const interrupted = onB.events.find((e) => e.type === "session.interrupted");
    assert.deepEqual(interrupted?.payload, { reason: "owner_lost" });
    const history = (await onB.client.call("session.history", { session_id })) as Snapshot;
    assert.deepEqual(history.turns.map((t) => [t.prompt, t.status]), [
      ["first", "complete"],
      ["tell me a story", "cut"],
      ["are you there?", "complete"],
    ]);
    const story = demoScript("tell me a story").intro;
    const cut = textOf(history.turns[1]!);
    assert.ok(cut.length > 0 && story.startsWith(cut) && cut.length < story.length, "the cut turn keeps its words");
    assert.equal(textOf(history.turns[2]!), demoScript("are you there?").intro);
    const seqs = onB.events.filter((e) => e.session_id === session_id).map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "B saw every seq once, in order");
  } finally {
    onA.client.close();
    onB.client.close();
    await Promise.all([a.close(), b.close()]);
  }
});

test("a chat whose last viewer left right after its turn is listed as finished on another node", async () => {
  const [a, b] = await Promise.all([node(["--delay-ms", "1"]), node()]);
  const onA = await clientOf(a);
  const onB = await clientOf(b);
  try {
    const { session_id } = await onA.client.call("session.create", {});
    assert.equal((await onA.client.call("prompt.submit", { session_id, text: "hello there" })).status, "complete");
    // Node A lets go of the chat at once: what it folded must reach Redis all the same.
    onA.client.close();
    const listed = await eventually(async () => {
      // Other tests' chats (the same principal, the same Redis) are listed too.
      const { sessions } = await onB.client.call("session.list", {});
      const mine = sessions.filter((s) => s.session_id === session_id);
      return mine[0]?.running === 0 ? mine : undefined;
    }, "the finished turn listed on B");
    assert.deepEqual(listed.map((s) => [s.session_id, s.title, s.turns, s.running]), [[
      session_id,
      "hello there",
      1,
      0,
    ]]);
  } finally {
    onA.client.close();
    onB.client.close();
    await Promise.all([a.close(), b.close()]);
  }
});

test("MAX_SESSIONS_PER_PRINCIPAL counts the chats on every node: one more ends the oldest, wherever it lives", async () => {
  // A Redis of its own: the other tests' chats (the same principal) would count too.
  await using own = await RedisServer.start();
  const env = { SWITCHBOARD_TOKEN: TOKEN };
  const [a, b] = await Promise.all([startApp(["--redis", own.url], env), startApp(["--redis", own.url], env)]);
  const onA = await clientOf(a);
  const onB = await clientOf(b);
  try {
    const created: string[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_PRINCIPAL; i++) {
      created.push((await (i % 2 === 0 ? onA : onB).client.call("session.create", {})).session_id);
    }
    // The oldest was made on A; one more, made on B, ends it there.
    created.push((await onB.client.call("session.create", {})).session_id);
    await until(
      () => onA.events.some((e) => e.type === "session.closed" && e.session_id === created[0]),
      10_000,
      "session.closed on A",
    );
    assert.deepEqual(onA.events.find((e) => e.type === "session.closed")!.payload, { reason: "evicted" });
    const listed = (await onA.client.call("session.list", {})).sessions.map((s) => s.session_id);
    assert.deepEqual(listed.toSorted(), created.slice(1).toSorted());
  } finally {
    onA.client.close();
    onB.client.close();
    await Promise.all([a.close(), b.close()]);
  }
});

test("Redis restarted without persistence: the chats are gone (their viewers get session.closed store_lost), and a new chat works at once", async () => {
  await using own = await RedisServer.start();
  const env = { SWITCHBOARD_TOKEN: TOKEN };
  const a = await startApp(["--delay-ms", "1", "--redis", own.url], env);
  const onA = await clientOf(a);
  try {
    const { session_id } = await onA.client.call("session.create", {});
    assert.equal((await onA.client.call("prompt.submit", { session_id, text: "hello" })).status, "complete");
    await own.restart();
    await until(
      () => onA.events.some((e) => e.type === "session.closed" && e.session_id === session_id),
      15_000,
      "session.closed",
    );
    assert.deepEqual(onA.events.find((e) => e.type === "session.closed")!.payload, { reason: "store_lost" });
    const fresh = await eventually(
      () => onA.client.call("session.create", {}).then((r) => r.session_id, () => undefined),
      "a new chat once Redis is back",
    );
    assert.equal(
      (await onA.client.call("prompt.submit", { session_id: fresh, text: "hello again" })).status,
      "complete",
    );
    assert.deepEqual((await onA.client.call("session.list", {})).sessions.map((s) => s.session_id), [fresh]);
  } finally {
    onA.client.close();
    await a.close();
  }
});
