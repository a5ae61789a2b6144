/**
 * The clients of `bench/churn.ts`, run by Bun: `bun bench/churn-client.ts '<json ChurnClientConfig>'`.
 * It talks to the runner in lines.
 *
 * `clients` Switchboard clients (`connect()` from src/client/), each through its own
 * `CutProxy`, each create a session and so follow it; one more socket, straight to the server
 * and never cut, is the ticker: every `tickMs` it has each session emit one event (the bench
 * servers' `broadcast`, so the floors run the same workload). Once set up it prints
 * `{"ready":true}`; on `go` the ticks start and every 150–450 ms (`cutMinMs`–`cutMaxMs`) one
 * client's connection, chosen at random, is cut: both TCP streams end, no close frame, as a
 * network drops it. The client reconnects with its backoff and resumes its session. On `stop`
 * the ticks and cuts stop, the clients get up to `settleMs` to reconnect and catch up, and it
 * prints what happened (`ChurnStats`); the clients stay connected until stdin ends, then it
 * closes them and exits. It gives up (exit 2) after `maxMs` in all.
 */
import { type Client, connect } from "../src/client/mod.ts";
import { CutProxy } from "../test/helpers/cut-proxy.ts";
import { command, openReady, runClient, say } from "./client-io.ts";
import { broadcastRequest } from "./wire.ts";

export interface ChurnClientConfig {
  url: string;
  clients: number;
  tickMs: number;
  cutMinMs: number;
  cutMaxMs: number;
  settleMs: number;
  maxMs: number;
}

export interface ChurnStats {
  /** Connections cut by the proxies. */
  cuts: number;
  /** Times a client got to `open` (its first connection and every reconnect). */
  opened: number;
  /** Clients open when the stats were taken. */
  open: number;
  /** Events the sessions emitted (broadcasts the server answered). */
  emitted: number;
  /** Events the clients delivered (each at most once: the client drops a seq seen before). */
  delivered: number;
  /** Resumes the clients reported, and how many of them said events were lost. */
  resumes: number;
  truncated: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function churn(config: ChurnClientConfig): Promise<void> {
  const stats: ChurnStats = { cuts: 0, opened: 0, open: 0, emitted: 0, delivered: 0, resumes: 0, truncated: 0 };
  const ticker = await openReady(config.url);
  ticker.onmessage = () => stats.emitted++;
  const proxies = await Promise.all(Array.from({ length: config.clients }, () => CutProxy.start(config.url)));
  const clients: Client[] = proxies.map((proxy) => {
    const client = connect(proxy.url);
    client.onStateChange((state) => state === "open" && stats.opened++);
    client.onResume((report) => {
      stats.resumes++;
      if (report.truncated) stats.truncated++;
    });
    client.on("message.delta", () => stats.delivered++);
    return client;
  });
  const sessions = await Promise.all(
    clients.map(async (client) => ((await client.call("session.create", {})) as { session_id: string }).session_id),
  );
  say({ ready: true });
  if ((await command()) !== "go") return;

  const ticks = setInterval(() => {
    for (const id of sessions) ticker.send(broadcastRequest(id, 1));
  }, config.tickMs);
  let stopped = false;
  const cutting = (async () => {
    while (!stopped) {
      await sleep(config.cutMinMs + Math.random() * (config.cutMaxMs - config.cutMinMs));
      if (stopped) break;
      const proxy = proxies[Math.floor(Math.random() * proxies.length)]!;
      // A client between connections has nothing to cut: that cut is skipped, not counted.
      if (proxy.connections > 0) stats.cuts++;
      proxy.cut();
    }
  })();

  if ((await command()) !== "stop") return;
  stopped = true;
  clearInterval(ticks);
  await cutting;
  const settleBy = performance.now() + config.settleMs;
  while (clients.some((client) => client.state !== "open") && performance.now() < settleBy) await sleep(50);
  await sleep(Math.max(0, Math.min(500, settleBy - performance.now()))); // the last resumes' replays
  stats.open = clients.filter((client) => client.state === "open").length;
  say(stats);

  // The clients stay connected (and their sessions with them) until the runner lets go.
  while ((await command()) !== undefined);
  for (const client of clients) client.close();
  ticker.close();
  await Promise.all(proxies.map((proxy) => proxy.close()));
}

const config = JSON.parse(process.argv[2]!) as ChurnClientConfig;
await runClient("churn client", config.maxMs, () => churn(config));
