/**
 * The transport's flow control against a simulated socket: deterministic, so every branch
 * (batching, latching, backlog caps, stalls) is exercised exactly.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { NdjsonSocket, readLines } from "../src/transport/ndjson.ts";
import { SocketTransport, type TransportFailure } from "../src/transport/socket-transport.ts";
import type { FrameSink, FrameSocket } from "../src/transport/transport.ts";
import { until } from "./helpers/runtime.ts";

/** Serialises `message` and queues it, as a connection does. */
const write = (transport: SocketTransport, message: unknown) => transport.writeText(JSON.stringify(message));

class FakeSocket implements FrameSocket {
  sent: string[] = [];
  corks = 0;
  closedWith: [number | undefined, string | undefined] | undefined;
  bufferedAmount = 0;
  failSends = false;
  corked = false;
  send(text: string): void {
    if (this.failSends) throw new Error("broken pipe");
    this.sent.push(text);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
  }
  attach(_sink: FrameSink): void {}
  cork(flush: () => void): void {
    this.corks++;
    flush();
  }
}

const limits = { warnBytes: 100, maxBytes: 1_000, stallMs: 20 };
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function setup(overrides: Partial<typeof limits> = {}) {
  const socket = new FakeSocket();
  const failures: TransportFailure[] = [];
  const slow: number[] = [];
  const transport = new SocketTransport(socket, { ...limits, ...overrides }, {
    onFailure: (reason) => failures.push(reason),
    onSlow: (bytes) => slow.push(bytes),
  });
  return { socket, transport, failures, slow };
}

test("writes are sent in corked runs of 256 frames, in order: each full run at once, the rest after the synchronous code; a lone frame is not corked", async () => {
  const { socket, transport } = setup({ maxBytes: 1 << 20 });
  for (let i = 0; i < 255; i++) assert.equal(write(transport, { i }), true);
  assert.equal(socket.sent.length, 0, "less than a run waits for the end of the tick");
  for (let i = 255; i < 1_000; i++) assert.equal(write(transport, { i }), true);
  assert.equal(socket.sent.length, 768, "three full runs went out at once");
  assert.equal(socket.corks, 3);
  await tick();
  assert.equal(socket.corks, 4, "1,000 frames in 4 corked writes");
  assert.deepEqual(socket.sent.map((text) => JSON.parse(text).i), Array.from({ length: 1_000 }, (_, i) => i));
  write(transport, { i: 1_000 });
  await tick();
  assert.equal(socket.corks, 4, "one frame is one write anyway");
  assert.equal(socket.sent.length, 1_001);
});

test("while the runtime holds the socket corked, a write to an empty queue is sent at once; queued frames still go first", async () => {
  const { socket, transport, failures } = setup({ maxBytes: 1 << 20 });
  write(transport, { n: 1 });
  socket.corked = true;
  write(transport, { n: 2 });
  assert.equal(socket.sent.length, 0, "behind a queued frame, a write waits for the flush");
  await tick();
  assert.deepEqual(socket.sent.map((text) => JSON.parse(text).n), [1, 2]);
  const corks = socket.corks;
  assert.equal(write(transport, { n: 3 }), true);
  assert.equal(socket.sent.length, 3, "sent at once, without waiting for the tick");
  assert.equal(write(transport, { n: 4 }), true);
  assert.equal(socket.sent.length, 4, "sent at once again");
  assert.equal(socket.corks, corks, "the runtime's cork, not ours");
  // The backlog is looked at once per run of 256 frames sent at once (or 64 KiB of them).
  socket.bufferedAmount = 2 << 20;
  let accepted = 0;
  while (accepted < 1_000 && write(transport, { n: 5 + accepted })) accepted++;
  assert.ok(accepted < 256, `${accepted} frames went out before the backlog was looked at`);
  assert.deepEqual(failures, ["slow_consumer"]);
  assert.equal(socket.closedWith?.[0], 1013);
});

test("a send that throws latches the transport closed and reports send_failed", async () => {
  const { socket, transport, failures } = setup();
  socket.failSends = true;
  write(transport, { a: 1 });
  await tick();
  assert.equal(transport.closed, true);
  assert.equal(transport.stats.sendFailures, 1);
  assert.deepEqual(failures, ["send_failed"]);
  assert.equal(socket.closedWith?.[0], 1011);
  assert.equal(write(transport, { a: 2 }), false, "write returns false once closed");
});

test("a backlog over the hard cap closes with 1013; over the soft mark it warns once per episode", async () => {
  const { socket, transport, failures, slow } = setup();
  socket.bufferedAmount = 500;
  write(transport, "x");
  await tick();
  write(transport, "y");
  await tick();
  assert.equal(slow.length, 1, "warned once");
  socket.bufferedAmount = 0;
  write(transport, "z");
  await tick();
  socket.bufferedAmount = 600;
  write(transport, "w");
  await tick();
  assert.equal(slow.length, 2, "a new episode warns again");
  assert.equal(write(transport, "v".repeat(500)), false, "queued + buffered over the cap");
  assert.deepEqual(failures, ["slow_consumer"]);
  assert.equal(socket.closedWith?.[0], 1013);
});

test("a socket that does not drain for stallMs is closed with 1011, not sooner; one that drains is not", async () => {
  const stuck = setup();
  stuck.socket.bufferedAmount = 50;
  write(stuck.transport, "a");
  const start = performance.now();
  await tick();
  await until(() => stuck.failures.length > 0, 3_000, "the stall to be noticed");
  // Timers never fire early; 1 ms of slack for clocks that round.
  assert.ok(performance.now() - start >= limits.stallMs - 1, `closed after ${performance.now() - start} ms`);
  assert.deepEqual(stuck.failures, ["send_stalled"]);
  assert.equal(stuck.socket.closedWith?.[0], 1011);

  // A socket that has drained a little more every time it is looked at, however late the timers run.
  const draining = setup();
  let buffered = 50;
  Object.defineProperty(draining.socket, "bufferedAmount", {
    get: () => {
      const now = buffered;
      buffered = Math.max(0, buffered - 10);
      return now;
    },
  });
  write(draining.transport, "a");
  await tick();
  // The flush looks once, then each stall check: the fourth check drains it.
  await until(() => buffered === 0, 3_000, "the stall checks to read it drained");
  assert.deepEqual(draining.failures, []);
  assert.equal(draining.transport.closed, false);
});

test("a write goes out at the end of the tick; close flushes first, then closes once; later writes are refused", async () => {
  const { socket, transport } = setup();
  assert.equal(write(transport, { n: 1 }), true);
  assert.equal(socket.sent.length, 0);
  await tick();
  assert.equal(socket.sent.length, 1);
  write(transport, { n: 2 });
  transport.close(1001, "shutdown");
  assert.deepEqual(socket.sent.map((text) => JSON.parse(text).n), [1, 2]);
  assert.deepEqual(socket.closedWith, [1001, "shutdown"]);
  assert.equal(write(transport, { n: 3 }), false);
});

test("NdjsonSocket writes a corked flush as one chunk of lines", async () => {
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const output = new WritableStream<Uint8Array>({ write: (chunk) => void chunks.push(decoder.decode(chunk)) });
  const socket = new NdjsonSocket(output);
  const ended: number[] = [];
  socket.attach({ text() {}, binary() {}, oversized() {}, flushQueued() {}, ended: (code) => void ended.push(code) });
  socket.cork(() => {
    socket.send("{}");
    socket.send("[]");
  });
  socket.send('"x"');
  socket.close();
  await socket.done;
  assert.deepEqual(ended, [1000], "the sink hears the end once the writes are done");
  assert.deepEqual(chunks, ["{}\n[]\n", '"x"\n']);
  assert.throws(() => socket.send("{}"), "send after close throws");
});

test("readLines splits across chunk boundaries and multibyte characters, and skips oversized lines", async () => {
  const bytes = new TextEncoder().encode('{"a":"é"}\n{"b":1}\n' + "z".repeat(50) + '\n{"c":"😀"}');
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
      controller.close();
    },
  });
  const lines: string[] = [];
  let oversize = 0;
  await readLines(input, 20, (line) => lines.push(line), () => oversize++);
  assert.deepEqual(lines, ['{"a":"é"}', '{"b":1}', '{"c":"😀"}']);
  assert.equal(oversize, 1);
});
