/**
 * The demo entry: `npm start` (also `deno task start`, `bun run start`).
 *   --host H      bind address (default 127.0.0.1)
 *   --port N      port (default 8787; 0 = any free port)
 *   --stdio       speak NDJSON JSON-RPC on stdin/stdout instead of listening
 */
import { serveStdio } from "../stdio.ts";
import { demoGateway } from "./gateway.ts";

type Runtime = typeof import("../runtime/node.ts");

/** This runtime's adapter; every runtime module has the same shape as the Node one. */
async function loadRuntime(): Promise<Runtime> {
  const name = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
  return await import(`../runtime/${name}.ts`);
}

function flag(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at === -1 ? undefined : args[at + 1];
}

// `process` is global on Node, Bun and Deno 2 alike.
const args = process.argv.slice(2);
const runtime = await loadRuntime();
const gateway = demoGateway();

if (args.includes("--stdio")) {
  await serveStdio(gateway, runtime.stdioStreams());
  await gateway.close(); // ends sessions and their timers, so the process can exit
} else {
  const server = await runtime.serve(gateway, {
    hostname: flag(args, "--host") ?? "127.0.0.1",
    port: Number(flag(args, "--port") ?? 8787),
  });
  console.error(`switchboard demo gateway: ${server.url.replace(/^http/, "ws")}api/ws`);
  const stop = () => void server.close().then(() => console.error("stopped"));
  process.once("SIGINT", stop).once("SIGTERM", stop);
}
