/**
 * `switchboard/client/stdio`: a client that spawns a gateway as a child process and speaks
 * NDJSON over its stdin/stdout — for terminal apps that bundle their backend. Uses
 * `node:child_process`, which Node, Deno and Bun all provide.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Client, type ClientOptions, type Dial } from "../client/mod.ts";

/** Options of `connectStdio`. `heartbeatMs` defaults to 0 (no pings): the child's exit is the drop. */
export interface StdioClientOptions extends ClientOptions {
  /** Environment of the child. Default: this process's. */
  env?: Record<string, string | undefined>;
  /** Working directory of the child. */
  cwd?: string;
}

/**
 * Spawns `command` (e.g. `["node", "--import", "tsx", "server.ts", "--stdio"]`) and connects
 * to it. A child that exits is spawned again, like a reconnect (its epoch changes, so
 * followed sessions are resumed or reported lost). Stderr passes through to this process.
 *
 * @example
 * ```ts
 * import { connectStdio } from "switchboard/client/stdio";
 *
 * const client = connectStdio(["deno", "run", "-A", "main.ts", "--stdio"]);
 * await client.ready;
 * console.log(await client.call("gateway.ping"));
 * client.close();
 * ```
 */
export function connectStdio<G = unknown>([command, ...args]: string[], options: StdioClientOptions = {}): Client<G> {
  return new Client<G>(stdioDial(command!, args, options), { ...options, heartbeatMs: options.heartbeatMs ?? 0 });
}

function stdioDial(command: string, args: string[], { env, cwd }: StdioClientOptions): Dial {
  return (events) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], env, cwd });
    // Lines of any length: the child is the server end, trusted. A read error shows as the exit, below.
    createInterface({ input: child.stdout!, crlfDelay: Infinity }).on("line", (line) => {
      if (line.trim() !== "") events.onMessage(line);
    });
    child.stdin!.on("error", () => {}); // a dead child shows as its exit, below
    child.on("error", () => events.onClose(1006, "spawn failed"));
    child.on("exit", (code) => events.onClose(1006, `exited ${code}`));
    return {
      send: (text) => void child.stdin!.write(`${text}\n`),
      // End of input is the gateway's cue to drain and exit; a child that lingers is killed.
      close: () => {
        child.stdin!.end();
        if (child.exitCode !== null || child.signalCode !== null) return; // exited already: nothing to kill
        const kill = setTimeout(() => child.kill(), 2_000);
        child.once("exit", () => clearTimeout(kill));
      },
    };
  };
}
