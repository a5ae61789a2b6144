#!/usr/bin/env node
// `npm run cluster`: the reference agent app as three nodes sharing one Redis, on this machine —
// a private redis-server (Debian's, from `npm run setup`; loopback, a free port, no persistence)
// and three app nodes on Node at SWITCHBOARD_PORT (default 8787) and the next two ports, with
// one access token (SWITCHBOARD_TOKEN, else a random one), so the printed URLs work on every
// node. Options after `--` go to each node (e.g. `npm run cluster -- --delay-ms 10`). Ctrl-C
// (SIGINT) or SIGTERM stops all of them, redis-server included, by PID.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const NODES = 3;
const app = fileURLToPath(new URL("../src/app/main.ts", import.meta.url));
const say = (line) => process.stderr.write(`cluster: ${line}\n`);

/** Everything started, to stop by PID. */
const children = [];
let stopping = false;
/** Set once every node is up: from then on a node that exits leaves the others running (a node's death is a demo). */
let started = false;

/**
 * Stops every child (SIGTERM, then SIGKILL after 10 s: a node gives a running turn up to 5 s to
 * finish), waits for their exits, and exits with `code`.
 */
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  await Promise.all(children.map(({ child, exited }) => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    return exited.finally(() => clearTimeout(timer));
  }));
  process.exit(code);
}

/** Fails the start: one line, then everything started so far is stopped. */
function fail(line) {
  if (stopping) return;
  say(line);
  void stopAll(1);
}

/** Spawns `command`, kept in `children`; `name` prefixes its stderr lines. */
function start(name, command, args, env = process.env) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  children.push({ child, exited });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk) => {
    stderr += chunk;
    for (const line of chunk.split("\n").filter(Boolean)) process.stderr.write(`${name}: ${line}\n`);
  });
  child.once("error", (error) => fail(`${name} could not start: ${error.message}`));
  return { child, stderr: () => stderr };
}

/** The one line for a port already in use. */
function busy(port) {
  return `port ${port} is in use: set SWITCHBOARD_PORT to another first port (the nodes take it and the next ${
    NODES - 1
  })`;
}

/** A free loopback port, bound and released. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether `port` can be listened on at 127.0.0.1 now. */
function isFree(port) {
  return new Promise((resolve) => {
    const server = createServer().once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Starts redis-server; resolves with its URL once it accepts connections. */
async function startRedis() {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const { child } = start("redis-server", "redis-server", args);
  let output = "";
  await new Promise((resolve) => {
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      output += chunk;
      if (!output.includes("Ready to accept connections")) return;
      // Its log is not needed any more; keep reading it so that the pipe never fills.
      child.stdout.removeAllListeners("data").resume();
      resolve();
    });
    child.once("exit", (code) => {
      if (!stopping) fail(`redis-server exited (${code}): ${output.trim().split("\n").at(-1) ?? ""}`);
    });
    child.once("error", (error) => {
      if (error.code === "ENOENT") fail("redis-server is not installed: `npm run setup` installs it");
    });
  });
  say(`redis-server (pid ${child.pid}) at redis://127.0.0.1:${port}`);
  return `redis://127.0.0.1:${port}`;
}

/** Starts one app node on `port`; resolves with the URL it printed, and its PID. Its exit before that fails the start. */
function startNode(port, redisUrl, token) {
  const env = { ...process.env, SWITCHBOARD_TOKEN: token };
  const args = ["--import", "tsx", app, ...process.argv.slice(2), "--port", String(port), "--redis", redisUrl];
  const { child, stderr } = start(`node ${port}`, process.execPath, args, env);
  return new Promise((resolve) => {
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      stdout += chunk;
      const url = /^(http:\/\/\S+#token=\S+)$/m.exec(stdout)?.[1];
      if (url) resolve({ url, pid: child.pid });
    });
    child.once("exit", (code, signal) => {
      if (stopping) return;
      if (started) say(`the node on port ${port} exited (${code ?? signal}); the others go on`);
      else if (stderr().includes("is in use")) fail(busy(port));
      else fail(`the node on port ${port} exited (${code ?? signal})`);
    });
  });
}

process.once("SIGINT", () => void stopAll(0)).once("SIGTERM", () => void stopAll(0));
// npm does not pass a SIGTERM on through its shell: when the parent goes, this process is
// handed to another, and the nodes must not outlive the command that started them.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && void stopAll(0), 500).unref();

const first = Number(process.env.SWITCHBOARD_PORT || 8787);
const ports = Array.from({ length: NODES }, (_, i) => first + i);
if (!Number.isInteger(first) || first < 1 || first + NODES - 1 > 65_535) {
  fail(`SWITCHBOARD_PORT must be a port from 1 to ${65_536 - NODES}, not "${process.env.SWITCHBOARD_PORT}"`);
} else {
  // Checked before anything starts; a port taken after this is caught when its node exits.
  const taken = [];
  for (const port of ports) if (!(await isFree(port))) taken.push(port);
  if (taken.length > 0) fail(busy(taken[0]));
  else await run();
}

/** Starts redis-server, then the nodes, and prints their URLs. */
async function run() {
  const token = process.env.SWITCHBOARD_TOKEN?.trim() || randomBytes(16).toString("hex");
  const redisUrl = await startRedis();
  const nodes = await Promise.all(ports.map((port) => startNode(port, redisUrl, token)));
  started = true;
  // stdout carries only the URLs to open, so a script can read them.
  for (const { url } of nodes) console.log(url);
  const pids = nodes.map(({ pid }, i) => `${ports[i]}: pid ${pid}`).join(", ");
  say(`nodes ${pids}. Open any of these URLs; the chats are shared. Ctrl-C stops everything.`);
}
