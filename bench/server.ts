/** A benchmark server in its own process: where it listens, and its own CPU and memory accounting. */
import { startChild } from "./children.ts";
import { command, type ServerSpec } from "./plan.ts";

export interface MemoryReading {
  rss: number;
  heap: number;
}

/** A reading taken without a GC first: the heap's used, total (committed) and external bytes. */
export interface UsageReading extends MemoryReading {
  heap_total: number;
  external: number;
  /** V8's young generation (new space, both semi-spaces) committed; 0 on Bun. */
  young: number;
}

export interface RunningServer {
  readonly url: string;
  /** The server's process id, for readings the runner takes from outside (peak RSS). */
  readonly pid: number | undefined;
  /** When each reading was taken, on the clock of the server's CPU profile (see control.ts). */
  readonly marks: number[];
  /** The server's CPU time (user + system, all threads) so far, in µs. */
  cpu(): Promise<number>;
  /** The server's RSS and JS heap in bytes, read after a full GC. */
  memory(): Promise<MemoryReading>;
  /** The server's memory now, in bytes, without a GC (does not disturb a running workload). */
  usage(): Promise<UsageReading>;
  /** Ends the server (it exits when its stdin ends, writing its CPU profile if it has one). */
  stop(): Promise<void>;
}

const ANSWER_MS = 30_000;

/** `runtimeFlags` go to the runtime binary before the script (e.g. `--inspect=…`). */
export async function startServer(
  spec: ServerSpec,
  profileDir?: string,
  runtimeFlags: string[] = [],
): Promise<RunningServer> {
  const [cmd, args] = command(spec.runtime, spec.script, profileDir, runtimeFlags);
  const child = startChild(`${spec.runtime}/${spec.name} server`, cmd, args);
  let port: number;
  try {
    ({ port } = await child.next<{ port: number }>(ANSWER_MS));
  } catch (error) {
    await child.stop();
    throw error;
  }
  const marks: number[] = [];
  const ask = async <T extends { at_us: number }>(line: string) => {
    child.send(line);
    const answer = await child.next<T>(ANSWER_MS);
    marks.push(answer.at_us);
    return answer;
  };
  return {
    url: `ws://127.0.0.1:${port}/api/ws`,
    pid: child.pid,
    marks,
    cpu: async () => (await ask<{ cpu_us: number; at_us: number }>("cpu")).cpu_us,
    memory: () => ask<MemoryReading & { at_us: number }>("memory"),
    usage: () => ask<UsageReading & { at_us: number }>("usage"),
    stop: () => child.stop(),
  };
}
