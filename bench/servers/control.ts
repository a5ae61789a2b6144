/**
 * How every benchmark server talks to the runner. Once listening it prints `{"port":N}`; then
 * it answers each stdin line: `cpu` with its CPU time so far (µs, user + system, all threads),
 * `memory` with its RSS and JS heap after a full GC (so garbage from the handshakes is not
 * counted as per-connection memory), `usage` with those, the heap's total and external memory
 * and V8's young generation, without a GC (for readings taken while a workload runs). Each
 * answer carries `at_us`, the time on the clock of the runtime's CPU profiles, so a profile can
 * be cut to the measured part. It exits when stdin ends, so it never outlives the runner (and a
 * CPU profile, if asked for, is written then). `process` is global on Node, Deno and Bun.
 */
import { getHeapSpaceStatistics } from "node:v8";

// Typed by hand: this file is checked as Node, Deno and Bun code alike.
const { gc, Bun } = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };

/** A full collection: `--expose-gc` on Node and Deno, `Bun.gc` on Bun. */
function collect(): void {
  if (gc) gc();
  else if (Bun) Bun.gc(true);
  else throw new Error("start the server with --expose-gc");
}

/**
 * Node's profiles are timed on the monotonic clock (`hrtime`); Deno's and Bun's from their
 * start, which is within a few ms of the time origin.
 */
const node = !Bun && !("Deno" in globalThis);
const now = () => (node ? Number(process.hrtime.bigint() / 1000n) : performance.now() * 1000);

function answer(command: string): object | undefined {
  if (command === "cpu") {
    const { user, system } = process.cpuUsage();
    return { cpu_us: user + system, at_us: now() };
  }
  if (command === "memory") {
    collect();
    const { rss, heapUsed } = process.memoryUsage();
    return { rss, heap: heapUsed, at_us: now() };
  }
  if (command === "usage") {
    const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
    // V8's young generation (both semi-spaces); 0 where the runtime does not tell (Bun).
    const young = getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size ?? 0;
    return { rss, heap: heapUsed, heap_total: heapTotal, external, young, at_us: now() };
  }
  return undefined;
}

export function announce(port: number): void {
  console.log(JSON.stringify({ port }));
  let buffered = "";
  process.stdin.on("data", (chunk: Uint8Array | string) => {
    buffered += String(chunk);
    for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
      const reply = answer(buffered.slice(0, nl).trim());
      buffered = buffered.slice(nl + 1);
      if (reply) console.log(JSON.stringify(reply));
    }
  });
  process.stdin.on("end", () => process.exit(0));
}
