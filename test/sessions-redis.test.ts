/**
 * The session tests of test/session-cases.ts with sessions in Redis: each gateway gets its own
 * `RedisStore` (made with the `replay` bounds and `graceMs` the test gives `sessions`) on one
 * private redis-server for the file. One node: the multi-node behaviour is test/redis.test.ts's.
 *
 * Left out, as they test what a shared store does differently (docs/guide.md, Several nodes):
 * - "the gateway-wide replay budget empties the least recently appended ring first, …":
 *   `replayBudgetBytes` bounds the in-memory store only; a RedisStore bounds each session's
 *   events by its own `replay` option.
 * - "grace expiry ends a detached session (orphan_reap) and frees its events; …": a session
 *   without viewers anywhere expires in Redis after the store's `graceMs`; there is no
 *   `orphan_reap` end and no `closed` hook for it (and no `MemoryStore.bytes` to look at).
 * - "the orphan policy can defer while a turn runs; …": `onOrphan` is in-memory only.
 * - "an idle session ends (idle_timeout); over maxSessions the least recently active is
 *   evicted": `idleTtlMs` and `maxSessions` act per node, on the sessions live there.
 * - "gateway close ends every session with reason shutdown, cancelling open requests": closing
 *   a gateway does not end its sessions, they live on in the store (no `shutdown` cancel).
 */
import { after, before, describe } from "node:test";
import { redisStore } from "../src/runtime/redis.ts";
import { RedisServer } from "./helpers/redis-server.ts";
import { sessionCases } from "./session-cases.ts";

describe("sessions on a RedisStore", () => {
  let redis: RedisServer | undefined;

  before(async () => {
    redis = await RedisServer.start();
  });

  after(async () => {
    await redis?.stop();
  });

  sessionCases({
    label: "RedisStore",
    store: ({ replay, graceMs }) =>
      redisStore({
        url: redis!.url,
        replay,
        graceMs,
        // A node keeps the sessions viewed there from expiring only on its lease tick (every third
        // of `leaseMs`: 1 s by default), so with a shorter grace a viewed session would expire
        // between ticks: the lease is made as short as the grace.
        leaseMs: graceMs ? Math.min(graceMs, 3_000) : undefined,
      }),
    skip: [
      "the gateway-wide replay budget empties the least recently appended ring first, and reports it as truncated",
      "grace expiry ends a detached session (orphan_reap) and frees its events; resume then answers -32001",
      "the orphan policy can defer while a turn runs; the turn is not aborted by the disconnect; it is reaped after",
      "an idle session ends (idle_timeout); over maxSessions the least recently active is evicted",
      "gateway close ends every session with reason shutdown, cancelling open requests",
    ],
  });
});
