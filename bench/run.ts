/**
 * `npm run bench [-- --quick]`: every server on every runtime against the same Bun load
 * client, each server in its own process (the real runtime binary), reporting its own CPU
 * time so the figures are CPU µs per message as well as rates. Every figure is also given as
 * a ratio to the hand-written floor on the same runtime, measured in the same run.
 */
import { execFileSync, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { createInterface } from "node:readline";

const quick = process.argv.includes("--quick");
const runs = quick ? 1 : 3;
const counts = quick
  ? { rpc: 100_000, latency: 3_000, stream: 100_000, idle: 1_000 }
  : { rpc: 300_000, latency: 10_000, stream: 200_000, idle: 5_000 };

type Runtime = "node" | "deno" | "bun";
type Workload = "idle" | "latency" | "rpc" | "stream";
const bin = { deno: "node_modules/.bin/deno", bun: "node_modules/.bin/bun" };

interface ServerSpec {
  runtime: Runtime;
  name: string;
  script: string;
  workloads: Workload[];
}

const all: Workload[] = ["idle", "latency", "rpc", "stream"];
const servers: ServerSpec[] = [
  ...(["node", "deno", "bun"] as const).flatMap((runtime) => [
    { runtime, name: "floor", script: `bench/servers/floor-${runtime}.ts`, workloads: all },
    { runtime, name: "switchboard", script: "bench/servers/switchboard.ts", workloads: all },
  ]),
  { runtime: "node", name: "rpc-websockets", script: "bench/servers/rpc-websockets.ts", workloads: ["latency", "rpc"] },
  { runtime: "node", name: "json-rpc-2.0", script: "bench/servers/json-rpc-2.0.ts", workloads: ["latency", "rpc"] },
];

/** Lines of a child's stdout, one at a time. */
function lines(child: { stdout: Readable }) {
  const iterator = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return async () => {
    const { value, done } = await iterator.next();
    if (done) throw new Error("process ended early");
    return JSON.parse(value as string);
  };
}

function command(runtime: Runtime, script: string): [string, string[]] {
  if (runtime === "node") return [process.execPath, ["--import", "tsx", script]];
  if (runtime === "deno") return [bin.deno, ["run", "-A", script]];
  return [bin.bun, [script]];
}

async function startServer(spec: ServerSpec) {
  const [cmd, args] = command(spec.runtime, spec.script);
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
  const next = lines(child);
  const { port } = await next();
  return {
    url: `ws://127.0.0.1:${port}/api/ws`,
    async stats(): Promise<{ cpu_us: number; rss: number }> {
      child.stdin.write("stats\n");
      return next();
    },
    stop() {
      child.stdin.end();
      child.kill();
    },
  };
}

function client(config: object) {
  const child = spawn(bin.bun, ["bench/client.ts", JSON.stringify(config)], { stdio: ["pipe", "pipe", "inherit"] });
  return { child, next: lines(child) };
}

type Result = Record<string, number>;

async function measure(workload: Workload, url: string, server: Awaited<ReturnType<typeof startServer>>): Promise<Result> {
  if (workload === "idle") {
    const before = await server.stats();
    const run = client({ workload, url, connections: counts.idle, maxMs: 60_000 });
    await run.next(); // all connected
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await server.stats();
    run.child.stdin.write("\n");
    await run.next();
    return { kb_per_conn: (after.rss - before.rss) / counts.idle / 1024 };
  }
  const config =
    workload === "stream"
      ? { workload, url, count: counts.stream, maxMs: 60_000 }
      : { workload: "rpc", url, connections: workload === "rpc" ? 50 : 1, inFlight: workload === "rpc" ? 16 : 1, total: counts[workload], maxMs: 60_000 };
  const before = await server.stats();
  const result = await client(config).next();
  const after = await server.stats();
  return { ...result, cpu_us_per_msg: (after.cpu_us - before.cpu_us) / result.messages };
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// results[runtime/server/workload] = per-metric medians
const samples = new Map<string, Result[]>();
for (let run = 1; run <= runs; run++) {
  for (const spec of servers) {
    const server = await startServer(spec);
    try {
      for (const workload of spec.workloads) {
        const key = `${spec.runtime}/${spec.name}/${workload}`;
        const result = await measure(workload, server.url, server);
        samples.set(key, [...(samples.get(key) ?? []), result]);
        console.error(`run ${run} ${key}: ${JSON.stringify(result, (_k, v) => (typeof v === "number" ? Math.round(v * 100) / 100 : v))}`);
      }
    } finally {
      server.stop();
    }
  }
}

const results = new Map<string, Result>();
for (const [key, list] of samples) {
  const merged: Result = {};
  for (const metric of Object.keys(list[0]!)) merged[metric] = median(list.map((r) => r[metric]!));
  results.set(key, merged);
}

const get = (runtime: string, server: string, workload: string, metric: string) => results.get(`${runtime}/${server}/${workload}`)?.[metric];
const fmt = (n: number | undefined, digits = 0) => (n === undefined ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? "–" : `${(a / b).toFixed(2)}×`);

const rows = [
  "| runtime | server | rpc req/s | ×floor | server CPU µs/req | ×floor | rpc p50 / p99 µs | 1×1 p50 / p99 µs | p50 − floor | stream events/s | ×floor | CPU µs/event | idle KB/conn | − floor |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
];
for (const spec of servers) {
  const { runtime, name } = spec;
  const g = (w: string, m: string) => get(runtime, name, w, m);
  const f = (w: string, m: string) => get(runtime, "floor", w, m);
  const idleDiff = g("idle", "kb_per_conn") === undefined ? undefined : g("idle", "kb_per_conn")! - f("idle", "kb_per_conn")!;
  const p50Diff = g("latency", "p50_us")! - f("latency", "p50_us")!;
  rows.push(
    `| ${runtime} | ${name} | ${fmt(g("rpc", "rate"))} | ${ratio(g("rpc", "rate"), f("rpc", "rate"))} | ${fmt(g("rpc", "cpu_us_per_msg"), 2)} | ${ratio(g("rpc", "cpu_us_per_msg"), f("rpc", "cpu_us_per_msg"))} | ${fmt(g("rpc", "p50_us"))} / ${fmt(g("rpc", "p99_us"))} | ${fmt(g("latency", "p50_us"))} / ${fmt(g("latency", "p99_us"))} | ${name === "floor" ? "" : fmt(p50Diff)} | ${fmt(g("stream", "rate"))} | ${ratio(g("stream", "rate"), f("stream", "rate"))} | ${fmt(g("stream", "cpu_us_per_msg"), 2)} | ${fmt(g("idle", "kb_per_conn"), 1)} | ${name === "floor" || idleDiff === undefined ? "" : fmt(idleDiff, 1)} |`,
  );
}

const targets: string[] = [];
const check = (ok: boolean, text: string) => targets.push(`- ${ok ? "met" : "**not met**"}: ${text}`);
for (const runtime of ["node", "deno", "bun"]) {
  const s = (w: string, m: string) => get(runtime, "switchboard", w, m)!;
  const f = (w: string, m: string) => get(runtime, "floor", w, m)!;
  check(s("rpc", "cpu_us_per_msg") <= 1.1 * f("rpc", "cpu_us_per_msg"), `${runtime}: server CPU per request ≤ 1.10 × floor (${(s("rpc", "cpu_us_per_msg") / f("rpc", "cpu_us_per_msg")).toFixed(2)}×)`);
  const streamRatio = s("stream", "rate") / f("stream", "rate");
  check(streamRatio >= (runtime === "node" ? 3 : 1), `${runtime}: stream events/s ≥ ${runtime === "node" ? "3" : "1"} × floor (${streamRatio.toFixed(2)}×)`);
  check(s("latency", "p50_us") <= f("latency", "p50_us") + 20, `${runtime}: 1×1 p50 ≤ floor + 20 µs (${(s("latency", "p50_us") - f("latency", "p50_us")).toFixed(0)} µs)`);
  check(s("idle", "kb_per_conn") <= f("idle", "kb_per_conn") + 4, `${runtime}: idle memory ≤ floor + 4 KB/conn (${(s("idle", "kb_per_conn") - f("idle", "kb_per_conn")).toFixed(1)} KB)`);
}
for (const other of ["rpc-websockets", "json-rpc-2.0"]) {
  const r = get("node", "switchboard", "rpc", "cpu_us_per_msg")! / get("node", other, "rpc", "cpu_us_per_msg")!;
  check(r <= 0.7, `node: server CPU per request ≤ 0.7 × ${other}'s (${r.toFixed(2)}×)`);
}

const version = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8" }).split("\n")[0]!.trim();
const cpuModel = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
const hono = JSON.parse(readFileSync("node_modules/hono/package.json", "utf8")).version;
const header = [
  `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC${quick ? " (--quick: 1 run, smaller counts)" : `: medians of ${runs} runs`}.`,
  `Machine: ${cpus().length} cores (${cpuModel}), ${Math.round(totalmem() / 2 ** 30)} GiB. node ${process.version}, ${version(bin.deno, ["--version"])}, bun ${version(bin.bun, ["--version"])}, hono ${hono}.`,
  `Counts: rpc ${counts.rpc.toLocaleString("en-US")} requests (50 connections × 16 in flight), 1×1 ${counts.latency.toLocaleString("en-US")}, stream ${counts.stream.toLocaleString("en-US")} events, idle ${counts.idle.toLocaleString("en-US")} connections.`,
].join("\n");
const table = `${header}\n\n${rows.join("\n")}\n\nTargets (issue #3):\n${targets.join("\n")}\n`;
console.log(`\n${table}`);

const resultsPath = "bench/RESULTS.md";
const previous = readFileSync(resultsPath, "utf8");
const marker = "<!-- latest -->";
const [intro] = previous.split(marker);
writeFileSync(resultsPath, `${intro!.trimEnd()}\n\n${marker}\n## Latest run\n\n${table}`);
