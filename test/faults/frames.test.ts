/**
 * Fault injection on the wire (see docs/protocol.md, and "A frame's way in" and "Security" in
 * docs/architecture.md): hostile frames sent raw, byte for byte — oversized, invalid UTF-8,
 * floods, deep nesting, prototype names, oversized batches and duplicate ids. Every attack runs
 * beside a well-behaved client that must stay open and keep its answers, and the server must
 * stay up.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { ErrorCode, type Gateway, method } from "../../src/mod.ts";
import { Bystander } from "../helpers/bystander.ts";
import type { Frame } from "../helpers/client.ts";
import { clientFrame, Opcode, RawSocket } from "../helpers/raw-socket.ts";
import { type LogEntry, runtime, startGateway, until } from "../helpers/runtime.ts";

const echo = (p: unknown) => p;

/** A raw connection past `gateway.ready`. */
async function attacker(wsUrl: string): Promise<RawSocket> {
  const socket = await RawSocket.open(wsUrl);
  assert.equal(socket.status, 101);
  assert.equal(((await socket.next()) as Frame).params.type, "gateway.ready");
  return socket;
}

/** A request frame's text. */
const request = (id: unknown, method: string, params?: unknown) =>
  JSON.stringify({ jsonrpc: "2.0", id, method, params });

/** Waits until only the bystander's connection is left. */
const onlyBystanderLeft = (gateway: Gateway) =>
  until(() => gateway.connections.size === 1, 3_000, "the attacking connection to be released");

/** The teardown lines the gateway logged. */
const teardowns = (logs: LogEntry[]) =>
  logs.filter((entry) => entry.message === "connection closed").map((entry) => entry.fields!);

test(`a frame of maxMessageBytes + 1, sent raw whole or in fragments, closes 1009 on ${runtime}; exactly maxMessageBytes is answered`, async () => {
  await using gw = await startGateway({ limits: { maxMessageBytes: 1024 }, methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  const padded = (bytes: number) => {
    const text = request(1, "echo", [""]);
    return text.replace('""', `"${"x".repeat(bytes - text.length)}"`);
  };

  const whole = await attacker(gw.wsUrl);
  whole.send(Opcode.Text, padded(1024));
  assert.equal(((await whole.next()) as Frame).id, 1, "exactly maxMessageBytes is fine");
  whole.send(Opcode.Text, padded(1025));
  assert.equal((await whole.closedWithin()).code, 1009);
  assert.deepEqual(whole.texts, [], "the oversized frame is not answered");

  // Each fragment is under the limit; the message is not.
  const fragmented = await attacker(gw.wsUrl);
  const text = padded(1025);
  fragmented.send(Opcode.Text, text.slice(0, 600), false);
  fragmented.send(Opcode.Continuation, text.slice(600));
  assert.equal((await fragmented.closedWithin()).code, 1009);

  await onlyBystanderLeft(gw.gateway);
  await bystander.leave();
});

test(`a frame header announcing 2^40 bytes is refused at once on ${runtime}, nothing held`, async () => {
  await using gw = await startGateway({ limits: { maxMessageBytes: 1024 }, methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);
  const header = new Uint8Array(14);
  header[0] = 0x80 | Opcode.Text;
  header[1] = 0x80 | 127; // masked, 64-bit length follows
  new DataView(header.buffer).setBigUint64(2, 1n << 40n);
  socket.write(header);
  // Deno's WebSocket fails the connection on a frame over its own cap without a close frame.
  assert.equal((await socket.closedWithin()).code, runtime === "deno" ? 1006 : 1009);
  await onlyBystanderLeft(gw.gateway);
  await bystander.leave();
});

test(`an invalid UTF-8 text frame closes that connection (1007 on Node and Bun; Deno drops it) on ${runtime}`, async () => {
  await using gw = await startGateway({ methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  const invalid = [
    [0xc3, 0x28], // a lead byte without its continuation
    [0xed, 0xa0, 0x80], // an encoded UTF-16 surrogate
    [0x22, 0xff, 0x22], // a byte UTF-8 never uses
  ];
  for (const bytes of invalid) {
    const socket = await attacker(gw.wsUrl);
    socket.send(Opcode.Text, new Uint8Array(bytes));
    // Deno's WebSocket fails the connection before any handler sees the frame: no close frame can be sent.
    assert.equal((await socket.closedWithin()).code, runtime === "deno" ? 1006 : 1007, `bytes ${bytes}`);
    assert.deepEqual(socket.texts, [], "nothing is answered");
  }
  // Valid UTF-8 split inside a character across fragments is fine.
  const split = await attacker(gw.wsUrl);
  const bytes = new TextEncoder().encode(request(1, "echo", ["é"]));
  const at = bytes.indexOf(0xc3) + 1;
  split.send(Opcode.Text, bytes.subarray(0, at), false);
  split.send(Opcode.Continuation, bytes.subarray(at));
  assert.deepEqual(await split.next(), { jsonrpc: "2.0", id: 1, result: ["é"] });
  split.destroy();

  await onlyBystanderLeft(gw.gateway);
  assert.equal(teardowns(gw.logs).length, invalid.length + 1);
  await bystander.leave();
});

test(`requests that arrive before a frame closing the connection (1009, 1007) are answered before the close on ${runtime}`, async () => {
  await using gw = await startGateway({ limits: { maxMessageBytes: 1024 }, methods: { echo } });
  const requests = Array.from({ length: 20 }, (_, i) => request(i + 1, "echo", [i]));
  const fatal = [
    { name: "too big", frame: clientFrame(Opcode.Text, new TextEncoder().encode("x".repeat(1025))) },
    { name: "invalid UTF-8", frame: clientFrame(Opcode.Text, new Uint8Array([0x22, 0xff, 0x22])) },
  ];
  for (const { name, frame } of fatal) {
    const socket = await attacker(gw.wsUrl);
    // The valid requests and the fatal frame in one TCP write: the runtime reads them in one go.
    socket.write(
      Buffer.concat([...requests.map((text) => clientFrame(Opcode.Text, new TextEncoder().encode(text))), frame]),
    );
    await socket.closedWithin();
    const answered = socket.texts.map((text) => JSON.parse(text).id);
    assert.deepEqual(answered, requests.map((_, i) => i + 1), `${name}: every earlier request is answered, in order`);
  }
});

test("a flood over messagesPerSecond is answered -32003, and closed 1008 when it goes on; the bystander's calls still answer", async () => {
  await using gw = await startGateway({ limits: { messagesPerSecond: 200 }, methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);

  // One burst of 300: the full bucket (200) is answered, the rest refused — fewer than a second's worth, so no close.
  socket.sendTexts(Array.from({ length: 300 }, (_, i) => request(i, "echo", [i])));
  const replies: Frame[] = [];
  for (let i = 0; i < 300; i++) replies.push(await socket.next());
  assert.deepEqual(
    replies.map((reply) => reply.id),
    Array.from({ length: 300 }, (_, i) => i),
    "every request answered, in order",
  );
  assert.ok(replies.slice(0, 200).every((reply) => reply.result?.[0] === reply.id), "the bucket's 200 run");
  const refused = replies.filter((reply) => reply.error);
  assert.ok(refused.length >= 1, "some are refused");
  for (const reply of refused) {
    assert.deepEqual(reply.error, {
      code: ErrorCode.Overloaded,
      message: "Overloaded: too many messages per second",
      data: { messages_per_second: 200 },
    });
  }
  await bystander.check("the bystander during the flood");

  // Within the rate again, the same connection is served.
  let answer: Frame = undefined;
  for (let i = 0; i < 40 && !answer?.result; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    socket.send(Opcode.Text, request(`again-${i}`, "echo", ["ok"]));
    answer = await socket.next();
  }
  assert.deepEqual(answer.result, ["ok"]);

  // A flood that goes on, 50 requests every 10 ms (25 times the rate), is closed 1008 — though a
  // token comes back every 5 ms, so it never has many refusals in a row.
  let closed = false;
  void socket.closed.then(() => (closed = true));
  let sent = 0;
  for (let burst = 0; burst < 40 && !closed; burst++) {
    socket.sendTexts(Array.from({ length: 50 }, (_, i) => request(`flood-${burst}-${i}`, "echo", [i])));
    sent += 50;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const { code } = await socket.closedWithin();
  // Deno drops the TCP connection when frames are still unread at close, so the close frame may be lost.
  assert.ok(code === 1008 || (runtime === "deno" && code === 1006), `closed with ${code}`);
  assert.ok(socket.texts.length < sent, `the flood is cut off: ${socket.texts.length} of ${sent} answered`);
  await onlyBystanderLeft(gw.gateway);
  const [teardown] = teardowns(gw.logs);
  assert.equal(teardown!.reason, "rate_limited");
  assert.ok((teardown!.rate_limited as number) > 200, `rate_limited: ${teardown!.rate_limited}`);
  // Past the first 100 refusals of a flood, refused frames are dropped unparsed, unanswered.
  const overloaded = socket.texts.filter((text) => text.includes(`"code":${ErrorCode.Overloaded}`)).length;
  assert.ok(overloaded <= 100 + 100, `${overloaded} refusals answered`);
  assert.ok(overloaded < (teardown!.rate_limited as number), "some refusals went unanswered");
  await bystander.leave();
});

test("binary frames and oversized batches count against messagesPerSecond too: a flood of them is closed 1008", async () => {
  let ran = 0;
  await using gw = await startGateway({
    limits: { messagesPerSecond: 200, maxBatch: 2 },
    methods: { echo, count: () => ++ran },
  });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);
  const batch = JSON.stringify([0, 1, 2].map((i) => ({ jsonrpc: "2.0", id: i, method: "count" })));
  for (let i = 0; i < 300; i++) {
    socket.send(Opcode.Binary, new Uint8Array([123, 125]));
    socket.send(Opcode.Text, batch);
  }
  const { code } = await socket.closedWithin();
  assert.ok(code === 1008 || (runtime === "deno" && code === 1006), `closed with ${code}`);
  assert.ok(socket.texts.length < 600, `${socket.texts.length} of 600 answered`);
  for (const text of socket.texts) {
    assert.deepEqual([JSON.parse(text).id, JSON.parse(text).error.code], [null, ErrorCode.InvalidRequest]);
  }
  assert.equal(ran, 0, "no call of an oversized batch ran");
  await onlyBystanderLeft(gw.gateway);
  assert.equal(teardowns(gw.logs)[0]!.reason, "rate_limited");
  await bystander.leave();
});

test("deep nesting: a 100,000-deep frame answers -32600 before it is parsed (with its id when id and method come first); 600-deep params, id or method answer -32602 / -32600 with the id; the connection goes on", async () => {
  let ran = 0;
  await using gw = await startGateway({
    methods: { echo, typed: method({ params: v.object({ a: v.unknown() }), handler: () => ++ran }) },
  });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);
  const nest = (depth: number) => ({
    array: "[".repeat(depth) + "]".repeat(depth),
    object: '{"a":'.repeat(depth) + "1" + "}".repeat(depth),
  });

  // Long frames are refused whole before JSON.parse would build 100,000 nested arrays.
  const hostile = nest(100_000);
  const refused = {
    jsonrpc: "2.0",
    id: null,
    error: { code: ErrorCode.InvalidRequest, message: "Nested too deep", data: { max_depth: 32 } },
  };
  for (
    const frame of [
      `[{"jsonrpc":"2.0","id":3,"method":"echo","params":${hostile.array}}]`,
      `{"jsonrpc":"2.0","method":"echo","params":${hostile.array}}`,
      `{"jsonrpc":"2.0","id":"srq-none","result":${hostile.array}}`,
      `{"jsonrpc":"2.0","id":${hostile.array},"method":"echo","params":[]}`,
      `{"jsonrpc":"2.0","method":"echo","params":${hostile.array},"id":5}`,
    ]
  ) {
    socket.send(Opcode.Text, frame);
    assert.deepEqual(await socket.next(), refused);
  }
  // A request whose id and method come before the nesting is refused with its own id: its caller can match it.
  for (
    const [id, frame] of [
      [1, `{"jsonrpc":"2.0","id":1,"method":"echo","params":${hostile.array}}`],
      ["two", `{ "jsonrpc" : "2.0" , "method":"typed", "id" : "two","params":${hostile.object}}`],
    ] as const
  ) {
    socket.send(Opcode.Text, frame);
    assert.deepEqual(await socket.next(), { ...refused, id });
  }
  // Brackets inside strings (escaped quotes and backslashes included) are not nesting.
  const text = '\\"' + "[".repeat(10_000);
  socket.send(Opcode.Text, request(4, "echo", [text]));
  assert.deepEqual(await socket.next(), { jsonrpc: "2.0", id: 4, result: [text] });

  // A long frame nested past the cap but not absurdly is parsed: each request gets its own answer.
  const long = "x".repeat(5_000);
  socket.send(
    Opcode.Text,
    `[${request(10, "echo", [long])},{"jsonrpc":"2.0","id":11,"method":"echo","params":${nest(40).array}}]`,
  );
  const mixed = (await socket.next()) as Frame[];
  assert.deepEqual(mixed.map((reply) => [reply.id, reply.error?.code]), [[10, undefined], [
    11,
    ErrorCode.InvalidParams,
  ]]);

  // Shorter frames are parsed, and the depth check answers with the request's id.
  const deep = nest(600);
  const tooDeep = {
    code: ErrorCode.InvalidParams,
    message: "Invalid params: nested too deeply",
    data: { max_depth: 32 },
  };
  socket.send(Opcode.Text, `{"jsonrpc":"2.0","id":5,"method":"echo","params":${deep.array}}`);
  assert.deepEqual(await socket.next(), { jsonrpc: "2.0", id: 5, error: tooDeep });
  socket.send(Opcode.Text, `{"jsonrpc":"2.0","id":6,"method":"typed","params":${deep.object}}`);
  assert.deepEqual(
    await socket.next(),
    { jsonrpc: "2.0", id: 6, error: tooDeep },
    "refused before the schema walks it",
  );
  socket.send(Opcode.Text, `[{"jsonrpc":"2.0","id":7,"method":"echo","params":${deep.array}}]`);
  assert.deepEqual(await socket.next(), [{ jsonrpc: "2.0", id: 7, error: tooDeep }], "inside a batch");
  socket.send(Opcode.Text, `{"jsonrpc":"2.0","method":"echo","params":${deep.array}}`);
  socket.send(Opcode.Text, `{"jsonrpc":"2.0","id":"srq-none","result":${deep.array}}`);
  socket.send(Opcode.Text, `{"jsonrpc":"2.0","id":${deep.array},"method":"echo","params":[]}`);
  const byId = (await socket.next()) as Frame;
  assert.deepEqual(
    [byId.id, byId.error.code],
    [null, ErrorCode.InvalidRequest],
    "a notification and a stray reply got no answer; a deep id is no id",
  );
  socket.send(Opcode.Text, `{"jsonrpc":"2.0","id":8,"method":${deep.object}}`);
  const byMethod = (await socket.next()) as Frame;
  assert.deepEqual([byMethod.id, byMethod.error.code], [8, ErrorCode.InvalidRequest]);

  socket.send(Opcode.Text, request(9, "echo", { a: [[[1]]] }));
  assert.deepEqual(await socket.next(), { jsonrpc: "2.0", id: 9, result: { a: [[[1]]] } });
  assert.equal(ran, 0);
  assert.equal(gw.gateway.connections.size, 2);
  socket.destroy();
  await bystander.leave();
});

test("blank frames count against messagesPerSecond too: unanswered, and a flood of them is closed 1008", async () => {
  await using gw = await startGateway({ limits: { messagesPerSecond: 200 }, methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);
  socket.send(Opcode.Text, " \n\t");
  socket.send(Opcode.Text, request(1, "echo", [1]));
  assert.deepEqual(await socket.next(), { jsonrpc: "2.0", id: 1, result: [1] }, "a blank frame is not answered");
  socket.sendTexts(Array.from({ length: 1_000 }, () => " "));
  const { code } = await socket.closedWithin();
  assert.ok(code === 1008 || (runtime === "deno" && code === 1006), `closed with ${code}`);
  assert.deepEqual(socket.texts, []);
  await onlyBystanderLeft(gw.gateway);
  assert.equal(teardowns(gw.logs)[0]!.reason, "rate_limited");
  await bystander.leave();
});

test("prototype member names are no methods (-32601), and __proto__ / constructor in params pollute nothing", async () => {
  await using gw = await startGateway({
    methods: { echo, greet: method({ params: v.object({ name: v.string() }), handler: (p) => `hi ${p.name}` }) },
  });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);
  const names = [
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "isPrototypeOf",
    "__defineGetter__",
    "__lookupGetter__",
  ];

  socket.sendTexts(names.map((name) => request(name, name, {})));
  for (const name of names) {
    const reply = (await socket.next()) as Frame;
    assert.deepEqual([reply.id, reply.error?.code], [name, ErrorCode.MethodNotFound], name);
  }
  socket.send(Opcode.Text, JSON.stringify(names.map((name, i) => ({ jsonrpc: "2.0", id: i, method: name }))));
  const batch = (await socket.next()) as Frame[];
  assert.deepEqual(batch.map((reply) => reply.error.code), names.map(() => ErrorCode.MethodNotFound), "in a batch");

  // Sent as text: JSON.parse makes "__proto__" an own key, as any hostile peer's frame does.
  const hostile = [
    ['{"__proto__":{"polluted":true}}', "echo"],
    ['{"constructor":{"prototype":{"polluted":true}}}', "echo"],
    ['[{"__proto__":{"polluted":true}}]', "echo"],
    ['{"name":"x","__proto__":{"polluted":true}}', "greet"],
    ['{"__proto__":{"name":"x"}}', "greet"],
    ['{"__proto__":{"session_id":"x"}}', "session.resume"],
    ['{"constructor":{"prototype":{"id":1}}}', "rpc.cancel"],
  ] as const;
  for (const [params, name] of hostile) {
    socket.send(Opcode.Text, `{"jsonrpc":"2.0","id":"p","method":"${name}","params":${params}}`);
    const reply = (await socket.next()) as Frame;
    if (name === "echo") assert.equal(JSON.stringify(reply.result), params, "echoed as plain data");
    else if (params.startsWith('{"name"')) assert.equal(reply.result, "hi x");
    else {assert.equal(
        reply.error?.code,
        ErrorCode.InvalidParams,
        `${name} ${params}: a key under __proto__ is not a param`,
      );}
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"), false);
  assert.equal(([] as unknown as Record<string, unknown>).polluted, undefined);
  assert.equal(gw.gateway.connections.size, 2);
  socket.destroy();
  await bystander.leave();
});

test("a batch over maxBatch answers one -32600 (id null) and runs none of it; the connection goes on", async () => {
  let ran = 0;
  await using gw = await startGateway({ limits: { maxBatch: 5 }, methods: { echo, count: () => ++ran } });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);
  const batchOf = (n: number) =>
    JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "count" })));
  const tooLarge = {
    jsonrpc: "2.0",
    id: null,
    error: { code: ErrorCode.InvalidRequest, message: "Batch too large", data: { max_batch: 5 } },
  };

  socket.send(Opcode.Text, batchOf(6));
  assert.deepEqual(await socket.next(), tooLarge);
  socket.send(Opcode.Text, batchOf(10_000));
  assert.deepEqual(await socket.next(), tooLarge);
  socket.send(Opcode.Text, JSON.stringify([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(await socket.next(), tooLarge, "even when its items are invalid");
  assert.equal(ran, 0);
  assert.ok(await bystander.client.silentFor(20));

  socket.send(Opcode.Text, batchOf(5));
  assert.equal(((await socket.next()) as Frame[]).length, 5, "a batch of exactly maxBatch runs");
  assert.equal(ran, 5);
  assert.deepEqual(socket.texts, [], "one answer per oversized batch, no more");
  socket.destroy();
  await bystander.leave();
});

test("duplicate in-flight ids under load: each duplicate answers -32600, each original answers once; another connection may use the same ids", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await using gw = await startGateway({
    methods: { echo, park: method({ concurrent: true, handler: async (p: unknown) => (await released, p) }) },
  });
  const bystander = await Bystander.join(gw.wsUrl);
  const socket = await attacker(gw.wsUrl);
  const ids: (string | number)[] = [
    ...Array.from({ length: 10 }, (_, i) => i),
    ...Array.from({ length: 10 }, (_, i) => String(i)),
    "__proto__",
    "constructor",
  ];

  socket.sendTexts(ids.map((id) => request(id, "park", [id])));
  // The bystander parks calls under the very same ids: ids belong to their connection.
  for (const id of ids) bystander.client.send(request(id, "park", ["bystander"]));
  socket.sendTexts(ids.map((id) => request(id, "park", ["duplicate"])));
  socket.send(
    Opcode.Text,
    JSON.stringify(ids.map((id) => ({ jsonrpc: "2.0", id, method: "park", params: ["duplicate"] }))),
  );
  // Within one batch: the second of two equal ids is the duplicate.
  socket.send(
    Opcode.Text,
    JSON.stringify(["x", "x"].map((id, i) => ({ jsonrpc: "2.0", id, method: "park", params: [i] }))),
  );

  const duplicate = { code: ErrorCode.InvalidRequest, message: "Duplicate id: a request with this id is in flight" };
  for (const id of ids) assert.deepEqual(await socket.next(), { jsonrpc: "2.0", id, error: duplicate });
  assert.deepEqual(await socket.next(), ids.map((id) => ({ jsonrpc: "2.0", id, error: duplicate })));
  assert.ok(await bystander.client.silentFor(20), "the bystander's parked calls are not duplicates");

  release();
  const answers = new Map<unknown, Frame>();
  let pair: Frame[] | undefined;
  for (let i = 0; i <= ids.length; i++) {
    const reply = (await socket.next()) as Frame;
    if (Array.isArray(reply)) {
      pair = reply;
    } else {
      assert.ok(!answers.has(reply.id), `one answer for ${reply.id}`);
      answers.set(reply.id, reply);
    }
  }
  for (const id of ids) assert.deepEqual(answers.get(id), { jsonrpc: "2.0", id, result: [id] }, `the original ${id}`);
  // A batch answers in completion order: the duplicate at once, the original when released.
  assert.deepEqual(pair, [
    { jsonrpc: "2.0", id: "x", error: duplicate },
    { jsonrpc: "2.0", id: "x", result: [0] },
  ]);
  for (const id of ids) {
    assert.deepEqual(await bystander.client.take((frame) => frame.id === id), {
      jsonrpc: "2.0",
      id,
      result: ["bystander"],
    });
  }

  // Once answered, an id is free again.
  socket.send(Opcode.Text, request(0, "park", ["again"]));
  assert.deepEqual(await socket.next(), { jsonrpc: "2.0", id: 0, result: ["again"] });
  assert.deepEqual(socket.texts, []);
  socket.destroy();
  await bystander.leave();
});
