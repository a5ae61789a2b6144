/** The gateway mounts unchanged under @hono/node-ws (the older Node adapter), in its own fixture. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { TestClient } from "./helpers/client.ts";
import { runtime, runtimeCommand } from "./helpers/runtime.ts";

const fixture = "test/fixtures/node-ws";

// @hono/node-ws is a Node adapter; Deno and Bun have their own (tested everywhere else).
if (runtime === "node") {
  test("gateway.handler works under @hono/node-ws with @hono/node-server v1", async () => {
    assert.ok(existsSync(`${fixture}/node_modules/@hono/node-ws`), `run: npm install --prefix ${fixture}`);
    const [command, args] = runtimeCommand(`${fixture}/server.ts`);
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.once("data", (chunk) => resolve(Number(String(chunk).trim())));
        child.once("exit", (code) => reject(new Error(`fixture exited with ${code}`)));
      });
      const { client, ready } = await TestClient.ready(`ws://127.0.0.1:${port}/api/ws`);
      assert.equal(ready.protocol, "switchboard/1");
      assert.equal((await client.call("math.add", [2, 3])).result, 5);
      client.send([
        { jsonrpc: "2.0", id: "a", method: "math.add", params: [1, 1] },
        { jsonrpc: "2.0", id: "b", method: "nope" },
      ]);
      const batch = await client.next();
      assert.deepEqual(batch.map((reply: { id: string }) => reply.id).sort(), ["a", "b"]);
      await client.close();
    } finally {
      child.kill();
    }
  });
}
