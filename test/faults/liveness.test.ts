/**
 * Liveness and backpressure under faults (see "An event's way out" and "Sessions" in
 * docs/architecture.md) over real sockets on this runtime: a viewer that stops reading (cut at
 * the backlog cap, or for a stalled send), half-open peers, a connect storm, and shutdown while
 * a session streams. Each case checks that the server stays up and that a well-behaved client
 * connected beside the fault is unaffected.
 * Bounds are counts and sizes; the timeouts only keep a hang from stalling the run.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ANONYMOUS,
  type EndReason,
  type GatewayOptions,
  type MemoryStore,
  method,
  type MethodTable,
} from "../../src/mod.ts";
import type { ServeOptions } from "../../src/runtime/serve-options.ts";
import { Bystander } from "../helpers/bystander.ts";
import { type Frame, TestClient } from "../helpers/client.ts";
import { CutProxy } from "../helpers/cut-proxy.ts";
import { silentPeer } from "../helpers/raw-socket.ts";
import { runtime, startGateway, until, upgradeStatus, within } from "../helpers/runtime.ts";
import { gate, sessionMethods, SessionParams } from "../helpers/session-methods.ts";

const isDelta = (frame: Frame) => frame.method === "event" && frame.params?.type === "message.delta";
const seqs = (frames: Frame[]): number[] => frames.map((frame) => frame.params.seq);
/** `from`, `from + 1`, … `to`. */
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** The session methods, `echo` for the bystander, and `demo.stream`: emits until its session ends. */
function faultMethods(turn?: Parameters<typeof sessionMethods>[0], streams: { sent: number; aborted: unknown }[] = []) {
  return {
    ...sessionMethods(turn),
    echo: (params: unknown) => params,
    "demo.stream": method({
      params: SessionParams,
      concurrent: true,
      handler: async (p, ctx) => {
        const session = ctx.session(p.session_id);
        let sent = 0;
        // Bounded, so a missed abort ends the test instead of running on.
        while (!ctx.signal.aborted && sent < 60_000) {
          session.emit("message.delta", { i: ++sent });
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        streams.push({ sent, aborted: session.signal.reason });
        return { sent };
      },
    }),
  } satisfies MethodTable;
}

/** A gateway with `faultMethods`, recording why sessions end. */
async function faultGateway(
  options: Partial<GatewayOptions<MethodTable>> = {},
  serveOptions: ServeOptions = {},
  methods: MethodTable = faultMethods(),
) {
  const ended: EndReason[] = [];
  const gw = await startGateway({
    ...options,
    methods,
    sessions: { ...options.sessions, hooks: { closed: (_session, reason) => ended.push(reason) } },
  }, serveOptions);
  return Object.assign(gw, { ended });
}

async function withProxy(wsUrl: string) {
  const proxy = await CutProxy.start(wsUrl);
  return Object.assign(proxy, { [Symbol.asyncDispose]: () => proxy.close() });
}

async function create(client: TestClient): Promise<string> {
  const reply = await client.call("session.create", {});
  assert.equal(typeof reply.result?.session_id, "string", JSON.stringify(reply));
  return reply.result.session_id;
}

/** A bystander, a viewer of a new session, and a second viewer of it through `proxy`, which then stops reading. */
async function viewersWithOneStalled(wsUrl: string, proxy: CutProxy) {
  const bystander = await Bystander.join(wsUrl);
  const { client: viewer } = await TestClient.ready(wsUrl);
  const { client: stalled } = await TestClient.ready(proxy.url);
  const id = await create(viewer);
  await stalled.call("session.resume", { session_id: id });
  proxy.stall(0);
  return { bystander, viewer, stalled, id };
}

test("a viewer that stops reading is cut 1013 at the backlog cap, memory stays bounded, and it resumes with nothing lost; the other viewer and a bystander are unaffected", async () => {
  const backlogCap = 256 << 10;
  // Below the cap, so a full replay fits in one burst (README, Configuration).
  const ringBytes = 192 << 10;
  await using gw = await faultGateway({
    limits: { maxBacklogBytes: backlogCap, backlogWarnBytes: 64 << 10 },
    sessions: { replay: { maxEvents: 10_000, maxBytes: ringBytes } },
  });
  await using proxy = await withProxy(gw.wsUrl);
  const { bystander, viewer, stalled, id } = await viewersWithOneStalled(gw.wsUrl, proxy);
  const store = gw.gateway.sessions.store as MemoryStore;
  const rssBefore = process.memoryUsage().rss;

  // Stream in calls of 20 events (~22 KB, one tick each) until the cut: the kernel's socket
  // buffers hide a few MB first. The round bound (110 MB in all) is far past any of them.
  const cut = () =>
    gw.logs.some((entry) => entry.message === "connection closed" && entry.fields?.reason === "slow_consumer");
  let seen = 0;
  for (let round = 0; round < 5_000 && !cut(); round++) {
    assert.equal((await viewer.call("demo.emit", { session_id: id, count: 20, bytes: 1_000 })).result?.last, seen + 20);
    assert.ok(store.bytes <= ringBytes, `replay ring at ${store.bytes} bytes, over its ${ringBytes}`);
    // The reading viewer gets every event, in order, while the other one backs up.
    const got = seqs(viewer.takeAll(isDelta));
    assert.deepEqual(got, range(seen + 1, seen + 20));
    seen += got.length;
  }
  assert.ok(cut(), "the stalled viewer was cut");
  const warnings = gw.logs.filter((entry) => entry.message === "slow consumer");
  // Once per episode, not per frame: the kernel may take more from the socket and empty its
  // backlog for a moment (a new episode) before the cut, as seen on Bun.
  assert.ok(warnings.length >= 1 && warnings.length <= 3, `${warnings.length} slow-consumer warnings`);
  assert.ok((warnings[0]!.fields!.backlog_bytes as number) <= backlogCap);
  // Without the cap the loop would stream its whole 110 MB into the stalled connection's backlog.
  assert.ok(process.memoryUsage().rss - rssBefore < 64 << 20, "server memory stayed bounded");
  assert.equal(gw.gateway.sessions.get(id)?.viewers, 1, "the session carries on for the reading viewer");
  assert.equal(gw.gateway.connections.size, 2);

  // Reading again, the stalled client gets what reached it before the cut, in order, then 1013.
  proxy.unstall(0);
  assert.deepEqual(await within(stalled.closed, 5_000, "the stalled client's close"), {
    code: 1013,
    reason: "slow_consumer",
  });
  const before = seqs(stalled.takeAll(isDelta));
  assert.deepEqual(before, range(1, before.length));

  // It reconnects and resumes after the last event it saw: the rest comes from the ring, then live events.
  const { client: back } = await TestClient.ready(proxy.url);
  const resumed = await back.call("session.resume", { session_id: id, after_seq: before.length });
  assert.equal(resumed.result.truncated, false);
  assert.equal(resumed.result.latest_seq, seen);
  assert.equal(resumed.result.replayed, seen - before.length);
  assert.deepEqual(seqs(back.takeAll(isDelta)), range(before.length + 1, seen));
  await viewer.call("demo.emit", { session_id: id, count: 1 });
  assert.equal((await back.take(isDelta)).params.seq, seen + 1);
  assert.equal((await viewer.take(isDelta)).params.seq, seen + 1);

  await bystander.leave();
  await Promise.all([viewer.close(), back.close()]);
});

test("a viewer whose socket drains nothing for sendStallMs is closed 1011 (send_stalled) while its backlog is under the cap; the other viewer and a bystander are unaffected", async () => {
  const sendStallMs = 300;
  await using gw = await faultGateway({
    limits: { sendStallMs, maxBacklogBytes: 64 << 20, backlogWarnBytes: 32 << 20 },
  });
  await using proxy = await withProxy(gw.wsUrl);
  const { bystander, viewer, stalled, id } = await viewersWithOneStalled(gw.wsUrl, proxy);

  // Stream ~22 KB every 10 ms until the cut: once the kernel's buffers are full nothing drains,
  // and the stall check closes the socket. The round bound (44 MB) stays under the 64 MB cap.
  const closedFor = (reason: string) =>
    gw.logs.some((entry) => entry.message === "connection closed" && entry.fields?.reason === reason);
  let seen = 0;
  for (let round = 0; round < 2_000 && !closedFor("send_stalled"); round++) {
    assert.equal((await viewer.call("demo.emit", { session_id: id, count: 20, bytes: 1_000 })).result?.last, seen + 20);
    assert.deepEqual(
      seqs(viewer.takeAll(isDelta)),
      range(seen + 1, seen + 20),
      "the reading viewer gets every event, in order",
    );
    seen += 20;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(closedFor("send_stalled"), "the stalled viewer was closed for its stall");
  assert.ok(!closedFor("slow_consumer"), "by the stall check, not the backlog cap");

  proxy.unstall(0);
  assert.deepEqual(await within(stalled.closed, 5_000, "the stalled client's close"), {
    code: 1011,
    reason: "send_stalled",
  });
  assert.equal(gw.gateway.sessions.get(id)?.viewers, 1, "the session carries on for the reading viewer");
  await bystander.leave();
  await viewer.close();
});

/**
 * The latest a silent peer may be closed, as README (Security) documents: Node and Bun ping
 * every `peerTimeoutMs / 2` and cut a peer silent since the previous ping; Deno pings after
 * `idleTimeout` = `peerTimeoutMs / 2` in whole seconds (at least 1) of silence and closes if no
 * pong comes within as long again.
 */
function peerWindowMs(peerTimeoutMs: number): number {
  return runtime === "deno" ? 2 * 1_000 * Math.max(1, Math.round(peerTimeoutMs / 2_000)) : peerTimeoutMs;
}

test("half-open peers that never answer pings are closed within the documented window; their sessions detach and resume elsewhere; a bystander is unaffected", async () => {
  // Long enough that a stall of the test process just after a ping cannot cut the bystander.
  const peerTimeoutMs = 2_000;
  await using gw = await faultGateway({ limits: { peerTimeoutMs } });
  await using proxy = await withProxy(gw.wsUrl);
  // Idle all along, but it answers pings: it must stay.
  const bystander = await Bystander.join(gw.wsUrl);
  const { client: gone } = await TestClient.ready(proxy.url);
  const id = await create(gone);
  await gone.call("demo.emit", { session_id: id, count: 3 });
  // One peer completes the upgrade and never reads or writes again; the other stops reading
  // (pings no longer reach it, so it sends no pong).
  const silent = await silentPeer(gw.wsUrl);
  try {
    await until(() => gw.gateway.connections.size === 3, 3_000, "the silent peer's connection");
    proxy.stall(0);
    // Twice the window and a second more: slack for a loaded machine, yet well below the 8 s
    // that Bun's own idle timeout would take for any value under 8 s.
    await until(
      () => gw.gateway.connections.size === 1,
      2 * peerWindowMs(peerTimeoutMs) + 1_000,
      "both silent peers to be closed",
    );
  } finally {
    silent.destroy();
  }
  const lines = gw.logs.filter((entry) => entry.message === "connection closed");
  assert.deepEqual(lines.map((entry) => entry.fields!.detached_sessions).sort(), [0, 1]);
  const session = gw.gateway.sessions.get(id);
  assert.equal(session?.closed, false, "the session outlives its connection");
  assert.equal(session?.viewers, 0);

  const { client: back } = await TestClient.ready(gw.wsUrl);
  const resumed = await back.call("session.resume", { session_id: id, after_seq: 1 });
  assert.deepEqual([resumed.result.replayed, resumed.result.truncated, resumed.result.latest_seq], [2, false, 3]);
  assert.deepEqual(seqs(back.takeAll(isDelta)), [2, 3]);
  assert.deepEqual(gw.ended, []);
  await bystander.leave();
  await back.close();
});

/** What became of one connection attempt. */
type Outcome = { client: TestClient; ready: true } | { client?: TestClient; ready: false; refusal: string };

/**
 * Opens `count` WebSockets at once; each ends with `gateway.ready` or a refusal as README
 * (Security) documents: the upgrade answered 503 (the socket never opens) or, for a burst
 * that got past `guard()`, closed 1013 before `gateway.ready`.
 */
function connectAll(url: string, count: number): Promise<Outcome[]> {
  const attempt = async (): Promise<Outcome> => {
    let client: TestClient;
    try {
      client = await TestClient.open(url);
    } catch {
      return { ready: false, refusal: "upgrade refused" };
    }
    // The first frame or the close, whichever comes first (TestClient's own listener has filled the inbox).
    const first = await within(
      new Promise<Frame>((resolve) => {
        if (client.inbox.length > 0) return resolve(client.inbox[0]);
        client.socket.addEventListener("message", () => resolve(client.inbox[0]), { once: true });
        void client.closed.then(resolve);
      }),
      15_000,
      "gateway.ready or a close",
    );
    if (first?.params?.type === "gateway.ready") return { client, ready: true };
    return { client, ready: false, refusal: `closed ${first.code}` };
  };
  return Promise.all(Array.from({ length: count }, attempt));
}

test("1,000 simultaneous connects, then 1,000 reconnects after a cut: each gets gateway.ready or a documented refusal, the cap holds exactly, counts return to 0, memory is bounded, and a bystander is unaffected", async () => {
  const count = 1_000;
  // The bystander and 900 of the storm: every burst meets the cap.
  const cap = 901;
  await using gw = await faultGateway({ limits: { maxConnections: cap } });
  await using proxy = await withProxy(gw.wsUrl);
  const bystander = await Bystander.join(gw.wsUrl);
  const rssBefore = process.memoryUsage().rss;
  const admitted = (outcomes: Outcome[]) => outcomes.filter((o) => o.ready);
  const refusals = (outcomes: Outcome[]) => outcomes.flatMap((o) => (o.ready ? [] : [o.refusal]));
  const documented = /^(upgrade refused|closed 1013)$/;

  const first = await connectAll(proxy.url, count);
  assert.equal(admitted(first).length, cap - 1, "exactly up to the cap");
  for (const refusal of refusals(first)) assert.match(refusal, documented);
  // A socket refused with 1013 counts until the server has seen its close too.
  await until(() => gw.gateway.connections.size === cap, 5_000, "the refused sockets to be released");
  await bystander.check("the bystander beside the first storm");

  // Every connection drops at once, without a close handshake, and every client comes back
  // at once, while the server may still be tearing the old ones down.
  proxy.cut();
  const second = await connectAll(proxy.url, count);
  for (const refusal of refusals(second)) assert.match(refusal, documented);
  await until(
    () => gw.gateway.connections.size === admitted(second).length + 1,
    15_000,
    "the cut connections to be released",
  );
  // Those turned away try once more: the room the cut ones left is filled exactly.
  const retried = await connectAll(proxy.url, count - admitted(second).length);
  for (const refusal of refusals(retried)) assert.match(refusal, documented);
  assert.equal(admitted(second).length + admitted(retried).length, cap - 1);
  await until(() => gw.gateway.connections.size === cap, 5_000, "the refused sockets to be released");
  await bystander.check("the bystander after the reconnect storm");
  // Client and server share this process: ~2,000 sockets each side, well under this.
  assert.ok(process.memoryUsage().rss - rssBefore < 256 << 20, "memory stayed bounded");

  await Promise.all([...admitted(second), ...admitted(retried)].map((o) => o.client!.close()));
  await until(() => gw.gateway.connections.size === 1, 15_000, "every storm connection to be released");
  assert.equal(gw.gateway.connectionsOf(ANONYMOUS), 1, "per-principal counts went back too");
  await bystander.leave();
  await until(() => gw.gateway.connections.size === 0, 3_000, "the bystander's release");
});

test("close() mid-stream: clients get 1001, running handlers get until the deadline, sessions end with shutdown, new connections are refused, and close() returns", async () => {
  const turn = { ...gate(), seen: {} as { aborted?: boolean } };
  const streams: { sent: number; aborted: unknown }[] = [];
  const closeTimeoutMs = 1_500;
  const gw = await faultGateway({}, { closeTimeoutMs }, faultMethods({ gate: turn.promise, seen: turn.seen }, streams));
  const bystander = await Bystander.join(gw.wsUrl);
  const { client } = await TestClient.ready(gw.wsUrl);
  // One session streams until it ends; another runs a turn that ends once its gate opens.
  const streaming = await create(client);
  const turning = await create(client);
  client.send({ jsonrpc: "2.0", id: "stream", method: "demo.stream", params: { session_id: streaming } });
  client.send({ jsonrpc: "2.0", id: "turn", method: "demo.turn", params: { session_id: turning } });
  await until(() => client.inbox.filter(isDelta).length >= 20, 5_000, "the stream to be under way");
  await until(() => gw.gateway.sessions.get(turning)?.running === 1, 3_000, "the turn to be running");
  await bystander.check("the bystander before close()");

  const closing = gw.server.close();
  assert.deepEqual(await within(client.closed, 3_000, "the streaming client's close"), {
    code: 1001,
    reason: "shutdown",
  });
  assert.deepEqual(await within(bystander.client.closed, 3_000, "the bystander's close"), {
    code: 1001,
    reason: "shutdown",
  });
  // The server still listens while it waits for the handlers, but admits no one.
  assert.equal(await upgradeStatus(gw.wsUrl), 503);
  assert.deepEqual(gw.ended, [], "sessions live on while their handlers may still finish");
  turn.open();
  await within(closing, closeTimeoutMs + 3_000, "server.close()");

  assert.equal(turn.seen.aborted, false, "the turn finished within the deadline, not aborted");
  await until(() => streams.length === 1, 3_000, "the endless stream to end");
  assert.equal(streams[0]!.aborted, "shutdown", "it was aborted by its session's end at the deadline");
  assert.deepEqual(gw.ended, ["shutdown", "shutdown"]);
  assert.equal(gw.gateway.sessions.size, 0);
  assert.equal(gw.gateway.connections.size, 0);
  // What the client got before the close is in order, with no gap.
  const got = seqs(client.takeAll(isDelta));
  assert.deepEqual(got, range(1, got.length));
  await assert.rejects(TestClient.open(gw.wsUrl), "no connection after close()");
});
