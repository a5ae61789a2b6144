/**
 * The well-behaved client and the attackers of `bench/faults.ts`, run by Bun:
 * `bun bench/fault-client.ts '<json FaultClientConfig>'`. It talks to the runner in lines.
 *
 * The probe connects, warms up and prints `{"ready":true}`; for each `go <ms>` line it makes
 * one `add` call at a time for that long, at most one per millisecond (well under the
 * gateway's per-connection rate limit, as an interactive client would), and prints its round
 * trips. An attacker starts its flood at once, prints `{"ready":true}` once its first
 * connection is open, and on `stop` ends the flood and prints what it did. Both exit when
 * stdin ends, and give up (exit 2) after `maxMs` in all.
 */
import { command, openReady, runClient, say } from "./client-io.ts";
import { type FloodName, startFlood } from "./floods.ts";
import { Histogram } from "./histogram.ts";
import { addRequest } from "./wire.ts";

export type FaultClientConfig = { role: "probe" | FloodName; url: string; maxMs: number };

export interface ProbeResult {
  calls: number;
  histogram: [number, number][];
  /** The close code, if the server closed the probe's connection (it never should). */
  closed?: number;
}

const WARMUP = 500;

/** The probe's connection: one call at a time, answered in order. */
async function connectProbe(url: string) {
  const ws = await openReady(url);
  let answer: ((text: string) => void) | undefined;
  let closed: number | undefined;
  ws.onmessage = (event) => answer?.(event.data as string);
  ws.onclose = (event) => {
    closed = event.code;
    answer?.("");
  };
  let id = 0;
  /** One `add` round trip in µs; undefined once the connection is closed. */
  const call = async (): Promise<number | undefined> => {
    if (closed !== undefined) return undefined;
    const sent = performance.now();
    const reply = new Promise<string>((resolve) => (answer = resolve));
    ws.send(addRequest(++id));
    const text = await reply;
    if (closed !== undefined) return undefined;
    if (JSON.parse(text).result !== id + 1) throw new Error(`unexpected reply ${text.slice(0, 200)}`);
    return (performance.now() - sent) * 1000;
  };
  return { call, closed: () => closed };
}

async function probe(url: string): Promise<void> {
  const connection = await connectProbe(url);
  for (let i = 0; i < WARMUP; i++) await connection.call();
  say({ ready: true });
  for (let line = await command(); line?.startsWith("go "); line = await command()) {
    const until = performance.now() + Number(line.slice(3));
    const histogram = new Histogram();
    while (performance.now() < until) {
      const us = await connection.call();
      if (us === undefined) break;
      histogram.record(us);
      if (us < 1_000) await new Promise((resolve) => setTimeout(resolve, 1 - us / 1_000));
    }
    say({ calls: histogram.total, histogram: histogram.toJSON(), closed: connection.closed() } satisfies ProbeResult);
  }
}

async function attack(name: FloodName, url: string): Promise<void> {
  const flood = await startFlood(name, url);
  await flood.started;
  say({ ready: true });
  if ((await command()) !== "stop") return;
  say(await flood.stop());
  while ((await command()) !== undefined); // wait for the runner to let go
}

const config = JSON.parse(process.argv[2]!) as FaultClientConfig;
await runClient(
  `fault client: ${config.role}`,
  config.maxMs,
  () => (config.role === "probe" ? probe(config.url) : attack(config.role, config.url)),
);
