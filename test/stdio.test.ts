/** serveStdio in process over web streams, and the app entry's --stdio as a real child process. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createGateway, type HandlerContext, method } from "../src/mod.ts";
import { serveStdio } from "../src/stdio.ts";
import { runApp } from "./helpers/app.ts";
import type { Frame } from "./helpers/client.ts";
import { captureLogger, type LogEntry, runtime, until, within } from "./helpers/runtime.ts";

const encoder = new TextEncoder();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A pair of web streams for serveStdio: `input` is fed by the test (bytes, as a pipe would
 * deliver them), `output` keeps every chunk written and yields its lines as parsed frames.
 */
function stdioPipe() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const decoder = new TextDecoder();
  const chunks: string[] = [];
  const output = new WritableStream<Uint8Array>({
    write: (chunk) => void chunks.push(decoder.decode(chunk, { stream: true })),
  });
  let taken = 0;
  const lines = () => {
    const text = chunks.join("");
    return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").slice(0, -1);
  };
  return {
    input,
    output,
    chunks,
    lines,
    /** Writes raw text (or bytes) to the input. */
    write(data: string | Uint8Array) {
      controller.enqueue(typeof data === "string" ? encoder.encode(data) : data);
    },
    /** Writes one line: a value as JSON, a string as it is. */
    send(frame: unknown) {
      this.write((typeof frame === "string" ? frame : JSON.stringify(frame)) + "\n");
    },
    /** End of input. */
    end() {
      controller.close();
    },
    /** The next output line, parsed. */
    async next(): Promise<Frame> {
      await until(() => lines().length > taken, 3_000, `output line ${taken + 1}`);
      return JSON.parse(lines()[taken++]!);
    },
    /** Output lines not yet taken by `next()`. */
    get untaken(): number {
      return lines().length - taken;
    },
  };
}

function teardownLines(logs: LogEntry[]) {
  return logs.filter((entry) => entry.message === "connection closed");
}

/** Checks that the output holds nothing but whole JSON-RPC lines, each chunk ending at a line end. */
function assertOnlyJsonLines(chunks: string[]) {
  assert.ok(chunks.length > 0);
  for (const chunk of chunks) {
    assert.ok(chunk.endsWith("\n"), `a chunk that is not whole lines: ${JSON.stringify(chunk.slice(-80))}`);
  }
  for (const line of chunks.join("").trimEnd().split("\n")) {
    assert.equal(JSON.parse(line).jsonrpc, "2.0", `not a JSON-RPC line: ${line}`);
  }
}

test("serveStdio: gateway.ready first, answers line by line while input is open, errors answered and the connection goes on", async () => {
  const { logger, entries } = captureLogger();
  const gateway = createGateway({
    logger,
    heartbeatMs: 4_321,
    limits: { maxMessageBytes: 256 },
    methods: {
      add: ([a, b]: [number, number]) => a + b,
      echo: (params: unknown) => params,
      boom: () => {
        throw new Error("handler bug");
      },
    },
  });
  const pipe = stdioPipe();
  let settled = false;
  const served = serveStdio(gateway, pipe).finally(() => (settled = true));

  const ready = await pipe.next();
  assert.equal(ready.method, "event");
  assert.deepEqual(
    Object.keys(ready.params).sort(),
    ["payload", "type"],
    "a gateway-wide event has no session_id or seq",
  );
  assert.equal(ready.params.type, "gateway.ready");
  const payload = ready.params.payload;
  assert.equal(payload.protocol, "switchboard/1");
  assert.equal(typeof payload.connection_id, "string");
  assert.ok(payload.connection_id.length > 0);
  assert.equal(payload.epoch, gateway.epoch);
  assert.equal(payload.heartbeat_ms, 4_321);
  assert.deepEqual(payload.limits, { max_message_bytes: 256, max_batch: 100, max_in_flight: 64 });

  // One line in, its answer out, before any end of input.
  pipe.send({ jsonrpc: "2.0", id: 1, method: "add", params: [2, 3] });
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: 1, result: 5 });

  // A parse error is answered with id null; blank lines are skipped; the next line works.
  pipe.send("{not json");
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
  pipe.write("\n   \n");
  pipe.send({ jsonrpc: "2.0", id: 2, method: "add", params: [40, 2] });
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: 2, result: 42 });

  // A line of exactly maxMessageBytes is fine; one byte more is answered -32600 and skipped.
  const template = JSON.stringify({ jsonrpc: "2.0", id: 3, method: "echo", params: [""] });
  const exact = template.replace('""', `"${"x".repeat(256 - template.length)}"`);
  assert.equal(encoder.encode(exact).length, 256);
  pipe.send(exact);
  assert.equal((await pipe.next()).id, 3);
  pipe.send(exact.replace('"x', '"xx').replace('"id":3', '"id":4'));
  assert.deepEqual(await pipe.next(), {
    jsonrpc: "2.0",
    id: null,
    error: { code: -32600, message: "Message too big", data: { max_bytes: 256 } },
  });
  pipe.send({ jsonrpc: "2.0", id: 5, method: "add", params: [1, 1] });
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: 5, result: 2 });

  // An oversized line that arrives in pieces is answered once, and the line after it works.
  for (let i = 0; i < 3; i++) pipe.write("y".repeat(200));
  pipe.write('\n{"jsonrpc":"2.0","id":6,"method":"add","params":[3,4]}\n');
  assert.deepEqual(await pipe.next(), {
    jsonrpc: "2.0",
    id: null,
    error: { code: -32600, message: "Message too big", data: { max_bytes: 256 } },
  });
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: 6, result: 7 });

  // A multi-byte character split across two reads arrives whole.
  const text = "héllo ✓ 🎉 done";
  const bytes = encoder.encode(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "echo", params: [text] }) + "\n");
  const cut = bytes.indexOf(0xf0) + 2; // inside the four bytes of 🎉
  pipe.write(bytes.slice(0, cut));
  pipe.write(bytes.slice(cut));
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: 7, result: [text] });

  // A handler crash answers -32603 with the request's id; the connection goes on.
  pipe.send({ jsonrpc: "2.0", id: 8, method: "boom" });
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: 8, error: { code: -32603, message: "Internal error" } });
  pipe.send({ jsonrpc: "2.0", id: 9, method: "add", params: [5, 5] });
  assert.deepEqual(await pipe.next(), { jsonrpc: "2.0", id: 9, result: 10 });

  assert.equal(settled, false, "serveStdio runs while input is open");
  assert.equal(teardownLines(entries).length, 0);
  pipe.end();
  await within(served, 3_000, "serveStdio after end of input");

  assert.equal(pipe.untaken, 0, "nothing written besides the answers");
  assertOnlyJsonLines(pipe.chunks);
  assert.equal(pipe.output.locked, false, "output is released (left open) when serving ends");
  const teardown = teardownLines(entries);
  assert.equal(teardown.length, 1, "one teardown line");
  const { connection_id, ...fields } = teardown[0]!.fields!;
  assert.equal(connection_id, payload.connection_id);
  assert.deepEqual(fields, {
    peer: "stdio",
    reason: "eof",
    messages: 13, // the two blank lines count too (against the rate limit), unanswered
    parse_errors: 3,
    dispatch_crashes: 1,
    rate_limited: 0,
    send_failures: 0,
    reaped_sessions: 0,
    detached_sessions: 0,
  });
  assert.equal(gateway.connections.size, 0);
});

test("serveStdio: requests sent right before end of input still answer; it resolves only after them", async () => {
  const { logger, entries } = captureLogger();
  let open!: (value: string) => void;
  const gate = new Promise<string>((resolve) => (open = resolve));
  let started = 0;
  const gateway = createGateway({
    logger,
    methods: {
      inline: () => (started++, gate),
      side: method({ concurrent: true, handler: () => (started++, gate.then((v) => `${v} too`)) }),
      ping: () => "pong",
    },
  });
  const pipe = stdioPipe();
  let settled = false;
  const served = serveStdio(gateway, pipe).finally(() => (settled = true));
  pipe.send({ jsonrpc: "2.0", id: 1, method: "inline" });
  pipe.send({ jsonrpc: "2.0", id: 2, method: "side" });
  pipe.write('{"jsonrpc":"2.0","id":3,"method":"ping"}'); // the last line has no newline
  pipe.end();

  await until(() => started === 2, 3_000, "both handlers started");
  await sleep(50);
  assert.equal(settled, false, "serveStdio waits for in-flight requests at end of input");
  assert.equal(teardownLines(entries).length, 0);
  open("done");
  await within(served, 3_000, "serveStdio after the handlers answered");

  const frames = pipe.lines().map((line) => JSON.parse(line));
  assert.equal(frames[0].params.type, "gateway.ready");
  const byId = new Map(frames.slice(1).map((frame) => [frame.id, frame]));
  assert.equal(frames.length, 4);
  assert.deepEqual(byId.get(1), { jsonrpc: "2.0", id: 1, result: "done" });
  assert.deepEqual(byId.get(2), { jsonrpc: "2.0", id: 2, result: "done too" });
  assert.deepEqual(byId.get(3), { jsonrpc: "2.0", id: 3, result: "pong" });
  assertOnlyJsonLines(pipe.chunks);
  const teardown = teardownLines(entries);
  assert.equal(teardown.length, 1);
  assert.equal(teardown[0]!.fields!.reason, "eof");
  assert.equal(teardown[0]!.fields!.messages, 3);
});

test("serveStdio: a handler that never answers holds end of input only for drainMs, and its signal is aborted", async () => {
  const { logger, entries } = captureLogger();
  let signal: AbortSignal | undefined;
  const gateway = createGateway({
    logger,
    methods: {
      forever: method({
        concurrent: true,
        handler: (_params: unknown, ctx: HandlerContext) => {
          signal = ctx.signal;
          return new Promise(() => {});
        },
      }),
    },
  });
  const pipe = stdioPipe();
  pipe.send({ jsonrpc: "2.0", id: 1, method: "forever" });
  pipe.end();
  await within(serveStdio(gateway, { ...pipe, drainMs: 50 }), 3_000, "serveStdio with a stuck handler");
  assert.ok(signal, "the handler ran");
  assert.equal(signal.aborted, true);
  assert.deepEqual(
    pipe.lines().map((line) => JSON.parse(line).params?.type),
    ["gateway.ready"],
    "no answer for the abandoned request",
  );
  assert.deepEqual(teardownLines(entries).map((entry) => entry.fields!.reason), ["eof"]);
});

test(`the app entry with --stdio on ${runtime}, as a child process: only protocol on stdout, exit 0 at end of input`, async () => {
  const feed = async (write: (text: string) => void, lines: () => string[]) => {
    write('{"jsonrpc":"2.0","id":1,"method":"session.create"}\n');
    await until(() => lines().length >= 2, 15_000, "the session.create reply");
    const sessionId = JSON.parse(lines()[1]!).result.session_id;
    const submit = { jsonrpc: "2.0", id: 2, method: "prompt.submit", params: { session_id: sessionId, text: "hello" } };
    write(
      [
        JSON.stringify(submit),
        '{"jsonrpc":"2.0","id":3,"method":"no.such.method"}',
        '{"jsonrpc":"2.0","id":4,"method":',
        "",
      ].join("\n"),
    );
  };
  // No pause between words: the answer streams as fast as it can.
  const { code, signal, stdout, stderr } = await runApp(["--stdio"], { feed, env: { SWITCHBOARD_DELAY_MS: "0" } });
  assert.equal(signal, null, `killed (${signal}); stderr:\n${stderr}`);
  assert.equal(code, 0, `exit ${code}; stderr:\n${stderr}`);

  assert.ok(stdout.endsWith("\n"), "stdout ends with a whole line");
  const lines = stdout.slice(0, -1).split("\n");
  const frames = lines.map((line, i) => {
    try {
      return JSON.parse(line);
    } catch {
      assert.fail(`stdout line ${i + 1} is not JSON: ${line}`);
    }
  });
  assert.equal(frames[0].params.type, "gateway.ready", "the ready frame comes first");
  assert.equal(frames[0].params.payload.protocol, "switchboard/1");

  const replies = new Map(frames.filter((frame) => "id" in frame).map((frame) => [frame.id, frame]));
  assert.match(replies.get(1).result.session_id, /^[0-9a-f]{32}$/);
  assert.deepEqual(replies.get(2), { jsonrpc: "2.0", id: 2, result: { turn_id: "t1", status: "complete" } });
  assert.deepEqual(replies.get(3), {
    jsonrpc: "2.0",
    id: 3,
    error: { code: -32601, message: "Method not found", data: { method: "no.such.method" } },
  });
  assert.deepEqual(replies.get(null), { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });

  const events = frames.map((frame, at) => ({ frame, at })).filter(({ frame }) =>
    frame.params?.session_id !== undefined
  );
  assert.equal(frames.length, 1 + events.length + 4, "ready, the session's events and 4 answers");
  assert.deepEqual(events.map(({ frame }) => frame.params.seq), events.map((_, i) => i + 1), "events in seq order");
  const types = events.map(({ frame }) => frame.params.type);
  assert.deepEqual([types[0], types.at(-1), new Set(types.slice(1, -1))], [
    "message.user",
    "message.complete",
    new Set(["message.start", "message.delta"]),
  ]);
  const replyAt = frames.indexOf(replies.get(2));
  assert.ok(events.every(({ at }) => at < replyAt), "every event before the prompt.submit reply");

  const teardown = stderr.split("\n").filter((line) => line.startsWith("info connection closed "));
  assert.equal(teardown.length, 1, `one teardown line on stderr:\n${stderr}`);
  assert.match(
    teardown[0]!,
    /peer="stdio" .*reason="eof" messages=4 parse_errors=1 dispatch_crashes=0 rate_limited=0 send_failures=0 reaped_sessions=0 detached_sessions=1$/,
  );
});
