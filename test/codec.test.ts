import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { classify, decode } from "../src/jsonrpc/codec.ts";
import { NotificationSchema, RequestSchema } from "../src/jsonrpc/schema.ts";

test("decode classifies requests, notifications, responses and invalid messages", () => {
  assert.deepEqual(decode('{"jsonrpc":"2.0","id":7,"method":"a","params":[1]}'), {
    kind: "request",
    id: 7,
    method: "a",
    params: [1],
  });
  assert.deepEqual(decode('{"jsonrpc":"2.0","id":null,"method":"a"}'), {
    kind: "request",
    id: null,
    method: "a",
    params: undefined,
  });
  assert.deepEqual(decode('{"jsonrpc":"2.0","method":"a","params":{"x":1}}'), {
    kind: "notification",
    method: "a",
    params: { x: 1 },
  });
  assert.deepEqual(decode('{"jsonrpc":"2.0","id":"s","result":null}'), { kind: "response", id: "s", result: null });
  assert.deepEqual(decode('{"jsonrpc":"2.0","id":"s","error":{"code":1,"message":"m"}}'), {
    kind: "response",
    id: "s",
    error: { code: 1, message: "m" },
  });
  for (
    const text of [
      '{"jsonrpc":"2.0","id":1,"method":"a","params":3}',
      '{"jsonrpc":"2.0","id":1,"method":"a","params":null}',
      '{"jsonrpc":"1.0","id":1,"method":"a"}',
      '{"id":1,"method":"a"}',
      '{"jsonrpc":"2.0","id":{},"method":"a"}',
      '{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}',
      '{"jsonrpc":"2.0","id":1}',
      '"a"',
      "null",
      "42",
    ]
  ) {
    const message = decode(text);
    assert.ok(message && !Array.isArray(message) && message.kind === "invalid", text);
    assert.equal(message.error.code, -32600, text);
  }
});

test("decode: blank frames are skipped, bad JSON is a parse error, batches are classified per item", () => {
  assert.equal(decode(""), undefined);
  assert.equal(decode(" \n\t "), undefined);
  assert.deepEqual(decode('  {"jsonrpc":"2.0","method":"a"}\n'), {
    kind: "notification",
    method: "a",
    params: undefined,
  });
  const parse = decode("{nope");
  assert.ok(parse && !Array.isArray(parse) && parse.kind === "invalid");
  assert.deepEqual([parse.id, parse.error.code], [null, -32700]);
  const empty = decode("[]");
  assert.ok(empty && !Array.isArray(empty) && empty.kind === "invalid" && empty.error.code === -32600);
  const batch = decode('[{"jsonrpc":"2.0","id":1,"method":"a"},1,{"jsonrpc":"2.0","method":"b"}]');
  assert.ok(Array.isArray(batch));
  assert.deepEqual(batch.map((m) => m.kind), ["request", "invalid", "notification"]);
});

test("an invalid request keeps a valid id and says why in data.issues", () => {
  const message = decode('{"jsonrpc":"2.0","id":"x","method":5}');
  assert.ok(message && !Array.isArray(message) && message.kind === "invalid");
  assert.equal(message.id, "x");
  const issues = (message.error.data as { issues: { path: unknown[] }[] }).issues;
  assert.ok(issues.some((issue) => issue.path[0] === "method"), JSON.stringify(issues));
});

test("the hand-written request check agrees with the valibot schemas on generated messages", () => {
  // A small deterministic generator (xorshift) over the shapes that matter.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const values = [undefined, null, 0, 1.5, -3, "", "x", true, [], [1, "a"], {}, { a: 1 }];
  const pick = () => values[rand(values.length)];
  let checked = 0;
  for (let i = 0; i < 5_000; i++) {
    const o: Record<string, unknown> = {};
    if (rand(5) > 0) o.jsonrpc = rand(6) > 0 ? "2.0" : pick();
    if (rand(4) > 0) o.method = rand(3) > 0 ? "m" : pick();
    else o.method = pick();
    if (rand(2) > 0) o.params = pick();
    if (rand(3) > 0) o.id = pick();
    const parsed = JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
    if (!("method" in parsed)) continue;
    const kind = classify(parsed).kind;
    const schema = "id" in parsed ? RequestSchema : NotificationSchema;
    const valid = v.is(schema, parsed) && (parsed.params === undefined || typeof parsed.params === "object");
    assert.equal(kind !== "invalid", valid, JSON.stringify(parsed));
    checked++;
  }
  assert.ok(checked > 2_000);
});
