/**
 * The attacks of `bench/faults.ts`, each from several connections that come back as soon as
 * the server closes them, so the pressure lasts the whole phase. Run by Bun (its WebSocket
 * client); the stalled reader goes through a `CutProxy`, which can stop reading for it.
 */
import { CutProxy } from "../test/helpers/cut-proxy.ts";
import { openReady } from "./client-io.ts";
import { addRequest } from "./wire.ts";

export type FloodName = "tiny" | "deep" | "oversized" | "stalled";

/** What a flood did, and how the server answered it. */
export interface FloodStats {
  /** Connections opened (the first ones and every reconnect). */
  connections: number;
  /** Frames sent. */
  sent: number;
  /** Frames received back (answers, errors, events). */
  received: number;
  /** How the server closed the attackers' connections, by close code ("refused": the upgrade failed). */
  closes: Record<string, number>;
}

export interface Flood {
  /** Resolves once the first attacking connection is open. */
  readonly started: Promise<void>;
  /** Ends the attack (its connections close) and reports it. */
  stop(): Promise<FloodStats>;
}

/** Bytes at most in a socket's send buffer before a flooding attacker waits a tick. */
const SEND_BUFFER = 1 << 20;
/** A 100,000-deep array in params: ~200 KB that a parser must nest all the way down. */
const DEEP = `{"jsonrpc":"2.0","id":1,"method":"add","params":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
/** A frame of 2 MiB, twice the default `maxMessageBytes`. */
const OVERSIZED = `{"jsonrpc":"2.0","id":1,"method":"add","params":["${"x".repeat(2 << 20)}"]}`;
/** How long the stalled reader stops reading before it reads again (and finds itself cut). */
const STALL_MS = 1_500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the socket's close code. */
function closeCode(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.addEventListener("close", (event) => resolve(String(event.code)), { once: true }));
}

/** `closed`, or "none" if it has not resolved within `ms`. */
const closedWithin = (closed: Promise<string>, ms: number) => Promise.race([closed, sleep(ms).then(() => "none")]);

/** One connection's attack: `closed` resolves with its close code. It resolves when done with the connection. */
type Attack = (
  ws: WebSocket,
  closed: Promise<string>,
  stats: FloodStats,
  stopped: () => boolean,
  slot: number,
) => Promise<void>;

/**
 * Runs `attack` on `slots` connections at once (slot `i` connects to `urlOf(i)`); each slot
 * reconnects when its connection closes, until `stop()` closes them.
 */
function repeat(urlOf: (slot: number) => string, slots: number, attack: Attack): Flood {
  const stats: FloodStats = { connections: 0, sent: 0, received: 0, closes: {} };
  const count = (code: string) => (stats.closes[code] = (stats.closes[code] ?? 0) + 1);
  const open = new Set<WebSocket>();
  let stopped = false;
  let started!: () => void;
  const startedPromise = new Promise<void>((resolve) => (started = resolve));
  const slot = async (i: number) => {
    while (!stopped) {
      let ws: WebSocket;
      try {
        ws = await openReady(urlOf(i));
      } catch {
        if (!stopped) count("refused");
        await sleep(10);
        continue;
      }
      stats.connections++;
      started();
      const closed = closeCode(ws);
      open.add(ws);
      ws.addEventListener("message", () => stats.received++);
      await Promise.race([attack(ws, closed, stats, () => stopped, i), closed]);
      // Opened while `stop()` ran, or the attack ended by itself on stopping.
      if (stopped) ws.close();
      const code = await closed;
      open.delete(ws);
      if (!stopped) count(code);
    }
  };
  const slotsDone = Promise.all(Array.from({ length: slots }, (_, i) => slot(i)));
  return {
    started: startedPromise,
    async stop() {
      stopped = true;
      for (const ws of open) ws.close();
      await slotsDone;
      return stats;
    },
  };
}

/** Sends `frame` as fast as the socket takes it, until the server closes it or the flood stops. */
async function flood(ws: WebSocket, frame: string, stats: FloodStats, stopped: () => boolean): Promise<void> {
  while (!stopped() && ws.readyState === WebSocket.OPEN) {
    for (let i = 0; i < 500 && ws.bufferedAmount < SEND_BUFFER; i++) {
      ws.send(frame);
      stats.sent++;
    }
    await sleep(0);
  }
}

/** Keeps `depth` copies of `frame` in flight: one more for every frame received. */
async function pipeline(
  ws: WebSocket,
  closed: Promise<string>,
  frame: string,
  depth: number,
  stats: FloodStats,
  stopped: () => boolean,
): Promise<void> {
  const send = () => {
    if (stopped() || ws.readyState !== WebSocket.OPEN) return;
    ws.send(frame);
    stats.sent++;
  };
  ws.addEventListener("message", send);
  for (let i = 0; i < depth; i++) send();
  await closed;
}

/**
 * Readers that start a session's stream, stop reading (each through its own proxy), read
 * again after `STALL_MS` (to find themselves cut, 1013, or cut the line if not) and reconnect.
 */
async function stalledReaders(url: string, slots: number): Promise<Flood> {
  const proxies = await Promise.all(Array.from({ length: slots }, () => CutProxy.start(url)));
  const readers = repeat((i) => proxies[i]!.url, slots, async (ws, closed, stats, _stopped, i) => {
    const proxy = proxies[i]!;
    const created = new Promise<string>((resolve) =>
      ws.addEventListener("message", (event) => resolve(JSON.parse(String(event.data)).result.session_id), {
        once: true,
      })
    );
    ws.send(`{"jsonrpc":"2.0","id":1,"method":"session.create"}`);
    const sessionId = await created;
    ws.send(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 2,
        method: "session.stream",
        params: { session_id: sessionId, count: 30_000, bytes: 1_000 },
      }),
    );
    stats.sent += 2;
    // This is the proxy's only connection: the last one was cut below.
    proxy.stall(0);
    if ((await closedWithin(closed, STALL_MS)) !== "none") return;
    proxy.unstall(0);
    await closedWithin(closed, 5_000);
    // Ends it if the server has not, and drops its pair either way.
    proxy.cut();
  });
  return {
    started: readers.started,
    async stop() {
      // Closing the proxies ends every reader's connection at once, stalled or not.
      const stopped = readers.stop();
      await Promise.all(proxies.map((proxy) => proxy.close()));
      return stopped;
    },
  };
}

/** Starts the flood `name` against the gateway at `url`. */
export function startFlood(name: FloodName, url: string): Promise<Flood> {
  const at = () => url;
  switch (name) {
    case "tiny":
      return Promise.resolve(repeat(at, 4, (ws, _closed, stats, stopped) => flood(ws, addRequest(1), stats, stopped)));
    case "deep":
      return Promise.resolve(
        repeat(at, 2, (ws, closed, stats, stopped) => pipeline(ws, closed, DEEP, 2, stats, stopped)),
      );
    case "oversized":
      return Promise.resolve(repeat(at, 4, async (ws, closed, stats) => {
        ws.send(OVERSIZED);
        stats.sent++;
        await closedWithin(closed, 5_000);
      }));
    case "stalled":
      return stalledReaders(url, 2);
  }
}
