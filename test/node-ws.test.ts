/** The gateway mounts unchanged under @hono/node-ws (the older Node adapter), in its own fixture. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { TestClient } from "./helpers/client.ts";
import { runtime } from "./helpers/runtime.ts";

const fixture = fileURLToPath(new URL("./fixtures/node-ws/", import.meta.url));
const install = "npm install --prefix test/fixtures/node-ws";

/** Fails with the install command unless the fixture's own dependencies are there. */
function assertFixtureInstalled(): void {
  for (const name of ["@hono/node-ws", "@hono/node-server", "hono"]) {
    assert.ok(
      existsSync(`${fixture}node_modules/${name}/package.json`),
      `the node-ws fixture is not installed (${name} missing): run \`${install}\``,
    );
  }
  const { version } = JSON.parse(readFileSync(`${fixture}node_modules/@hono/node-server/package.json`, "utf8"));
  assert.match(version, /^1\./, `the node-ws fixture needs @hono/node-server v1, found ${version}: run \`${install}\``);
}

/** Starts the fixture server; resolves with the port it prints, or rejects (with its stderr) if it fails. */
function startFixture() {
  // tsx resolves from the project's node_modules, above the fixture folder.
  const child = spawn(process.execPath, ["--import", "tsx", "server.ts"], {
    cwd: fixture,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the fixture printed no port within 15 s; stderr:\n${stderr}`)),
      15_000,
    );
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (!stdout.includes("\n")) return;
      clearTimeout(timer);
      resolve(Number(stdout.split("\n")[0]));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`the fixture exited with ${code}; stderr:\n${stderr}`));
    });
  });
  return { child, port, exited };
}

// @hono/node-ws is a Node adapter; Deno and Bun have their own (tested in serve.test.ts).
if (runtime === "node") {
  test("gateway.handler works unchanged under @hono/node-ws with @hono/node-server v1", async () => {
    assertFixtureInstalled();
    const { child, port, exited } = startFixture();
    try {
      const listening = await port;
      assert.ok(Number.isInteger(listening) && listening > 0, `bad port from the fixture: ${listening}`);
      const url = `ws://127.0.0.1:${listening}/api/ws`;

      const { client, ready } = await TestClient.ready(url);
      assert.equal(ready.protocol, "switchboard/1");
      assert.equal(typeof ready.connection_id, "string");
      assert.deepEqual(await client.call("math.add", [2, 3]), { jsonrpc: "2.0", id: 1, result: 5 });

      client.send([
        { jsonrpc: "2.0", id: "a", method: "math.add", params: [1, 1] },
        { jsonrpc: "2.0", method: "echo", params: ["a notification: no reply"] },
        { jsonrpc: "2.0", id: "b", method: "nope" },
        { jsonrpc: "2.0", id: "c", method: "echo", params: { deep: [1, { two: 2 }] } },
      ]);
      const batch = await client.next();
      assert.ok(Array.isArray(batch), `a batch answers with an array: ${JSON.stringify(batch)}`);
      assert.deepEqual(
        [...batch].sort((x, y) => String(x.id).localeCompare(String(y.id))),
        [
          { jsonrpc: "2.0", id: "a", result: 2 },
          { jsonrpc: "2.0", id: "b", error: { code: -32601, message: "Method not found", data: { method: "nope" } } },
          { jsonrpc: "2.0", id: "c", result: { deep: [1, { two: 2 }] } },
        ],
      );

      client.send("{oops");
      assert.deepEqual(await client.next(), {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32700, message: "Parse error" },
      });
      assert.deepEqual(await client.call("echo", ["still open"]), { jsonrpc: "2.0", id: 2, result: ["still open"] });
      assert.equal((await client.close()).code, 1000);
    } finally {
      child.kill();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
      clearTimeout(timer);
    }
    assert.notEqual(child.exitCode ?? child.signalCode, null, "the fixture server has exited");
  });
}
