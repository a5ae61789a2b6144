/**
 * A private redis-server for one test file: Debian's binary on a free loopback port, without
 * persistence, stopped by its PID. `restart()` stops it and starts a fresh one on the same port
 * (all data gone, as a Redis restart without persistence does).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createServer } from "node:net";

/** A free loopback port (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  readonly port: number;
  #child: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  /** Starts one on a free port; resolves once it accepts connections. */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.#spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Runs one command with `redis-cli`; resolves with its output. */
  command(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile("redis-cli", ["-h", "127.0.0.1", "-p", String(this.port), ...args], (error, stdout) => {
        if (error) reject(error);
        else resolve(stdout.trim());
      });
    });
  }

  /** Stops it (SIGKILL: a crash, nothing flushed) and waits for the process to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  /** Stops it and starts an empty one on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #spawn(): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    return new Promise((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => fail(new Error(`redis-server did not start: ${output}`)), 10_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(error);
      };
      child.once("error", fail);
      child.once("exit", (code) => fail(new Error(`redis-server exited (${code}): ${output}`)));
      child.stdout!.on("data", (chunk: Uint8Array) => {
        output += new TextDecoder().decode(chunk);
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          child.stdout!.removeAllListeners("data");
          child.stdout!.resume();
          resolve();
        }
      });
    });
  }
}
