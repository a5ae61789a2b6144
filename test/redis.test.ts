/**
 * Sessions shared across gateway nodes on Redis: three gateway processes of the runtime under
 * test and one private redis-server. A client hops between nodes mid-stream, viewers sit on
 * two nodes, an approval is answered on another node than the one that asked, an owner is
 * killed or paused, Redis restarts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Frame, TestClient } from "./helpers/client.ts";
import { GatewayNode } from "./helpers/gateway-node.ts";
import { freePort, RedisServer } from "./helpers/redis-server.ts";
import { redisStore } from "../src/runtime/redis.ts";
import { until } from "./helpers/runtime.ts";

const LEASE_MS = 600;

/** Takes the events of `sessionId` out of `client`'s inbox, waiting until `done(events)` holds. */
async function eventsUntil(
  client: TestClient,
  sessionId: string,
  done: (events: Frame[]) => boolean,
  timeoutMs = 10_000,
): Promise<Frame[]> {
  const events: Frame[] = [];
  const isEvent = (frame: Frame) => frame.method === "event" && frame.params?.session_id === sessionId;
  const deadline = Date.now() + timeoutMs;
  while (!done(events)) {
    events.push((await client.take(isEvent, Math.max(1, deadline - Date.now()))).params);
    events.push(...client.takeAll(isEvent).map((frame) => frame.params));
  }
  return events;
}

/** Asserts `seqs` is exactly `from`, `from + 1`, … (every seq once, in order). */
function assertContiguous(seqs: number[], from = 1): void {
  const gaps = seqs.flatMap((seq, i) => (seq === from + i ? [] : [`#${i}: ${seq}, expected ${from + i}`]));
  assert.deepEqual(gaps.slice(0, 5), [], `seqs not contiguous from ${from}`);
}

/**
 * Asserts `events` are every seq once, in order, with `session.interrupted {reason: "owner_lost"}` among them and
 * nothing of the old owner's turn (events naming a node) after it; returns the events from it on.
 */
function assertTakenOver(events: Frame[]): Frame[] {
  assertContiguous(events.map((event) => event.seq));
  const interrupted = events.findIndex((event) => event.type === "session.interrupted");
  assert.notEqual(interrupted, -1, `session.interrupted was emitted: ${JSON.stringify(events.slice(-8))}`);
  assert.deepEqual(events[interrupted].payload, { reason: "owner_lost" });
  const since = events.slice(interrupted);
  assert.ok(since.every((event) => event.payload?.node === undefined), "nothing of the old owner's turn after it");
  return since;
}

async function createSession(client: TestClient): Promise<string> {
  const created = await client.call("session.create", {});
  assert.equal(typeof created.result?.session_id, "string", JSON.stringify(created));
  return created.result.session_id;
}

test("a Redis that cannot be reached at start is one line of error, at once", async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const started = Date.now();
  await assert.rejects(redisStore({ url }), (error: Error) => {
    assert.match(error.message, new RegExp(`^cannot reach Redis at ${url}: \\S`));
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
  assert.ok(Date.now() - started < 5_000);
});

describe("sessions across gateway nodes on Redis", { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let nodes: GatewayNode[] = [];
  const clients: TestClient[] = [];

  const open = async (node: GatewayNode) => {
    const { client, ready } = await TestClient.ready(node.wsUrl);
    clients.push(client);
    return { client, ready };
  };

  /**
   * A session created on `owner` running a long turn there (each event names its node), also
   * viewed from a connection on `viewer`; resolves once `seen` of its events reached that one.
   */
  const turnOn = async (owner: GatewayNode, viewer: GatewayNode, seen: number) => {
    const { client: onOwner } = await open(owner);
    const { client: onViewer } = await open(viewer);
    const sessionId = await createSession(onOwner);
    await onViewer.call("session.resume", { session_id: sessionId, after_seq: 0 });
    onOwner.send({
      jsonrpc: "2.0",
      id: "turn",
      method: "demo.slow",
      params: { session_id: sessionId, count: 100_000, every_ms: 5 },
    });
    const before = await eventsUntil(onViewer, sessionId, (got) => got.length >= seen);
    return { sessionId, onViewer, before };
  };

  /** How many times `node` logged `message` about session `id`. */
  const logged = (node: GatewayNode, id: string, message: string) =>
    node.logs().filter((entry) => entry.session === id && entry.message === message).length;

  /** Waits (bounded) until `node` logged `message` about session `id`: its log comes through a pipe of its own. */
  const untilLogged = (node: GatewayNode, id: string, message: string, timeoutMs = 2_000) =>
    until(() => logged(node, id, message) > 0, timeoutMs, `"${message}" in the log`);

  /** The sessions `ctx.sessions.all()` lists on `node`. */
  const listOn = async (node: GatewayNode) => {
    const { client } = await open(node);
    return (await client.call("sessions.all", {})).result.sessions;
  };

  before(async () => {
    redis = await RedisServer.start();
    nodes = await Promise.all([0, 1, 2].map(() => GatewayNode.start(redis.url, LEASE_MS)));
  });

  after(async () => {
    for (const client of clients) client.socket.close();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  test("a viewer on B attached again and again (ctx.sessions.resume from now) while A streams gets every event once", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const { client: onB } = await open(b);
    const sessionId = await createSession(onA);
    await onB.call("demo.attach", { session_id: sessionId });
    const total = 600;
    const streamed = onA.call("demo.slow", { session_id: sessionId, count: total / 5, every_ms: 2, per: 5 });
    let done = false;
    void streamed.then(() => (done = true));
    for (let i = 0; i < 200 && !done; i++) {
      assert.equal((await onB.call("demo.attach", { session_id: sessionId })).result?.replayed, 0);
    }
    await streamed;
    const seen = await eventsUntil(onB, sessionId, (got) => got.length >= total);
    // Frames on one connection come in order: once this answers, a doubled event would be in the inbox.
    await onB.call("gateway.ping");
    seen.push(...onB.takeAll((frame) => frame.params?.session_id === sessionId).map((frame) => frame.params));
    assert.equal(seen.length, total);
    assertContiguous(seen.map((event) => event.seq));
  });

  test("a client hopping A → B → C mid-stream gets every event once, in order, in one epoch", async () => {
    const [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    let { client, ready } = await open(a);
    const storeEpoch = ready.epoch;
    const sessionId = await createSession(client);
    const total = 10_000;
    client.send({
      jsonrpc: "2.0",
      id: "stream",
      method: "demo.slow",
      params: { session_id: sessionId, count: total / 5, every_ms: 1, per: 5 },
    });
    const seqs: number[] = [];
    let epoch: string | undefined;
    const hops = [b, c, a, b, c];
    for (const [i, next] of hops.entries()) {
      // A cut at a random point of each sixth of the stream.
      const cut = Math.floor(((i + 1) * total) / 6 + (Math.random() - 0.5) * 800);
      const events = await eventsUntil(client, sessionId, (got) => seqs.length + got.length >= cut);
      seqs.push(...events.map((event) => event.seq));
      client.socket.close();
      ({ client, ready } = await open(next));
      assert.equal(ready.epoch, storeEpoch, "gateway.ready's epoch is the same on every node");
      const resumed = await client.call("session.resume", { session_id: sessionId, after_seq: seqs.at(-1) ?? 0 });
      assert.equal(resumed.result?.truncated, false, JSON.stringify(resumed));
      epoch ??= resumed.result.epoch;
      assert.equal(resumed.result.epoch, epoch, "the session's epoch does not change across nodes");
    }
    const rest = await eventsUntil(client, sessionId, (got) => seqs.length + got.length >= total);
    seqs.push(...rest.map((event) => event.seq));
    assert.equal(seqs.length, total);
    assertContiguous(seqs);
  });

  test("viewers on A and C of one session both get every event", async () => {
    const [a, , c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const { client: onC } = await open(c);
    const sessionId = await createSession(onA);
    const resumed = await onC.call("session.resume", { session_id: sessionId, after_seq: 0 });
    assert.equal(resumed.result?.latest_seq, 0);
    const emitted = await onA.call("demo.emit", { session_id: sessionId, count: 2_000, chunk: 100 }, 10_000);
    assert.equal(emitted.result?.last, 2_000);
    for (const client of [onA, onC]) {
      const events = await eventsUntil(client, sessionId, (got) => got.length >= 2_000);
      assertContiguous(events.map((event) => event.seq));
      // As emitted, on C too (through the channel, seqs crossing 9, 99 and 999 within one append).
      const wrong = events.find((event, i) =>
        event.session_id !== sessionId || event.type !== "message.delta" || event.payload.i !== i + 1 ||
        event.payload.pad !== ""
      );
      assert.equal(wrong, undefined);
      assert.equal(await client.silentFor(100), true, "no event arrives twice");
    }
  });

  test("an approval asked on A is answered on B, exactly once, though the client answers on both", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const { client: onB } = await open(b);
    const sessionId = await createSession(onA);
    await onB.call("session.resume", { session_id: sessionId, after_seq: 0 });
    const asked = onA.call("demo.ask", { session_id: sessionId }, 10_000);
    const onBRequest = await onB.take((frame) => frame.method === "approval", 10_000);
    const onARequest = await onA.take((frame) => frame.method === "approval", 10_000);
    assert.equal(onBRequest.id, onARequest.id);
    onB.send({ jsonrpc: "2.0", id: onBRequest.id, result: { decision: "allow", from: "B" } });
    const results = await eventsUntil(onA, sessionId, (got) => got.some((event) => event.type === "approval.result"));
    onA.send({ jsonrpc: "2.0", id: onARequest.id, result: { decision: "deny", from: "A" } });
    assert.deepEqual((await asked).result, { answer: { decision: "allow", from: "B" } });
    assert.deepEqual(results.filter((event) => event.type === "approval.result").map((event) => event.payload), [
      { answer: { decision: "allow", from: "B" } },
    ]);
    // A late reply (on either node) settles nothing more.
    assert.equal(await onA.silentFor(200), true);
  });

  test("a server request opened while the client is away is re-sent on resume on another node", async () => {
    const [a, , c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: first } = await open(a);
    const sessionId = await createSession(first);
    first.send({ jsonrpc: "2.0", id: "ask", method: "demo.ask", params: { session_id: sessionId } });
    const request = await first.take((frame) => frame.method === "approval");
    first.socket.close();
    const { client: onC } = await open(c);
    const resumed = await onC.call("session.resume", { session_id: sessionId, after_seq: 0 });
    assert.equal(resumed.result?.session_id, sessionId);
    const again = await onC.take((frame) => frame.method === "approval");
    assert.equal(again.id, request.id);
    onC.send({ jsonrpc: "2.0", id: again.id, result: "yes" });
    const events = await eventsUntil(onC, sessionId, (got) => got.some((event) => event.type === "approval.result"));
    assert.deepEqual(events.at(-1).payload, { answer: "yes" });
  });

  test("kill -9 of the owner mid-turn: another node takes the session over, the client is told, nothing doubles", async () => {
    const [, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    // A node of its own, to kill.
    const doomed = await GatewayNode.start(redis.url, LEASE_MS);
    try {
      const { sessionId, onViewer: onB, before } = await turnOn(doomed, b, 20);
      doomed.signal("SIGKILL");
      await doomed.exited;
      // A call for the session on B: B waits for the dead owner's lease to lapse, then takes over.
      const emitted = await onB.call("demo.emit", { session_id: sessionId, count: 5 }, 10_000);
      assert.equal(typeof emitted.result?.last, "number", JSON.stringify(emitted));
      const afterKill = await eventsUntil(
        onB,
        sessionId,
        (got) => got.filter((e) => e.payload?.pad === "").length >= 5,
      );
      const events = [...before, ...afterKill];
      assertTakenOver(events);
      // A viewer that comes later (on C) replays the same history.
      const { client: onC } = await open(c);
      const resumed = await onC.call("session.resume", { session_id: sessionId, after_seq: 0 });
      assert.equal(resumed.result.latest_seq, events.at(-1).seq);
    } finally {
      await doomed.stop();
    }
  });

  test("application state lives in the store: folded on every node, loaded on another, listed everywhere; interrupt reaches the owner's node, or takes a dead owner's session over", async () => {
    const [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const sessionId = await createSession(onA);
    assert.equal(
      (await onA.call("demo.emit", { session_id: sessionId, count: 150, chunk: 10 }, 10_000)).result?.last,
      150,
    );
    // B has never seen the session: it loads the saved state and folds the events after it.
    const { client: onB } = await open(b);
    const loaded = (await onB.call("state.get", { session_id: sessionId })).result;
    assert.equal(loaded?.seq, 150, JSON.stringify(loaded));
    assert.deepEqual(loaded.state, { count: 150, last: 150, inOrder: true, types: { "message.delta": 150 } });
    const listed = (await listOn(c)).find((s: { id: string }) => s.id === sessionId);
    assert.deepEqual([listed?.latestSeq, listed?.createdAt], [150, loaded.created_at]);
    // Events emitted on A are folded on B as they arrive there.
    await onB.call("session.resume", { session_id: sessionId, after_seq: 150 });
    await onA.call("demo.emit", { session_id: sessionId, count: 100, chunk: 10 }, 10_000);
    await eventsUntil(onB, sessionId, (got) => got.length >= 100);
    const followed = (await onB.call("state.get", { session_id: sessionId })).result;
    assert.deepEqual(followed.state, { count: 250, last: 250, inOrder: true, types: { "message.delta": 250 } });
    // Work running on A is interrupted from B.
    const turn = onA.call("demo.slow", { session_id: sessionId, count: 10_000, every_ms: 5 }, 20_000);
    await eventsUntil(onB, sessionId, (got) => got.length >= 5);
    assert.deepEqual((await onB.call("session.interrupt", { session_id: sessionId })).result, { interrupted: true });
    const stopped = await turn;
    assert.ok(stopped.result?.last < 10_000, JSON.stringify(stopped));
    // A dead owner's session, interrupted from B, is taken over: its turn is over for everyone.
    const doomed = await GatewayNode.start(redis.url, LEASE_MS);
    try {
      const { sessionId: dead, onViewer } = await turnOn(doomed, b, 10);
      doomed.signal("SIGKILL");
      await doomed.exited;
      const deadline = Date.now() + 10_000;
      let events: Frame[] = [];
      // Told to the dead node until its lease lapses; then taken over (which emits `session.interrupted`).
      while (!events.some((frame) => frame.params.type === "session.interrupted") && Date.now() < deadline) {
        await onViewer.call("session.interrupt", { session_id: dead });
        await new Promise((resolve) => setTimeout(resolve, 100));
        events = [...events, ...onViewer.takeAll((f) => f.method === "event" && f.params.session_id === dead)];
      }
      assert.ok(
        events.some((frame) => frame.params.type === "session.interrupted"),
        "the session was taken over",
      );
      const { client: onCClient } = await open(c);
      const { state, seq } = (await onCClient.call("state.get", { session_id: dead })).result;
      assert.equal(state.types["session.interrupted"], 1);
      assert.deepEqual([state.count, state.last, state.inOrder], [seq, seq, true]);
      // Once B let go of it (nothing runs there), there is no work to interrupt anywhere.
      let answer: unknown;
      for (let tries = 0; tries < 30 && (answer as { interrupted?: boolean })?.interrupted !== false; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        answer = (await onCClient.call("session.interrupt", { session_id: dead })).result;
      }
      assert.deepEqual(answer, { interrupted: false });
    } finally {
      await doomed.stop();
    }
  });

  test("a stale owner (paused past its lease) cannot append after another node took over", async () => {
    const [, b] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const paused = await GatewayNode.start(redis.url, LEASE_MS);
    try {
      const { sessionId, onViewer: onB, before } = await turnOn(paused, b, 10);
      paused.signal("SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 2));
      const emitted = await onB.call("demo.emit", { session_id: sessionId, count: 5 }, 10_000);
      assert.equal(typeof emitted.result?.last, "number", JSON.stringify(emitted));
      paused.signal("SIGCONT");
      await until(
        () => paused.logs().some((entry) => entry.message === "session taken over by another node"),
        5_000,
        "the paused node to find its lease gone",
      ).catch((error) => {
        throw new Error(`${error.message}; its log: ${JSON.stringify(paused.logs())}`);
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const afterPause = [...onB.takeAll((frame) => frame.method === "event" && frame.params.session_id === sessionId)]
        .map((frame) => frame.params);
      const sinceTakeOver = assertTakenOver([...before, ...afterPause]);
      assert.equal(sinceTakeOver.filter((event) => event.type === "message.delta").length, 5);
    } finally {
      await paused.stop();
    }
  });

  test("events waiting for a stalled Redis are bounded; past the bound the session goes on in a new epoch, truncated", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const { client: onB } = await open(b);
    const sessionId = await createSession(onA);
    await onA.call("demo.emit", { session_id: sessionId, count: 10 });
    const before = await onB.call("session.resume", { session_id: sessionId, after_seq: 0 });
    const epoch = before.result.epoch;
    // Redis holds every write for a while (shorter than the lease, which would lapse meanwhile): appends wait on node A
    // (500 events a turn: four appends are in flight, up to 1,024 events, when the drop comes); past sixteen rings'
    // worth (8,192) those waiting go.
    await redis.command(["CLIENT", "PAUSE", String(LEASE_MS / 2), "WRITE"]);
    const emitted = await onA.call("demo.emit", { session_id: sessionId, count: 12_000, chunk: 500 }, 10_000);
    assert.equal(emitted.result?.last, 12_010);
    await untilLogged(a, sessionId, "events dropped: the store is not keeping up");
    await untilLogged(a, sessionId, "session history lost in the store: new epoch");
    const { client: later } = await open(b);
    const resumed = await later.call("session.resume", { session_id: sessionId, after_seq: 10, epoch });
    assert.equal(resumed.result?.truncated, true, JSON.stringify(resumed));
    assert.notEqual(resumed.result.epoch, epoch);
    assert.equal(resumed.result.latest_seq, 12_010);
    // What was kept is the newest, contiguous up to the last.
    const events = await eventsUntil(later, sessionId, (got) => got.at(-1)?.seq === 12_010);
    assertContiguous(events.map((event) => event.seq), events[0].seq);
  });

  test("connections lost while appends wait behind a stalled Redis, after some were dropped: one new epoch, then the session goes on", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const sessionId = await createSession(onA);
    await onA.call("demo.emit", { session_id: sessionId, count: 10 });
    await redis.command(["CLIENT", "PAUSE", String(LEASE_MS / 2), "WRITE"]);
    // 500 events a turn: appends are in flight (held by the pause) when those waiting pass the bound and are dropped.
    const emitted = onA.call("demo.emit", { session_id: sessionId, count: 10_000, chunk: 500 }, 10_000);
    await untilLogged(a, sessionId, "events dropped: the store is not keeping up", LEASE_MS / 2);
    // The appends in flight fail with their connection; those events, below the dropped ones, are lost with them.
    await redis.command(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    const answer = await emitted;
    assert.equal(answer.result?.last, 10_010, JSON.stringify(answer));
    await untilLogged(a, sessionId, "session history lost in the store: new epoch");
    assert.equal(logged(a, sessionId, "session history lost in the store: new epoch"), 1);
    const { client: onB } = await open(b);
    const resumed = await onB.call("session.resume", { session_id: sessionId, after_seq: 10 });
    assert.equal(resumed.result?.truncated, true, JSON.stringify(resumed));
    assert.equal(resumed.result.latest_seq, 10_010);
    const events = await eventsUntil(onB, sessionId, (got) => got.at(-1)?.seq === 10_010);
    assertContiguous(events.map((event) => event.seq), events[0].seq);
  });

  test("events dropped on a node waiting for another node's lease: taking the session over, it appends the rest after the store's last seq, in the same epoch", async () => {
    const [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const { client: onB } = await open(b);
    const sessionId = await createSession(onA);
    const { result: { epoch } } = await onB.call("session.resume", { session_id: sessionId, after_seq: 0 });
    // A works on the session for about a second, holding its lease; B emits more than the bound meanwhile.
    const turn = onA.call("demo.slow", { session_id: sessionId, count: 10, every_ms: 100 }, 10_000);
    const emitted = await onB.call("demo.emit", { session_id: sessionId, count: 9_000 }, 10_000);
    assert.equal(typeof emitted.result?.last, "number", JSON.stringify(emitted));
    assert.equal((await turn).result?.last, 10);
    await untilLogged(b, sessionId, "events dropped: the store is not keeping up");
    assert.equal(logged(b, sessionId, "events dropped: the store is not keeping up"), 1);
    assert.equal(logged(b, sessionId, "session history lost in the store: new epoch"), 0);
    // A's ten events, then B's that were not dropped (9,000 less the 8,193 that passed the bound), numbered on.
    const events = await eventsUntil(onB, sessionId, (got) => got.length >= 10 + 807);
    assertContiguous(events.map((event) => event.seq));
    assert.equal(events.filter((event) => event.payload?.pad === "").length, 807);
    const { client: onC } = await open(c);
    const resumed = await onC.call("session.resume", { session_id: sessionId, after_seq: 800, epoch });
    assert.deepEqual([resumed.result?.truncated, resumed.result?.epoch, resumed.result?.latest_seq], [
      false,
      epoch,
      817,
    ]);
  });

  test("appends Redis refuses for a while (out of memory) are sent again by themselves once it takes writes again", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const sessionId = await createSession(onA);
    await onA.call("demo.emit", { session_id: sessionId, count: 2 });
    // Every write fails with -OOM; the connections stay up (no reconnect tells the node Redis is back).
    await redis.command(["CONFIG", "SET", "maxmemory", "1"]);
    let emitted: Promise<Frame>;
    try {
      emitted = onA.call("demo.emit", { session_id: sessionId, count: 5 }, 10_000);
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS / 3));
    } finally {
      await redis.command(["CONFIG", "SET", "maxmemory", "0"]);
    }
    assert.equal((await emitted).result?.last, 7);
    const events = await eventsUntil(onA, sessionId, (got) => got.length >= 7);
    assertContiguous(events.map((event) => event.seq));
    const { client: onB } = await open(b);
    const resumed = await onB.call("session.resume", { session_id: sessionId, after_seq: 0 });
    assert.deepEqual([resumed.result?.latest_seq, resumed.result?.replayed, resumed.result?.truncated], [7, 7, false]);
  });

  test("Redis restarting without persistence: clear errors while it is away, then recovery", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const { client: onA } = await open(a);
    const { client: onB } = await open(b);
    const sessionId = await createSession(onA);
    await onA.call("demo.emit", { session_id: sessionId, count: 10 });
    await eventsUntil(onA, sessionId, (got) => got.length >= 10);
    await redis.stop();
    const away = await onB.call("session.resume", { session_id: sessionId, after_seq: 0 });
    assert.equal(away.error?.code, -32005, JSON.stringify(away));
    assert.equal(away.error.message, "Session store unavailable");
    await redis.restart();
    // The store lost the session: its viewers on A are told, and a resume anywhere finds nothing.
    onA.send({ jsonrpc: "2.0", id: "more", method: "demo.emit", params: { session_id: sessionId, count: 1 } });
    const lost = await eventsUntil(onA, sessionId, (got) => got.some((event) => event.type === "session.closed"));
    assert.deepEqual(lost.at(-1).payload, { reason: "store_lost" });
    // Until both nodes are connected again, calls that need the store answer -32005.
    const deadline = Date.now() + 5_000;
    const onceReachable = async (call: () => Promise<Frame>) => {
      for (;;) {
        const answer = await call();
        if (answer.error?.code !== -32005 || Date.now() > deadline) return answer;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const resumed = await onceReachable(() => onB.call("session.resume", { session_id: sessionId, after_seq: 10 }));
    assert.equal(resumed.error?.code, -32001, JSON.stringify(resumed));
    // New sessions work across nodes again.
    const created = await onceReachable(() => onA.call("session.create", {}));
    const fresh = created.result?.session_id;
    assert.equal(typeof fresh, "string", JSON.stringify(created));
    const attached = await onceReachable(() => onB.call("session.resume", { session_id: fresh, after_seq: 0 }));
    assert.equal(attached.result?.session_id, fresh, JSON.stringify(attached));
    await onA.call("demo.emit", { session_id: fresh, count: 50 });
    const events = await eventsUntil(onB, fresh, (got) => got.length >= 50);
    assertContiguous(events.map((event) => event.seq));
  });
});
