/**
 * What an operator sees of a gateway with an OpenTelemetry SDK registered: `/metrics` scraped
 * (through the app's Prometheus route) before and after a scripted workload moves by exactly
 * the workload; an in-memory span exporter sees one span per request; `jsonLogger` lines parse.
 *
 * The SDK is global: the first test registers it, the tests after it share it (every runner runs
 * a file's tests in order), and the last one unregisters it, so that the test files a runner
 * loads later in the same process (Bun, Deno) make gateways without telemetry.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { type Handler, Hono } from "hono";
import { createGateway, type HandlerContext, jsonLogger, RpcError, tokenAuth } from "../src/mod.ts";
import { gatewayCore } from "../src/gateway/gateway.ts";
import { storeTimer } from "../src/gateway/telemetry.ts";
import { registerMetrics } from "../src/app/metrics.ts";
import { TestClient } from "./helpers/client.ts";
import { serveOn, startGateway, until } from "./helpers/runtime.ts";

const TOKEN = "metrics-token-4c1d";
const spans = new InMemorySpanExporter();

let metricsRoute: Handler | undefined;

/** The SDK as an application registers it, before any gateway is made: metrics, traces, and a context manager. */
function registerSdk(): Hono {
  const app = new Hono();
  metricsRoute = registerMetrics(tokenAuth({ tokens: { [TOKEN]: "ops" } }));
  app.get("/metrics", metricsRoute);
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return app;
}

/** Prometheus text as a map from `name{labels}` to its value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    // Every sample carries the instrumentation scope's label; the assertions leave it out.
    const key = line.slice(0, at).replace(/,?otel_scope_name="switchboard"/, "").replace("{}", "");
    samples.set(key, Number(line.slice(at + 1)));
  }
  return samples;
}

/** How much each sample moved from `before` to `after` (samples new in `after` count from 0). */
function deltas(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const moved = new Map<string, number>();
  for (const [key, value] of after) moved.set(key, value - (before.get(key) ?? 0));
  return moved;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const RATE = 10;
/**
 * B's batch: twice the bucket. Refused are those past the bucket and what refilled since B's
 * connection opened (a token per 100 ms), so at least one unless the batch came 900 ms late, and
 * at most RATE, below the 1008 close of a flood.
 */
const BATCH = 2 * RATE;

const methods = {
  add: ([a, b]: [number, number]) => a + b,
  refuse: () => {
    throw new RpcError(4001, "refused");
  },
  crash: () => {
    throw new Error("boom");
  },
  "session.create": (_params: unknown, ctx: HandlerContext) => ({ session_id: ctx.sessions.create().id }),
  ticks: ({ session_id, count }: { session_id: string; count: number }, ctx: HandlerContext) => {
    const session = ctx.session(session_id);
    for (let i = 0; i < count; i++) session.emit("tick", { i });
    return count;
  },
  // Outside the socket's message handler (Bun writes at once inside it), 100 KiB in one tick: over the backlog cap.
  flood: async (_params: unknown, ctx: HandlerContext) => {
    await sleep(1);
    for (let i = 0; i < 100; i++) ctx.connection.emit("chunk", "x".repeat(1_024));
    return "flooded";
  },
  ask: async ({ session_id, timeoutMs }: { session_id: string; timeoutMs?: number }, ctx: HandlerContext) => {
    try {
      return await ctx.session(session_id).request("approve", { tool: "ls" }, { timeoutMs });
    } catch (error) {
      return (error as RpcError).data;
    }
  },
  logged: (_params: unknown, ctx: HandlerContext) => {
    ctx.log.info("inside a handler", { step: 1 });
    return true;
  },
};

test("metrics, spans and JSON logs after a scripted workload", async () => {
  const app = registerSdk();
  const lines: string[] = [];
  const consoleError = console.error;
  console.error = (line: unknown) => void lines.push(String(line));
  try {
    const limits = { messagesPerSecond: RATE, maxBacklogBytes: 64 << 10, backlogWarnBytes: 32 << 10 };
    const gateway = gatewayCore(createGateway({ methods, limits, logger: jsonLogger("debug") }));
    const server = await serveOn(gateway, { app });
    await using gw = {
      gateway,
      server,
      wsUrl: `${server.url.replace(/^http/, "ws")}api/ws`,
      [Symbol.asyncDispose]: () => server.close(),
    };
    // The route is behind the token.
    assert.equal((await fetch(`${gw.server.url}metrics`)).status, 401);
    const before = await scrape(gw.server.url);

    // A: three sums, an application error, a crash, a session with 7 events.
    const { client: a } = await TestClient.ready(gw.wsUrl);
    for (let i = 0; i < 3; i++) assert.equal((await a.call("add", [i, 1])).result, i + 1);
    assert.equal((await a.call("refuse")).error.code, 4001);
    assert.equal((await a.call("crash")).error.code, -32603);
    const { session_id } = (await a.call("session.create")).result;
    assert.equal((await a.call("ticks", { session_id, count: 7 })).result, 7);
    assert.equal(a.takeAll((frame) => frame.params?.type === "tick").length, 7);

    // B: a batch of twice the rate limit's bucket.
    const { client: b } = await TestClient.ready(gw.wsUrl);
    b.send(Array.from({ length: BATCH }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "gateway.ping" })));
    const batch: { error?: { code: number } }[] = await b.next();
    const refusals = batch.filter((reply) => reply.error?.code === -32003).length;
    assert.equal(batch.length, BATCH);
    // How many depends on the time since B's accept (see BATCH): what the client saw is what the metrics must show.
    assert.ok(refusals >= 1 && refusals <= RATE, `${refusals} refused`);

    // C: cut as a slow consumer.
    const { client: c } = await TestClient.ready(gw.wsUrl);
    c.send({ jsonrpc: "2.0", id: 1, method: "flood" });
    assert.equal((await c.closed).code, 1013);

    await a.close();
    await b.close();
    await until(() => gw.gateway.connections.size === 0, 3_000, "every connection to tear down");
    const moved = deltas(before, await scrape(gw.server.url));
    const served = 7 + (BATCH - refusals) + 1;

    const expected: Record<string, number> = {
      "switchboard_connections_opened_total": 3,
      'switchboard_connections_closed_total{switchboard_close_code="1000"}': 2,
      'switchboard_connections_closed_total{switchboard_close_code="1013"}': 1,
      "switchboard_connections_active": 0,
      'switchboard_messages_received_total{switchboard_message_kind="request"}': 7 + BATCH + 1,
      'switchboard_messages_sent_total{switchboard_message_kind="session"}': 7,
      'switchboard_messages_sent_total{switchboard_message_kind="response"}': 7 + BATCH,
      'switchboard_errors_total{rpc_jsonrpc_error_code="4001"}': 1,
      'switchboard_errors_total{rpc_jsonrpc_error_code="-32603"}': 1,
      'switchboard_errors_total{rpc_jsonrpc_error_code="-32003"}': refusals,
      "switchboard_rate_limited_total": refusals,
      'rpc_server_duration_count{rpc_system="jsonrpc",rpc_method="add",switchboard_outcome="ok"}': 3,
      'rpc_server_duration_count{rpc_system="jsonrpc",rpc_method="refuse",switchboard_outcome="error",rpc_jsonrpc_error_code="4001"}':
        1,
      'rpc_server_duration_count{rpc_system="jsonrpc",rpc_method="crash",switchboard_outcome="error",rpc_jsonrpc_error_code="-32603"}':
        1,
      'rpc_server_duration_count{rpc_system="jsonrpc",rpc_method="gateway.ping",switchboard_outcome="ok"}': BATCH -
        refusals,
      'rpc_server_duration_count{rpc_system="jsonrpc",rpc_method="flood",switchboard_outcome="ok"}': 1,
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(moved.get(key), value, key);
    // gateway.ready to each, and the flood's chunks that were queued before the cut.
    assert.ok(moved.get('switchboard_messages_sent_total{switchboard_message_kind="event"}')! >= 3);
    assert.ok(moved.get("switchboard_sent_size_total")! > 8 << 10, "the flood's characters count");

    // One span per request that ran, with its method, id and outcome; errors carry their code.
    const finished = spans.getFinishedSpans();
    assert.equal(finished.length, served);
    const byMethod = (name: string) => finished.filter((span) => span.name === name);
    assert.equal(byMethod("add").length, 3);
    const add = byMethod("add")[0]!;
    assert.equal(add.attributes["rpc.system"], "jsonrpc");
    assert.equal(add.attributes["rpc.method"], "add");
    assert.equal(add.attributes["rpc.jsonrpc.request_id"], "1");
    assert.equal(add.attributes["switchboard.outcome"], "ok");
    assert.equal(add.status.code, 0);
    const refused: ReadableSpan = byMethod("refuse")[0]!;
    assert.equal(refused.status.code, 2);
    assert.equal(refused.attributes["rpc.jsonrpc.error_code"], 4001);
    assert.equal(byMethod("crash")[0]!.attributes["rpc.jsonrpc.error_code"], -32603);
    assert.equal(byMethod("gateway.ping").length, BATCH - refusals);

    // JSON lines, each one object; the crash is logged with its stack, the cut with its code.
    const entries = lines.map((line) => JSON.parse(line));
    for (const entry of entries) {
      assert.equal(typeof entry.time, "string");
      assert.ok(["debug", "info", "warn", "error"].includes(entry.level));
    }
    const crash = entries.find((entry) => entry.message === "handler failed");
    assert.match(crash.error, /boom/);
    assert.equal(crash.method, "crash");
    const cut = entries.find((entry) => entry.message === "connection closed" && entry.reason === "slow_consumer");
    assert.equal(cut.level, "info");
  } finally {
    console.error = consoleError;
  }
});

test("sessions attached and orphaned, events, resumes, server requests and their spans", async () => {
  spans.reset();
  const gateway = gatewayCore(createGateway({ methods, logger: jsonLogger("error") }));
  const server = await serveOn(gateway, { app: new Hono().get("/metrics", metricsRoute!) });
  const wsUrl = `${server.url.replace(/^http/, "ws")}api/ws`;
  try {
    const before = await scrape(server.url);
    const { client: a } = await TestClient.ready(wsUrl);
    const { session_id } = (await a.call("session.create")).result;
    assert.equal((await a.call("ticks", { session_id, count: 7 })).result, 7);
    const attached = deltas(before, await scrape(server.url));
    await a.close();
    await until(() => gateway.connections.size === 0, 3_000, "the viewer to leave");
    const orphaned = deltas(before, await scrape(server.url));

    // B resumes after seq 3 (4 replayed), answers one server request and lets another time out.
    const { client: b } = await TestClient.ready(wsUrl);
    const resumed = (await b.call("session.resume", { session_id, after_seq: 3 })).result;
    assert.deepEqual([resumed.replayed, resumed.truncated], [4, false]);
    b.send({ jsonrpc: "2.0", id: 100, method: "ask", params: { session_id } });
    const asked = await b.take((frame) => frame.method === "approve");
    b.send({ jsonrpc: "2.0", id: asked.id, result: { decision: "allow" } });
    assert.deepEqual((await b.take((frame) => frame.id === 100)).result, { decision: "allow" });
    const late = (await b.call("ask", { session_id, timeoutMs: 20 })).result;
    assert.equal(late.reason, "timeout");
    await b.close();
    await until(() => gateway.connections.size === 0, 3_000, "B to leave");
    const after = deltas(before, await scrape(server.url));

    assert.equal(attached.get('switchboard_sessions{switchboard_session_state="attached"}'), 1);
    assert.equal(attached.get('switchboard_sessions{switchboard_session_state="orphaned"}'), 0);
    assert.equal(orphaned.get('switchboard_sessions{switchboard_session_state="attached"}'), 0);
    assert.equal(orphaned.get('switchboard_sessions{switchboard_session_state="orphaned"}'), 1);
    assert.ok(orphaned.get("switchboard_session_replay_size")! > 7 * 20, "the 7 events are held for replay");
    const expected: Record<string, number> = {
      // 7 ticks and the timed-out request's `request.cancel`.
      "switchboard_session_events_total": 8,
      'switchboard_session_resumes_total{switchboard_resume_truncated="false"}': 1,
      "switchboard_session_replayed_total": 4,
      'switchboard_server_requests_total{switchboard_outcome="answered"}': 1,
      'switchboard_server_requests_total{switchboard_outcome="timeout"}': 1,
      "switchboard_server_requests_active": 0,
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(after.get(key), value, key);

    // Each server → client request is a client span, child of the span of the request that sent it.
    const finished = spans.getFinishedSpans();
    const asks = finished.filter((span) => span.name === "ask");
    const approvals = finished.filter((span) => span.name === "approve");
    assert.equal(asks.length, 2);
    assert.equal(approvals.length, 2);
    for (const [i, outcome] of [[0, "answered"], [1, "timeout"]] as const) {
      const approval = approvals.find((span) => span.parentSpanContext?.spanId === asks[i]!.spanContext().spanId)!;
      assert.equal(approval.spanContext().traceId, asks[i]!.spanContext().traceId);
      assert.equal(approval.kind, 2); // SpanKind.CLIENT
      assert.equal(approval.attributes["switchboard.outcome"], outcome);
      assert.match(String(approval.attributes["rpc.jsonrpc.request_id"]), /^srq-/);
    }
  } finally {
    await server.close();
  }
});

test("a JSON log line written in a handler names the handler's trace and span", async () => {
  const lines: string[] = [];
  const consoleError = console.error;
  console.error = (line: unknown) => void lines.push(String(line));
  try {
    spans.reset();
    const gateway = createGateway({ methods, logger: jsonLogger("info") });
    const server = await serveOn(gateway);
    try {
      const { client } = await TestClient.ready(`${server.url.replace(/^http/, "ws")}api/ws`);
      assert.equal((await client.call("logged")).result, true);
      await client.close();
    } finally {
      await server.close();
    }
    const span = spans.getFinishedSpans().find((s) => s.name === "logged")!.spanContext();
    const entries = lines.map((line) => JSON.parse(line));
    const inside = entries.find((entry) => entry.message === "inside a handler");
    assert.deepEqual(
      { level: inside.level, step: inside.step, trace_id: inside.trace_id, span_id: inside.span_id },
      { level: "info", step: 1, trace_id: span.traceId, span_id: span.spanId },
    );
    // Outside any handler (the teardown line), no trace.
    const closed = entries.find((entry) => entry.message === "connection closed");
    assert.equal(closed.trace_id, undefined);
    assert.equal(typeof closed.messages, "number");
  } finally {
    console.error = consoleError;
  }
});

test("jsonLogger: errors as their stack, its own keys kept, levels below the minimum dropped", () => {
  const lines: string[] = [];
  const consoleError = console.error;
  console.error = (line: unknown) => void lines.push(String(line));
  try {
    const log = jsonLogger("info");
    log.debug("dropped");
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    log.warn("odd fields", { error: new Error("kept as a stack"), level: "forged", big: 10n, cycle, n: 1 });
  } finally {
    console.error = consoleError;
  }
  assert.equal(lines.length, 1);
  const entry = JSON.parse(lines[0]!);
  assert.equal(entry.level, "warn");
  assert.equal(entry.message, "odd fields");
  assert.match(entry.error, /kept as a stack/);
  assert.equal(entry.big, "10");
  assert.equal(entry.cycle, "[object Object]");
  assert.equal(entry.n, 1);
  assert.ok(!Number.isNaN(Date.parse(entry.time)));
});

test("storeTimer: a store's round trips on switchboard.store.duration, by operation and outcome", async () => {
  const start = storeTimer("redis")!;
  start("append")(false);
  start("append")(false);
  start("read")(true);
  const response = await new Hono().get("/metrics", metricsRoute!).request("/metrics", {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const text = await response.text();
  const count = (labels: string) =>
    Number(
      text.match(
        new RegExp(`^switchboard_store_duration_count\\{${labels},otel_scope_name="switchboard"\\} (\\d+)$`, "m"),
      )?.[1],
    );
  assert.equal(count('switchboard_store="redis",switchboard_store_operation="append",switchboard_outcome="ok"'), 2);
  assert.equal(count('switchboard_store="redis",switchboard_store_operation="read",switchboard_outcome="error"'), 1);
});

test("unregistered again, a new gateway has no telemetry", async () => {
  metrics.disable();
  trace.disable();
  context.disable();
  await using gw = await startGateway({ methods });
  assert.equal(gw.gateway.telemetry, undefined);
  assert.equal(storeTimer("redis"), undefined);
});
