/**
 * One workload against one running server: starts Bun load clients, lets them connect and
 * warm up, and reads the server's own CPU time (or memory) just around the measured part.
 */
import { type Child, startChild } from "./children.ts";
import type { ClientConfig, FanoutResult, IdleResult, RpcResult, StreamResult } from "./client.ts";
import { Histogram } from "./histogram.ts";
import { BIN, type Sizes, type Workload } from "./plan.ts";
import type { RunningServer } from "./server.ts";

/** Named figures of one workload on one server in one run. */
export type Sample = Record<string, number>;

const SETTLE_MS = 1_000;

function startClient(config: ClientConfig): Child {
  return startChild(`${config.workload} client`, BIN.bun, ["bench/client.ts", JSON.stringify(config)]);
}

/** Runs `work` with the clients started for it, and stops them whatever happens. */
async function withClients<T>(configs: ClientConfig[], work: (clients: Child[]) => Promise<T>): Promise<T> {
  const clients = configs.map(startClient);
  try {
    return await work(clients);
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
  }
}

/** The `i`th of `parts` near-equal shares of `n`. */
const share = (n: number, parts: number, i: number) => Math.floor(n / parts) + (i < n % parts ? 1 : 0);

function rpc(
  server: RunningServer,
  connections: number,
  inFlight: number,
  clients: number,
  warmup: number,
  total: number,
  maxMs: number,
): Promise<Sample> {
  const configs = Array.from({ length: clients }, (_, i): ClientConfig => ({
    workload: "rpc",
    url: server.url,
    connections: share(connections, clients, i),
    inFlight,
    warmup: share(warmup, clients, i),
    total: share(total, clients, i),
    maxMs,
  }));
  return withClients(configs, async (children) => {
    await Promise.all(children.map((child) => child.next(maxMs)));
    const before = await server.cpu();
    for (const child of children) child.send("go");
    const results = await Promise.all(children.map((child) => child.next<RpcResult>(maxMs)));
    const cpu = (await server.cpu()) - before;
    const histogram = new Histogram();
    for (const result of results) histogram.add(Histogram.fromJSON(result.histogram));
    const seconds = Math.max(...results.map((result) => result.seconds));
    return {
      rate: total / seconds,
      p50_us: histogram.quantile(0.5),
      p99_us: histogram.quantile(0.99),
      cpu_us: cpu / total,
    };
  });
}

/**
 * Events per second through one client, and the server's CPU per event: a stream's events, or
 * a fan-out's deliveries (events × viewers).
 */
function throughput(
  server: RunningServer,
  config: Extract<ClientConfig, { workload: "stream" | "fanout" }>,
): Promise<Sample> {
  return withClients([config], async ([child]) => {
    await child!.next(config.maxMs);
    const before = await server.cpu();
    child!.send("go");
    const result = await child!.next<StreamResult | FanoutResult>(config.maxMs);
    const cpu = (await server.cpu()) - before;
    const events = "events" in result ? result.events : result.deliveries;
    return { rate: events / result.seconds, cpu_us: cpu / events };
  });
}

function idle(server: RunningServer, warmup: number, connections: number, maxMs: number): Promise<Sample> {
  return withClients([{ workload: "idle", url: server.url, warmup, connections, maxMs }], async ([child]) => {
    // The warm-up connections stay open: first-connection costs (code, caches) fall before `before`.
    await child!.next(maxMs);
    const before = await server.memory();
    child!.send("go");
    const { connected } = await child!.next<IdleResult>(maxMs);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const after = await server.memory();
    const added = connected - warmup;
    return { rss_kb: (after.rss - before.rss) / added / 1024, heap_kb: (after.heap - before.heap) / added / 1024 };
  });
}

export function measure(workload: Workload, server: RunningServer, sizes: Sizes): Promise<Sample> {
  const { rpc: r, latency: l, stream: s, idle: i, fanout: f, sessionStream: ss, clientMs } = sizes;
  switch (workload) {
    case "rpc":
      return rpc(server, r.connections, r.inFlight, r.clients, r.warmup, r.total, clientMs);
    case "latency":
      return rpc(server, 1, 1, 1, l.warmup, l.total, clientMs);
    case "stream":
      return throughput(server, {
        workload: "stream",
        url: server.url,
        warmup: s.warmup,
        count: s.count,
        maxMs: clientMs,
      });
    case "idle":
      return idle(server, i.warmup, i.connections, clientMs);
    case "fanout":
      return throughput(server, {
        workload: "fanout",
        url: server.url,
        viewers: f.viewers,
        warmup: f.warmup,
        count: f.count,
        maxMs: clientMs,
      });
    case "session-stream":
      return throughput(server, {
        workload: "fanout",
        url: server.url,
        viewers: 1,
        warmup: ss.warmup,
        count: ss.count,
        maxMs: clientMs,
      });
  }
}
