/**
 * The client SDK (`src/client/`) against the real gateway on this runtime: reconnect, resume,
 * de-duplication, heartbeats, calls at a drop, server requests across a reconnect, stdio.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import {
  connect,
  ConnectionLost,
  type ConnectionState,
  type ConnectOptions,
  type ResumeReport,
  RpcError,
  type SessionEvent,
} from "../src/client/mod.ts";
import { connectStdio } from "../src/runtime/stdio-client.ts";
import { createGateway, ErrorCode, type Gateway, method } from "../src/mod.ts";
import { createServer, type Socket } from "node:net";
import { CutProxy } from "./helpers/cut-proxy.ts";
import {
  captureLogger,
  runtimeCommand,
  serveOn,
  startGateway,
  until,
  webSocketClass,
  within,
} from "./helpers/runtime.ts";
import { gate, sessionMethods } from "./helpers/session-methods.ts";

/** Client options for tests: the WebSocket of this runtime (`ws` on Node 20), quick reconnects. */
async function fast(extra: ConnectOptions = {}): Promise<ConnectOptions> {
  return { WebSocket: await webSocketClass(), reconnect: { baseMs: 10, capMs: 50 }, ...extra };
}

function clientGatewayMethods() {
  return {
    ...sessionMethods(),
    "demo.sleep": method({
      params: v.object({ ms: v.number() }),
      concurrent: true,
      handler: ({ ms }, ctx) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => resolve({ slept: ms }), ms);
          ctx.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(ctx.signal.reason);
          });
        }),
    }),
    echo: (params: unknown) => params,
  };
}

/** Resolves at the client's next drop (reconnects are quick: polling the state could miss it); rejects after 5 s. */
function nextDrop(client: { onStateChange(listener: (state: ConnectionState) => void): () => void }): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (off(), reject(new Error("the client did not drop within 5 s"))), 5_000);
    const off = client.onStateChange((state) => {
      if (state === "reconnecting") {
        off();
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function withProxy(wsUrl: string) {
  const proxy = await CutProxy.start(wsUrl);
  return Object.assign(proxy, { [Symbol.asyncDispose]: () => proxy.close() });
}

test("ready holds the first gateway.ready even if awaited late; call, notify, batch, on and its unsubscribe work; states are reported", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods(), ready: () => ({ skin: "dark" }) });
  const states: ConnectionState[] = [];
  const client = connect(gw.wsUrl, await fast());
  client.onStateChange((state) => states.push(state));
  await until(() => client.state === "open");
  const ready = await client.ready;
  assert.equal(ready.epoch, gw.gateway.epoch);
  assert.equal(ready.skin, "dark");
  assert.equal(
    await client.call("math.add" as never, [2, 3] as never).catch((e: RpcError) => e.code),
    ErrorCode.MethodNotFound,
  );
  assert.deepEqual(await client.call("echo", { a: 1 }), { a: 1 });
  client.notify("echo", { ignored: true });
  const results = await client.batch([{ method: "echo", params: [1] }, { method: "nope" }]);
  assert.deepEqual(results[0], { ok: true, result: [1] });
  assert.equal(results[1]!.ok, false);
  assert.equal((results[1] as { error: RpcError }).error.code, ErrorCode.MethodNotFound);

  const seen: SessionEvent[] = [];
  const off = client.on("message.delta", (event) => seen.push(event));
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  assert.equal(client.sessions.get(session_id), 0, "a result naming a session is followed");
  await client.call("demo.emit", { session_id, count: 3 });
  await until(() => seen.length === 3);
  off();
  await client.call("demo.emit", { session_id, count: 2 });
  assert.equal(client.sessions.get(session_id), 5);
  assert.equal(seen.length, 3, "unsubscribed");
  assert.deepEqual(seen.map((e) => [e.session_id, e.seq, e.payload.i]), [[session_id, 1, 1], [session_id, 2, 2], [
    session_id,
    3,
    3,
  ]]);
  client.close();
  assert.deepEqual(states, ["open", "closed"]);
  await assert.rejects(client.call("echo", 1), ConnectionLost);
});

test("cuts at random points mid-stream: the client reconnects and resumes by itself; nothing lost, nothing doubled", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods(), sessions: { replay: { maxEvents: 10_000 } } });
  await using proxy = await withProxy(gw.wsUrl);
  const client = connect(proxy.url, await fast());
  const seqs: number[] = [];
  client.on("message.delta", (event) => seqs.push(event.seq!));
  const reports: ResumeReport[] = [];
  client.onResume((report) => reports.push(report));
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  const total = 3_000;
  void client.call("demo.emit", { session_id, count: total, chunk: 10 }).catch(() => {});
  const seed = Math.floor(Math.random() * 1e9);
  let state = seed;
  const cuts = Array.from({ length: 4 }, () => ((state = (state * 69069 + 1) % 2 ** 32), 100 + (state % (total - 400))))
    .sort((a, b) => a - b);
  for (const at of cuts) {
    // Cut only a live connection: two cuts close together would otherwise find nothing to cut.
    await until(() => seqs.length >= at && client.state === "open", 10_000, `event ${at} (seed ${seed})`);
    const dropped = nextDrop(client);
    proxy.cut();
    await dropped;
  }
  await until(() => seqs.at(-1) === total, 15_000, `the last event (seed ${seed})`);
  assert.equal(seqs.length, total, `seed ${seed}`);
  assert.ok(seqs.every((seq, i) => seq === i + 1), `seed ${seed}: lost or doubled`);
  // A cut can land during a resume, so there may be fewer reports than cuts; none may be truncated.
  assert.ok(
    reports.length >= 1 && reports.every((r) => !r.truncated && !r.error && !r.epochChanged),
    JSON.stringify(reports),
  );
  client.close();
});

test("a server restart (new epoch) clears the watermarks; a session that is gone is reported and unfollowed", async () => {
  const logs = captureLogger();
  const first = createGateway({ methods: clientGatewayMethods(), logger: logs.logger });
  const server = await serveOn(first);
  const client = connect(
    `${server.url.replace(/^http/, "ws")}api/ws`,
    await fast({ reconnect: { baseMs: 20, capMs: 100 } }),
  );
  const reports: ResumeReport[] = [];
  client.onResume((report) => reports.push(report));
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  await client.call("demo.emit", { session_id, count: 2 });
  await until(() => client.sessions.get(session_id) === 2);
  await server.close();
  const second: Gateway = createGateway({ methods: clientGatewayMethods(), logger: logs.logger });
  const again = await serveOn(second, { port: server.port });
  try {
    await until(() => reports.length === 1, 5_000, "the resume report");
    assert.equal(reports[0]!.epochChanged, true);
    assert.equal(reports[0]!.error?.code, ErrorCode.SessionNotFound);
    assert.equal(client.sessions.has(session_id), false);
    assert.equal(client.state, "open");
  } finally {
    client.close();
    await again.close();
  }
});

test("an attempt with no gateway.ready within connectTimeoutMs is dropped and retried: a peer that accepts TCP and never answers does not strand the client", async () => {
  const logs = captureLogger();
  const server = await serveOn(createGateway({ methods: clientGatewayMethods(), logger: logs.logger }));
  const client = connect(
    `${server.url.replace(/^http/, "ws")}api/ws`,
    await fast({ connectTimeoutMs: 300, reconnect: { baseMs: 20, capMs: 100 } }),
  );
  const reports: ResumeReport[] = [];
  client.onResume((report) => reports.push(report));
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  await server.close();
  // For 1.5 s the port accepts TCP connections and never answers the upgrade.
  const stalled = new Set<Socket>();
  const stall = createServer((socket) => void stalled.add(socket.on("error", () => {})));
  await new Promise<void>((resolve) => stall.listen(server.port, "127.0.0.1", resolve));
  await until(() => stalled.size > 0, 3_000, "the client to try the stalled port");
  const answer = client.call("echo", ["after the stall"], { idempotent: true });
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  assert.ok(stalled.size > 1, `attempts are retried while the peer stalls (${stalled.size})`);
  for (const socket of stalled) socket.destroy();
  await new Promise((resolve) => stall.close(resolve));
  const again = await serveOn(createGateway({ methods: clientGatewayMethods(), logger: logs.logger }), {
    port: server.port,
  });
  try {
    assert.deepEqual(await within(answer, 5_000, "the idempotent call"), ["after the stall"]);
    await until(() => reports.length === 1, 5_000, "the resume report");
    assert.equal(reports[0]!.session_id, session_id);
    assert.equal(reports[0]!.error?.code, ErrorCode.SessionNotFound, "the new server has no such session");
    assert.equal(client.state, "open");
  } finally {
    client.close();
    await again.close();
  }
});

test("calls and batches never answered time out by default (callTimeoutMs, -32800 timeout); timeoutMs overrides it, Infinity waits; a frame refused as too deep answers its call", async () => {
  await using gw = await startGateway({
    methods: { ...clientGatewayMethods(), never: method({ concurrent: true, handler: () => new Promise(() => {}) }) },
  });
  const client = connect(gw.wsUrl, await fast({ callTimeoutMs: 200 }));
  await client.ready;
  const timedOut = (error: unknown) =>
    error instanceof RpcError && error.code === ErrorCode.RequestCancelled &&
    (error.data as { reason?: string }).reason === "timeout";
  await assert.rejects(within(client.call("never"), 3_000, "the default timeout"), timedOut);
  // A batch is answered in one frame once every entry has its answer: one that never ends holds all.
  const outcomes = await within(
    client.batch([{ method: "never" }, { method: "echo", params: [1] }]),
    3_000,
    "a batch under the default timeout",
  );
  assert.ok(outcomes.every((outcome) => !outcome.ok && timedOut(outcome.error)), JSON.stringify(outcomes));
  const [short] = await within(client.batch([{ method: "never" }], { timeoutMs: 50 }), 3_000, "a batch's own timeout");
  assert.ok(!short!.ok && timedOut(short!.error));
  // Infinity: still waiting well past the default, until the client closes.
  let settled = false;
  const forever = client.call("never", undefined, { timeoutMs: Infinity }).finally(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(settled, false);
  // Params nested past the pre-parse scan: the gateway refuses the frame whole, with the call's own id.
  const deep = JSON.parse("[".repeat(300) + "]".repeat(300)) as unknown;
  const padded = ["x".repeat(5_000), deep];
  await assert.rejects(
    within(client.call("echo", padded, { timeoutMs: Infinity }), 3_000, "the deep call's answer"),
    (error: RpcError) => error.code === ErrorCode.InvalidRequest,
  );
  client.close();
  await assert.rejects(forever, ConnectionLost);
});

test("heartbeats detect a dead connection (pongs never come back) and the client reconnects", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods() });
  await using proxy = await withProxy(gw.wsUrl);
  const client = connect(proxy.url, await fast({ heartbeatMs: 50, heartbeatTimeoutMs: 100 }));
  const states: ConnectionState[] = [];
  client.onStateChange((state) => states.push(state));
  await client.ready;
  await until(() => client.state === "open");
  proxy.stall(0); // the server hears the pings; its answers never arrive
  await until(() => states.includes("reconnecting"), 3_000, "the heartbeat to give up");
  await until(() => client.state === "open", 3_000, "the reconnect");
  assert.deepEqual(await client.call("echo", [7]), [7]);
  client.close();
});

test("calls in flight at a drop reject with ConnectionLost; idempotent ones are sent again and answer", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods() });
  await using proxy = await withProxy(gw.wsUrl);
  const client = connect(proxy.url, await fast());
  await client.ready;
  await until(() => client.state === "open");
  const lost = client.call("demo.sleep", { ms: 300 });
  const retried = client.call("demo.sleep", { ms: 50 }, { idempotent: true });
  await new Promise((resolve) => setTimeout(resolve, 20));
  proxy.cut();
  await assert.rejects(lost, ConnectionLost);
  assert.deepEqual(await retried, { slept: 50 });
  const aborted = new AbortController();
  const cancelled = client.call("demo.sleep", { ms: 5_000 }, { signal: aborted.signal });
  setTimeout(() => aborted.abort(new Error("stop")), 20);
  await assert.rejects(cancelled, /stop/);
  await assert.rejects(
    client.call("demo.sleep", { ms: 5_000 }, { timeoutMs: 30 }),
    (e: RpcError) => e.code === ErrorCode.RequestCancelled,
  );
  await until(
    () => gw.gateway.connections.size === 1 && [...gw.gateway.connections][0]!.inFlight === 0,
    3_000,
    "rpc.cancel to stop the server's handlers",
  );
  client.close();
});

test("a server request reaches handle() once across a reconnect; its answer, made while disconnected, is sent again on resume", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods() });
  await using proxy = await withProxy(gw.wsUrl);
  const client = connect(proxy.url, await fast());
  const answered = gate();
  let invocations = 0;
  client.handle("approval", async (params: { command: string }) => {
    invocations++;
    await answered.promise;
    return { choice: params.command === "ls" ? "allow" : "deny" };
  });
  const results: unknown[] = [];
  client.on("approval.result", (event) => results.push(event.payload));
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  void client.call("demo.ask", { session_id }).catch(() => {});
  await until(() => invocations === 1);
  const dropped = nextDrop(client);
  proxy.cut();
  await dropped;
  answered.open(); // answered while disconnected: nothing to send it on
  await until(() => results.length === 1, 5_000, "the handler's answer to reach the server after resume");
  assert.deepEqual(results, [{ answer: { choice: "allow" } }]);
  assert.equal(invocations, 1);
  // Without a handler: -32601; a throwing handler: -32603 (the server's request rejects with it).
  client.handle("approval", () => {
    throw new Error("boom");
  });
  const failed = await client.call("demo.ask", { session_id }).catch((e: RpcError) => e.code);
  assert.equal(failed, ErrorCode.InternalError);
  client.handle("approval", () => {
    throw new RpcError(4001, "denied");
  })();
  assert.equal(await client.call("demo.ask", { session_id }).catch((e: RpcError) => e.code), ErrorCode.MethodNotFound);
  client.close();
});

test("a batch over max_batch, or a frame over max_message_bytes, is refused before sending (-32600) and the connection stays up", async () => {
  await using gw = await startGateway({
    methods: clientGatewayMethods(),
    limits: { maxBatch: 2, maxMessageBytes: 4_096 },
  });
  const client = connect(gw.wsUrl, await fast());
  const states: ConnectionState[] = [];
  client.onStateChange((state) => states.push(state));
  await client.ready;
  const refusal = (promise: Promise<unknown>, what: string) =>
    within(promise.then(() => assert.fail(`${what} was sent`), (error: unknown) => error), 3_000, what);
  const tooMany = await refusal(client.batch([1, 2, 3].map((n) => ({ method: "echo", params: [n] }))), "a batch of 3");
  assert.ok(tooMany instanceof RpcError);
  assert.equal(tooMany.code, ErrorCode.InvalidRequest);
  assert.deepEqual(tooMany.data, { max_batch: 2 });
  const big = "x".repeat(5_000);
  for (
    const [what, promise] of [
      ["an idempotent call", client.call("echo", [big], { idempotent: true })],
      ["a call", client.call("echo", [big])],
      ["a batch", client.batch([{ method: "echo", params: [big] }])],
    ] as const
  ) {
    const error = await refusal(promise, `${what} over max_message_bytes`);
    assert.ok(error instanceof RpcError, what);
    assert.equal(error.code, ErrorCode.InvalidRequest, what);
    assert.deepEqual(error.data, { max_message_bytes: 4_096 }, what);
  }
  assert.throws(() => client.notify("echo", [big]), (error: RpcError) => error.code === ErrorCode.InvalidRequest);
  assert.deepEqual(await client.batch([{ method: "echo", params: [1] }, { method: "echo", params: [2] }]), [{
    ok: true,
    result: [1],
  }, { ok: true, result: [2] }]);
  assert.deepEqual(states, ["open"], "never dropped");
  client.close();
});

test("after close(), batch rejects with ConnectionLost like call", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods() });
  const client = connect(gw.wsUrl, await fast());
  await client.ready;
  client.close();
  await assert.rejects(
    within(client.batch([{ method: "echo", params: [1] }]), 3_000, "batch after close"),
    ConnectionLost,
  );
});

test("idempotent calls in flight at a drop are sent again in the order they were made", async () => {
  const received: number[] = [];
  await using gw = await startGateway({
    methods: { ...clientGatewayMethods(), record: ([n]: [number]) => (received.push(n), n) },
  });
  await using proxy = await withProxy(gw.wsUrl);
  const client = connect(proxy.url, await fast());
  await client.ready;
  await until(() => client.state === "open");
  proxy.stall(0); // the server gets the calls; its answers never arrive
  const calls = [1, 2, 3].map((n) => client.call("record", [n], { idempotent: true }));
  await until(() => received.length === 3, 3_000, "the server to get the calls");
  const dropped = nextDrop(client);
  proxy.cut();
  await dropped;
  assert.deepEqual(await within(Promise.all(calls), 5_000, "the retried calls"), [1, 2, 3]);
  assert.deepEqual(received, [1, 2, 3, 1, 2, 3]);
  client.close();
});

test("unfollow() sticks: later events of the session do not follow it again; follow() does", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods() });
  const client = connect(gw.wsUrl, await fast());
  const seqs: number[] = [];
  client.on("message.delta", (event) => seqs.push(event.seq!));
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  client.unfollow(session_id);
  await client.call("demo.emit", { session_id, count: 2 });
  await until(() => seqs.length === 2);
  assert.equal(client.sessions.has(session_id), false, "still unfollowed");
  client.follow(session_id, 2);
  await client.call("demo.emit", { session_id, count: 1 });
  await until(() => seqs.length === 3);
  assert.equal(client.sessions.get(session_id), 3);
  client.close();
});

test("unfollow() while the client's own resume after a reconnect is on its way sticks", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods() });
  await using proxy = await withProxy(gw.wsUrl);
  const client = connect(proxy.url, await fast());
  try {
    const { session_id } = (await client.call("session.create", {})) as { session_id: string };
    const resumed = new Promise<ResumeReport>((resolve) => client.onResume(resolve));
    // "open" is reported once the resumes are sent, before any answer can arrive.
    const off = client.onStateChange((state) => state === "open" && (off(), client.unfollow(session_id)));
    const dropped = nextDrop(client);
    proxy.cut();
    await dropped;
    assert.equal((await within(resumed, 5_000, "the resume")).session_id, session_id);
    assert.equal(client.sessions.has(session_id), false, "the resume's answer did not follow it again");
    assert.equal((await client.call("session.resume", { session_id })).session_id, session_id);
    assert.equal(client.sessions.has(session_id), true, "an app's own session.resume still follows");
  } finally {
    client.close();
  }
});

test("a server request the server cancels (request.cancel) aborts its handler, whose late answer is not sent", async () => {
  await using gw = await startGateway({ methods: clientGatewayMethods() });
  const client = connect(gw.wsUrl, await fast());
  let aborted = false;
  client.handle("approval", (_params, { signal }) =>
    new Promise((resolve) =>
      signal.addEventListener("abort", () => {
        aborted = true;
        resolve({ choice: "too late" });
      })
    ));
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  await assert.rejects(client.call("demo.ask", { session_id, timeout_ms: 50 }));
  await until(() => aborted, 3_000, "request.cancel to abort the handler");
  // Frames on one connection arrive in order: once this answers, a late answer would have been seen.
  assert.deepEqual(await client.call("echo", [1]), [1]);
  assert.deepEqual(gw.logs.filter((entry) => entry.message === "response dropped"), []);
  client.close();
});

test("a ticket callback runs before every connect; a token goes in the subprotocol list", async () => {
  const { Tickets, tokenAuth } = await import("../src/mod.ts");
  const tickets = new Tickets();
  let minted = 0;
  await using gw = await startGateway({
    methods: clientGatewayMethods(),
    auth: tokenAuth({ tokens: { s3cret: "me" }, tickets }),
  });
  await using proxy = await withProxy(gw.wsUrl);
  const byTicket = connect(proxy.url, await fast({ ticket: () => (minted++, tickets.mint("me")) }));
  await byTicket.ready;
  await until(() => byTicket.state === "open");
  proxy.cut();
  await until(() => minted === 2 && byTicket.state === "open", 3_000, "a second ticket for the reconnect");
  const byToken = connect(gw.wsUrl, await fast({ token: "s3cret" }));
  await byToken.ready;
  assert.deepEqual(await byToken.call("echo", [1]), [1]);
  byTicket.close();
  byToken.close();
});

test("connectStdio spawns a gateway child process on this runtime and talks to it", async () => {
  const [command, args] = runtimeCommand("src/app/main.ts", ["--stdio"]);
  const client = connectStdio([command, ...args], { reconnect: false });
  const ready = await client.ready;
  assert.equal(ready.protocol, "switchboard/1");
  const { session_id } = (await client.call("session.create", {})) as { session_id: string };
  const { sessions } = (await client.call("session.list", {})) as { sessions: { session_id: string }[] };
  assert.deepEqual(sessions.map((s) => s.session_id), [session_id]);
  client.close();
  assert.equal(client.state, "closed");
});
