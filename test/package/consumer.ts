/**
 * A project of a user's own: an empty directory with this repository's packed tarball
 * installed and nothing else, as `npm pack` and `npm install <tarball>` make it. Made once
 * per test process, in a temporary directory.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** The repository's root. */
export const repo: string = resolve(import.meta.dirname, "..", "..");

/** The real binaries the devDependencies install. */
export const bin = {
  deno: join(repo, "node_modules", ".bin", "deno"),
  bun: join(repo, "node_modules", ".bin", "bun"),
  tsc: join(repo, "node_modules", ".bin", "tsc"),
  tsx: join(repo, "node_modules", ".bin", "tsx"),
};

/** What a command printed, and how it ended. */
export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`). */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number },
): Promise<Outcome> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.stdin.end(options.input ?? "");
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** A long-running command, until its stdout shows `pattern`. */
export interface Started {
  child: ChildProcess;
  match: RegExpExecArray;
  /** Stops it (SIGTERM, then SIGKILL after 3 s) and resolves with what it printed. */
  stop(): Promise<Outcome>;
}

/**
 * Starts a command and resolves once its stdout matches `pattern`; rejects with what it
 * printed if it exits first or `timeoutMs` passes.
 */
export function start(
  command: string,
  args: string[],
  pattern: RegExp,
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; shell?: boolean },
): Promise<Started> {
  return new Promise((resolveStarted, reject) => {
    // Its own process group, so that a stop reaches whatever it spawned (npm, npx and deno task do).
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      shell: options.shell,
    });
    let stdout = "";
    let stderr = "";
    const exited = new Promise<Outcome>((resolveExit) =>
      child.on("close", (code) => resolveExit({ code, stdout, stderr }))
    );
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, name);
      } catch { /* gone already */ }
    };
    const stop = async () => {
      signal("SIGTERM");
      const kill = setTimeout(() => signal("SIGKILL"), 3_000);
      const outcome = await exited;
      clearTimeout(kill);
      return outcome;
    };
    const timer = setTimeout(() => {
      void stop().then((outcome) => reject(new Error(`no ${pattern} within the time: ${JSON.stringify(outcome)}`)));
    }, options.timeoutMs ?? 60_000);
    child.stdout!.on("data", (chunk) => {
      stdout += chunk;
      const match = pattern.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolveStarted({ child, match, stop });
      }
    });
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    void exited.then((outcome) => {
      clearTimeout(timer);
      reject(new Error(`exited before printing ${pattern}: ${JSON.stringify(outcome)}`));
    });
  });
}

/** The consumer project: where it is, and the tarball's file list. */
export interface Consumer {
  dir: string;
  /** Paths inside the tarball, relative to the package root. */
  files: string[];
}

let made: Promise<Consumer> | undefined;

/** Packs this repository (which builds it) and installs the tarball into a new empty project. */
export function consumer(): Promise<Consumer> {
  return (made ??= make());
}

async function make(): Promise<Consumer> {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-consumer-"));
  const pack = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: repo, timeoutMs: 120_000 });
  if (pack.code !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
  const [{ filename, files }] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as {
    filename: string;
    files: { path: string }[];
  }[];
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  // With `redis` beside it, as a user of `switchboard/redis` installs it, and the OpenTelemetry SDK
  // the app's `--metrics` needs (optional peer dependencies).
  const optional = ["redis@^6.3.1", "@opentelemetry/sdk-metrics@^2", "@opentelemetry/exporter-prometheus@>=0.200"];
  const install = await run("npm", ["install", "--no-audit", "--no-fund", join(dir, filename), ...optional], {
    cwd: dir,
    timeoutMs: 180_000,
  });
  if (install.code !== 0) throw new Error(`npm install of the tarball failed: ${install.stderr}`);
  return { dir, files: files.map((file) => file.path) };
}
