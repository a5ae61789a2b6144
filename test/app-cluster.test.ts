/**
 * `npm run cluster` as a user runs it: a private redis-server and three app nodes on
 * consecutive ports from SWITCHBOARD_PORT (free ones here, not 8787–8789), one token for all;
 * a chat crosses nodes and outlives a node killed with SIGKILL; SIGINT stops every process it
 * started, redis-server included; a busy
 * port stops it at start with one line.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createConnection, createServer, type Server } from "node:net";
import { test } from "node:test";
import { connect } from "../src/client/mod.ts";
import type { AgentGateway } from "../src/app/gateway.ts";
import { webSocketClass, within } from "./helpers/runtime.ts";

/** A first port with the next two free as well (bound and released), away from 8787–8789. */
async function freeRun(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const first = 20_000 + Math.floor(Math.random() * 40_000);
    if ((await Promise.all([0, 1, 2].map((i) => canListen(first + i)))).every(Boolean)) return first;
  }
  throw new Error("no three consecutive free ports found");
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer().once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * `npm run cluster` with `env` added, in a process group of its own (`setsid`), as a terminal
 * runs a command: Ctrl-C there signals the whole group (`interrupt()` does the same). Its output
 * so far, and its exit.
 */
function cluster(env: Record<string, string>, args: string[] = []) {
  const child = spawn("setsid", ["npm", "run", "--silent", "cluster", "--", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  /** Sends `signal` to the group (by `kill`, the same on every runtime). */
  const signalGroup = (signal: string) => spawnSync("kill", [`-${signal}`, "--", `-${child.pid}`]);
  return { child, exited, signalGroup, stdout: () => stdout, stderr: () => stderr };
}

test("npm run cluster: three nodes on one Redis and one token; a chat crosses nodes and outlives a killed node; SIGINT stops every process, redis-server included", async () => {
  const first = await freeRun();
  const run = cluster({ SWITCHBOARD_PORT: String(first) }, ["--delay-ms", "1"]);
  let redisPort = 0;
  try {
    const urls = await within(
      (async () => {
        while (run.stdout().split("\n").filter(Boolean).length < 3) {
          if (run.child.exitCode !== null) throw new Error(`the cluster exited: ${run.stderr()}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return run.stdout().split("\n").filter(Boolean);
      })(),
      60_000,
      "three URLs",
    );
    assert.deepEqual(urls.map((url) => new URL(url).port), [0, 1, 2].map((i) => String(first + i)));
    const tokens = new Set(urls.map((url) => new URLSearchParams(url.split("#")[1]).get("token")));
    assert.equal(tokens.size, 1, "one token for every node");
    redisPort = Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(run.stderr())?.[1]);
    assert.ok(redisPort > 0, run.stderr());
    for (const url of urls) assert.deepEqual(await (await fetch(new URL("/healthz", url))).json(), { ok: true });

    const [token] = tokens;
    const WebSocket = await webSocketClass();
    const on = (url: string) =>
      connect<AgentGateway>(`${new URL("/api/ws", url).href.replace(/^http/, "ws")}`, {
        token: token!,
        WebSocket,
        reconnect: false,
      });
    const one = on(urls[0]!);
    const two = on(urls[1]!);
    const three = on(urls[2]!);
    try {
      const { session_id } = await one.call("session.create", {});
      assert.equal((await one.call("prompt.submit", { session_id, text: "hello" })).status, "complete");
      assert.equal((await two.call("prompt.submit", { session_id, text: "hello again" })).status, "complete");
      const history = await two.call("session.history", { session_id });
      assert.deepEqual(history.turns.map((t) => [t.prompt, t.status]), [
        ["hello", "complete"],
        ["hello again", "complete"],
      ]);

      // A node killed (its PID is printed): the others go on, with the chat.
      const pid = Number(new RegExp(`${first}: pid (\\d+)`).exec(run.stderr())?.[1]);
      assert.ok(pid > 0, run.stderr());
      process.kill(pid, "SIGKILL");
      for (let tries = 0; !run.stderr().includes(`the node on port ${first} exited`); tries++) {
        assert.ok(tries < 50, "the cluster reports the node's exit within 5 s");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.match(run.stderr(), /the others go on/);
      const after = await three.call("session.history", { session_id });
      assert.equal(after.turns.length, 2);
      assert.equal((await three.call("prompt.submit", { session_id, text: "third" })).status, "complete");
    } finally {
      one.close();
      two.close();
      three.close();
    }

    run.signalGroup("INT"); // Ctrl-C
    // npm itself ends by the signal, as it does on Ctrl-C; what matters is that nothing is left.
    await within(run.exited, 20_000, "the cluster to exit");
    // The nodes and redis-server are stopped (and waited for) before the cluster exits; allow a moment anyway.
    const ports = [first + 1, first + 2, redisPort];
    for (let tries = 0; (await Promise.all(ports.map(listening))).some(Boolean); tries++) {
      assert.ok(tries < 50, "every node and redis-server stopped within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    if (run.child.exitCode === null) run.signalGroup("TERM");
    await within(run.exited, 20_000, "the cluster to exit");
  }
});

test("npm run cluster with a port in use: one line that says which and what to do, exit status 1, nothing left running", async () => {
  const first = await freeRun();
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen(first + 1, "127.0.0.1", resolve));
  try {
    const run = cluster({ SWITCHBOARD_PORT: String(first) });
    assert.equal(await within(run.exited, 30_000, "the cluster to exit"), 1);
    assert.equal(run.stdout(), "");
    assert.equal(
      run.stderr(),
      `cluster: port ${
        first + 1
      } is in use: set SWITCHBOARD_PORT to another first port (the nodes take it and the next 2)\n`,
    );
    assert.equal(await listening(first), false, "nothing was started");
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
});
