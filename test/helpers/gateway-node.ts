/** A gateway node on a shared Redis as a child process (test/fixtures/redis-node.ts) on the runtime running the tests. */
import { type ChildProcess, spawn } from "node:child_process";
import { runtimeCommand } from "./runtime.ts";

export class GatewayNode {
  readonly wsUrl: string;
  readonly child: ChildProcess;
  #stderr: () => string;
  readonly exited: Promise<void>;

  private constructor(wsUrl: string, child: ChildProcess, stderr: () => string, exited: Promise<void>) {
    this.wsUrl = wsUrl;
    this.child = child;
    this.#stderr = stderr;
    this.exited = exited;
  }

  /** Starts a node on `redisUrl` with leases of `leaseMs`; resolves once it listens. */
  static async start(redisUrl: string, leaseMs = 600): Promise<GatewayNode> {
    const [command, args] = runtimeCommand("test/fixtures/redis-node.ts", [redisUrl, String(leaseMs)]);
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const wsUrl = await new Promise<string>((resolve, reject) => {
      let stdout = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`node did not start: ${stderr}`));
      }, 20_000);
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
        const url = stdout.match(/^(ws:\/\/\S+)$/m)?.[1];
        if (url) {
          clearTimeout(timer);
          resolve(url);
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`node exited (${code}): ${stderr}`));
      });
    });
    return new GatewayNode(wsUrl, child, () => stderr, exited);
  }

  /** What the node logged (JSON lines: warnings and errors). */
  logs(): { level: string; message: string; [field: string]: unknown }[] {
    return this.#stderr().split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
  }

  /** Sends `signal` (SIGKILL: a crash; SIGSTOP/SIGCONT: a pause). */
  signal(signal: NodeJS.Signals): void {
    // By PID: Deno's `ChildProcess.kill` sends nothing more once a signal was sent (SIGCONT after SIGSTOP).
    process.kill(this.child.pid!, signal);
  }

  /** Kills it and waits for the exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.signal("SIGCONT");
      this.signal("SIGKILL");
      await this.exited;
    }
  }
}
