/** serve() on this runtime: addressing, graceful close, the guard's cap, frame size, startup tasks. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type HandlerContext, method } from "../src/mod.ts";
import { TestClient } from "./helpers/client.ts";
import { runtime, startGateway, until, upgradeStatus, within } from "./helpers/runtime.ts";

/** A JSON-RPC request frame of exactly `bytes` UTF-8 bytes, padded with `fill` (1 or 2 bytes a character). */
function frameOf(bytes: number, id: number, fill = "x"): string {
  const template = JSON.stringify({ jsonrpc: "2.0", id, method: "echo", params: [""] });
  const room = bytes - new TextEncoder().encode(template).length;
  const width = new TextEncoder().encode(fill).length;
  const text = template.replace('""', `"${fill.repeat(Math.floor(room / width))}${"x".repeat(room % width)}"`);
  assert.equal(new TextEncoder().encode(text).length, bytes);
  return text;
}

test(`serve() on ${runtime} with port 0: url is http://127.0.0.1:PORT/ and the gateway answers at /api/ws`, async () => {
  await using gw = await startGateway({ methods: { echo: (p: unknown) => p } });
  assert.match(gw.server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.ok(gw.server.port > 0);
  assert.equal(gw.server.url, `http://127.0.0.1:${gw.server.port}/`);
  assert.equal(gw.wsUrl, `ws://127.0.0.1:${gw.server.port}/api/ws`);
  const { client, ready } = await TestClient.ready(gw.wsUrl);
  assert.equal(ready.protocol, "switchboard/1");
  assert.equal(ready.epoch, gw.gateway.epoch);
  assert.deepEqual(await client.call("echo", ["hi"]), { jsonrpc: "2.0", id: 1, result: ["hi"] });
  assert.equal(await upgradeStatus(`${gw.wsUrl}/elsewhere`), 404, "nothing else is mounted");
  await client.close();
});

test("serve() with a custom path mounts the gateway there and not at /api/ws", async () => {
  await using gw = await startGateway({ methods: { echo: (p: unknown) => p } }, { path: "/rpc/v1" });
  assert.equal(gw.wsUrl, `ws://127.0.0.1:${gw.server.port}/rpc/v1`);
  const { client } = await TestClient.ready(gw.wsUrl);
  assert.deepEqual((await client.call("echo", { a: 1 })).result, { a: 1 });
  assert.equal(await upgradeStatus(`ws://127.0.0.1:${gw.server.port}/api/ws`), 404);
  await assert.rejects(TestClient.open(`ws://127.0.0.1:${gw.server.port}/api/ws`));
  await client.close();
});

test("close() is graceful: 1001 to every client, in-flight handlers aborted, then no new connections", async () => {
  const signals: AbortSignal[] = [];
  const gw = await startGateway({
    methods: {
      echo: (p: unknown) => p,
      // As demo.sleep: a concurrent handler that stops when its signal aborts.
      sleep: method({
        concurrent: true,
        handler: (_params: unknown, ctx: HandlerContext) =>
          new Promise((resolve, reject) => {
            signals.push(ctx.signal);
            const timer = setTimeout(() => resolve("slept"), 60_000);
            ctx.signal.addEventListener("abort", () => {
              clearTimeout(timer);
              reject(ctx.signal.reason);
            });
          }),
      }),
    },
  });
  const a = await TestClient.ready(gw.wsUrl);
  const b = await TestClient.ready(gw.wsUrl);
  a.client.send({ jsonrpc: "2.0", id: "zz", method: "sleep" });
  assert.deepEqual((await a.client.call("echo", ["beside it"])).result, ["beside it"], "the sleep runs concurrently");
  assert.deepEqual((await b.client.call("echo", ["b"])).result, ["b"]);
  assert.equal(signals.length, 1);
  assert.equal(signals[0]!.aborted, false);

  await within(gw.server.close(), 5_000, "server.close()");
  assert.deepEqual(await within(a.client.closed, 3_000, "client a closed"), { code: 1001, reason: "shutdown" });
  assert.deepEqual(await within(b.client.closed, 3_000, "client b closed"), { code: 1001, reason: "shutdown" });
  assert.equal(signals[0]!.aborted, true, "the in-flight handler's signal is aborted");
  assert.equal(a.client.inbox.length, 0, "no answer for the abandoned request");
  assert.equal(gw.gateway.connections.size, 0);
  assert.deepEqual(
    gw.logs.filter((entry) => entry.message === "connection closed").map((entry) => entry.fields!.reason),
    ["shutdown", "shutdown"],
  );

  await assert.rejects(TestClient.open(gw.wsUrl), "a new connection attempt fails");
  await assert.rejects(upgradeStatus(gw.wsUrl), "nothing listens any more");
  await within(gw.server.close(), 3_000, "a second server.close()");
});

test("guard() refuses a WebSocket upgrade over maxConnections with 503, and accepts again once one closes", async () => {
  await using gw = await startGateway({ limits: { maxConnections: 2 }, methods: { echo: (p: unknown) => p } });
  const a = await TestClient.ready(gw.wsUrl);
  const b = await TestClient.ready(gw.wsUrl);
  assert.equal(await upgradeStatus(gw.wsUrl), 503);
  await assert.rejects(TestClient.open(gw.wsUrl), "a third WebSocket cannot connect");
  assert.equal(gw.gateway.connections.size, 2);
  assert.deepEqual((await b.client.call("echo", [1])).result, [1], "the others are unaffected");

  await a.client.close();
  await until(() => gw.gateway.connections.size === 1, 3_000, "the closed connection to be released");
  const c = await TestClient.ready(gw.wsUrl);
  assert.deepEqual((await c.client.call("echo", [2])).result, [2]);
  await Promise.all([b.client.close(), c.client.close()]);
});

test("maxConnections holds for a burst of simultaneous upgrades: extra ones are refused (503, or closed 1013 unanswered)", async () => {
  await using gw = await startGateway({ limits: { maxConnections: 2 }, methods: { echo: (p: unknown) => p } });
  const attempts = await Promise.allSettled(Array.from({ length: 6 }, () => TestClient.open(gw.wsUrl)));
  const opened = attempts.flatMap((attempt) => (attempt.status === "fulfilled" ? [attempt.value] : []));
  // Each opened socket either gets gateway.ready or is closed by the server.
  const closed = new Set<TestClient>();
  for (const client of opened) void client.closed.then(() => closed.add(client));
  await until(
    () => opened.every((client) => client.inbox.length > 0 || closed.has(client)),
    3_000,
    "every socket answered or closed",
  );
  const admitted = opened.filter((client) => client.inbox[0]?.params?.type === "gateway.ready" && !closed.has(client));
  const turnedAway = opened.filter((client) => !admitted.includes(client));
  assert.equal(admitted.length, 2, `${admitted.length} of 6 admitted`);
  for (const client of turnedAway) {
    assert.equal((await client.closed).code, 1013);
    assert.deepEqual(client.inbox, [], "a refused socket gets no gateway.ready");
  }
  await until(() => gw.gateway.connections.size === 2, 3_000, "only the admitted connections remain");
  for (const client of admitted) {
    client.inbox.shift();
    assert.deepEqual((await client.call("echo", ["in"])).result, ["in"]);
  }
  await Promise.all(admitted.map((client) => client.close()));
});

test("a frame of maxMessageBytes + 1 bytes closes that connection with 1009; other clients are unaffected", async () => {
  await using gw = await startGateway({ limits: { maxMessageBytes: 1024 }, methods: { echo: (p: unknown) => p } });
  const big = await TestClient.ready(gw.wsUrl);
  const wide = await TestClient.ready(gw.wsUrl);
  const other = await TestClient.ready(gw.wsUrl);

  big.client.send(frameOf(1024, 1));
  assert.equal((await big.client.next()).id, 1, "a frame of exactly maxMessageBytes is fine");
  big.client.send(frameOf(1025, 2));
  assert.equal((await within(big.client.closed, 3_000, "close after the oversized frame")).code, 1009);
  assert.deepEqual(big.client.inbox, [], "the oversized frame is not answered");

  // The limit is in UTF-8 bytes: 1025 bytes in fewer than 1024 characters is too big too.
  const multibyte = frameOf(1025, 3, "é");
  assert.ok(multibyte.length < 1024);
  wide.client.send(multibyte);
  assert.equal((await within(wide.client.closed, 3_000, "close after the oversized multi-byte frame")).code, 1009);

  assert.deepEqual((await other.client.call("echo", ["still here"])).result, ["still here"]);
  await until(() => gw.gateway.connections.size === 1, 3_000, "the closed connections to be released");
  await other.client.close();
});

test("startup tasks start once, before the first gateway.ready; a throwing and a rejecting task are logged, not fatal", async () => {
  const calls: Record<string, number> = { sync: 0, throws: 0, rejects: 0, pending: 0 };
  await using gw = await startGateway({
    startup: [
      function sync() {
        calls.sync!++;
      },
      function throws() {
        calls.throws!++;
        throw new Error("no tools");
      },
      async function rejects() {
        calls.rejects!++;
        await null;
        throw new Error("no index");
      },
      // Never settles: gateway.ready must not wait for it.
      function pending() {
        calls.pending!++;
        return new Promise(() => {});
      },
    ],
    ready: () => ({ calls_at_ready: { ...calls } }),
    methods: { echo: (p: unknown) => p },
  });
  assert.deepEqual(calls, { sync: 0, throws: 0, rejects: 0, pending: 0 }, "nothing starts before a connection");

  const first = await TestClient.ready(gw.wsUrl);
  assert.deepEqual(
    first.ready.calls_at_ready,
    { sync: 1, throws: 1, rejects: 1, pending: 1 },
    "all started before the first gateway.ready",
  );
  const others = [await TestClient.ready(gw.wsUrl), await TestClient.ready(gw.wsUrl)];
  for (const other of others) assert.equal(other.ready.protocol, "switchboard/1");
  assert.deepEqual(calls, { sync: 1, throws: 1, rejects: 1, pending: 1 }, "started once across connections");

  const failed = () => gw.logs.filter((entry) => entry.message === "startup task failed");
  await until(() => failed().length === 2, 3_000, "both failures logged");
  assert.deepEqual(
    failed().map((entry) => [entry.level, entry.fields!.task, (entry.fields!.error as Error).message]).sort(),
    [
      ["error", "rejects", "no index"],
      ["error", "throws", "no tools"],
    ],
  );
  for (const { client } of [first, ...others]) assert.deepEqual((await client.call("echo", [1])).result, [1]);
  await Promise.all([first, ...others].map(({ client }) => client.close()));
  assert.equal(failed().length, 2, "failures are logged once");
});
