/**
 * The dispatcher and the client over an in-memory frame socket pair (test/helpers/memory-socket.ts):
 * no network, no runtime, so these run the same everywhere in milliseconds. The same behaviours
 * are tested over real sockets on every runtime in dispatch.test.ts and client.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { Client, type RpcError, type SessionEvent } from "../src/client/mod.ts";
import { createGateway, ErrorCode, method, silentLogger } from "../src/mod.ts";
import { memoryDial } from "./helpers/memory-socket.ts";
import { until } from "./helpers/runtime.ts";

function demoGateway() {
  return createGateway({
    logger: silentLogger,
    methods: {
      "math.add": method({ params: v.tuple([v.number(), v.number()]), handler: ([a, b]) => a + b }),
      "session.create": (_params: unknown, ctx) => ({ session_id: ctx.sessions.create().id }),
      "demo.emit": method({
        params: v.object({ session_id: v.string(), count: v.number() }),
        handler: ({ session_id, count }, ctx) => {
          const session = ctx.session(session_id);
          for (let i = 0; i < count; i++) session.emit("tick", { i });
          return { latest: session.latestSeq };
        },
      }),
    },
  });
}

test("in memory: calls, a batch and errors are answered as over a socket", async () => {
  const gateway = demoGateway();
  const client = new Client<typeof gateway>(memoryDial(gateway).dial, { reconnect: false });
  assert.equal((await client.ready).protocol, "switchboard/1");
  assert.equal(await client.call("math.add", [2, 3]), 5);
  const [sum, missing] = await client.batch([{ method: "math.add", params: [1, 1] }, { method: "no.such" }]);
  assert.deepEqual(sum, { ok: true, result: 2 });
  assert.ok(!missing!.ok && (missing!.error as RpcError).code === ErrorCode.MethodNotFound);
  await assert.rejects(
    client.call("math.add", ["one", 2] as never),
    (error: RpcError) => error.code === ErrorCode.InvalidParams,
  );
  client.close();
  await gateway.close();
});

test("in memory: a drop mid-session is resumed; every event arrives once, in order", async () => {
  const gateway = demoGateway();
  const { dial, drop } = memoryDial(gateway);
  const client = new Client<typeof gateway>(dial, { reconnect: { baseMs: 1, capMs: 5 } });
  const seen: number[] = [];
  client.on("tick", (event: SessionEvent) => seen.push(event.seq!));
  const { session_id } = await client.call("session.create", {});
  await client.call("demo.emit", { session_id, count: 3 });
  drop();
  // Emitted as the connection goes: never reaches this client's socket, kept for the resume.
  gateway.sessions.get(session_id)!.emit("tick", { i: 3 });
  await until(() => client.state === "open");
  await client.call("demo.emit", { session_id, count: 2 }, { idempotent: true });
  await until(() => seen.length === 6);
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
  client.close();
  await gateway.close();
});

test("in memory: a server request re-sent on resume reaches the client's handler once; its answer settles it", async () => {
  const gateway = demoGateway();
  const { dial, drop } = memoryDial(gateway);
  const client = new Client<typeof gateway>(dial, { reconnect: { baseMs: 1, capMs: 5 } });
  let asked = 0;
  let answer: (value: unknown) => void = () => {};
  client.handle("approval", () => {
    asked++;
    return new Promise((resolve) => (answer = resolve));
  });
  const { session_id } = await client.call("session.create", {});
  const answered = gateway.sessions.get(session_id)!.request("approval", { what: "ls" });
  await until(() => asked === 1);
  drop();
  await until(() => client.state === "open");
  await client.call("math.add", [0, 0]); // after the resume, which re-sent the request
  assert.equal(asked, 1, "the re-sent request did not reach the handler again");
  answer({ decision: "allow" });
  assert.deepEqual(await answered, { decision: "allow" });
  client.close();
  await gateway.close();
});
