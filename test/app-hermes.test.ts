/**
 * The reference app with `--protocol hermes`, as a process of the runtime under test, driven by
 * a client written from hermes' protocol description (`helpers/hermes-client.ts`) over real
 * sockets on 127.0.0.1: the handshake and heartbeat, a streamed turn, approvals and a question
 * in both of hermes' forms (events answered by `*.respond`, and server requests), a network
 * drop mid-answer and the replay after it, interrupts and queued prompts, a reload that reopens
 * a chat by its stored id, hermes' error codes, and how the token may travel.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { demoScript } from "../src/app/agent.ts";
import { ConfigError, parseConfig } from "../src/app/config.ts";
import { type RunningApp, startApp } from "./helpers/app.ts";
import { CutProxy } from "./helpers/cut-proxy.ts";
import {
  HermesClient,
  type HermesClient as Client,
  type HermesEvent,
  HermesRpcError,
} from "./helpers/hermes-client.ts";
import { upgradeStatus } from "./helpers/runtime.ts";

let app: RunningApp;
const clients: Client[] = [];
before(async () => {
  app = await startApp(["--protocol", "hermes", "--delay-ms", "10"]);
});
after(async () => {
  for (const client of clients) client.close();
  await app.close();
});

/** A hermes client of the app, closed after the tests. */
async function hermes(options: Partial<Parameters<typeof HermesClient.connect>[0]> = {}): Promise<Client> {
  const client = await HermesClient.connect({ url: app.url, heartbeatMs: 100, ...options });
  clients.push(client);
  return client;
}

/** The events of session `id` the client dispatched, optionally of one type. */
function eventsOf(client: Client, id: string, type?: string): HermesEvent[] {
  return client.events.filter((e) => e.session_id === id && (type === undefined || e.type === type));
}

/** Waits for the `n`-th `message.complete` of session `id`. */
function completed(client: Client, id: string, n = 1, timeoutMs = 20_000): Promise<HermesEvent> {
  return client.waitFor(
    (e) => e === eventsOf(client, id, "message.complete")[n - 1],
    timeoutMs,
    `message.complete #${n}`,
  );
}

/** The `message.delta` texts of session `id`, joined. */
function deltas(client: Client, id: string): string {
  return eventsOf(client, id, "message.delta").map((e) => e.payload.text).join("");
}

/** Asserts that `call` fails with hermes error `code`. */
async function rejectsWith(call: Promise<unknown>, code: number, what: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof HermesRpcError, `${what}: ${error}`);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    return true;
  });
}

test("--protocol and SWITCHBOARD_PROTOCOL choose the protocol; any other value is a ConfigError", () => {
  assert.equal(parseConfig([], {}).protocol, "switchboard");
  assert.equal(parseConfig(["--protocol", "hermes"], {}).protocol, "hermes");
  assert.equal(parseConfig([], { SWITCHBOARD_PROTOCOL: "hermes" }).protocol, "hermes");
  assert.equal(parseConfig(["--protocol=switchboard"], { SWITCHBOARD_PROTOCOL: "hermes" }).protocol, "switchboard");
  assert.throws(() => parseConfig(["--protocol", "mcp"], {}), ConfigError);
  assert.throws(() => parseConfig([], { SWITCHBOARD_PROTOCOL: "Hermes" }), ConfigError);
});

test("hermes mode: gateway.ready comes first with hermes' fields, heartbeats are answered, and a turn streams: prompt.submit answers at once, message.complete.text is the deltas joined", async () => {
  const client = await hermes();
  const { ready } = client;
  assert.deepEqual(ready.skin, {});
  assert.equal(typeof ready.replay_epoch, "string");
  assert.equal(ready.replay_epoch, ready.epoch);
  assert.equal(ready.heartbeat, true);
  assert.equal(ready.change_events, false);
  assert.equal(ready.capabilities.event_replay, true);
  assert.deepEqual(await client.call("ping"), { pong: true });
  assert.ok(await client.call("gateway.ping"));
  assert.deepEqual(await client.call("gateway.capabilities"), {
    per_session_exclusive_submit: true,
    worker_snapshot_v1: false,
  });

  const created = await client.call("session.create", { cols: 80, source: "desktop" });
  const id = created.session_id;
  assert.deepEqual(created, {
    session_id: id,
    stored_session_id: id,
    message_count: 0,
    messages: [],
    info: { model: "demo", tools: ["list_files"] },
  });
  const prompt = "hello there";
  assert.deepEqual(await client.call("prompt.submit", { session_id: id, text: prompt }), { status: "streaming" });
  assert.equal(eventsOf(client, id, "message.complete").length, 0, "answered before the turn ended");
  const complete = await completed(client, id);
  assert.deepEqual(complete.payload.status, "complete");
  assert.equal(complete.payload.text, deltas(client, id));
  assert.equal(complete.payload.text, demoScript(prompt).intro);
  const types = eventsOf(client, id).map((e) => e.type);
  assert.deepEqual([types[0], types[1], types.at(-1)], ["message.user", "message.start", "message.complete"]);
  assert.deepEqual(eventsOf(client, id).map((e) => e.seq), types.map((_, i) => i + 1), "seq 1, 2, 3 … in order");
  assert.ok(client.heartbeats > 0, "heartbeats were answered");
});

test("an approval in the event form: a client that announced no server requests gets approval.request, answers with approval.respond; `session` allows the tool for the rest of the session", async () => {
  const client = await hermes();
  const id = (await client.call("session.create")).session_id;
  await client.call("prompt.submit", { session_id: id, text: "which files are there?" });
  const asked = await client.waitFor((e) => e.session_id === id && e.type === "approval.request", 20_000);
  assert.equal(asked.payload.tool_name, "list_files");
  assert.deepEqual(asked.payload.choices, ["once", "session", "always", "deny"]);
  assert.equal(typeof asked.payload.request_id, "string");
  assert.equal(typeof asked.payload.command, "string");
  assert.equal(typeof asked.payload.description, "string");
  assert.deepEqual(client.serverRequests, [], "no server request reached it");
  const pending = await client.call("approval.pending", { session_id: id });
  assert.deepEqual(pending.approvals.map((a: { request_id: string }) => a.request_id), [asked.payload.request_id]);
  assert.deepEqual(await client.call("approval.respond", { session_id: id, choice: "session" }), { resolved: 1 });
  await completed(client, id);
  assert.equal(eventsOf(client, id, "tool.complete")[0]!.payload.outcome, "allowed");
  assert.deepEqual((await client.call("approval.pending", { session_id: id })).approvals, []);
  assert.deepEqual(
    await client.call("approval.respond", { session_id: id, choice: "once", request_id: asked.payload.request_id }),
    { resolved: 0 },
    "answered already",
  );

  await client.call("prompt.submit", { session_id: id, text: "and the files now?" });
  await completed(client, id, 2);
  assert.equal(eventsOf(client, id, "approval.request").length, 1, "not asked again in this session");
  assert.deepEqual(eventsOf(client, id, "tool.complete").map((e) => e.payload.outcome), ["allowed", "allowed"]);
});

test("server requests: a client that announced them gets `clarify` and `approval` requests and answers them; `deny` denies the tool", async () => {
  const client = await hermes({
    serverRequests: true,
    onRequest: ({ method, params }) =>
      method === "clarify" ? { answers: { [params.questions[0].qid]: "short" } } : { choice: "deny" },
  });
  const id = (await client.call("session.create")).session_id;
  await client.call("prompt.submit", { session_id: id, text: "clarify, then list the files" });
  const complete = await completed(client, id);
  assert.equal(complete.payload.status, "complete");
  const [clarify, approval] = client.serverRequests;
  assert.equal(clarify?.method, "clarify");
  assert.equal(clarify.params.session_id, id);
  assert.deepEqual(clarify.params.questions[0].choices, ["short", "long"]);
  assert.equal(clarify.params.questions[0].multi_select, false);
  assert.equal(approval?.method, "approval");
  assert.equal(approval.params.session_id, id);
  assert.equal(approval.params.tool_name, "list_files");
  assert.equal(typeof approval.params.request_id, "string");
  assert.match(complete.payload.text, /The short answer/);
  assert.match(complete.payload.text, /You declined/);
  assert.deepEqual(eventsOf(client, id, "clarify.complete").map((e) => e.payload.answer), ["short"]);
  assert.deepEqual(eventsOf(client, id, "tool.complete").map((e) => e.payload.outcome), ["denied"]);
});

test("a question in the event form: clarify.request, answered with clarify.respond; an unknown request id answers 4009", async () => {
  const client = await hermes();
  const id = (await client.call("session.create")).session_id;
  await client.call("prompt.submit", { session_id: id, text: "please ask me something" });
  const asked = await client.waitFor((e) => e.session_id === id && e.type === "clarify.request", 20_000);
  assert.equal(asked.payload.question, "Do you want the short answer or the long one?");
  assert.deepEqual(asked.payload.choices, ["short", "long"]);
  await rejectsWith(client.call("clarify.respond", { request_id: "nope", answer: "long" }), 4009, "unknown id");
  assert.deepEqual(await client.call("clarify.respond", { request_id: asked.payload.request_id, answer: "long" }), {
    status: "ok",
  });
  const complete = await completed(client, id);
  assert.match(complete.payload.text, /The long answer/);
  await rejectsWith(
    client.call("clarify.respond", { request_id: asked.payload.request_id, answer: "short" }),
    4009,
    "answered already",
  );
});

test("a network drop mid-answer: after the reconnect, session.events.since and the live events give every event exactly once, in order", async () => {
  const proxy = await CutProxy.start(app.wsUrl);
  try {
    const client = await hermes({ url: `${proxy.url}?token=${app.token}` });
    const epoch = client.ready.replay_epoch;
    const id = (await client.call("session.create")).session_id;
    await client.call("prompt.submit", { session_id: id, text: "tell me a story" });
    await client.waitFor(() => eventsOf(client, id, "message.delta").length >= 5, 20_000, "five deltas");
    proxy.cut();
    // Let the turn go on while the client is away.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const seen = client.watermark(id);
    await client.reconnect();
    assert.equal(client.ready.replay_epoch, epoch);
    assert.ok(client.replayed > 0, "the events emitted while it was away came by session.events.since");
    const complete = await completed(client, id);
    const seqs = eventsOf(client, id).map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "seq 1…N without gaps or repeats");
    assert.equal(complete.payload.text, deltas(client, id));
    assert.equal(complete.payload.text, demoScript("tell me a story").intro);
    const stale = await client.call("session.events.since", { session_id: id, last_seen: seen, replay_epoch: "old" });
    assert.equal(stale.truncated, true, "seqs of another epoch are void: everything kept comes back");
    assert.equal(stale.count, stale.latest_seq);
    assert.deepEqual(stale.events.map((e: HermesEvent) => e.seq), seqs);
  } finally {
    await proxy.close();
  }
});

test("a drop while a server request is open: after the reconnect the request is there again, and the answer given on the new socket settles it", async () => {
  const proxy = await CutProxy.start(app.wsUrl);
  let answer!: (result: unknown) => void;
  const answered = new Promise((resolve) => (answer = resolve));
  try {
    const client = await hermes({
      url: `${proxy.url}?token=${app.token}`,
      serverRequests: true,
      onRequest: () => answered,
    });
    const id = (await client.call("session.create")).session_id;
    await client.call("prompt.submit", { session_id: id, text: "show me the files" });
    await client.waitFor(() => client.serverRequests.length > 0, 20_000, "the approval request");
    proxy.cut();
    await client.reconnect();
    assert.ok(client.resent > 0, "the open request came again");
    answer({ choice: "once" });
    assert.equal((await completed(client, id)).payload.status, "complete");
    assert.deepEqual(eventsOf(client, id, "tool.complete").map((e) => e.payload.outcome), ["allowed"]);
    const seqs = eventsOf(client, id).map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
  } finally {
    await proxy.close();
  }
});

test("session.interrupt stops the running turn (message.complete says interrupted); a prompt sent meanwhile is queued and runs after the turn", async () => {
  const client = await hermes();
  const id = (await client.call("session.create")).session_id;
  assert.deepEqual(await client.call("prompt.submit", { session_id: id, text: "first" }), { status: "streaming" });
  assert.deepEqual(await client.call("prompt.submit", { session_id: id, text: "second" }), { status: "queued" });
  await completed(client, id, 2, 30_000);
  assert.deepEqual(
    eventsOf(client, id, "message.user").map((e) => e.payload.text),
    ["first", "second"],
    "one after the other",
  );
  assert.deepEqual(eventsOf(client, id, "message.complete").map((e) => e.payload.status), ["complete", "complete"]);

  const before = eventsOf(client, id, "message.delta").length;
  await client.call("prompt.submit", { session_id: id, text: "third" });
  await client.waitFor(() => eventsOf(client, id, "message.delta").length > before + 2, 20_000, "the third answer");
  assert.deepEqual(await client.call("session.interrupt", { session_id: id }), { status: "interrupted" });
  const stopped = await completed(client, id, 3);
  assert.equal(stopped.payload.status, "interrupted");
  assert.deepEqual(await client.call("session.interrupt", { session_id: id }), { status: "not_interrupted" });
});

test("an interrupt while a question is open withdraws it: request.cancel, the tool cancelled, the turn interrupted", async () => {
  const client = await hermes({ serverRequests: true, onRequest: () => new Promise(() => {}) });
  const id = (await client.call("session.create")).session_id;
  await client.call("prompt.submit", { session_id: id, text: "what files are in it?" });
  await client.waitFor(() => client.serverRequests.length > 0, 20_000, "the approval request");
  assert.deepEqual(await client.call("session.interrupt", { session_id: id }), { status: "interrupted" });
  assert.equal((await completed(client, id)).payload.status, "interrupted");
  const [cancel] = eventsOf(client, id, "request.cancel");
  assert.deepEqual(cancel?.payload, { id: client.serverRequests[0]!.id, reason: "interrupted" });
  assert.deepEqual(eventsOf(client, id, "tool.complete").map((e) => e.payload.outcome), ["cancelled"]);
  assert.deepEqual((await client.call("approval.pending", { session_id: id })).approvals, []);
});

test("a reload: a new connection reopens the chat by its stored id with session.resume, sees its history, lists it, and goes on with it", async () => {
  const first = await hermes();
  const created = await first.call("session.create");
  await first.call("prompt.submit", { session_id: created.session_id, text: "remember me" });
  const answer = (await completed(first, created.session_id)).payload.text;
  first.close();

  const again = await hermes();
  const snapshot = await again.call("session.resume", { session_id: created.stored_session_id, cols: 100 });
  assert.equal(snapshot.session_id, created.stored_session_id);
  assert.equal(snapshot.stored_session_id, created.stored_session_id);
  assert.deepEqual(snapshot.messages, [{ role: "user", content: "remember me" }, {
    role: "assistant",
    content: answer,
  }]);
  assert.equal(snapshot.message_count, 2);
  assert.equal(snapshot.running, false);
  assert.deepEqual(snapshot.open_requests, []);
  assert.deepEqual(snapshot.info, { model: "demo", tools: ["list_files"] });
  assert.deepEqual(await again.call("session.history", { session_id: snapshot.session_id }), {
    count: 2,
    messages: snapshot.messages,
  });
  const listed = (await again.call("session.list")).sessions.find((s: { id: string }) => s.id === snapshot.session_id);
  assert.equal(listed.title, "remember me");
  assert.equal(listed.preview, "remember me");
  assert.equal(listed.message_count, 2);
  assert.equal(typeof listed.started_at, "number");
  assert.deepEqual(
    (await again.call("session.activate", { session_id: snapshot.session_id })).messages,
    snapshot.messages,
  );

  await again.call("prompt.submit", { session_id: snapshot.session_id, text: "and again" });
  assert.equal((await completed(again, snapshot.session_id)).payload.status, "complete");
  assert.equal((await again.call("session.history", { session_id: snapshot.session_id })).count, 4);
  assert.deepEqual(await again.call("session.close", { session_id: snapshot.session_id }), { closed: true });
  await rejectsWith(again.call("session.resume", { session_id: snapshot.session_id }), 4001, "closed");
});

test("hermes' error codes: an unknown session 4001, refused params 4002, an unknown method -32601", async () => {
  const client = await hermes();
  const id = (await client.call("session.create")).session_id;
  await rejectsWith(client.call("session.history", { session_id: "unknown" }), 4001, "session.history");
  await rejectsWith(client.call("prompt.submit", { session_id: "unknown", text: "hi" }), 4001, "prompt.submit");
  await rejectsWith(client.call("session.events.since", { session_id: "unknown", last_seen: 0 }), 4001, "since");
  await rejectsWith(client.call("prompt.submit", { session_id: id }), 4002, "no text");
  await rejectsWith(client.call("prompt.submit", { session_id: id, text: "   " }), 4002, "blank text");
  await rejectsWith(client.call("approval.respond", { session_id: id, choice: "maybe" }), 4002, "a bad choice");
  await rejectsWith(client.call("request.answer", { id: "srq-nope", result: {} }), 4009, "no such request");
  await rejectsWith(client.call("no.such.method"), -32601, "unknown method");
});

test("the token: ?token= is refused (401) by the default protocol, accepted in hermes mode (a wrong one is 401); ?ticket= works in hermes mode", async () => {
  const plain = await startApp();
  try {
    assert.equal(await upgradeStatus(`${plain.wsUrl}?token=${plain.token}`), 401);
  } finally {
    await plain.close();
  }
  assert.equal(await upgradeStatus(`${app.wsUrl}?token=${app.token}`), 101);
  assert.equal(await upgradeStatus(`${app.wsUrl}?token=wrong`), 401);
  assert.equal(await upgradeStatus(app.wsUrl), 401);
  const ticketed = await hermes({
    url: async () => {
      const response = await fetch(`${app.base}api/ticket`, {
        method: "POST",
        headers: { authorization: `Bearer ${app.token}` },
      });
      return `${app.wsUrl}?ticket=${encodeURIComponent((await response.json()).ticket)}`;
    },
  });
  assert.deepEqual(await ticketed.call("ping"), { pong: true });
});
