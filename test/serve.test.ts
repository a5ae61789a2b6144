/** serve() on this runtime: addressing, graceful close, the guard's cap, frame size, startup tasks. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { method } from "../src/mod.ts";
import { TestClient } from "./helpers/client.ts";
import { startGateway, until, upgradeStatus } from "./helpers/runtime.ts";

test("serve() binds a free port, reports its HTTP base URL and mounts the gateway at the given path", async () => {
  await using gw = await startGateway({ methods: { hi: () => "hi" } }, { path: "/rpc" });
  assert.match(gw.server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal(gw.server.url, `http://127.0.0.1:${gw.server.port}/`);
  assert.ok(gw.server.port > 0);
  const { client } = await TestClient.ready(gw.wsUrl);
  assert.equal((await client.call("hi")).result, "hi");
  await client.close();
  await assert.rejects(TestClient.open(gw.wsUrl.replace("/rpc", "/api/ws")), "nothing at the default path");
});

test("close() sends 1001 to every client, aborts in-flight handlers and stops accepting", async () => {
  let aborted = false;
  const gw = await startGateway({
    methods: {
      wait: method({ concurrent: true, handler: (_p, ctx) => new Promise((resolve) => ctx.signal.addEventListener("abort", () => ((aborted = true), resolve(null)))) }),
    },
  });
  const a = await TestClient.ready(gw.wsUrl);
  const b = await TestClient.ready(gw.wsUrl);
  a.client.send({ jsonrpc: "2.0", id: 1, method: "wait" });
  await until(() => [...gw.gateway.connections].some((c) => c.inFlight === 1), 3_000, "handler in flight");
  await gw.server.close();
  assert.equal((await a.client.closed).code, 1001);
  assert.equal((await b.client.closed).code, 1001);
  assert.equal(aborted, true);
  assert.equal(gw.gateway.connections.size, 0);
  await assert.rejects(TestClient.open(gw.wsUrl));
  assert.equal(gw.logs.filter((entry) => entry.message === "connection closed" && entry.fields!.reason === "shutdown").length, 2);
});

test("guard() refuses upgrades over maxConnections with 503 and accepts again once one closes", async () => {
  await using gw = await startGateway({ limits: { maxConnections: 2 }, methods: {} });
  const a = await TestClient.ready(gw.wsUrl);
  const b = await TestClient.ready(gw.wsUrl);
  assert.equal(await upgradeStatus(gw.wsUrl), 503);
  await assert.rejects(TestClient.open(gw.wsUrl));
  await a.client.close();
  await until(() => gw.gateway.connections.size === 1);
  const c = await TestClient.ready(gw.wsUrl);
  await Promise.all([b.client.close(), c.client.close()]);
});

test("a frame over maxMessageBytes closes that connection with 1009; other clients are unaffected", async () => {
  await using gw = await startGateway({ limits: { maxMessageBytes: 1024 }, methods: { echo: (p: unknown) => p } });
  const big = await TestClient.ready(gw.wsUrl);
  const other = await TestClient.ready(gw.wsUrl);
  const fits = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "echo", params: ["x".repeat(900)] });
  big.client.send(fits);
  assert.equal((await big.client.next()).id, 1, "a frame under the limit is fine");
  const frame = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "echo", params: [""] });
  big.client.send(frame.replace('""', `"${"x".repeat(1025 - frame.length + 2)}"`));
  assert.equal((await big.client.closed).code, 1009);
  assert.deepEqual((await other.client.call("echo", ["still here"])).result, ["still here"]);
  await other.client.close();
});

test("startup tasks start once, before the first gateway.ready; failing ones are logged, not fatal", async () => {
  const started: string[] = [];
  await using gw = await startGateway({
    startup: [
      () => void started.push("sync"),
      function throws() {
        throw new Error("no tools");
      },
      async function rejects() {
        throw new Error("no index");
      },
      () => new Promise(() => started.push("never settles")),
    ],
    methods: { started: () => started },
  });
  assert.deepEqual(started, [], "nothing starts before a connection");
  const a = await TestClient.ready(gw.wsUrl);
  assert.deepEqual((await a.client.call("started")).result, ["sync", "never settles"]);
  const b = await TestClient.ready(gw.wsUrl);
  assert.deepEqual((await b.client.call("started")).result, ["sync", "never settles"], "not started again");
  await until(() => gw.logs.filter((entry) => entry.message === "startup task failed").length === 2);
  assert.deepEqual(gw.logs.filter((entry) => entry.message === "startup task failed").map((entry) => entry.fields!.task).sort(), ["rejects", "throws"]);
  await Promise.all([a.client.close(), b.client.close()]);
});
