// Run by plain `node`, `deno run -A` and `bun` inside a project that installed the packed
// tarball: imports every entry point by its package name (of the runtime entries, its own
// runtime's: `switchboard/bun` needs Bun), serves a gateway, makes a round trip
// with `switchboard/client` over WebSocket and with `switchboard/client/stdio` over a child's
// stdin/stdout, serves one over in-memory stdio, and prints what it saw as one JSON line.
import * as root from "switchboard";
import * as stdio from "switchboard/stdio";
import * as client from "switchboard/client";
import * as clientStdio from "switchboard/client/stdio";
import * as redis from "switchboard/redis";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const onRuntime = await import(`switchboard/${runtime}`);
const { serve } = onRuntime;
const methods = { "math.add": ([a, b]) => a + b };

// WebSocket: the runtime's own serve() and the client.
const gateway = root.createGateway({ logger: root.silentLogger, methods });
const server = await serve(gateway, { port: 0 });
// Node 20 has no global WebSocket; the `ws` package's class fits `connect()` as it is.
const WebSocket = globalThis.WebSocket ?? (await import("ws")).WebSocket;
const ws = client.connect(`${server.url.replace(/^http/, "ws")}api/ws`, { WebSocket });
const ready = await ws.ready;
const sum = await ws.call("math.add", [2, 3]);
ws.close();
await server.close();

// stdio: one request line in, its answer out, over web streams.
const input = new TextEncoder().encode(
  `${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "math.add", params: [4, 5] })}\n`,
);
let output = "";
const piped = root.createGateway({ logger: root.silentLogger, methods });
await stdio.serveStdio(piped, {
  input: new Blob([input]).stream(),
  output: new WritableStream({ write: (chunk) => void (output += new TextDecoder().decode(chunk)) }),
});
await piped.close();
const stdioAnswer = output.trim().split("\n").map((line) => JSON.parse(line)).find((frame) => frame.id === 1);

// A child process: the package's own app over stdio, started by the node given.
const child = clientStdio.connectStdio([process.env.NODE_BIN, process.env.APP_MAIN, "--stdio"]);
await child.ready;
const created = await child.call("session.create", {});
child.close();

// Two gateways sharing sessions on the Redis the test started: created on one, resumed on the other.
const stores = [
  await redis.redisStore({ url: process.env.REDIS_URL }),
  await redis.redisStore({ url: process.env.REDIS_URL }),
];
const nodes = await Promise.all(stores.map((store) =>
  serve(
    root.createGateway({
      logger: root.silentLogger,
      methods: {
        "session.create": (_, ctx) => ({ session_id: ctx.sessions.create().id }),
        "note": ({ session_id }, ctx) => ctx.session(session_id).emit("note", { from: "first" }),
      },
      sessions: { store },
    }),
    { port: 0 },
  )
));
const [first, second] = nodes.map((node) => client.connect(`${node.url.replace(/^http/, "ws")}api/ws`, { WebSocket }));
const { session_id } = await first.call("session.create", {});
await first.call("note", { session_id });
const resumed = await second.call("session.resume", { session_id, after_seq: 0 });
first.close();
second.close();
await Promise.all(nodes.map((node) => node.close()));

const names = (module) => Object.keys(module).sort();
console.log(JSON.stringify({
  runtime,
  exports: {
    "switchboard": names(root),
    [`switchboard/${runtime}`]: names(onRuntime),
    "switchboard/stdio": names(stdio),
    "switchboard/client": names(client),
    "switchboard/client/stdio": names(clientStdio),
    "switchboard/redis": names(redis),
  },
  redisReplayed: resumed.replayed,
  protocol: ready.protocol,
  sum,
  stdioSum: stdioAnswer?.result,
  childSession: typeof created.session_id,
}));
