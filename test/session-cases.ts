/**
 * The session tests (see the sessions section of docs/architecture.md) over real sockets on this
 * runtime, registered by `sessionCases()` for one store: test/sessions.test.ts runs them on the
 * default in-memory store, test/sessions-redis.test.ts on a `RedisStore`. Disconnects are real
 * TCP cuts through `CutProxy`: no close handshake, as when a laptop sleeps or a phone drops Wi-Fi.
 */
import assert from "node:assert/strict";
import { test as nodeTest } from "node:test";
import type { MiddlewareHandler } from "hono";
import {
  type EndReason,
  ErrorCode,
  type Gateway,
  type GatewayOptions,
  type MemoryStore,
  method,
  type MethodTable,
  type ReplayLimits,
  type SessionOptions,
  type SharedStore,
} from "../src/mod.ts";
import { type Frame, TestClient } from "./helpers/client.ts";
import { CutProxy } from "./helpers/cut-proxy.ts";
import { runtime, startGateway, until, upgradeStatus } from "./helpers/runtime.ts";
import { countingState, gate, sessionMethods, SessionParams } from "./helpers/session-methods.ts";

/** What a test configured that a shared store must be made with: the `sessions` option's `replay` and `graceMs`. */
export interface StoreSettings {
  replay?: Partial<ReplayLimits>;
  graceMs?: number;
}

/** Options of `sessionCases()`. */
export interface SessionCasesOptions {
  /** Appended to every test name as ` (label)`; none for the default store. */
  label?: string;
  /**
   * Makes the shared store of one gateway (a new one per gateway, which closes it), with the
   * bounds the test gave `sessions`. None: the gateway's default in-memory store.
   */
  store?: (settings: StoreSettings) => Promise<SharedStore>;
  /** Names (without the label) of tests not to register: they do not hold for this store. */
  skip?: Iterable<string>;
}

type StartedGateway = Awaited<ReturnType<typeof startGateway>>;

async function create(client: TestClient, params: unknown = {}): Promise<string> {
  const reply = await client.call("session.create", params);
  assert.equal(typeof reply.result?.session_id, "string", JSON.stringify(reply));
  return reply.result.session_id;
}

const isEvent = (type?: string) => (frame: Frame) =>
  frame.method === "event" && frame.params?.session_id !== undefined &&
  (type === undefined || frame.params.type === type);

/** Session events received so far (taken out of the inbox), in arrival order. */
function takeEvents(client: TestClient, type?: string): Frame[] {
  const events: Frame[] = [];
  for (let at = 0; at < client.inbox.length;) {
    if (isEvent(type)(client.inbox[at])) events.push(client.inbox.splice(at, 1)[0].params);
    else at++;
  }
  return events;
}

/** Registers the session tests for one store (see `SessionCasesOptions`). */
export function sessionCases(options: SessionCasesOptions = {}): void {
  const skip = new Set(options.skip);
  const names = new Set<string>();
  const suffix = options.label === undefined ? "" : ` (${options.label})`;
  const test = (name: string, body: () => Promise<void>) => {
    if (names.has(name)) throw new Error(`sessionCases: two tests named ${JSON.stringify(name)}`);
    names.add(name);
    if (!skip.has(name)) nodeTest(`${name}${suffix}`, body);
  };
  const makeStore = options.store;
  /** Whether sessions live in a shared store: they then end here as `moved` when this node lets go of them. */
  const shared = makeStore !== undefined;

  /** `startGateway` with the store of this run: the shared one made with the `sessions` bounds given. */
  async function startWithStore<M extends MethodTable>(
    gatewayOptions: Omit<GatewayOptions<M>, "logger">,
    serveOptions?: Parameters<typeof startGateway>[1],
  ): Promise<StartedGateway> {
    if (!makeStore) return startGateway(gatewayOptions, serveOptions);
    const { replay, graceMs } = gatewayOptions.sessions ?? {};
    const store = await makeStore({ replay, graceMs });
    let gw: StartedGateway;
    try {
      gw = await startGateway({ ...gatewayOptions, sessions: { ...gatewayOptions.sessions, store } }, serveOptions);
    } catch (error) {
      await store.quit();
      throw error;
    }
    if (gw.gateway.sessions.shared !== store) {
      await gw.server.close();
      assert.fail("the sessions do not live in the shared store");
    }
    return gw;
  }

  /** A gateway with the session methods, recording session hooks. */
  async function sessionGateway(
    sessions: SessionOptions = {},
    extra: Partial<GatewayOptions<MethodTable>> = {},
    turn?: { gate: Promise<void>; seen: { aborted?: boolean } },
  ) {
    const hooks: string[] = [];
    const ended: EndReason[] = [];
    const gw = await startWithStore({
      methods: sessionMethods(turn),
      ...extra,
      sessions: {
        ...sessions,
        hooks: {
          created: () => hooks.push("created"),
          attached: () => hooks.push("attached"),
          detached: () => hooks.push("detached"),
          closed: (_session, reason) => {
            hooks.push(`closed:${reason}`);
            ended.push(reason);
          },
        },
      },
    });
    return Object.assign(gw, { hooks, ended });
  }

  /**
   * The epoch a resume of session `id` answers: the gateway's with the in-memory store; with a
   * shared store the session's own (kept in the store with its events, the same on every node).
   */
  function epochOf(gw: StartedGateway, id: string): string {
    if (!shared) return gw.gateway.epoch;
    const epoch = gw.gateway.sessions.get(id)?.epoch;
    assert.equal(typeof epoch, "string", "the session is live on this node");
    return epoch!;
  }

  /** Why sessions ended here, without `moved` (a shared store's node letting go of a session that lives on). */
  const endedHere = (ended: EndReason[]) => ended.filter((reason) => reason !== "moved");

  test("session ids are 128-bit random hex; events carry session_id and seq 1, 2, 3 … with no gap, even after a payload that cannot be serialised", async () => {
    let thrown: unknown;
    await using gw = await startWithStore({
      methods: {
        ...sessionMethods(),
        "demo.bad": method({
          params: SessionParams,
          handler: (p, ctx) => {
            const session = ctx.session(p.session_id);
            session.emit("a");
            try {
              session.emit("b", { big: 1n });
            } catch (error) {
              thrown = error;
            }
            return session.emit("c", { ok: true });
          },
        }),
      },
    });
    const { client } = await TestClient.ready(gw.wsUrl);
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add(await create(client));
    assert.equal(ids.size, 5);
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
    const [id] = ids;
    const reply = await client.call("demo.bad", { session_id: id });
    assert.equal(reply.result, 2, "the unserialisable event used no seq");
    assert.ok(thrown instanceof TypeError);
    assert.deepEqual(
      takeEvents(client).map((e) => [e.session_id, e.seq, e.type]),
      [
        [id, 1, "a"],
        [id, 2, "c"],
      ],
    );
    await client.close();
  });

  test("resume after cuts at random points of a long stream delivers every event exactly once, in order", async () => {
    await using gw = await sessionGateway({ replay: { maxEvents: 10_000 } });
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const total = 3_000;
    const seed = Math.floor(Math.random() * 2 ** 31);
    let state = seed;
    const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const cutsAt = Array.from({ length: 4 }, () => Math.floor(random() * (total - 200)) + 50).sort((a, b) => a - b);

    let { client } = await TestClient.ready(proxy.url);
    const id = await create(client);
    client.send({
      jsonrpc: "2.0",
      id: "stream",
      method: "demo.emit",
      params: { session_id: id, count: total, chunk: 10 },
    });
    const seen: number[] = [];
    let epoch: string | undefined;
    const collect = (from: TestClient) => {
      for (const event of takeEvents(from, "message.delta")) seen.push(event.seq);
    };
    for (const at of cutsAt) {
      await until(
        () => (collect(client), seen.length >= at || seen.at(-1) === total),
        10_000,
        `event ${at} (seed ${seed})`,
      );
      proxy.cut();
      await client.closed;
      collect(client);
      ({ client } = await TestClient.ready(proxy.url));
      const resumed = await client.call("session.resume", { session_id: id, after_seq: seen.at(-1) ?? 0 });
      assert.equal(resumed.result?.truncated, false, JSON.stringify(resumed));
      assert.equal(resumed.result.epoch, epochOf(gw, id));
      epoch ??= resumed.result.epoch;
      assert.equal(resumed.result.epoch, epoch, "the session's epoch does not change across resumes");
    }
    await until(() => (collect(client), seen.at(-1) === total), 10_000, `the last event (seed ${seed})`);
    assert.equal(seen.length, total, `seed ${seed}: ${seen.length} events`);
    assert.ok(seen.every((seq, i) => seq === i + 1), `seed ${seed}: out of order or doubled`);
    assert.ok(
      gw.logs.some((e) => e.message === "connection closed" && e.fields?.detached_sessions === 1),
      "a cut detaches the session",
    );
    await client.close();
  });

  test("session.resume answers {session_id, latest_seq, replayed, truncated, epoch}; the ring keeps the newest maxEvents and says truncated, also for an after_seq past the latest", async () => {
    await using gw = await sessionGateway({ replay: { maxEvents: 10 } });
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    await client.call("demo.emit", { session_id: id, count: 30 });
    takeEvents(client);
    const { client: other } = await TestClient.ready(gw.wsUrl);

    const all = await other.call("session.resume", { session_id: id });
    assert.deepEqual(all.result, {
      session_id: id,
      latest_seq: 30,
      replayed: 10,
      truncated: true,
      epoch: epochOf(gw, id),
    });
    assert.deepEqual(takeEvents(other).map((e) => e.seq), [21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);

    const recent = await other.call("session.resume", { session_id: id, after_seq: 25 });
    assert.deepEqual(recent.result, {
      session_id: id,
      latest_seq: 30,
      replayed: 5,
      truncated: false,
      epoch: epochOf(gw, id),
    });
    assert.deepEqual(takeEvents(other).map((e) => e.seq), [26, 27, 28, 29, 30]);

    const since = await other.call("session.events.since", { session_id: id, after_seq: 15 });
    assert.equal(since.result.truncated, true);
    assert.equal(since.result.latest_seq, 30);
    assert.deepEqual(
      since.result.events.map((e: Frame) => [e.seq, e.type, e.payload.i]),
      [21, 22, 23, 24, 25, 26, 27, 28, 29, 30].map((n) => [n, "message.delta", n]),
    );
    assert.equal((await other.call("session.events.since", { session_id: id, after_seq: 20 })).result.truncated, false);
    assert.equal((await other.call("session.events.since", { session_id: id, after_seq: 30 })).result.truncated, false);
    // Past the latest seq: the client holds state this session never had (another ring, another node).
    const ahead = await other.call("session.resume", { session_id: id, after_seq: 31 });
    assert.deepEqual([ahead.result.replayed, ahead.result.truncated, ahead.result.latest_seq], [0, true, 30]);
    assert.equal((await other.call("session.events.since", { session_id: id, after_seq: 99 })).result.truncated, true);
    assert.equal(
      (await other.call("session.resume", { session_id: id, after_seq: -1 })).error?.code,
      ErrorCode.InvalidParams,
    );
    await Promise.all([client.close(), other.close()]);
  });

  test("pull-style replay: session.events.since and ctx.sessions.since answer {events, count, latest_seq, truncated, epoch, open_requests}; another epoch gives every kept event, truncated", async () => {
    await using gw = await sessionGateway();
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    await client.call("demo.emit", { session_id: id, count: 4 });
    const epoch = epochOf(gw, id);
    for (const method of ["session.events.since", "demo.since"]) {
      const since = await client.call(method, { session_id: id, after_seq: 2 });
      assert.deepEqual(since.result, {
        events: [3, 4].map((seq) => ({ session_id: id, seq, type: "message.delta", payload: { i: seq, pad: "" } })),
        count: 2,
        latest_seq: 4,
        truncated: false,
        epoch,
        open_requests: [],
      }, method);
      const other = await client.call(method, { session_id: id, after_seq: 2, epoch: "another" });
      assert.deepEqual([other.result.count, other.result.truncated, other.result.epoch], [4, true, epoch], method);
      const same = await client.call(method, { session_id: id, after_seq: 4, epoch });
      assert.deepEqual([same.result.count, same.result.truncated], [0, false], method);
    }
    assert.equal(
      (await client.call("demo.since", { session_id: "0".repeat(32), after_seq: 0 })).error?.code,
      ErrorCode.SessionNotFound,
    );
    await client.close();
  });

  test("events come back from the store as they were emitted, live, replayed and read pull-style: text with newlines, quotes and non-ASCII, no payload, nested values", async () => {
    await using gw = await sessionGateway();
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    // Three times over, so the seqs cross from one digit to two within one append.
    const emitted = [1, 2, 3].flatMap(() => [
      { type: "message.delta", payload: { text: 'line one\nline "two"\t\u2028 — ünïcødé 🙂 \\n' } },
      { type: "status.update" },
      { type: "tool.complete", payload: { result: { rows: [1, null, { deep: ["}}", "{"] }] }, ok: true } },
      { type: "message.delta", payload: "a bare string" },
    ]);
    await client.call("demo.events", { session_id: id, events: emitted });
    const expected = emitted.map((event, i) => ({ session_id: id, seq: i + 1, ...event }));
    assert.deepEqual(takeEvents(client), expected, "live");
    const { client: other } = await TestClient.ready(gw.wsUrl);
    const resumed = await other.call("session.resume", { session_id: id, after_seq: 0 });
    assert.equal(resumed.result?.replayed, emitted.length, JSON.stringify(resumed));
    assert.deepEqual(takeEvents(other), expected, "replayed");
    const since = await other.call("session.events.since", { session_id: id, after_seq: 1 });
    assert.deepEqual(since.result?.events, expected.slice(1), "pull-style");
    await Promise.all([client.close(), other.close()]);
  });

  test("ctx.sessions.resume without afterSeq attaches the caller from now on: nothing replayed, later events live; with afterSeq it replays like session.resume", async () => {
    await using gw = await sessionGateway();
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    await client.call("demo.emit", { session_id: id, count: 3 });
    const { client: now } = await TestClient.ready(gw.wsUrl);
    const { client: from1 } = await TestClient.ready(gw.wsUrl);
    const attached = await now.call("demo.attach", { session_id: id });
    assert.deepEqual(attached.result, {
      session_id: id,
      latest_seq: 3,
      replayed: 0,
      truncated: false,
      epoch: epochOf(gw, id),
    });
    assert.equal((await from1.call("demo.attach", { session_id: id, after_seq: 1 })).result.replayed, 2);
    await client.call("demo.emit", { session_id: id, count: 2 });
    await until(() => now.inbox.filter(isEvent("message.delta")).length >= 2 && from1.inbox.length >= 4);
    // Frames on one connection come in order: after this answer, nothing more is on its way.
    await Promise.all([now.call("gateway.ping"), from1.call("gateway.ping")]);
    assert.deepEqual(takeEvents(now).map((e) => e.seq), [4, 5]);
    assert.deepEqual(takeEvents(from1).map((e) => e.seq), [2, 3, 4, 5]);
    await Promise.all([client.close(), now.close(), from1.close()]);
  });

  test("attaching a connection already attached (ctx.sessions.resume) while events stream writes none of them twice; a pull-style read of more events than a store page holds gets them all", async () => {
    await using gw = await sessionGateway({ replay: { maxEvents: 2_000 } });
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    const total = 1_200;
    // One event per macrotask: with a shared store, many appends (more than a page of stream entries).
    const streamed = client.call("demo.emit", { session_id: id, count: total, chunk: 1 });
    let done = false;
    void streamed.then(() => (done = true));
    for (let i = 0; i < 400 && !done; i++) await client.call("demo.attach", { session_id: id });
    await streamed;
    await client.call("gateway.ping");
    const seqs = takeEvents(client, "message.delta").map((e) => e.seq);
    assert.equal(seqs.length, total, "each event once");
    assert.ok(seqs.every((seq, i) => seq === i + 1), "in order");
    const since = await client.call("demo.since", { session_id: id, after_seq: 0 });
    assert.deepEqual([since.result.count, since.result.latest_seq, since.result.truncated], [total, total, false]);
    assert.equal(since.result.events.at(-1).seq, total);
    await client.close();
  });

  test("a connection whose serverRequests capability is false gets no server request; one that turns it on gets it when it attaches; ctx.sessions.answer settles it once and a later reply is dropped", async () => {
    await using gw = await sessionGateway({}, { capabilities: { serverRequests: false } });
    const { client: asker } = await TestClient.ready(gw.wsUrl);
    const id = await create(asker);
    const asked = asker.call("demo.ask", { session_id: id });
    let open: Frame[] = [];
    for (let tries = 0; tries < 100 && open.length === 0; tries++) {
      open = (await asker.call("demo.since", { session_id: id, after_seq: 0 })).result.open_requests;
    }
    assert.equal(open[0].method, "approval");
    assert.deepEqual(open[0].params, { command: "ls" });
    assert.match(open[0].id, /^srq-/);
    const { client: capable } = await TestClient.ready(gw.wsUrl);
    assert.deepEqual((await capable.call("client.capabilities", { server_requests: true })).result, {
      server_requests: ["approval"],
    });
    await capable.call("demo.attach", { session_id: id });
    const request = await capable.take((frame) => frame.method === "approval");
    assert.equal(request.id, open[0].id);
    // The asker, which never turned it on, was sent nothing: frames on a connection come in order.
    await asker.call("gateway.ping");
    assert.equal(asker.inbox.filter((frame) => frame.method === "approval").length, 0);

    const answered = await asker.call("demo.answer", { session_id: id, request_id: request.id, result: { ok: 1 } });
    assert.deepEqual(answered.result, { answered: true });
    assert.deepEqual((await asked).result, { answer: { ok: 1 } });
    const again = await asker.call("demo.answer", { session_id: id, request_id: request.id, result: { ok: 2 } });
    assert.deepEqual(again.result, { answered: false });
    capable.send({ jsonrpc: "2.0", id: request.id, result: { ok: 3 } });
    const after = await asker.call("demo.since", { session_id: id, after_seq: 0 });
    assert.deepEqual(after.result.open_requests, []);
    assert.deepEqual(
      after.result.events.filter((e: Frame) => e.type === "approval.result").map((e: Frame) => e.payload),
      [{ answer: { ok: 1 } }],
    );
    await Promise.all([asker.close(), capable.close()]);
  });

  test("session.run: work bound to the session outlives the call that started it, counts as running, and an interrupt aborts it and withdraws its request (reason interrupted)", async () => {
    await using gw = await sessionGateway();
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    assert.deepEqual((await client.call("demo.background", { session_id: id })).result, { started: true });
    // The call has answered; the work goes on, waiting for its answer.
    const asked = await client.take((frame) => frame.method === "approval");
    assert.equal(gw.gateway.sessions.get(id)?.running, 1);
    assert.deepEqual((await client.call("session.interrupt", { session_id: id })).result, { interrupted: true });
    const cancel = await client.take(isEvent("request.cancel"));
    assert.deepEqual(cancel.params.payload, { id: asked.id, reason: "interrupted" });
    const done = await client.take(isEvent("background.done"));
    assert.deepEqual(done.params.payload, { reason: "interrupted" });
    await until(() => gw.gateway.sessions.get(id)?.running === 0);
    await client.close();
  });

  test("the gateway-wide replay budget empties the least recently appended ring first, and reports it as truncated", async () => {
    await using gw = await sessionGateway({ replayBudgetBytes: 5_000 });
    const { client } = await TestClient.ready(gw.wsUrl);
    const older = await create(client);
    const newer = await create(client);
    await client.call("demo.emit", { session_id: older, count: 10, bytes: 150 });
    await client.call("demo.emit", { session_id: newer, count: 10, bytes: 150 });
    await client.call("demo.emit", { session_id: newer, count: 5, bytes: 150 });
    const a = await client.call("session.events.since", { session_id: older, after_seq: 0 });
    const b = await client.call("session.events.since", { session_id: newer, after_seq: 0 });
    assert.deepEqual([a.result.events.length, a.result.truncated, a.result.latest_seq], [0, true, 10]);
    assert.deepEqual([b.result.events.length, b.result.truncated], [15, false]);
    assert.ok((gw.gateway.sessions.store as MemoryStore).bytes <= 5_000);
    await client.close();
  });

  test("another principal's session and an unknown id both answer -32001 for resume, events.since and close", async () => {
    await using gw = await sessionGateway({}, { auth: (c) => c.req.query("user") ?? null });
    assert.equal(await upgradeStatus(gw.wsUrl), 401);
    const { client: alice } = await TestClient.ready(`${gw.wsUrl}?user=alice`);
    const { client: bob } = await TestClient.ready(`${gw.wsUrl}?user=bob`);
    const id = await create(alice);
    const unknown = "0".repeat(32);
    const answers: Frame[] = [];
    for (const sessionId of [id, unknown]) {
      answers.push(await bob.call("session.resume", { session_id: sessionId, after_seq: 0 }));
      answers.push(await bob.call("session.events.since", { session_id: sessionId, after_seq: 0 }));
      answers.push(await bob.call("session.close", { session_id: sessionId }));
      answers.push(await bob.call("demo.emit", { session_id: sessionId, count: 1 }));
    }
    for (const answer of answers) {
      assert.deepEqual(answer.error, { code: ErrorCode.SessionNotFound, message: "Session not found" });
    }
    assert.equal(gw.gateway.sessions.get(id)?.closed, false);
    // The owner, on another connection, may.
    const { client: alice2 } = await TestClient.ready(`${gw.wsUrl}?user=alice`);
    assert.equal((await alice2.call("session.resume", { session_id: id })).result?.session_id, id);
    await Promise.all([alice.close(), bob.close(), alice2.close()]);
  });

  test("grace expiry ends a detached session (orphan_reap) and frees its events; resume then answers -32001", async () => {
    await using gw = await sessionGateway({ graceMs: 150 });
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const { client } = await TestClient.ready(proxy.url);
    const id = await create(client);
    await client.call("demo.emit", { session_id: id, count: 20, bytes: 100 });
    const store = gw.gateway.sessions.store as MemoryStore;
    assert.ok(store.bytes > 2_000);
    proxy.cut();
    await until(() => gw.logs.some((e) => e.message === "connection closed"));
    assert.equal(gw.gateway.sessions.size, 1, "kept during the grace period");
    await until(() => gw.gateway.sessions.size === 0, 3_000, "the reap");
    assert.deepEqual(gw.ended, ["orphan_reap"]);
    assert.equal(store.bytes, 0);
    assert.equal(store.owner(id), undefined);
    const { client: again } = await TestClient.ready(gw.wsUrl);
    assert.equal((await again.call("session.resume", { session_id: id })).error?.code, ErrorCode.SessionNotFound);
    assert.deepEqual(gw.hooks, ["created", "attached", "detached", "closed:orphan_reap"]);
    await again.close();
  });

  test("resume within the grace period cancels the orphan timer", async () => {
    await using gw = await sessionGateway({ graceMs: 200 });
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const { client } = await TestClient.ready(proxy.url);
    const id = await create(client);
    proxy.cut();
    await until(() => gw.logs.some((e) => e.message === "connection closed"));
    const { client: back } = await TestClient.ready(gw.wsUrl);
    assert.equal((await back.call("session.resume", { session_id: id })).result?.session_id, id);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(gw.gateway.sessions.size, 1);
    // Past the grace period it still works: events are kept and reach the viewer.
    const emitted = await back.call("demo.emit", { session_id: id, count: 1 });
    assert.equal(emitted.result?.last, 1, JSON.stringify(emitted));
    assert.deepEqual(takeEvents(back).map((e) => [e.seq, e.type]), [[1, "message.delta"]]);
    const since = await back.call("session.events.since", { session_id: id, after_seq: 0 });
    assert.deepEqual(since.result?.events.map((e: Frame) => e.seq), [1], JSON.stringify(since));
    assert.deepEqual(endedHere(gw.ended), []);
    await back.close();
  });

  test("a pending approval survives a reconnect: re-sent on resume, and the reply after resume resolves the handler", async () => {
    await using gw = await sessionGateway();
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const { client } = await TestClient.ready(proxy.url);
    const id = await create(client);
    client.send({ jsonrpc: "2.0", id: "ask", method: "demo.ask", params: { session_id: id } });
    const asked = await client.take((f) => f.method === "approval");
    assert.match(asked.id, /^srq-[0-9a-f]{32}$/);
    assert.deepEqual(asked.params, { command: "ls" });
    proxy.cut();
    await client.closed;

    const { client: back } = await TestClient.ready(gw.wsUrl);
    const resumed = await back.call("session.resume", { session_id: id });
    assert.equal(resumed.result.replayed, 0);
    const again = back.inbox.filter((f) => f.method === "approval");
    assert.deepEqual(again, [asked], "re-sent once, before the resume answer");
    back.send({ jsonrpc: "2.0", id: asked.id, result: "allow" });
    const result = await back.take(isEvent("approval.result"));
    assert.deepEqual(result.params.payload, { answer: "allow" });
    // The first reply won: a second one, and a reply to an unknown id, are dropped.
    back.send({ jsonrpc: "2.0", id: asked.id, result: "deny" });
    back.send({ jsonrpc: "2.0", id: "srq-unknown", result: "x" });
    assert.equal((await back.call("gateway.ping")).result.ok, true);
    assert.equal(takeEvents(back, "approval.result").length, 0);
    await back.close();
  });

  test("an error reply rejects the server request; a timeout emits request.cancel and the call answers -32800", async () => {
    await using gw = await sessionGateway();
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    client.send({ jsonrpc: "2.0", id: "denied", method: "demo.ask", params: { session_id: id } });
    const asked = await client.take((f) => f.method === "approval");
    client.send({ jsonrpc: "2.0", id: asked.id, error: { code: 4001, message: "denied by user" } });
    assert.deepEqual((await client.take((f) => f.id === "denied")).error, { code: 4001, message: "denied by user" });

    const slow = await client.call("demo.ask", { session_id: id, timeout_ms: 50 });
    assert.equal(slow.error.code, ErrorCode.RequestCancelled);
    assert.equal(slow.error.data.reason, "timeout");
    const [cancel] = takeEvents(client, "request.cancel");
    assert.deepEqual(cancel.payload, { id: slow.error.data.id, reason: "timeout" });
    await client.close();
  });

  test("session.close cancels open requests (session_closed), tells viewers session.closed, aborts bound handlers, and frees the id", async () => {
    const turn = { ...gate(), seen: {} as { aborted?: boolean } };
    await using gw = await sessionGateway({}, {}, { gate: turn.promise, seen: turn.seen });
    const { client } = await TestClient.ready(gw.wsUrl);
    const { client: viewer } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    await viewer.call("session.resume", { session_id: id });
    client.send({ jsonrpc: "2.0", id: "ask", method: "demo.ask", params: { session_id: id } });
    client.send({ jsonrpc: "2.0", id: "turn", method: "demo.turn", params: { session_id: id } });
    await client.take((f) => f.method === "approval");
    assert.deepEqual((await client.call("session.close", { session_id: id })).result, { closed: true });
    const asked = await client.take((f) => f.id === "ask");
    assert.equal(asked.error.data.reason, "session_closed");
    assert.deepEqual(takeEvents(client).map((e) => [e.type, e.payload.reason]), [
      ["request.cancel", "session_closed"],
      ["session.closed", "closed"],
    ]);
    await viewer.take(isEvent("session.closed"));
    turn.open();
    await client.take((f) => f.id === "turn");
    assert.equal(turn.seen.aborted, true);
    assert.equal((await client.call("session.close", { session_id: id })).error.code, ErrorCode.SessionNotFound);
    assert.deepEqual(gw.ended, ["closed"]);
    await Promise.all([client.close(), viewer.close()]);
  });

  test("events fan out to every viewer; when one viewer drops, the session carries on for the others", async () => {
    await using gw = await sessionGateway();
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const { client: owner } = await TestClient.ready(gw.wsUrl);
    const { client: dropped } = await TestClient.ready(proxy.url);
    const id = await create(owner);
    await dropped.call("session.resume", { session_id: id });
    await owner.call("demo.emit", { session_id: id, count: 3 });
    await until(() => dropped.inbox.filter(isEvent()).length === 3);
    proxy.cut();
    await until(() => gw.logs.some((e) => e.message === "connection closed"));
    const line = gw.logs.find((e) => e.message === "connection closed")!;
    assert.equal(line.fields?.detached_sessions, 0);
    assert.equal(line.fields?.reaped_sessions, 0);
    await owner.call("demo.emit", { session_id: id, count: 2 });
    assert.deepEqual(takeEvents(owner).map((e) => e.seq), [1, 2, 3, 4, 5]);
    assert.deepEqual(takeEvents(dropped).map((e) => e.seq), [1, 2, 3]);
    assert.equal(gw.gateway.sessions.get(id)?.viewers, 1);
    await owner.close();
  });

  test("a viewer that stops reading does not hold up the emitter or the other viewer; it is cut at the backlog cap", async () => {
    await using gw = await sessionGateway({}, { limits: { maxBacklogBytes: 1 << 20, backlogWarnBytes: 256 << 10 } });
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const { client: fast } = await TestClient.ready(gw.wsUrl);
    const { client: stalled } = await TestClient.ready(proxy.url);
    const id = await create(fast);
    await stalled.call("session.resume", { session_id: id });
    proxy.stall(0);
    // ~20 MB: more than the kernel's socket buffers can hide. Small bursts, since on Deno a
    // write counts in bufferedAmount until its asynchronous send completes, even to a fast reader.
    const count = 20_000;
    const reply = await fast.call("demo.emit", { session_id: id, count, chunk: 20, bytes: 1_000 }, 30_000);
    assert.equal(reply.result?.last, count);
    await until(
      () => fast.inbox.filter(isEvent("message.delta")).length === count,
      30_000,
      "every event at the fast viewer",
    );
    assert.ok(takeEvents(fast, "message.delta").every((e, i) => e.seq === i + 1));
    await until(
      () => gw.logs.some((e) => e.message === "connection closed" && e.fields?.reason === "slow_consumer"),
      10_000,
      "the stalled viewer's cut",
    );
    assert.equal(gw.gateway.sessions.get(id)?.viewers, 1);
    await fast.close();
  });

  test("close_on_disconnect sessions end when their last viewer disconnects (reaped_sessions in the teardown line)", async () => {
    await using gw = await sessionGateway();
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const { client } = await TestClient.ready(proxy.url);
    const id = await create(client, { close_on_disconnect: true });
    const kept = await create(client);
    proxy.cut();
    await until(() => gw.logs.some((e) => e.message === "connection closed"));
    const line = gw.logs.find((e) => e.message === "connection closed")!;
    assert.equal(line.fields?.reaped_sessions, 1);
    assert.equal(line.fields?.detached_sessions, 1);
    if (shared) {
      // The close is recorded in the store, then the session ends here; the kept one lives on in the
      // store, and this node, left without a viewer of it, lets go of it (`moved`).
      await until(() => gw.gateway.sessions.get(id) === undefined, 3_000, "the session's end");
      assert.deepEqual(endedHere(gw.ended), ["disconnect"]);
    } else {
      assert.equal(gw.gateway.sessions.get(id), undefined);
      assert.equal(gw.gateway.sessions.get(kept)?.closed, false);
      assert.deepEqual(gw.ended, ["disconnect"]);
    }
    // Another connection finds the kept one, and not the ended one.
    const { client: back } = await TestClient.ready(gw.wsUrl);
    assert.equal((await back.call("session.resume", { session_id: id })).error?.code, ErrorCode.SessionNotFound);
    assert.equal((await back.call("session.resume", { session_id: kept })).result?.session_id, kept);
    await back.close();
  });

  test("the orphan policy can defer while a turn runs; the turn is not aborted by the disconnect; it is reaped after", async () => {
    const turn = { ...gate(), seen: {} as { aborted?: boolean } };
    await using gw = await sessionGateway({ graceMs: 100, onOrphan: (s) => (s.running > 0 ? "defer" : "reap") }, {}, {
      gate: turn.promise,
      seen: turn.seen,
    });
    await using proxy = Object.assign(await CutProxy.start(gw.wsUrl), { [Symbol.asyncDispose]: () => proxy.close() });
    const { client } = await TestClient.ready(proxy.url);
    const id = await create(client);
    client.send({ jsonrpc: "2.0", id: "turn", method: "demo.turn", params: { session_id: id } });
    await until(() => gw.gateway.sessions.get(id)?.running === 1);
    proxy.cut();
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(gw.gateway.sessions.get(id)?.closed, false, "deferred past several grace periods");
    turn.open();
    await until(() => gw.gateway.sessions.size === 0, 3_000, "the reap after the turn");
    assert.equal(turn.seen.aborted, false);
    assert.deepEqual(gw.ended, ["orphan_reap"]);
  });

  test("an idle session ends (idle_timeout); over maxSessions the least recently active is evicted", async () => {
    await using gw = await sessionGateway({ idleTtlMs: 150, graceMs: 0, maxSessions: 2 });
    const { client } = await TestClient.ready(gw.wsUrl);
    const first = await create(client);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await create(client);
    await client.call("demo.emit", { session_id: first, count: 1 });
    const third = await create(client);
    assert.equal(gw.gateway.sessions.get(second), undefined, "the least recently active was evicted");
    assert.ok(gw.gateway.sessions.get(first) && gw.gateway.sessions.get(third));
    const evicted = await client.take(isEvent("session.closed"));
    assert.deepEqual([evicted.params.session_id, evicted.params.payload], [second, { reason: "evicted" }]);
    await until(() => gw.gateway.sessions.size === 0, 3_000, "idle sessions to end");
    assert.deepEqual(gw.ended, ["evicted", "idle_timeout", "idle_timeout"]);
    await client.close();
  });

  test("gateway close ends every session with reason shutdown, cancelling open requests", async () => {
    const gw = await sessionGateway({ graceMs: 0 });
    const { client } = await TestClient.ready(gw.wsUrl);
    const id = await create(client);
    client.send({ jsonrpc: "2.0", id: "ask", method: "demo.ask", params: { session_id: id } });
    await client.take((f) => f.method === "approval");
    await gw.server.close();
    assert.deepEqual(gw.ended, ["shutdown"]);
    assert.equal(gw.gateway.sessions.size, 0);
    assert.equal((await client.closed).code, 1001);
  });

  test("sessions.state folds every event once, in seq order; ctx.sessions.open and all find the caller's sessions; interrupt aborts the work bound to a session", async () => {
    await using gw = await sessionGateway({ state: countingState });
    const { client } = await TestClient.ready(gw.wsUrl);
    const before = Date.now();
    const first = await create(client);
    // Listed oldest first, by creation time in milliseconds.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await create(client);
    assert.deepEqual((await client.call("demo.emit", { session_id: first, count: 100, chunk: 7 })).result, {
      last: 100,
    });
    const got = (await client.call("state.get", { session_id: first })).result;
    assert.equal(got.seq, 100);
    assert.deepEqual(got.state, { count: 100, last: 100, inOrder: true, types: { "message.delta": 100 } });
    assert.ok(got.created_at >= before && got.created_at <= Date.now(), `created_at ${got.created_at}`);
    // Other tests' sessions (the same principal) may be listed too.
    const sessions = (await client.call("sessions.all", {})).result.sessions.filter((s: { id: string }) =>
      s.id === first || s.id === second
    );
    assert.deepEqual(sessions.map((s: { id: string; latestSeq: number }) => [s.id, s.latestSeq]), [
      [first, 100],
      [second, 0],
    ]);
    assert.deepEqual(sessions[0].state, got.state);
    assert.equal(sessions[0].createdAt, got.created_at);
    assert.equal(
      (await client.call("state.get", { session_id: "0".repeat(32) })).error?.code,
      ErrorCode.SessionNotFound,
    );
    // Work bound to the first session is interrupted; the second has none.
    client.send({ jsonrpc: "2.0", id: "wait", method: "demo.wait", params: { session_id: first } });
    await until(() => gw.gateway.sessions.get(first)?.running === 1, 3_000, "the work is bound to the session");
    assert.deepEqual((await client.call("session.interrupt", { session_id: first })).result, { interrupted: true });
    assert.deepEqual((await client.take((f) => f.id === "wait")).result, { reason: "interrupted" });
    assert.deepEqual((await client.call("session.interrupt", { session_id: second })).result, { interrupted: false });
    // The session goes on.
    assert.deepEqual((await client.call("demo.emit", { session_id: first, count: 1 })).result, { last: 101 });
    assert.equal((await client.call("state.get", { session_id: first })).result.state.count, 101);
    await client.close();
  });

  test("with auth, a route mounted without guard() refuses connections (close 1008): the principal check cannot be skipped", async () => {
    const { Hono } = await import("hono");
    // On Node, serve() answers upgrades itself, so other routes take its own helper.
    const helper = runtime === "node" ? "../src/runtime/node.ts" : `hono/${runtime}`;
    const { upgradeWebSocket } = (await import(helper)) as { upgradeWebSocket: (create: unknown) => MiddlewareHandler };
    const app = new Hono();
    // The route is mounted before the gateway exists; it reads the gateway when a connection comes.
    const started: { gateway?: Gateway } = {};
    app.get("/unguarded", (c, next) => upgradeWebSocket(started.gateway!.handler)(c, next));
    await using gw = await startWithStore({ methods: {}, auth: () => "alice" }, { app });
    started.gateway = gw.gateway;
    const client = await TestClient.open(gw.wsUrl.replace("/api/ws", "/unguarded"));
    const closed = await client.closed;
    assert.deepEqual(closed, { code: 1008, reason: "unauthenticated" });
    assert.ok(gw.logs.some((e) => e.message === "connection refused" && e.fields?.reason === "unauthenticated"));
    // Through guard() the same gateway accepts.
    const { client: ok } = await TestClient.ready(gw.wsUrl);
    await ok.close();
  });

  const unknown = [...skip].filter((name) => !names.has(name));
  if (unknown.length > 0) {
    throw new Error(`sessionCases: no test named ${unknown.map((n) => JSON.stringify(n)).join(", ")}`);
  }
}
