/** What a bench run measures: the workloads' sizes, the servers, and how each runtime starts one. */

export type Runtime = "node" | "deno" | "bun";
export type Workload = "idle" | "latency" | "rpc" | "stream" | "fanout" | "session-stream";

export const RUNTIMES: readonly Runtime[] = ["node", "deno", "bun"];

/** The real binaries (not Node wrappers), so each server's process is the runtime itself. */
export const BIN = { deno: "node_modules/.bin/deno", bun: "node_modules/.bin/bun" } as const;

/** How many of everything; the warm-ups run before the measured part, on the same sockets. */
export interface Sizes {
  rpc: { connections: number; inFlight: number; clients: number; warmup: number; total: number };
  latency: { warmup: number; total: number };
  stream: { warmup: number; count: number };
  idle: { warmup: number; connections: number };
  /** One session, `viewers` connections attached (its creator among them), `count` events. */
  fanout: { viewers: number; warmup: number; count: number };
  /** The stream through a session (seq, replay ring): one viewer. */
  sessionStream: { warmup: number; count: number };
  /** Upper bound on any one client's whole life; a client past it gives up. */
  clientMs: number;
}

export function sizes(quick: boolean): Sizes {
  return {
    // Two client processes: one Bun client alone is the ceiling on fast servers.
    rpc: { connections: 50, inFlight: 16, clients: 2, warmup: 20_000, total: quick ? 100_000 : 300_000 },
    latency: { warmup: 1_000, total: quick ? 3_000 : 10_000 },
    stream: { warmup: 20_000, count: 200_000 },
    idle: { warmup: 100, connections: quick ? 1_000 : 5_000 },
    fanout: { viewers: 100, warmup: 1_000, count: 10_000 },
    sessionStream: { warmup: 20_000, count: 200_000 },
    clientMs: 120_000,
  };
}

export interface ServerSpec {
  runtime: Runtime;
  name: string;
  script: string;
  workloads: readonly Workload[];
}

const every: readonly Workload[] = ["idle", "latency", "rpc", "stream", "fanout", "session-stream"];

/** Idle runs first, on a fresh process: after a stream, freed pages would blur an RSS reading. */
export const SERVERS: readonly ServerSpec[] = [
  ...RUNTIMES.flatMap((runtime) => [
    { runtime, name: "floor", script: `bench/servers/floor-${runtime}.ts`, workloads: every },
    { runtime, name: "hono-floor", script: "bench/servers/hono-floor.ts", workloads: every },
    { runtime, name: "switchboard", script: "bench/servers/switchboard.ts", workloads: every },
    // The same gateway with an OpenTelemetry SDK registered: what metrics and traces cost.
    {
      runtime,
      name: "switchboard-otel",
      script: "bench/servers/switchboard-otel.ts",
      workloads: ["latency", "rpc", "stream", "fanout", "session-stream"] as const,
    },
  ]),
  { runtime: "node", name: "rpc-websockets", script: "bench/servers/rpc-websockets.ts", workloads: ["latency", "rpc"] },
  { runtime: "node", name: "json-rpc-2.0", script: "bench/servers/json-rpc-2.0.ts", workloads: ["latency", "rpc"] },
];

/**
 * The command that runs `script` on `runtime`'s own binary, with a full GC available to the
 * server (for memory readings), `flags` for the runtime (before the script) and, given
 * `profileDir`, a CPU profile written there at exit.
 */
export function command(
  runtime: Runtime,
  script: string,
  profileDir?: string,
  flags: string[] = [],
): [string, string[]] {
  const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  if (runtime === "node") {
    return [process.execPath, ["--expose-gc", ...profile, ...flags, "--import", "tsx", script]];
  }
  if (runtime === "deno") return [BIN.deno, ["run", "-A", "--v8-flags=--expose-gc", ...profile, ...flags, script]];
  return [BIN.bun, [...profile, ...flags, script]];
}
