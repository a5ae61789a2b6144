/** The examples of JSON-RPC 2.0 §7, end to end over a real WebSocket. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { method } from "../src/mod.ts";
import { TestClient } from "./helpers/client.ts";
import { startGateway } from "./helpers/runtime.ts";
import * as v from "valibot";

const updates: unknown[] = [];
const methods = {
  subtract: method({
    params: v.union([
      v.tuple([v.number(), v.number()]),
      v.object({ minuend: v.number(), subtrahend: v.number() }),
    ]),
    handler: (p) => (Array.isArray(p) ? p[0] - p[1] : p.minuend - p.subtrahend),
  }),
  sum: (p: number[]) => p.reduce((a, b) => a + b, 0),
  update: (p: unknown) => void updates.push(p),
  notify_hello: (p: unknown) => void updates.push(p),
  get_data: () => ["hello", 5],
};

/** Sends `frame` and returns the reply, or undefined when none comes (checked with a ping after it). */
async function exchange(client: TestClient, frame: string): Promise<unknown> {
  client.send(frame);
  client.send({ jsonrpc: "2.0", id: "probe", method: "gateway.ping" });
  const first = await client.next();
  if (first.id === "probe") return undefined;
  assert.equal((await client.next()).id, "probe");
  return first;
}

test("JSON-RPC 2.0 §7 examples answer exactly as the specification shows", async () => {
  await using gw = await startGateway({ methods });
  const { client } = await TestClient.ready(gw.wsUrl);
  const cases: [string, unknown][] = [
    ['{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}', { jsonrpc: "2.0", result: 19, id: 1 }],
    ['{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}', { jsonrpc: "2.0", result: -19, id: 2 }],
    ['{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}', {
      jsonrpc: "2.0",
      result: 19,
      id: 3,
    }],
    ['{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}', {
      jsonrpc: "2.0",
      result: 19,
      id: 4,
    }],
    ['{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', undefined],
    ['{"jsonrpc": "2.0", "method": "foobar"}', undefined],
    ['{"jsonrpc": "2.0", "method": "foobar", "id": "1"}', {
      jsonrpc: "2.0",
      error: { code: -32601, message: "Method not found" },
      id: "1",
    }],
    ['{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', {
      jsonrpc: "2.0",
      error: { code: -32700, message: "Parse error" },
      id: null,
    }],
    ['{"jsonrpc": "2.0", "method": 1, "params": "bar"}', {
      jsonrpc: "2.0",
      error: { code: -32600, message: "Invalid Request" },
      id: null,
    }],
    ['[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]', {
      jsonrpc: "2.0",
      error: { code: -32700, message: "Parse error" },
      id: null,
    }],
    ["[]", { jsonrpc: "2.0", error: { code: -32600, message: "Invalid Request" }, id: null }],
    ["[1]", [{ jsonrpc: "2.0", error: { code: -32600, message: "Invalid Request" }, id: null }]],
    [
      "[1,2,3]",
      [1, 2, 3].map(() => ({ jsonrpc: "2.0", error: { code: -32600, message: "Invalid Request" }, id: null })),
    ],
    [
      `[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
      ]`,
      [
        { jsonrpc: "2.0", result: 7, id: "1" },
        { jsonrpc: "2.0", result: 19, id: "2" },
        { jsonrpc: "2.0", error: { code: -32600, message: "Invalid Request" }, id: null },
        { jsonrpc: "2.0", error: { code: -32601, message: "Method not found" }, id: "5" },
        { jsonrpc: "2.0", result: ["hello", 5], id: "9" },
      ],
    ],
    [
      '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]',
      undefined,
    ],
  ];
  for (const [frame, expected] of cases) {
    const reply = await exchange(client, frame);
    assert.deepEqual(withoutData(reply), expected, `reply to ${frame}`);
  }
  assert.deepEqual(updates, [[1, 2, 3, 4, 5], [7], [7]]);
  await client.close();
});

/** The specification's examples show no `data`; ours may add it. Batch replies are compared by id order as sent. */
function withoutData(reply: unknown): unknown {
  if (Array.isArray(reply)) return reply.map(withoutData);
  if (reply && typeof reply === "object" && "error" in reply) {
    const { data: _data, ...error } = (reply as { error: Record<string, unknown> }).error;
    return { ...reply, error };
  }
  return reply;
}
