/**
 * `npm run bench:redis [-- --chunks=200,300,400,500,700]`: sessions shared across gateway nodes on
 * Redis, on this machine, in one run (under a minute; loopback only). It starts a private
 * redis-server (test/helpers/redis-server.ts) and measures:
 *
 * 1. the physical limit: Redis' own pipelined XADD rate (Debian's `redis-benchmark`, median of
 *    3), and XADD with ids `*` beside explicit ids `<seq>-0`, as the store writes them, both
 *    through `redis-cli --pipe`;
 * 2. the session stream on one node: a gateway node in its own Node process on the RedisStore
 *    (test/fixtures/redis-node.ts through `GatewayNode`), one client (`ws`, in this process)
 *    attached to a session it created, `demo.emit` of 200,000 events, `chunk` per macrotask, for
 *    each of `--chunks`; events/s as the client receives them (request sent → answer, which
 *    follows the last event), median of 3, beside the same workload on the in-memory store (this
 *    file run with `--memory-node`, in a process of its own), with the CPU each process took and
 *    the events the RedisStore lost;
 * 3. cross-node latency at 1,000 events/s: two fresh gateway nodes on the same Redis (the
 *    stream's node is stopped first: its heap after millions of events is not that of a node
 *    streaming 1,000 a second), the session created on A, a second connection on B resuming it; `demo.paced` on A stamps each event
 *    with the wall clock (`performance.timeOrigin + performance.now()`), the client computes
 *    the latency of each on B, and on A (the same node) for contrast;
 * 4. resume from another node: a session on A with 512 events; a fresh connection on B sends
 *    `session.resume {after_seq: 0}`, timed from sending to the answer (the 512 replayed frames
 *    come before it); a new session and a new connection each run, median of 20.
 *
 * It prints a markdown table and writes the `## Sessions on Redis` section of bench/RESULTS.md,
 * before the `<!-- latest -->` marker (what follows the marker is `npm run bench`'s, left as it
 * is). Every wait is bounded; every process it started is stopped at the end, also on failure.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { WebSocket } from "ws";
import { createGateway, type Logger } from "../src/mod.ts";
import { sessionEventFrame, sessionEventPrefix } from "../src/jsonrpc/message.ts";
import { serve } from "../src/runtime/node.ts";
import { randomId } from "../src/sessions/session.ts";
import { GatewayNode } from "../test/helpers/gateway-node.ts";
import { RedisServer } from "../test/helpers/redis-server.ts";
import { sessionMethods } from "../test/helpers/session-methods.ts";
import { type Child, startChild } from "./children.ts";
import { describeEnvironment, packageVersion } from "./environment.ts";
import { median } from "./figures.ts";
import { Histogram } from "./histogram.ts";
import { SEQ_KEY } from "./wire.ts";

const REDIS_BENCHMARK = "/usr/bin/redis-benchmark";
const REDIS_CLI = "/usr/bin/redis-cli";
/** XADDs per `redis-benchmark` run (and per `redis-cli --pipe` run), pipelined 64 deep. */
const XADD_COUNT = 200_000;
const XADD_PIPELINE = 64;
const RUNS = 3;
/** The session stream: events per run, after a warm-up of its own on the same connection. */
const STREAM_COUNT = 200_000;
const STREAM_WARMUP = 20_000;
const flag = (name: string) => process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
/**
 * Events `demo.emit` emits per macrotask (a 1 ms timer between chunks, so about a chunk per
 * 1.2 ms at most): each is a workload of its own, for both stores.
 */
const CHUNKS = (flag("chunks") ?? "200,300,400,500,700").split(",").map(Number);
if (!CHUNKS.every((chunk) => Number.isInteger(chunk) && chunk > 0)) throw new Error("--chunks=<n>,…: whole numbers");
/** The latency workload: events a second, how many (the first `LATENCY_WARMUP` are not counted). */
const LATENCY_RATE = 1_000;
const LATENCY_COUNT = 5_000;
const LATENCY_WARMUP = 250;
/** Resume: events in the session, runs measured (after `RESUME_WARMUP` not counted). */
const RESUME_EVENTS = 512;
const RESUME_RUNS = 20;
const RESUME_WARMUP = 3;
/** Leases as the store's default. */
const LEASE_MS = 3_000;
/** The whole run gives up past this (the exit handler kills what it started). */
const DEADLINE_MS = 170_000;
/** The longest any one call or connection may take. */
const CALL_MS = 30_000;
/** The longest a stream's `demo.emit` may take (at 40,000 events/s it takes 2.5 s); past it the stream stalled. */
const STREAM_CALL_MS = 10_000;

const SESSION_EVENT = '{"jsonrpc":"2.0","method":"event","params":{"session_id":';
const RESULTS = "bench/RESULTS.md";
const log = (message: string) => console.error(message);
const MARKER = "<!-- latest -->";
const SECTION_START = "<!-- sessions-on-redis -->";
const SECTION_END = "<!-- /sessions-on-redis -->";

// ---- the in-memory node (`--memory-node`): the same session methods, no store ----

/** Serves the session methods on the in-memory store; prints `{"url"}`, exits when stdin ends. */
async function memoryNode(): Promise<void> {
  const line = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    console.error(JSON.stringify({ level, message, ...fields }));
  const logger: Logger = { debug: () => {}, info: () => {}, warn: line("warn"), error: line("error") };
  const server = await serve(createGateway({ methods: sessionMethods(), logger }), { port: 0 });
  console.log(JSON.stringify({ url: `${server.url.replace(/^http/, "ws")}api/ws` }));
  process.stdin.on("data", () => {}).on("end", () => process.exit(0));
}

// ---- a client connection ----

/** A call not answered in time. */
class Timeout extends Error {}

interface Reply {
  result?: unknown;
  error?: { code: number; message: string };
}

/** One WebSocket connection: calls with bounded waits; session event frames go to `onEvent` as text. */
class Peer {
  static readonly live = new Set<Peer>();
  onEvent: (text: string) => void = () => {};
  readonly #ws: WebSocket;
  #nextId = 1;
  #calls = new Map<number, (reply: Reply) => void>();
  #closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => ws.once("close", () => resolve()));
    ws.on("error", () => {}); // reported by what waits: the opening, or a call (closed, or no answer)
    Peer.live.add(this);
  }

  /** Connects and resolves at the first frame (`gateway.ready`). */
  static open(url: string): Promise<Peer> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const peer = new Peer(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`${url}: no gateway.ready within ${CALL_MS} ms`)), CALL_MS);
      const fail = (error: Error) => {
        clearTimeout(timer);
        ws.terminate();
        reject(error);
      };
      const onError = (error: Error) => fail(new Error(`cannot connect to ${url}: ${error.message}`));
      const onClose = (code: number) => fail(new Error(`${url}: closed ${code} before gateway.ready`));
      ws.once("error", onError).once("close", onClose);
      ws.once("message", (data) => {
        clearTimeout(timer);
        ws.off("error", onError).off("close", onClose);
        ws.on("close", () => {
          for (const wake of peer.#calls.values()) wake({ error: { code: 0, message: "connection closed" } });
          peer.#calls.clear();
        });
        if (!String(data).includes('"gateway.ready"')) return reject(new Error(`first frame: ${String(data)}`));
        ws.on("message", (frame) => peer.#received(String(frame)));
        resolve(peer);
      });
    });
  }

  /** Sends a request; resolves with its result, rejects with its error or past `timeoutMs`. */
  call<T = unknown>(method: string, params: unknown, timeoutMs = CALL_MS): Promise<T> {
    const id = this.#nextId++;
    if (this.#ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error(`${method}: connection closed`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id);
        reject(new Timeout(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#calls.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.error) reject(new Error(`${method}: ${reply.error.message} (${reply.error.code})`));
        else resolve(reply.result as T);
      });
      this.#ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  /** Closes (bounded: terminated if the handshake takes over a second). */
  async close(): Promise<void> {
    Peer.live.delete(this);
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#ws.close(1000);
    const timer = setTimeout(() => this.#ws.terminate(), 1_000);
    await this.#closed;
    clearTimeout(timer);
  }

  #received(text: string): void {
    if (text.startsWith(SESSION_EVENT)) return this.onEvent(text);
    const frame = JSON.parse(text) as Reply & { id?: number; method?: string };
    if (frame.method !== undefined || typeof frame.id !== "number") return; // other events, server requests
    const wake = this.#calls.get(frame.id);
    this.#calls.delete(frame.id);
    wake?.(frame);
  }
}

/** The seq of a session event frame, without parsing the rest. */
function seqOf(text: string): number {
  const at = text.indexOf(SEQ_KEY) + SEQ_KEY.length;
  return Number(text.slice(at, text.indexOf(",", at)));
}

// ---- CPU of the processes involved ----

/** CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  if (pid === process.pid) {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

/** Reads the CPU of `pids` around `work`: each one's share of a core over it. */
async function withCpu<T>(pids: Record<string, number | undefined>, work: () => Promise<T>) {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const start = performance.now();
  const value = await work();
  const seconds = (performance.now() - start) / 1000;
  const cpu = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, (cpuSeconds(pid) - before[name]!) / seconds]),
  );
  return { value, cpu };
}

// ---- 1. the physical limit ----

/** `redis-benchmark`'s pipelined XADD rate (requests/s), with `payload` as the field's value. */
function xaddRate(port: number, payload: string, count = XADD_COUNT): number {
  const args = ["-h", "127.0.0.1", "-p", String(port), "-n", String(count), "-P", String(XADD_PIPELINE), "-q"];
  const output = execFileSync(REDIS_BENCHMARK, [...args, "XADD", "sbbench", "*", "f", payload], {
    encoding: "utf8",
    timeout: 60_000,
  });
  const rate = Number(output.match(/([\d.]+) requests per second/)?.[1]);
  if (!(rate > 0)) throw new Error(`redis-benchmark: no rate in ${JSON.stringify(output.slice(-300))}`);
  return rate;
}

/** `XADD_COUNT` commands `XADD <key> <id> f <payload>` in RESP, ids `*` or `1-0`, `2-0`, … */
function xaddCommands(key: string, payload: string, explicit: boolean): string {
  const bulk = (value: string) => `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
  const head = `*5\r\n${bulk("XADD")}${bulk(key)}`;
  const tail = `${bulk("f")}${bulk(payload)}`;
  const parts: string[] = [];
  for (let seq = 1; seq <= XADD_COUNT; seq++) parts.push(head + bulk(explicit ? `${seq}-0` : "*") + tail);
  return parts.join("");
}

/** Feeds `input` to `redis-cli --pipe` (one connection): commands/s, on the wall clock from spawn to exit. */
function pipeRate(port: number, input: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(REDIS_CLI, ["-h", "127.0.0.1", "-p", String(port), "--pipe"], { stdio: "pipe" });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const start = performance.now();
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const seconds = (performance.now() - start) / 1000;
      if (code !== 0 || !output.includes(`errors: 0, replies: ${XADD_COUNT}`)) {
        reject(new Error(`redis-cli --pipe (${code}): ${output.slice(-300)}`));
      } else resolve(XADD_COUNT / seconds);
    });
    child.stdin.on("error", () => {}).end(input);
  });
}

// ---- 2. the session stream ----

interface StreamRun {
  /** Events received a second (NaN when the stream stalled: no answer in time). */
  rate: number;
  frameBytes: number;
  /** Events of the measured part that never came (NaN when it stalled). */
  lost: number;
  /** The answer did not come within `STREAM_CALL_MS`: the events stopped coming. */
  stalled: boolean;
  /** What went wrong with the events (missing, out of order, stalled), if anything. */
  problem?: string;
}

/**
 * One client, one session on `url`: `demo.emit` of `STREAM_COUNT` events, `chunk` per
 * macrotask, after a warm-up; events/s received, and the events that did not come.
 */
async function streamRun(url: string, chunk: number): Promise<StreamRun> {
  const peer = await Peer.open(url);
  try {
    const { session_id } = await peer.call<{ session_id: string }>("session.create", {});
    let next = 1;
    let received = 0;
    let bytes = 0;
    let problem: string | undefined;
    peer.onEvent = (text) => {
      const seq = seqOf(text);
      if (seq !== next) problem ??= `seq ${seq} where ${next} was due`;
      next = seq + 1;
      received++;
      bytes += text.length;
    };
    /** The last seq, or undefined if the answer did not come in time. */
    const emit = (count: number) =>
      peer.call<{ last: number }>("demo.emit", { session_id, count, chunk }, STREAM_CALL_MS).then(
        ({ last }) => last,
        (error: unknown) => {
          if (error instanceof Timeout) return undefined;
          throw error;
        },
      );
    const stalled = (part: string) => ({
      rate: Number.NaN,
      frameBytes: Number.NaN,
      lost: Number.NaN,
      stalled: true,
      problem: `${part}: no answer within ${STREAM_CALL_MS / 1000} s, the events stopped at seq ${next - 1}${
        problem ? ` (before that: ${problem})` : ""
      }`,
    });
    if ((await emit(STREAM_WARMUP)) === undefined) return stalled("warm-up");
    const warmupProblem = problem;
    problem = undefined;
    received = 0;
    bytes = 0;
    const start = performance.now();
    const last = await emit(STREAM_COUNT);
    const seconds = (performance.now() - start) / 1000;
    if (last === undefined) return stalled("measured part");
    if (received !== STREAM_COUNT) problem ??= `${received} of ${STREAM_COUNT} events received`;
    if (last !== STREAM_WARMUP + STREAM_COUNT) problem ??= `last seq ${last}, ${STREAM_WARMUP + STREAM_COUNT} due`;
    if (warmupProblem) problem = `${problem ? `${problem}; ` : ""}warm-up: ${warmupProblem}`;
    return {
      rate: received / seconds,
      frameBytes: bytes / Math.max(received, 1),
      lost: STREAM_COUNT - received,
      stalled: false,
      problem,
    };
  } finally {
    await peer.close();
  }
}

// ---- 3. cross-node latency ----

/** The latencies one viewer saw (µs), and whether its events came once each, in order. */
class LatencyTrack {
  readonly histogram = new Histogram();
  max = 0;
  min = Infinity;
  received = 0;
  next = 1;
  problem: string | undefined;

  add(text: string): void {
    const now = performance.timeOrigin + performance.now();
    const { seq, payload } = (JSON.parse(text) as { params: { seq: number; payload: { i: number; t: number } } })
      .params;
    if (seq !== this.next) this.problem ??= `seq ${seq} where ${this.next} was due`;
    this.next = seq + 1;
    this.received++;
    if (payload.i <= LATENCY_WARMUP) return;
    const us = (now - payload.t) * 1000;
    this.histogram.record(us);
    this.max = Math.max(this.max, us);
    this.min = Math.min(this.min, us);
  }

  figures() {
    return {
      p50: this.histogram.quantile(0.5) / 1000,
      p99: this.histogram.quantile(0.99) / 1000,
      max: this.max / 1000,
      min: this.min / 1000,
      counted: this.histogram.total,
      problem: this.problem ?? (this.received === LATENCY_COUNT ? undefined : `${this.received} events received`),
    };
  }
}

async function latency(a: GatewayNode, b: GatewayNode) {
  const creator = await Peer.open(a.wsUrl);
  const viewer = await Peer.open(b.wsUrl);
  try {
    const { session_id } = await creator.call<{ session_id: string }>("session.create", {});
    await viewer.call("session.resume", { session_id, after_seq: 0 });
    const onA = new LatencyTrack();
    const onB = new LatencyTrack();
    creator.onEvent = (text) => onA.add(text);
    viewer.onEvent = (text) => onB.add(text);
    const start = performance.now();
    await creator.call("demo.paced", { session_id, count: LATENCY_COUNT, rate: LATENCY_RATE }, CALL_MS);
    const seconds = (performance.now() - start) / 1000;
    const deadline = Date.now() + 5_000;
    while (onB.received < LATENCY_COUNT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return { onA: onA.figures(), onB: onB.figures(), rate: LATENCY_COUNT / seconds };
  } finally {
    await Promise.all([creator.close(), viewer.close()]);
  }
}

type LatencyFigures = ReturnType<LatencyTrack["figures"]>;

/**
 * `latency` `RUNS` times, a new session and connections each (one run's p99 is its 48th slowest
 * event: a single pause of a process decides it): each quantile's median over the runs, with
 * each run's p99; the max and min over all of them.
 */
async function latencyRuns(a: GatewayNode, b: GatewayNode) {
  const runs: Awaited<ReturnType<typeof latency>>[] = [];
  for (let run = 0; run < RUNS; run++) runs.push(await latency(a, b));
  const combined = (all: LatencyFigures[]) => ({
    p50: median(all.map((f) => f.p50))!,
    p99: median(all.map((f) => f.p99))!,
    p99s: all.map((f) => f.p99),
    max: Math.max(...all.map((f) => f.max)),
    min: Math.min(...all.map((f) => f.min)),
    counted: all.reduce((sum, f) => sum + f.counted, 0),
    problem: all.find((f) => f.problem)?.problem,
  });
  return {
    onA: combined(runs.map((run) => run.onA)),
    onB: combined(runs.map((run) => run.onB)),
    rate: median(runs.map((run) => run.rate))!,
  };
}

// ---- 4. resume from another node ----

async function resumes(a: GatewayNode, b: GatewayNode) {
  const creator = await Peer.open(a.wsUrl);
  const times: number[] = [];
  const problems: string[] = [];
  let frameBytes = 0;
  try {
    for (let run = 0; run < RESUME_WARMUP + RESUME_RUNS; run++) {
      const { session_id } = await creator.call<{ session_id: string }>("session.create", {});
      await creator.call("demo.emit", { session_id, count: RESUME_EVENTS }, CALL_MS);
      const fresh = await Peer.open(b.wsUrl);
      try {
        let events = 0;
        let bytes = 0;
        let inOrder = true;
        fresh.onEvent = (text) => {
          events++;
          bytes += text.length;
          if (seqOf(text) !== events) inOrder = false;
        };
        const start = performance.now();
        const result = await fresh.call<{ replayed: number }>("session.resume", { session_id, after_seq: 0 });
        const ms = performance.now() - start;
        if (events !== RESUME_EVENTS || result.replayed !== RESUME_EVENTS || !inOrder) {
          problems.push(
            `resume run ${run}: ${events} frames before the answer${inOrder ? "" : " (not seqs 1, 2, …)"}, ` +
              `replayed ${result.replayed}`,
          );
        }
        if (run >= RESUME_WARMUP) times.push(ms);
        frameBytes = bytes / Math.max(events, 1);
      } finally {
        await fresh.close();
      }
    }
  } finally {
    await creator.close();
  }
  return { times, problems, frameBytes };
}

// ---- the run ----

const fmt = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "–";
const pct = (share: number) => Number.isFinite(share) ? `${fmt(share * 100)}%` : "–";
/** The median of the finite values (NaN if none). */
const mid = (values: number[]) => median(values.filter(Number.isFinite)) ?? Number.NaN;
/** `lowest … highest` of the finite values. */
const range = (values: number[], digits = 0) => {
  const finite = values.filter(Number.isFinite);
  return finite.length ? `${fmt(Math.min(...finite), digits)} … ${fmt(Math.max(...finite), digits)}` : "–";
};
const met = (ok: boolean) => ok ? "yes" : "**no**";

type Store = "redis" | "memory";

interface StreamSample extends StreamRun {
  store: Store;
  chunk: number;
  /** Each process's share of one core over the run. */
  cpu: Record<string, number>;
  /** Times the node logged that it dropped events and started a new epoch. */
  resets: number;
}

async function main(): Promise<void> {
  const environment = describeEnvironment();
  const started: { redis?: RedisServer; nodes: GatewayNode[]; memory?: Child } = { nodes: [] };
  // Whatever happens (a failure, the deadline, ^C), nothing started here outlives the run.
  process.on("exit", () => {
    for (const pid of [started.redis?.pid, ...started.nodes.map((node) => node.child.pid)]) {
      try {
        if (pid !== undefined) process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
  setTimeout(() => {
    console.error(`bench:redis: not done within ${DEADLINE_MS / 1000} s; giving up`);
    process.exit(1);
  }, DEADLINE_MS).unref();
  const failures: string[] = [];
  const began = performance.now();

  try {
    const redis = (started.redis = await RedisServer.start());
    const redisVersion = execFileSync("redis-server", ["--version"], { encoding: "utf8" }).match(/v=(\S+)/)?.[1];
    // A typical session event frame: the stream's own, at a 5-digit seq.
    const frameBytes = sessionEventFrame(sessionEventPrefix(randomId()), 50_000, "message.delta", {
      i: 50_000,
      pad: "",
    }).length;
    const payload = "x".repeat(frameBytes);

    // 1. The physical limit, alone on the machine.
    xaddRate(redis.port, payload, XADD_COUNT / 4); // warm-up, not counted
    const xadd: number[] = [];
    const xaddCpuUs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const before = cpuSeconds(redis.pid);
      xadd.push(xaddRate(redis.port, payload));
      xaddCpuUs.push((cpuSeconds(redis.pid) - before) / XADD_COUNT * 1e6);
    }
    const pipe = { auto: [] as number[], explicit: [] as number[] };
    for (const kind of ["auto", "explicit"] as const) {
      const input = xaddCommands("sbbench:pipe", payload, kind === "explicit");
      for (let run = 0; run < RUNS; run++) {
        await redis.command(["DEL", "sbbench:pipe"]);
        pipe[kind].push(await pipeRate(redis.port, input));
      }
    }
    await redis.command(["FLUSHALL"]);
    const limit = median(xadd)!;
    log(
      `XADD, redis-benchmark: ${xadd.map((r) => fmt(r)).join(", ")}/s (Redis CPU ${
        xaddCpuUs.map((us) => fmt(us, 2)).join(", ")
      } µs each); redis-cli --pipe, ids *: ${pipe.auto.map((r) => fmt(r)).join(", ")}/s, explicit ids: ${
        pipe.explicit.map((r) => fmt(r)).join(", ")
      }/s`,
    );

    // 2. The session stream on one node, RedisStore and in-memory store, at each chunk size.
    let a = await GatewayNode.start(redis.url, LEASE_MS);
    started.nodes.push(a);
    const memory = (started.memory = startChild("memory node", process.execPath, [
      "--import",
      "tsx",
      "bench/redis.ts",
      "--memory-node",
    ]));
    const memoryUrl = (await memory.next<{ url: string }>(20_000)).url;
    const resetsSoFar = () => a.logs().filter((entry) => entry.message.includes("new epoch")).length;
    const samples: StreamSample[] = [];
    let restarts = 0;
    for (let run = 0; run < RUNS; run++) {
      // Alternate the order, so drift during the run does not always favour one side.
      const stores: Store[] = run % 2 === 0 ? ["redis", "memory"] : ["memory", "redis"];
      for (const chunk of CHUNKS) {
        for (const store of stores) {
          const pids = store === "redis"
            ? { redis: redis.pid, node: a.child.pid, client: process.pid }
            : { node: memory.pid, client: process.pid };
          const resets = resetsSoFar();
          const { value, cpu } = await withCpu(pids, () => streamRun(store === "redis" ? a.wsUrl : memoryUrl, chunk));
          const sample = { ...value, store, chunk, cpu, resets: resetsSoFar() - resets };
          samples.push(sample);
          log(
            `stream, ${store}, chunk ${chunk}, run ${run + 1}: ${fmt(value.rate)} events/s${
              value.problem ? ` (${value.problem}; ${sample.resets} new epochs)` : ""
            }; CPU ${Object.entries(cpu).map(([name, share]) => `${name} ${pct(share)}`).join(", ")}`,
          );
          if (value.stalled && store === "redis") {
            // A stalled session may keep its node busy (retrying forever): the next runs get a fresh node.
            log("restarting gateway node A after the stall");
            await a.stop();
            a = await GatewayNode.start(redis.url, LEASE_MS);
            started.nodes.push(a);
            restarts++;
          }
        }
      }
    }
    await memory.stop(5_000);
    const of = (store: Store, chunk: number) => samples.filter((s) => s.store === store && s.chunk === chunk);
    const rateAt = (store: Store, chunk: number) => mid(of(store, chunk).map((s) => s.rate));
    // The headline: the chunk with the fastest median at which no RedisStore run lost, misordered or stalled.
    const cleanChunks = CHUNKS.filter((chunk) => of("redis", chunk).every((s) => !s.problem));
    const best = cleanChunks.length
      ? cleanChunks.reduce((x, y) => rateAt("redis", y) > rateAt("redis", x) ? y : x)
      : CHUNKS[0]!;
    if (!cleanChunks.length) failures.push("session stream: the RedisStore lost events at every chunk size");
    for (const s of samples.filter((s) => s.problem && s.store === "memory")) {
      failures.push(`stream, in-memory, chunk ${s.chunk}: ${s.problem}`);
    }
    const redisStream = rateAt("redis", best);
    const ratio = redisStream / limit;
    const streamFrame = mid(samples.map((s) => s.frameBytes));

    // 3. Cross-node latency, on fresh nodes.
    await a.stop();
    a = await GatewayNode.start(redis.url, LEASE_MS);
    started.nodes.push(a);
    const b = await GatewayNode.start(redis.url, LEASE_MS);
    started.nodes.push(b);
    const lat = await latencyRuns(a, b);
    for (const [where, figures] of [["B", lat.onB], ["A", lat.onA]] as const) {
      if (figures.problem) failures.push(`latency, viewer on ${where}: ${figures.problem}`);
      log(
        `latency, viewer on ${where}: p50 ${fmt(figures.p50, 2)} ms, p99 ${fmt(figures.p99, 2)} ms (${
          range(figures.p99s, 2)
        }), max ${fmt(figures.max, 2)} ms, min ${fmt(figures.min, 3)} ms over ${figures.counted} events`,
      );
    }

    // 4. Resume from another node.
    const resume = await resumes(a, b);
    failures.push(...resume.problems);
    const resumeMedian = median(resume.times)!;
    log(`resume of ${RESUME_EVENTS} events on B: ${resume.times.map((ms) => fmt(ms, 2)).join(", ")} ms`);

    const nodeLogs = started.nodes.flatMap((node) => node.logs());
    const logged = new Map<string, number>();
    for (const entry of nodeLogs) {
      logged.set(`${entry.level}: ${entry.message}`, (logged.get(`${entry.level}: ${entry.message}`) ?? 0) + 1);
    }
    const seconds = (performance.now() - began) / 1000;

    // The report.
    const table = [
      "| figure | measured | target | met |",
      "| --- | --- | --- | --- |",
      `| Redis XADD, pipelined (\`redis-benchmark\`): the physical limit | ${fmt(limit)}/s (${range(xadd)}) | – | – |`,
      `| Redis XADD through \`redis-cli --pipe\`: ids \`*\` / explicit ids \`<seq>-0\`, as the store writes them | ${
        fmt(median(pipe.auto)!)
      }/s / ${fmt(median(pipe.explicit)!)}/s | explicit ids not slower (within 15%) | ${
        met(median(pipe.explicit)! >= 0.85 * median(pipe.auto)!)
      } |`,
      `| session stream, one node, RedisStore (chunk ${best}, no event lost) | ${fmt(redisStream)} events/s (${
        range(of("redis", best).map((s) => s.rate))
      }) | – | – |`,
      `| … as a share of Redis' XADD rate | ${fmt(ratio, 2)}× | ≥ 0.5× | ${met(ratio >= 0.5)} |`,
      `| session stream, one node, in-memory store (chunk ${best}) | ${fmt(rateAt("memory", best))} events/s (${
        range(of("memory", best).map((s) => s.rate))
      }) | – | – |`,
      `| cross-node latency at ${fmt(LATENCY_RATE)} events/s, viewer on B: p50 | ${fmt(lat.onB.p50, 2)} ms | ≤ 2 ms | ${
        met(lat.onB.p50 <= 2)
      } |`,
      `| … p99 | ${fmt(lat.onB.p99, 2)} ms (${range(lat.onB.p99s, 2)}) | ≤ 10 ms | ${met(lat.onB.p99 <= 10)} |`,
      `| … max | ${fmt(lat.onB.max, 2)} ms | – | – |`,
      `| same-node latency, viewer on A: p50 / p99 / max | ${fmt(lat.onA.p50, 2)} / ${fmt(lat.onA.p99, 2)} / ${
        fmt(lat.onA.max, 2)
      } ms | – | – |`,
      `| resume of ${RESUME_EVENTS} events (~${fmt(resume.frameBytes)} B frames) on another node: send → answer | ${
        fmt(resumeMedian, 2)
      } ms (${range(resume.times, 2)}) | – | – |`,
    ].join("\n");
    const chunkTable = [
      "| chunk | in-memory events/s | RedisStore events/s | RedisStore: events lost, new epochs, runs stalled | CPU in RedisStore runs (not stalled): redis-server / node / client | redis-server CPU µs per event |",
      "| --- | --- | --- | --- | --- | --- |",
      ...CHUNKS.map((chunk) => {
        const runs = of("redis", chunk);
        const lost = runs.reduce((sum, s) => sum + (s.stalled ? 0 : s.lost), 0);
        const resets = runs.reduce((sum, s) => sum + s.resets, 0);
        const stalled = runs.filter((s) => s.stalled).length;
        const trouble = lost || resets || stalled ? `**${fmt(lost)}, ${resets}, ${stalled}**` : "0, 0, 0";
        const cpu = ["redis", "node", "client"].map((name) =>
          pct(mid(runs.filter((s) => !s.stalled).map((s) => s.cpu[name]!)))
        );
        const redisUs = mid(runs.map((s) => s.cpu.redis! / s.rate * 1e6));
        return `| ${chunk} | ${fmt(rateAt("memory", chunk))} (${range(of("memory", chunk).map((s) => s.rate))}) | ${
          fmt(rateAt("redis", chunk))
        } (${range(runs.map((s) => s.rate))}) | ${trouble} | ${cpu.join(" / ")} | ${fmt(redisUs, 2)} |`;
      }),
    ].join("\n");
    const xaddCommand = `${REDIS_BENCHMARK} -h 127.0.0.1 -p <port> -n ${XADD_COUNT} -P ${XADD_PIPELINE} -q XADD ` +
      `sbbench '*' f <${frameBytes} × x>`;
    const section = [
      SECTION_START,
      "## Sessions on Redis",
      "",
      `\`npm run bench:redis\` (\`bench/redis.ts\`, ${
        fmt(seconds)
      } s this time, loopback only): a private redis-server (no persistence), gateway nodes each in a Node process of ` +
      `their own on the RedisStore (\`test/fixtures/redis-node.ts\`, leases ${LEASE_MS} ms), one Node client ` +
      `(\`ws\`) in the runner's process. Medians; ranges are the lowest … highest run.`,
      "",
      `- ${environment[0]}`,
      `- ${environment[1]}`,
      `- Versions: node ${process.version}, redis-server ${redisVersion}, redis (node-redis) ${
        packageVersion("redis")
      }, ws ${packageVersion("ws")}; Switchboard at ${sourceVersion()}.`,
      `- The physical limit (median of ${RUNS}, after one run not counted; Redis used ${
        fmt(median(xaddCpuUs)!, 2)
      } µs of CPU per XADD): \`${xaddCommand}\` (50 clients, 64 deep; the value is as long as a stream event's ` +
      `frame). The store appends with explicit ids, so both id forms were also fed to \`${REDIS_CLI} -h 127.0.0.1 ` +
      `-p <port> --pipe\` (${fmt(XADD_COUNT)} \`XADD sbbench:pipe <id> f <${frameBytes} × x>\` on one ` +
      `connection, timed from spawn to exit, median of ${RUNS}).`,
      `- Session stream: one client creates a session on the node and calls \`demo.emit {count: ${
        fmt(STREAM_COUNT)
      }, chunk}\` after ${fmt(STREAM_WARMUP)} of warm-up (the method emits \`chunk\` events, then waits for a 1 ms ` +
      `timer, and so on; ~${fmt(streamFrame)} B frames); events/s = events / (request sent → answer, which ` +
      `follows the last event); ${RUNS} runs of each store at each chunk, alternating, each node in its own process. ` +
      `The headline is the chunk with the fastest median at which the RedisStore lost no event in any run; a run ` +
      `whose answer does not come within ${STREAM_CALL_MS / 1000} s stalled (its events stopped); CPU is each ` +
      `process's share of one core over a run (medians)${
        restarts ? `; node A was restarted after each stalled run (${restarts} in all)` : ""
      }.`,
      `- Latency: two nodes started for it (the stream's node stopped), a session created on node A, a second connection resumes it on node B; \`demo.paced {count: ${
        fmt(LATENCY_COUNT)
      }, rate: ${LATENCY_RATE}}\` on A stamps each event with \`performance.timeOrigin + performance.now()\`, the ` +
      `client reads its own clock at each event (the method took ${fmt(LATENCY_COUNT / lat.rate, 2)} s: ${
        fmt(lat.rate)
      } events/s; ${fmt(LATENCY_COUNT - LATENCY_WARMUP)} counted after ${LATENCY_WARMUP} ` +
      `of warm-up; ${RUNS} runs, each with a new session and connections: medians of their quantiles, each within 1.1%; the smallest latency seen was ${
        fmt(lat.onB.min, 3)
      } ms on B, ${fmt(lat.onA.min, 3)} ms on A).`,
      `- Resume: a new session on A with ${RESUME_EVENTS} events (\`demo.emit\`), a new connection on B sends ` +
      `\`session.resume {after_seq: 0}\`; time from sending it to its answer, all ${RESUME_EVENTS} replayed frames ` +
      `before it; ${RESUME_RUNS} runs after ${RESUME_WARMUP} not counted.`,
      "",
      table,
      "",
      "The session stream at each chunk size:",
      "",
      chunkTable,
      "",
      limits(samples, best, limit, median(xaddCpuUs)!, lat),
      ...(logged.size
        ? ["", "The gateway nodes logged:", "", ...[...logged].map(([line, count]) => `- ${line} (×${count})`)]
        : []),
      ...(failures.length ? ["", "Problems in this run:", "", ...failures.map((f) => `- ${f}`)] : []),
      SECTION_END,
    ].join("\n");
    console.log(`\n${section}\n`);
    writeSection(section);
    console.log(`written to ${RESULTS}`);
    if (failures.length) process.exitCode = 1;
  } finally {
    for (const peer of [...Peer.live]) await peer.close();
    await started.memory?.stop(5_000);
    await Promise.all(started.nodes.map((node) => node.stop()));
    await started.redis?.stop();
  }
}

/** What limits the figures, with this run's numbers. */
function limits(
  samples: StreamSample[],
  best: number,
  limit: number,
  xaddCpuUs: number,
  lat: { onA: { p99: number }; onB: { p99: number } },
): string {
  const at = (store: Store, chunk: number) => samples.filter((s) => s.store === store && s.chunk === chunk);
  const rate = (store: Store, chunk: number) => mid(at(store, chunk).map((s) => s.rate));
  const cpu = Object.fromEntries(
    ["redis", "node", "client"].map((name) => [name, mid(at("redis", best).map((s) => s.cpu[name]!))]),
  );
  const busiest = Object.entries(cpu).reduce((x, y) => y[1] > x[1] ? y : x);
  const redisUs = mid(at("redis", best).map((s) => s.cpu.redis! / s.rate * 1e6));
  const lossy = CHUNKS.filter((chunk) => at("redis", chunk).some((s) => s.problem));
  const stalls = samples.filter((s) => s.store === "redis" && s.stalled).length;
  const versus = rate("redis", best) / rate("memory", best);
  return [
    `What limits the figures: at chunk ${best} the RedisStore stream ran at ${fmt(versus, 2)}× the in-memory ` +
    `store's rate${
      versus >= 0.9
        ? `: both are paced by the emitter (${best} events, then a timer of at least 1 ms)`
        : `, paced by the same emitter (${best} events, then a timer of at least 1 ms)`
    }, and ${
      busiest[1] < 0.9
        ? `no process filled a core (redis-server ${pct(cpu.redis!)}, node ${pct(cpu.node!)}, client ${
          pct(cpu.client!)
        }).`
        : `the busiest process was ${busiest[0]} at ${pct(busiest[1])} of a core.`
    } The store's own limit shows at larger chunks: the owner node keeps up to four appends in flight, what is ` +
    `emitted meanwhile waits for the next, and past a bound of a few rings' worth the waiting events are dropped and ` +
    `the session is reset to a new epoch${
      lossy.length
        ? `, so at chunk ${lossy.join(", ")} runs lost events${
          stalls ? ` and ${stalls} stalled outright (no more events, no answer)` : ""
        }`
        : ""
    }. Redis spent ${fmt(redisUs, 2)} µs of CPU per event in the append script (one entry per ` +
    `append: XADD, RPUSH, LINDEX, HSET, PEXPIREs, PUBLISH, and LPOP and XTRIM when it trims, whatever its count) against ${
      fmt(xaddCpuUs, 2)
    } µs per bare pipelined XADD: ` +
    `even with a core to itself Redis would take the store to ~${fmt(Math.round(1e6 / redisUs / 1000) * 1000)} ` +
    `events/s, ${fmt(1e6 / redisUs / limit, 2)}× the XADD rate.`,
    `Latency is an append round trip to Redis before any viewer gets an event (same node: p99 ${
      fmt(lat.onA.p99, 2)
    } ms) plus a pub/sub hop to another node (p99 ${fmt(lat.onB.p99, 2)} ms), three processes sharing two cores.`,
  ].join(" ");
}

/** The commit measured, and whether src/ differs from it. */
function sourceVersion(): string {
  const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8", timeout: 10_000 }).trim();
  try {
    const dirty = git("status", "--porcelain", "--", "src").length > 0;
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? " with uncommitted changes in src/" : ""}`;
  } catch {
    return "an unknown commit";
  }
}

/** Puts `section` before the `<!-- latest -->` marker, replacing the previous one; the rest is left as it is. */
function writeSection(section: string): void {
  const text = readFileSync(RESULTS, "utf8");
  const at = text.indexOf(MARKER);
  if (at === -1) throw new Error(`${RESULTS}: no ${MARKER} marker`);
  let head = text.slice(0, at);
  const start = head.indexOf(SECTION_START);
  if (start !== -1) {
    const end = head.indexOf(SECTION_END, start);
    head = head.slice(0, start) + (end === -1 ? "" : head.slice(end + SECTION_END.length));
  }
  writeFileSync(RESULTS, `${head.trimEnd()}\n\n${section}\n\n${text.slice(at)}`);
}

if (process.argv.includes("--memory-node")) await memoryNode();
else {
  await main().catch((error: unknown) => {
    console.error(`bench:redis failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exitCode = 1;
  });
}
