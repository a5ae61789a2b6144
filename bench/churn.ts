/**
 * `npm run bench:churn [-- --duration=90] [--clients=50] [--only=deno,…] [--servers=switchboard,floor,…]
 * [--tick-ms=100] [--cut-ms=150-450] [--settle=0] [--no-gc] [--server-v8-flags=…] [--snapshots=<dir>]
 * [--json=<path>]`: server memory under reconnect churn.
 *
 * On each runtime the server runs in its own process on the real binary (the bench servers of
 * `bench/servers/`, through `bench/server.ts`); one Bun process (`bench/churn-client.ts`) runs
 * `--clients` Switchboard clients, each through its own cutting proxy, each following a session
 * that emits an event every `--tick-ms`, while one connection, chosen at random every
 * 150–450 ms, is cut without a close frame (the client reconnects and resumes). The runner
 * reads the server's RSS from `/proc` every second and its heap and V8's young generation (no
 * GC) through the control channel; at a third, two thirds and the end of the run it also reads
 * RSS and heap after a full GC (`--no-gc` skips those: a forced GC also shrinks what the runtime
 * had grown). It prints each run's growth over the last third, and the server's CPU time.
 *
 * `--settle=S` keeps reading for S seconds after the churn stops (the clients stay connected).
 * `--server-v8-flags=a,b` passes V8 flags to a Node or Deno server (e.g.
 * `--max-semi-space-size=8`). `--snapshots=<dir>` (Node and Deno) starts the server with its
 * inspector on 127.0.0.1 and writes a heap snapshot at two thirds and at the end of the run (and
 * after the settle), then prints what grew between them and how many of each per-connection
 * object every snapshot holds (`bench/heap-snapshot.ts`); RSS after the first snapshot includes
 * the inspector's own memory. `--json=<path>` writes every run's samples there. Loopback only;
 * every wait is bounded and the run gives up past its deadline.
 */
import { writeFileSync } from "node:fs";
import { startChild } from "./children.ts";
import type { ChurnClientConfig, ChurnStats } from "./churn-client.ts";
import { describeEnvironment } from "./environment.ts";
import { counts, freePort, growth, HeapSnapshot, inspectFlag, Inspector } from "./heap-snapshot.ts";
import { readRss } from "./peak-rss.ts";
import { BIN, type Runtime, RUNTIMES, type ServerSpec } from "./plan.ts";
import { type RunningServer, startServer } from "./server.ts";

const flag = (name: string) => process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
const number = (name: string, fallback: number) => {
  const value = Number(flag(name) ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name}: not a number`);
  return value;
};
const durationS = number("duration", 90);
const clients = number("clients", 50);
const tickMs = number("tick-ms", 100);
const settleS = number("settle", 0);
const [cutMinMs, cutMaxMs] = (flag("cut-ms") ?? "150-450").split("-").map(Number) as [number, number];
const withGc = !process.argv.includes("--no-gc");
const v8Flags = flag("server-v8-flags")?.split(",") ?? [];
const snapshotDir = flag("snapshots");
const jsonPath = flag("json");
const runtimes = (flag("only")?.split(",") ?? RUNTIMES) as Runtime[];
const names = flag("servers")?.split(",") ?? ["switchboard"];
if (!(durationS >= 3 && clients >= 1 && tickMs >= 1 && cutMinMs >= 1 && cutMaxMs >= cutMinMs)) {
  throw new Error("need --duration ≥ 3, --clients ≥ 1, --tick-ms ≥ 1, --cut-ms=<min>-<max> with 1 ≤ min ≤ max");
}

/**
 * What one connection or session is made of (ours, Hono's and the runtimes'), counted in each
 * heap snapshot: after the churn, ours should number the clients, whatever the cuts.
 */
const PER_CONNECTION = [
  "Connection",
  "SocketTransport",
  "Session",
  "DenoSocket",
  "GatewayWebSocket",
  "WebSocket",
  "Request",
  "InnerRequest",
].map((name) => `${name} (object)`);

const SAMPLE_MS = 1_000;
/** Samples printed to stderr while a run goes on. */
const PRINT_EVERY_S = 10;
/** The longest any one answer from a child may take. */
const ANSWER_MS = 30_000;
/** The longest a heap snapshot may take to write. */
const SNAPSHOT_MS = 180_000;
const runs = runtimes.flatMap((runtime) =>
  names.map((name): ServerSpec => ({
    runtime,
    name,
    script: name === "floor" ? `bench/servers/floor-${runtime}.ts` : `bench/servers/${name}.ts`,
    workloads: [],
  }))
);
const perRunMs = (durationS + settleS) * 1000 + 60_000 + (snapshotDir ? 3 * SNAPSHOT_MS : 0);
const DEADLINE_MS = runs.length * perRunMs;
setTimeout(() => {
  console.error(`bench:churn: not done within ${DEADLINE_MS / 1000} s; giving up`);
  process.exit(1); // children.ts kills every child still running
}, DEADLINE_MS).unref();

interface Sample {
  /** Seconds since the churn started. */
  t: number;
  rss: number;
  heap: number;
  heapTotal: number;
  external: number;
  young: number;
}

interface Point {
  /** Median RSS of the samples in the 5 s up to the point (before its GC). */
  rss: number;
  /** The young generation at the point. */
  young: number;
  /** RSS and heap after a full GC, when taken. */
  gcRss?: number;
  gcHeap?: number;
}

interface RunResult {
  spec: ServerSpec;
  stats?: ChurnStats;
  /** Server CPU time over the churn, in seconds. */
  cpuS?: number;
  /** At the start of the churn, a third, two thirds, the end, and after the settle. */
  points: Point[];
  samples: Sample[];
  snapshots: string[];
  failure?: string;
}

const MiB = 2 ** 20;
const mib = (bytes: number | undefined) => (bytes === undefined ? "–" : (bytes / MiB).toFixed(1));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The runtime flags for a server: V8 flags, and the inspector when snapshots are wanted. */
function serverFlags(runtime: Runtime, inspectorPort: number | undefined): string[] {
  const flags = inspectorPort ? [inspectFlag(inspectorPort)] : [];
  if (v8Flags.length && runtime === "node") flags.push(...v8Flags);
  if (v8Flags.length && runtime === "deno") flags.push(`--v8-flags=${v8Flags.join(",")}`);
  if (v8Flags.length && runtime === "bun") console.error("bun: --server-v8-flags ignored (not V8)");
  return flags;
}

async function sample(server: RunningServer, t: number): Promise<Sample> {
  const usage = await server.usage();
  const { rss } = readRss(server.pid);
  return { t, rss, heap: usage.heap, heapTotal: usage.heap_total, external: usage.external, young: usage.young };
}

async function churnRun(spec: ServerSpec): Promise<RunResult> {
  const label = `${spec.runtime}/${spec.name}`;
  const inspectorPort = snapshotDir && spec.runtime !== "bun" ? await freePort() : undefined;
  const server = await startServer(spec, undefined, serverFlags(spec.runtime, inspectorPort));
  const config: ChurnClientConfig = {
    url: server.url,
    clients,
    tickMs,
    cutMinMs,
    cutMaxMs,
    settleMs: 5_000,
    maxMs: perRunMs,
  };
  const client = startChild(`${label} churn client`, BIN.bun, ["bench/churn-client.ts", JSON.stringify(config)]);
  const result: RunResult = { spec, points: [], samples: [], snapshots: [] };
  let inspector: Inspector | undefined;
  const point = async (t: number, snapshotName?: string) => {
    const recent = result.samples.filter((s) => s.t > t - 5 && s.t <= t);
    const at: Point = { rss: median(recent.map((s) => s.rss)), young: recent.at(-1)!.young };
    if (withGc) {
      const gc = await server.memory();
      at.gcRss = gc.rss;
      at.gcHeap = gc.heap;
    }
    if (snapshotName && inspectorPort) {
      const path = `${snapshotDir}/${spec.runtime}-${spec.name}-${snapshotName}.heapsnapshot`;
      inspector ??= await Inspector.connect(inspectorPort);
      await inspector.snapshot(path, SNAPSHOT_MS);
      result.snapshots.push(path);
      console.error(`${label}: heap snapshot ${path}`);
    }
    result.points.push(at);
  };
  try {
    await client.next(ANSWER_MS);
    result.samples.push(await sample(server, 0));
    await point(0);
    const cpuAtStart = await server.cpu();
    client.send("go");
    const start = performance.now();
    const thirds = [Math.round(durationS / 3), Math.round((2 * durationS) / 3), durationS];
    for (let t = 1; t <= durationS + settleS; t++) {
      await sleep(Math.max(0, start + t * SAMPLE_MS - performance.now()));
      const s = await sample(server, t);
      result.samples.push(s);
      if (t % PRINT_EVERY_S === 0) {
        console.error(
          `${label} ${t} s: RSS ${mib(s.rss)} MiB, heap ${mib(s.heap)} of ${mib(s.heapTotal)} MiB (young ${
            mib(s.young)
          }), external ${mib(s.external)} MiB`,
        );
      }
      if (t === durationS) result.cpuS = ((await server.cpu()) - cpuAtStart) / 1e6;
      const third = thirds.indexOf(t);
      if (third >= 0) await point(t, ["", "two-thirds", "end"][third]);
      if (t === durationS) {
        client.send("stop");
        result.stats = await client.next<ChurnStats>(ANSWER_MS);
      }
    }
    if (settleS > 0) await point(durationS + settleS, "settled");
  } catch (error) {
    result.failure = (error as Error).message;
  } finally {
    inspector?.close();
    await client.stop();
    await server.stop();
  }
  return result;
}

const HEADER = [
  "| runtime | server | run | cuts / reconnects | events delivered / emitted | server CPU | RSS MiB: start → ⅓ → ⅔ → end | RSS over the last third | young generation MiB: ⅔ → end | heap MiB after GC: ⅓ → ⅔ → end | heap after GC over the last third | after the settle: RSS (young) |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
];

function describe(result: RunResult): string {
  const { spec, stats, points, failure, cpuS } = result;
  const [start, third, twoThirds, end, settled] = points;
  const cells = [spec.runtime, spec.name];
  if (failure || !start || !third || !twoThirds || !end || !stats) {
    return `| ${cells.join(" | ")} | failed: ${failure} |`;
  }
  const change = (from: number, to: number) =>
    `${to >= from ? "+" : "−"}${mib(Math.abs(to - from))} (${to >= from ? "+" : "−"}${
      (Math.abs(to / from - 1) * 100).toFixed(0)
    }%)`;
  const count = (n: number) => n.toLocaleString("en-US");
  const young = (p: Point) => (p.young ? mib(p.young) : "–");
  return `| ${
    [
      ...cells,
      `${durationS} s`,
      `${count(stats.cuts)} / ${count(stats.opened - clients)}`,
      `${count(stats.delivered)} / ${count(stats.emitted)}`,
      `${((cpuS ?? Number.NaN) / durationS * 100).toFixed(0)}% of a core`,
      [start, third, twoThirds, end].map((p) => mib(p.rss)).join(" → "),
      change(twoThirds.rss, end.rss),
      `${young(twoThirds)} → ${young(end)}`,
      withGc ? [third, twoThirds, end].map((p) => mib(p.gcHeap)).join(" → ") : "–",
      withGc ? change(twoThirds.gcHeap!, end.gcHeap!) : "–",
      settled ? `${mib(settled.rss)} (${young(settled)})` : "–",
    ].join(" | ")
  } |`;
}

const environment = describeEnvironment();
const results: RunResult[] = [];
for (const spec of runs) {
  const result = await churnRun(spec).catch((error: Error): RunResult => ({
    spec,
    points: [],
    samples: [],
    snapshots: [],
    failure: error.message,
  }));
  results.push(result);
  console.error([...HEADER, describe(result)].join("\n"));
}

const lines = [
  `Reconnect churn: ${clients} clients each following a session that emits an event every ${tickMs} ms, ` +
  `one connection cut every ${cutMinMs}–${cutMaxMs} ms (no close frame), ${durationS} s per run` +
  (settleS ? `, then ${settleS} s without churn` : "") + (v8Flags.length ? `; server V8 flags ${v8Flags}` : "") +
  (withGc ? "" : "; no forced GC") + ".",
  ...environment.map((line) => `- ${line}`),
  "",
  ...HEADER,
  ...results.map(describe),
];
console.log(`\n${lines.join("\n")}`);

if (jsonPath) writeFileSync(jsonPath, JSON.stringify(results));
for (const result of results) {
  const [first, ...rest] = result.snapshots;
  if (!first) continue;
  const label = `${result.spec.runtime}/${result.spec.name}`;
  const before = new HeapSnapshot(first);
  console.log(`\n${label}, objects in ${first}: ${counts(before, PER_CONNECTION)}`);
  for (const path of rest) {
    const after = new HeapSnapshot(path);
    console.log(`\n${label}: ${first} → ${path}`);
    console.log(growth(before, after, 25).join("\n"));
    console.log(`objects in ${path}: ${counts(after, PER_CONNECTION)}`);
  }
}
process.exit(results.some((r) => r.failure) ? 1 : 0);
