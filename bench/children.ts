/**
 * The bench's child processes (servers and load clients): one JSON object per line on their
 * stdout, commands on their stdin, and every wait bounded. Every child still running is
 * killed when the runner exits, fails or is interrupted, so nothing outlives a run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => process.exit(130)); // the exit handler above kills the children
}

export interface Child {
  readonly label: string;
  /** The process id (undefined if it could not start). */
  readonly pid: number | undefined;
  /** The next stdout line, parsed; rejects if none comes within `timeoutMs` or the child ends. */
  next<T>(timeoutMs: number): Promise<T>;
  /** Writes one command line to the child's stdin. */
  send(line: string): void;
  /** Ends the child's stdin (children exit on that), and kills it if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export function startChild(label: string, cmd: string, args: string[]): Child {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
  live.add(child);
  child.stdin.on("error", () => {}); // EPIPE from a child that died: `next` reports it
  const lines: string[] = [];
  let waiter: ((line: string | undefined) => void) | undefined;
  let ended = false;
  const exited = new Promise<void>((resolve) => {
    const end = () => {
      live.delete(child);
      ended = true;
      waiter?.(undefined);
      resolve();
    };
    child.once("close", end);
    child.once("error", end); // could not start at all
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (waiter) waiter(line);
    else lines.push(line);
  });

  return {
    label,
    pid: child.pid,
    async next<T>(timeoutMs: number): Promise<T> {
      if (waiter) throw new Error(`${label}: one reader at a time`);
      let line = lines.shift();
      if (line === undefined && !ended) {
        line = await new Promise<string | undefined>((resolve, reject) => {
          const timer = setTimeout(() => {
            waiter = undefined;
            reject(new Error(`${label}: no answer within ${timeoutMs} ms`));
          }, timeoutMs);
          waiter = (received) => {
            waiter = undefined;
            clearTimeout(timer);
            resolve(received);
          };
        });
      }
      if (line === undefined) {
        throw new Error(`${label} ended (${child.exitCode ?? child.signalCode ?? "could not start"})`);
      }
      return JSON.parse(line) as T;
    },
    send(line) {
      if (!ended) child.stdin.write(`${line}\n`);
    },
    async stop(graceMs = 10_000) {
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
