/**
 * The connection loop and dispatcher (see docs/protocol.md and "A frame's way in" in
 * docs/architecture.md), over real WebSockets on this runtime.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { createGateway, ErrorCode, type HandlerContext, method, RpcError } from "../src/mod.ts";
import { TestClient } from "./helpers/client.ts";
import { startGateway, until } from "./helpers/runtime.ts";

/** A promise with its resolver, for handlers a test releases by hand. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

test("gateway.ready is the first frame, with protocol, ids, epoch, heartbeat, limits and the ready() payload", async () => {
  await using gw = await startGateway({
    methods: {},
    ready: (conn) => ({ skin: "default", peer_known: conn.peer !== "" }),
    heartbeatMs: 1234,
    limits: { maxBatch: 7 },
  });
  const a = await TestClient.ready(gw.wsUrl);
  const b = await TestClient.ready(gw.wsUrl);
  assert.equal(a.ready.protocol, "switchboard/1");
  assert.equal(a.ready.epoch, gw.gateway.epoch);
  assert.equal(a.ready.heartbeat_ms, 1234);
  assert.deepEqual(a.ready.limits, { max_message_bytes: 1 << 20, max_batch: 7, max_in_flight: 64 });
  assert.equal(a.ready.skin, "default");
  assert.equal(a.ready.peer_known, true);
  assert.equal(typeof a.ready.connection_id, "string");
  assert.notEqual(a.ready.connection_id, b.ready.connection_id);
  await Promise.all([a.client.close(), b.client.close()]);
});

test("inline replies keep arrival order; a slow concurrent handler does not delay an inline reply", async () => {
  const slow = gate();
  const order: string[] = [];
  await using gw = await startGateway({
    methods: {
      "slow.concurrent": method({ concurrent: true, handler: async () => (await slow.promise, "slow") }),
      "inline.async": async (p: [number]) => {
        await new Promise((resolve) => setTimeout(resolve, p[0]));
        order.push(`async-${p[0]}`);
        return p[0];
      },
      "inline.sync": (p: [number]) => (order.push(`sync-${p[0]}`), p[0]),
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  client.send({ jsonrpc: "2.0", id: "s", method: "slow.concurrent" });
  client.send({ jsonrpc: "2.0", id: 1, method: "inline.async", params: [30] });
  client.send({ jsonrpc: "2.0", id: 2, method: "inline.sync", params: [2] });
  client.send({ jsonrpc: "2.0", id: 3, method: "inline.async", params: [1] });
  client.send({ jsonrpc: "2.0", id: 4, method: "inline.sync", params: [4] });
  const ids = [];
  for (let i = 0; i < 4; i++) ids.push((await client.next()).id);
  assert.deepEqual(ids, [1, 2, 3, 4], "inline replies in arrival order, before the slow one");
  assert.deepEqual(order, ["async-30", "sync-2", "async-1", "sync-4"], "inline handlers ran one at a time");
  slow.open();
  assert.deepEqual(await client.next(), { jsonrpc: "2.0", id: "s", result: "slow" });
  await client.close();
});

test("gateway.ping is answered at once while an inline handler is busy", async () => {
  const busy = gate();
  await using gw = await startGateway({ methods: { block: async () => (await busy.promise, "done") } });
  const { client } = await TestClient.ready(gw.wsUrl);
  client.send({ jsonrpc: "2.0", id: 1, method: "block" });
  assert.deepEqual((await client.call("gateway.ping")).result, { ok: true });
  assert.equal(client.inbox.length, 0, "the blocked request has not answered");
  busy.open();
  assert.deepEqual(await client.take((f) => f.id === 1 && f.result === "done"), {
    jsonrpc: "2.0",
    id: 1,
    result: "done",
  });
  await client.close();
});

test("rpc.cancel aborts the request's signal and the request answers -32800; queued requests never run", async () => {
  let aborted: unknown;
  let queuedRan = false;
  await using gw = await startGateway({
    methods: {
      wait: method({
        concurrent: true,
        handler: (_p, ctx) =>
          new Promise((_resolve, reject) =>
            ctx.signal.addEventListener("abort", () => ((aborted = ctx.signal.reason), reject(ctx.signal.reason)))
          ),
      }),
      hold: (_p: unknown, ctx: HandlerContext) =>
        new Promise((resolve) => ctx.signal.addEventListener("abort", resolve)),
      queued: () => (queuedRan = true),
      after: () => "after",
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  client.send({ jsonrpc: "2.0", id: "w", method: "wait" });
  await until(() => gw.gateway.connections.values().next().value!.inFlight === 1, 3000, "wait in flight");
  const cancel = await client.call("rpc.cancel", { id: "w" });
  assert.deepEqual(cancel.result, { cancelled: true });
  const answer = await client.take((f) => f.id === "w");
  assert.equal(answer.error.code, ErrorCode.RequestCancelled);
  assert.ok(aborted instanceof Error);
  assert.deepEqual((await client.call("rpc.cancel", { id: "w" })).result, { cancelled: false }, "already done");
  assert.deepEqual((await client.call("rpc.cancel", { id: "nope" })).result, { cancelled: false });

  // An inline handler holding the queue, one queued behind it: cancel the queued one, then the holder.
  client.send({ jsonrpc: "2.0", id: "h", method: "hold" });
  client.send({ jsonrpc: "2.0", id: "q", method: "queued" });
  assert.deepEqual((await client.call("rpc.cancel", { id: "q" })).result, { cancelled: true });
  assert.equal((await client.take((f) => f.id === "q")).error.code, ErrorCode.RequestCancelled);
  assert.deepEqual((await client.call("rpc.cancel", { id: "h" })).result, { cancelled: true });
  assert.equal((await client.take((f) => f.id === "h")).error.code, ErrorCode.RequestCancelled);
  assert.equal((await client.call("after")).result, "after", "the queue moves on after a cancel");
  assert.equal(queuedRan, false);
  await client.close();
});

test("a crashing handler answers -32603 with its id, logs the stack server-side only, and the connection goes on", async () => {
  await using gw = await startGateway({
    methods: {
      boom: () => {
        throw new Error("secret detail");
      },
      asyncBoom: () => Promise.reject(new TypeError("async detail")),
      typed: () => {
        throw new RpcError(-32050, "Quota exceeded", { retry_after: 5 });
      },
      nothing: () => undefined,
      bigint: () => 1n,
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  const boom = await client.call("boom");
  assert.deepEqual(boom, { jsonrpc: "2.0", id: boom.id, error: { code: -32603, message: "Internal error" } });
  assert.ok(!JSON.stringify(boom).includes("secret"));
  assert.equal((await client.call("asyncBoom")).error.code, -32603);
  assert.deepEqual((await client.call("typed")).error, {
    code: -32050,
    message: "Quota exceeded",
    data: { retry_after: 5 },
  });
  assert.deepEqual((await client.call("nothing")).result, null);
  assert.equal((await client.call("bigint")).error.code, -32603, "an unserialisable result answers -32603");
  assert.deepEqual((await client.call("gateway.ping")).result, { ok: true });
  const errors = gw.logs.filter((entry) => entry.level === "error");
  assert.equal(errors.length, 3);
  assert.match(String((errors[0]!.fields!.error as Error).stack), /secret detail/);
  await client.close();
  await until(() => gw.logs.some((entry) => entry.message === "connection closed"));
  assert.equal(gw.logs.find((entry) => entry.message === "connection closed")!.fields!.dispatch_crashes, 3);
});

test("parse errors, invalid requests and binary frames are answered and the connection goes on", async () => {
  await using gw = await startGateway({ methods: { ok: () => "ok" } });
  const { client } = await TestClient.ready(gw.wsUrl);
  client.send("{not json");
  assert.deepEqual(await client.next(), { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
  client.send("   ");
  client.send('{"jsonrpc":"2.0","id":5,"method":7}');
  const invalid = await client.next();
  assert.deepEqual([invalid.id, invalid.error.code], [5, -32600]);
  client.socket.send(new Uint8Array([123, 125]));
  const binary = await client.next();
  assert.deepEqual([binary.id, binary.error.code], [null, -32600]);
  assert.equal((await client.call("ok")).result, "ok");
  assert.equal(client.inbox.length, 0, "the blank frame got no answer");
  await client.close();
});

test("invalid params answer -32602 with data.issues; unknown and prototype method names answer -32601", async () => {
  await using gw = await startGateway({
    methods: {
      greet: method({
        params: v.object({ name: v.string(), age: v.optional(v.number()) }),
        handler: (p) => `hi ${p.name}`,
      }),
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  assert.equal((await client.call("greet", { name: "ada" })).result, "hi ada");
  const bad = await client.call("greet", { name: 1, age: "x" });
  assert.equal(bad.error.code, ErrorCode.InvalidParams);
  assert.deepEqual(bad.error.data.issues.map((issue: { path: string[] }) => issue.path), [["name"], ["age"]]);
  assert.ok(bad.error.data.issues.every((issue: { message: unknown }) => typeof issue.message === "string"));
  for (const name of ["nope", "__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
    const reply = await client.call(name, { __proto__: { x: 1 } });
    assert.equal(reply.error.code, ErrorCode.MethodNotFound, name);
  }
  assert.equal((await client.call("greet", JSON.parse('{"name":"x","__proto__":{"polluted":true}}'))).result, "hi x");
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  await client.close();
});

test("notifications are never answered; batches answer one array, or nothing when all are notifications", async () => {
  const seen: unknown[] = [];
  const slow = gate();
  await using gw = await startGateway({
    limits: { maxBatch: 5 },
    methods: {
      note: (p: unknown) => void seen.push(p),
      add: ([a, b]: [number, number]) => a + b,
      later: method({ concurrent: true, handler: async () => (await slow.promise, "later") }),
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  client.send({ jsonrpc: "2.0", method: "note", params: [1] });
  client.send({ jsonrpc: "2.0", method: "missing", params: [2] });
  client.send([{ jsonrpc: "2.0", method: "note", params: [3] }, { jsonrpc: "2.0", method: "note", params: [4] }]);
  client.send([
    { jsonrpc: "2.0", id: 1, method: "later" },
    { jsonrpc: "2.0", id: 2, method: "add", params: [1, 2] },
    { jsonrpc: "2.0", method: "note", params: [5] },
    { jsonrpc: "2.0", id: 3, method: "missing" },
  ]);
  assert.ok(await client.silentFor(50), "nothing answered before the whole batch is done");
  slow.open();
  const batch = await client.next();
  assert.ok(Array.isArray(batch));
  assert.deepEqual(
    batch.sort((x: { id: number }, y: { id: number }) => x.id - y.id),
    [
      { jsonrpc: "2.0", id: 1, result: "later" },
      { jsonrpc: "2.0", id: 2, result: 3 },
      { jsonrpc: "2.0", id: 3, error: { code: -32601, message: "Method not found", data: { method: "missing" } } },
    ],
  );
  client.send(Array.from({ length: 6 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "add", params: [i, i] })));
  const tooBig = await client.next();
  assert.deepEqual([tooBig.id, tooBig.error.code, tooBig.error.data], [null, -32600, { max_batch: 5 }]);
  assert.deepEqual(seen, [[1], [3], [4], [5]]);
  await client.close();
});

test("a burst of 10,000 events from one synchronous handler arrives complete and in order, before its reply", async () => {
  await using gw = await startGateway({
    methods: {
      burst: ([count]: [number], ctx: HandlerContext) => {
        for (let i = 1; i <= count; i++) ctx.connection.emit("tick", { i });
        return count;
      },
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  client.send({ jsonrpc: "2.0", id: "b", method: "burst", params: [10_000] });
  for (let i = 1; i <= 10_000; i++) {
    const frame = await client.next();
    assert.equal(frame.params?.payload?.i, i);
  }
  assert.deepEqual(await client.next(), { jsonrpc: "2.0", id: "b", result: 10_000 });
  await client.close();
});

test("in-flight requests over the limit answer -32003; a duplicate in-flight id answers -32600", async () => {
  const release = gate();
  await using gw = await startGateway({
    limits: { maxInFlight: 3 },
    methods: { park: method({ concurrent: true, handler: async () => (await release.promise, "parked") }) },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  for (const id of [1, 2]) client.send({ jsonrpc: "2.0", id, method: "park" });
  client.send({ jsonrpc: "2.0", id: 1, method: "park" });
  const duplicate = await client.next();
  assert.deepEqual([duplicate.id, duplicate.error.code], [1, -32600]);
  client.send({ jsonrpc: "2.0", id: 3, method: "park" });
  client.send({ jsonrpc: "2.0", id: 4, method: "park" });
  const over = await client.next();
  assert.deepEqual([over.id, over.error.code], [4, ErrorCode.Overloaded]);
  assert.deepEqual((await client.call("gateway.ping")).result, { ok: true }, "ping is not counted");
  release.open();
  const ids = [(await client.next()).id, (await client.next()).id, (await client.next()).id].sort();
  assert.deepEqual(ids, [1, 2, 3]);
  await client.close();
});

test("closing a connection aborts its in-flight handlers and logs one teardown line with its counters", async () => {
  let aborted = false;
  await using gw = await startGateway({
    methods: {
      wait: method({
        concurrent: true,
        handler: (_p, ctx) =>
          new Promise((resolve) => ctx.signal.addEventListener("abort", () => ((aborted = true), resolve(null)))),
      }),
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  client.send({ jsonrpc: "2.0", id: 1, method: "wait" });
  client.send("oops");
  await client.next();
  await client.close();
  await until(() => gw.logs.some((entry) => entry.message === "connection closed"));
  const lines = gw.logs.filter((entry) => entry.message === "connection closed");
  assert.equal(lines.length, 1);
  const fields = lines[0]!.fields!;
  assert.deepEqual(
    Object.keys(fields).filter((key) => key !== "connection_id").sort(),
    [
      "detached_sessions",
      "dispatch_crashes",
      "messages",
      "parse_errors",
      "peer",
      "rate_limited",
      "reaped_sessions",
      "reason",
      "send_failures",
    ],
  );
  assert.match(String(fields.peer), /^127\.0\.0\.1:\d+$|^::ffff:127\.0\.0\.1:\d+$/);
  assert.deepEqual([fields.messages, fields.parse_errors, fields.dispatch_crashes, fields.send_failures], [2, 1, 0, 0]);
  assert.match(String(fields.reason), /^peer_closed_1000$/);
  assert.equal(aborted, true);
  assert.equal(gw.gateway.connections.size, 0);
});

test("rpc.discover returns an OpenRPC document with each valibot params schema as JSON Schema", async () => {
  await using gw = await startGateway({
    name: "disco",
    methods: {
      "session.open": method({
        params: v.object({ title: v.string(), private: v.optional(v.boolean()) }),
        handler: () => 1,
      }),
      bare: () => 2,
    },
  });
  const { client } = await TestClient.ready(gw.wsUrl);
  const doc = (await client.call("rpc.discover")).result;
  assert.equal(doc.openrpc, "1.3.2");
  assert.equal(doc.info.title, "disco");
  const names = doc.methods.map((m: { name: string }) => m.name);
  assert.deepEqual(names, [
    "bare",
    "gateway.ping",
    "rpc.cancel",
    "rpc.discover",
    "session.close",
    "session.events.since",
    "session.open",
    "session.resume",
  ]);
  const open = doc.methods.find((m: { name: string }) => m.name === "session.open");
  assert.equal(open.paramStructure, "by-name");
  assert.deepEqual(open.params, [
    { name: "title", schema: { type: "string" }, required: true },
    { name: "private", schema: { type: "boolean" }, required: false },
  ]);
  await client.close();
});

test("createGateway refuses method names that shadow the built-ins", () => {
  assert.throws(() => createGateway({ methods: { "rpc.cancel": () => 1 } }), /reserved/);
  assert.throws(() => createGateway({ methods: { "gateway.ping": () => 1 } }), /reserved/);
  assert.throws(() => createGateway({ methods: { "session.resume": () => 1 } }), /reserved/);
  // A renamed built-in may not take a name in use.
  assert.throws(() => createGateway({ builtins: { "session.close": "rpc.close" }, methods: {} }), /the name is taken/);
  assert.throws(
    () => createGateway({ builtins: { "session.close": "session.resume" }, methods: {} }),
    /the name is taken/,
  );
  // Onto a built-in that comes later in the table, too.
  assert.throws(
    () => createGateway({ builtins: { "gateway.ping": "session.close" }, methods: {} }),
    /the name is taken/,
  );
  assert.throws(
    () => createGateway({ builtins: { "rpc.discover": false } as Record<string, false>, methods: {} }),
    /not a built-in that can be renamed/,
  );
  // Two built-ins may swap names.
  createGateway({ builtins: { "gateway.ping": "session.close", "session.close": "gateway.ping" }, methods: {} });
});

test("built-ins renamed or dropped free their names for the app's methods; error codes renumbered on the wire; ready sees the protocol's fields", async () => {
  await using gw = await startGateway({
    builtins: {
      "session.resume": "switchboard.session.resume",
      "session.close": false,
      "gateway.ping": "gateway.ping2",
    },
    errorCodes: { [ErrorCode.SessionNotFound]: 4001, [ErrorCode.MethodNotFound]: 4004 },
    ready: (_connection, base) => ({ replay_epoch: base.epoch }),
    methods: {
      "session.resume": (p: { session_id: string }) => ({ mine: p.session_id }),
      "gateway.capabilities": () => ({ ping: true }),
      "fail.custom": () => {
        throw new RpcError(4002, "refused");
      },
    },
  });
  const { client, ready } = await TestClient.ready(gw.wsUrl);
  assert.equal(ready.replay_epoch, ready.epoch);
  assert.equal(typeof ready.epoch, "string");
  assert.deepEqual((await client.call("session.resume", { session_id: "x" })).result, { mine: "x" });
  assert.deepEqual((await client.call("gateway.capabilities")).result, { ping: true });
  assert.deepEqual((await client.call("gateway.ping2")).result, { ok: true });
  // The built-in under its new name: an unknown session is -32001, sent as 4001.
  const missing = await client.call("switchboard.session.resume", { session_id: "nope" });
  assert.equal(missing.error?.code, 4001);
  assert.equal(missing.error?.message, "Session not found");
  assert.equal((await client.call("session.close", { session_id: "x" })).error?.code, 4004);
  assert.equal((await client.call("gateway.ping")).error?.code, 4004);
  // Codes not in the table go out as they are.
  assert.equal((await client.call("fail.custom")).error?.code, 4002);
  assert.equal((await client.call("switchboard.session.resume", {})).error?.code, ErrorCode.InvalidParams);
  await client.close();
});
