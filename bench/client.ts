/**
 * The load client, run by Bun: its WebSocket client is several times faster than Node's `ws`,
 * so the client is less of the ceiling. Usage: `bun bench/client.ts '<json ClientConfig>'`.
 *
 * It talks to the runner in lines. It connects and warms up, prints `{"ready":true}`, waits
 * for a `go` line, runs the measured part and prints its result; then it holds its sockets
 * open until stdin ends, so the server's closing reading includes no teardown work. It gives
 * up (exit 2) after `maxMs` in all.
 */
import { command, openReady, runClient, say } from "./client-io.ts";
import { Histogram } from "./histogram.ts";
import {
  addRequest,
  broadcastRequest,
  createRequest,
  EVENT_PREFIX,
  joinRequest,
  SEQ_KEY,
  streamRequest,
} from "./wire.ts";

export type ClientConfig =
  | {
    workload: "rpc";
    url: string;
    connections: number;
    inFlight: number;
    warmup: number;
    total: number;
    maxMs: number;
  }
  | { workload: "stream"; url: string; warmup: number; count: number; maxMs: number }
  | { workload: "idle"; url: string; warmup: number; connections: number; maxMs: number }
  | { workload: "fanout"; url: string; viewers: number; warmup: number; count: number; maxMs: number };

export interface RpcResult {
  seconds: number;
  histogram: [number, number][];
}
export interface StreamResult {
  seconds: number;
  events: number;
}
export interface FanoutResult {
  seconds: number;
  deliveries: number;
}
export interface IdleResult {
  connected: number;
}

/** Opens `count` sockets, 100 handshakes at a time. */
async function openMany(url: string, count: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => openReady(url)))));
  }
  return sockets;
}

/**
 * Sends `total` `add` requests over `sockets`, keeping `inFlight` outstanding on each, and
 * checks every answer; records round trips into `histogram` if given.
 */
function exchange(sockets: WebSocket[], inFlight: number, total: number, histogram?: Histogram): Promise<void> {
  if (total === 0) return Promise.resolve();
  const sentAt = new Float64Array(total);
  let sent = 0;
  let answered = 0;
  return new Promise((resolve, reject) => {
    for (const ws of sockets) {
      // Ids from 1: rpc-websockets takes id 0 for a notification and never answers it.
      const send = () => {
        sentAt[sent++] = performance.now();
        ws.send(addRequest(sent));
      };
      ws.onmessage = (event) => {
        const reply = JSON.parse(event.data as string);
        if (reply.result !== reply.id + 1) return reject(new Error(`unexpected reply ${event.data}`));
        histogram?.record((performance.now() - sentAt[reply.id - 1]!) * 1000);
        if (++answered === total) resolve();
        else if (sent < total) send();
      };
      ws.onclose = (event) => reject(new Error(`closed ${event.code} during the run`));
      for (let i = 0; i < inFlight && sent < total; i++) send();
    }
  });
}

/** Asks for `count` events; resolves at the reply, having checked that every event came, in order. */
function stream(ws: WebSocket, count: number): Promise<void> {
  let next = 0;
  return new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      const text = event.data as string;
      if (!text.startsWith(EVENT_PREFIX)) {
        if (next === count) resolve();
        else reject(new Error(`reply after ${next} of ${count} events: ${text.slice(0, 200)}`));
        return;
      }
      // Cheaper than JSON.parse per event (the client is often the ceiling here).
      const i = Number(text.slice(EVENT_PREFIX.length, text.indexOf(",", EVENT_PREFIX.length)));
      if (i !== next) reject(new Error(`event ${i} where ${next} was due`));
      next++;
    };
    ws.onclose = (event) => reject(new Error(`closed ${event.code} during the stream`));
    ws.send(streamRequest(count));
  });
}

/** Sends one request and resolves with its result (nothing else is due on `ws` meanwhile). */
function request(ws: WebSocket, text: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      const reply = JSON.parse(event.data as string);
      if ("result" in reply) resolve(reply.result);
      else reject(new Error(`unexpected reply ${event.data}`));
    };
    ws.send(text);
  });
}

/** Where each viewer is in the session's seq (the next one it must see). */
const nextSeq = new Map<WebSocket, number>();

/**
 * Has the session broadcast `count` events; resolves once every viewer (the producer among
 * them) has seen all of them, each in seq order, and the producer has the reply.
 */
function broadcast(producer: WebSocket, viewers: WebSocket[], sessionId: string, count: number): Promise<void> {
  let pending = viewers.length + 1;
  return new Promise((resolve, reject) => {
    const done = () => --pending === 0 && resolve();
    for (const ws of viewers) {
      let seen = 0;
      ws.onmessage = (event) => {
        const text = event.data as string;
        const at = text.indexOf(SEQ_KEY);
        if (at === -1) return ws === producer ? done() : reject(new Error(`unexpected frame ${text.slice(0, 200)}`));
        const seq = Number(text.slice(at + SEQ_KEY.length, text.indexOf(",", at + SEQ_KEY.length)));
        const due = nextSeq.get(ws) ?? 1;
        if (seq !== due) return reject(new Error(`seq ${seq} where ${due} was due`));
        nextSeq.set(ws, due + 1);
        if (++seen === count) done();
      };
      ws.onclose = (event) => reject(new Error(`closed ${event.code} during the broadcast`));
    }
    producer.send(broadcastRequest(sessionId, count));
  });
}

async function run(config: ClientConfig): Promise<void> {
  if (config.workload === "rpc") {
    const sockets = await openMany(config.url, config.connections);
    await exchange(sockets, config.inFlight, config.warmup);
    say({ ready: true });
    if ((await command()) !== "go") return;
    const histogram = new Histogram();
    const start = performance.now();
    await exchange(sockets, config.inFlight, config.total, histogram);
    say({ seconds: (performance.now() - start) / 1000, histogram: histogram.toJSON() } satisfies RpcResult);
  } else if (config.workload === "stream") {
    const ws = await openReady(config.url);
    await stream(ws, config.warmup);
    say({ ready: true });
    if ((await command()) !== "go") return;
    const start = performance.now();
    await stream(ws, config.count);
    say({ seconds: (performance.now() - start) / 1000, events: config.count } satisfies StreamResult);
  } else if (config.workload === "fanout") {
    // The producer creates the session (and views it); the others join it.
    const producer = await openReady(config.url);
    const { session_id } = (await request(producer, createRequest)) as { session_id: string };
    const joiners = await openMany(config.url, config.viewers - 1);
    await Promise.all(joiners.map((ws) => request(ws, joinRequest(session_id))));
    const viewers = [producer, ...joiners];
    await broadcast(producer, viewers, session_id, config.warmup);
    say({ ready: true });
    if ((await command()) !== "go") return;
    const start = performance.now();
    await broadcast(producer, viewers, session_id, config.count);
    say(
      { seconds: (performance.now() - start) / 1000, deliveries: config.count * viewers.length } satisfies FanoutResult,
    );
  } else {
    const sockets = await openMany(config.url, config.warmup);
    say({ ready: true });
    if ((await command()) !== "go") return;
    sockets.push(...(await openMany(config.url, config.connections - config.warmup)));
    say({ connected: sockets.length } satisfies IdleResult);
  }
  while ((await command()) !== undefined); // hold the sockets until the runner lets go
}

const config = JSON.parse(process.argv[2]!) as ClientConfig;
await runClient(`bench client: ${config.workload}`, config.maxMs, () => run(config));
