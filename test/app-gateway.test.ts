/** The reference app's gateway in-process on this runtime: what a chat may hold. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorCode, silentLogger } from "../src/mod.ts";
import { createAgentGateway } from "../src/app/gateway.ts";
import { MAX_TURNS } from "../src/app/transcript.ts";
import { TestClient } from "./helpers/client.ts";
import { serveOn } from "./helpers/runtime.ts";

test("a chat holds at most MAX_TURNS turns: the next prompt answers -32600 and the chat stays readable", async () => {
  const gateway = createAgentGateway({
    agent: {
      name: "echo",
      reply: (turn) => {
        turn.say("ok");
        return Promise.resolve();
      },
    },
    logger: silentLogger,
  });
  const server = await serveOn(gateway);
  try {
    const { client } = await TestClient.ready(`${server.url.replace(/^http/, "ws")}api/ws`);
    const { result } = await client.call("session.create", {});
    const session_id = result.session_id as string;
    for (let i = 1; i <= MAX_TURNS; i++) {
      assert.equal(
        (await client.call("prompt.submit", { session_id, text: `prompt ${i}` })).result?.status,
        "done",
        `turn ${i}`,
      );
    }
    const refused = await client.call("prompt.submit", { session_id, text: "one more" });
    assert.equal(refused.error?.code, ErrorCode.InvalidRequest);
    assert.deepEqual(refused.error?.data, { max_turns: MAX_TURNS });
    assert.equal((await client.call("session.history", { session_id })).result?.turns.length, MAX_TURNS);
    await client.close();
  } finally {
    await server.close();
  }
});
