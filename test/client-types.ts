/**
 * Type tests for `connect<typeof gateway>(url)`: checked by `tsc` (part of `npm test`), never
 * run. Every `@ts-expect-error` line must fail to type-check, or tsc reports the directive unused.
 */
import * as v from "valibot";
import { createGateway, method } from "../src/mod.ts";
import { connect } from "../src/client/mod.ts";
import { WebSocket as NodeWebSocket } from "ws";

const gateway = createGateway({
  methods: {
    "math.add": method({ params: v.tuple([v.number(), v.number()]), handler: ([a, b]) => a + b }),
    "note.save": method({
      params: v.object({ text: v.string() }),
      handler: (p) => Promise.resolve({ saved: p.text.length }),
    }),
    "clock.now": () => new Date().toISOString(),
  },
});

/** Fails to compile unless `A` and `B` are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expect = <T extends true>(_proof?: T) => {};

export async function typeTests() {
  const client = connect<typeof gateway>("ws://127.0.0.1:1/api/ws");

  // Params and results are read off the method definitions.
  const sum = await client.call("math.add", [1, 2]);
  expect<Equal<typeof sum, number>>();
  const saved = await client.call("note.save", { text: "hi" });
  expect<Equal<typeof saved, { saved: number }>>();
  const now = await client.call("clock.now");
  expect<Equal<typeof now, string>>();

  // Built-ins are typed on every gateway.
  const pong = await client.call("gateway.ping");
  expect<Equal<typeof pong, { ok: true }>>();
  const resumed = await client.call("session.resume", { session_id: "s", after_seq: 3 });
  expect<Equal<typeof resumed.latest_seq, number>>();
  expect<Equal<typeof resumed.truncated, boolean>>();

  // @ts-expect-error: no such method
  await client.call("math.sub", [1, 2]);
  // @ts-expect-error: params of the wrong shape
  await client.call("math.add", ["1", 2]);
  // @ts-expect-error: a missing field
  await client.call("note.save", {});
  // @ts-expect-error: the result is a number, not a string
  const wrong: string = await client.call("math.add", [1, 2]);
  void wrong;

  // Untyped, any method name is accepted.
  const loose = connect("ws://127.0.0.1:1/api/ws");
  await loose.call("anything", { at: "all" });
}

// Both WebSocket classes fit `options.WebSocket` as they are: the global one and the `ws` package's.
connect("ws://127.0.0.1:1/api/ws", { WebSocket: globalThis.WebSocket });
connect("ws://127.0.0.1:1/api/ws", { WebSocket: NodeWebSocket });
class NoSend {
  onmessage = null;
  onclose = null;
  onerror = null;
  close(): void {}
}
// @ts-expect-error: a class without `send` is not a WebSocket
connect("ws://127.0.0.1:1/api/ws", { WebSocket: NoSend });
