/**
 * The load client, run by Bun (its WebSocket client is several times faster than Node's `ws`,
 * so the client is less of the bottleneck). Usage: `bun bench/client.ts '<json config>'`;
 * prints one JSON line with the result. Every workload is bounded by count and by `maxMs`.
 */
type Config =
  | { workload: "rpc"; url: string; connections: number; inFlight: number; total: number; maxMs: number }
  | { workload: "stream"; url: string; count: number; maxMs: number }
  | { workload: "idle"; url: string; connections: number; maxMs: number };

const config = JSON.parse(process.argv[2]!) as Config;
setTimeout(() => {
  console.error(`bench client: ${config.workload} did not finish within ${config.maxMs} ms`);
  process.exit(2);
}, config.maxMs).unref?.();

/** Opens a socket and resolves once its first frame (the ready frame) arrived. */
function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onmessage = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function rpc(c: Extract<Config, { workload: "rpc" }>) {
  const sockets = await Promise.all(Array.from({ length: c.connections }, () => open(c.url)));
  const latencies = new Float64Array(c.total);
  let sent = 0;
  let done = 0;
  const start = performance.now();
  await new Promise<void>((finish) => {
    for (const ws of sockets) {
      const sentAt = new Map<number, number>();
      const send = () => {
        const id = sent++;
        sentAt.set(id, performance.now());
        ws.send(`{"jsonrpc":"2.0","id":${id},"method":"add","params":[${id},1]}`);
      };
      ws.onmessage = (event) => {
        const m = JSON.parse(event.data as string);
        if (m.id === undefined) return;
        latencies[done++] = performance.now() - sentAt.get(m.id)!;
        sentAt.delete(m.id);
        if (done === c.total) finish();
        else if (sent < c.total) send();
      };
      for (let i = 0; i < c.inFlight && sent < c.total; i++) send();
    }
  });
  const seconds = (performance.now() - start) / 1000;
  latencies.sort();
  for (const ws of sockets) ws.close();
  return { messages: done, seconds, rate: done / seconds, p50_us: percentile(latencies, 0.5) * 1000, p99_us: percentile(latencies, 0.99) * 1000 };
}

async function stream(c: Extract<Config, { workload: "stream" }>) {
  const ws = await open(c.url);
  let events = 0;
  let last = -1;
  const start = performance.now();
  await new Promise<void>((finish) => {
    ws.onmessage = (event) => {
      const text = event.data as string;
      // Events are checked for order by their index; the reply ends the run.
      if (text.charCodeAt(18) === 109 /* the "m" of "method" */) {
        const i = JSON.parse(text).params.payload.i;
        if (i !== last + 1) throw new Error(`event ${i} after ${last}`);
        last = i;
        events++;
      } else finish();
    };
    ws.send(`{"jsonrpc":"2.0","id":1,"method":"stream","params":{"count":${c.count}}}`);
  });
  const seconds = (performance.now() - start) / 1000;
  ws.close();
  if (events !== c.count) throw new Error(`got ${events} of ${c.count} events`);
  return { messages: events, seconds, rate: events / seconds };
}

async function idle(c: Extract<Config, { workload: "idle" }>) {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < c.connections; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, c.connections - i) }, () => open(c.url)))));
  }
  console.log(JSON.stringify({ connected: sockets.length }));
  // Hold them until the runner has read the server's memory.
  for await (const _line of console) break;
  for (const ws of sockets) ws.close();
  return { messages: sockets.length };
}

export {};

const result = config.workload === "rpc" ? await rpc(config) : config.workload === "stream" ? await stream(config) : await idle(config);
console.log(JSON.stringify(result));
process.exit(0);
