/** serveStdio in process over web streams, and the demo entry's --stdio as a real child process. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { createGateway, method } from "../src/mod.ts";
import { serveStdio } from "../src/stdio.ts";
import { captureLogger, runtimeCommand } from "./helpers/runtime.ts";

/** Runs serveStdio over `lines` (then end of input) and returns every output line parsed. */
async function exchange(lines: string[], limits = {}) {
  const { logger, entries } = captureLogger();
  const gateway = createGateway({
    logger,
    limits,
    methods: {
      add: ([a, b]: [number, number]) => a + b,
      later: method({ concurrent: true, handler: () => new Promise((resolve) => setTimeout(() => resolve("late"), 30)) }),
    },
  });
  const encoder = new TextEncoder();
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const line of lines) controller.enqueue(encoder.encode(line + "\n"));
      controller.close();
    },
  });
  let text = "";
  const decoder = new TextDecoder();
  const output = new WritableStream<Uint8Array>({ write: (chunk) => void (text += decoder.decode(chunk, { stream: true })) });
  await serveStdio(gateway, { input, output });
  assert.ok(text.endsWith("\n"));
  return { frames: text.trimEnd().split("\n").map((line) => JSON.parse(line)), logs: entries };
}

test("serveStdio: ready first, same answers and errors as WebSocket, replies drained at end of input, one teardown line", async () => {
  const { frames, logs } = await exchange([
    '{"jsonrpc":"2.0","id":1,"method":"add","params":[2,3]}',
    "{not json",
    "",
    '{"jsonrpc":"2.0","id":2,"method":"nope"}',
    "x".repeat(300),
    '{"jsonrpc":"2.0","id":3,"method":"later"}',
  ], { maxMessageBytes: 256 });
  assert.equal(frames[0].params.type, "gateway.ready");
  assert.equal(frames[0].params.payload.protocol, "switchboard/1");
  assert.deepEqual(frames.slice(1), [
    { jsonrpc: "2.0", id: 1, result: 5 },
    { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } },
    { jsonrpc: "2.0", id: 2, error: { code: -32601, message: "Method not found", data: { method: "nope" } } },
    { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Message too big", data: { max_bytes: 256 } } },
    { jsonrpc: "2.0", id: 3, result: "late" },
  ]);
  const teardown = logs.filter((entry) => entry.message === "connection closed");
  assert.equal(teardown.length, 1);
  assert.equal(teardown[0]!.fields!.peer, "stdio");
  assert.equal(teardown[0]!.fields!.reason, "eof");
  assert.equal(teardown[0]!.fields!.parse_errors, 2);
});

test("the demo entry with --stdio round-trips through a child process; stdout carries only protocol", async () => {
  const [command, args] = runtimeCommand("src/demo/main.ts", ["--stdio"]);
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  child.stdin.end(
    [
      '{"jsonrpc":"2.0","id":1,"method":"math.add","params":[20,22]}',
      '{"jsonrpc":"2.0","id":2,"method":"demo.stream","params":{"count":100}}',
      '{"jsonrpc":"2.0","id":3,"method":"no.such"}',
      "]",
    ].join("\n") + "\n",
  );
  assert.equal(await exited, 0, stderr);
  const frames = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.equal(frames[0].params.type, "gateway.ready");
  assert.deepEqual(frames[1], { jsonrpc: "2.0", id: 1, result: 42 });
  assert.deepEqual(frames.slice(2, 102).map((f) => f.params.payload.i), Array.from({ length: 100 }, (_, i) => i + 1));
  assert.deepEqual(frames[102], { jsonrpc: "2.0", id: 2, result: { sent: 100 } });
  assert.equal(frames[103].error.code, -32601);
  assert.equal(frames[104].error.code, -32700);
  assert.equal(frames.length, 105);
  assert.match(stderr, /connection closed .*reason="eof"/);
});
