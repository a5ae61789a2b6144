/**
 * Fault injection at the door (see the security section of docs/architecture.md): `gateway.guard()` before the upgrade — Origin,
 * Host, `tokenAuth` (bearer, subprotocol, tickets), connection caps — and what the logs keep.
 * Every attack runs beside a well-behaved client that must stay open and keep its answers.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Hono } from "hono";
import { SUBPROTOCOL, Tickets, TOKEN_PROTOCOL_PREFIX, tokenAuth } from "../../src/mod.ts";
import { Bystander } from "../helpers/bystander.ts";
import { TestClient } from "../helpers/client.ts";
import { Opcode, RawSocket } from "../helpers/raw-socket.ts";
import { runtime, startGateway, until } from "../helpers/runtime.ts";

const echo = (p: unknown) => p;
const TOKEN = "tok-9f2c1e7a5b3d4c6e8a0b";

/** The subprotocol list that carries `token` the way a browser must send it. */
const withToken = (token = TOKEN) => [SUBPROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`];

/** Upgrades raw with `headers`, asserts `gateway.ready` arrives, and returns the socket. */
async function admitted(wsUrl: string, headers: Record<string, string>, what: string): Promise<RawSocket> {
  const socket = await RawSocket.open(wsUrl, headers);
  assert.equal(socket.status, 101, what);
  assert.equal(((await socket.next()) as { params?: { type?: string } }).params?.type, "gateway.ready", what);
  return socket;
}

test(`Origin on ${runtime}: a cross-site Origin gets 403 before the upgrade; same-origin, no Origin and an allow-listed origin connect`, async () => {
  await using gw = await startGateway({ origins: ["https://app.example"], methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  const port = gw.server.port;

  for (
    const origin of [
      "https://evil.example",
      `http://127.0.0.1:${port + 1}`,
      "null",
      "https://app.example.evil.example",
      `http://localhost:${port}`,
    ]
  ) {
    const socket = await RawSocket.open(gw.wsUrl, { origin });
    assert.equal(socket.status, 403, origin);
    assert.equal(socket.headers.upgrade, undefined, `${origin}: refused before the upgrade`);
  }
  assert.equal(gw.gateway.connections.size, 1, "no refused request became a connection");

  const accepted = [
    await admitted(gw.wsUrl, {}, "no Origin (not a browser)"),
    await admitted(gw.wsUrl, { origin: `http://127.0.0.1:${port}` }, "same-origin"),
    await admitted(gw.wsUrl, { origin: "https://app.example" }, "on the allow-list"),
  ];
  for (const socket of accepted) socket.destroy();
  await bystander.leave();
});

test("Host on a loopback-bound serve(): a non-loopback name (DNS rebinding) gets 403, even with an Origin to match", async () => {
  await using gw = await startGateway({ methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  const port = gw.server.port;

  // A rebinding page's Origin names the attacker's host, so it is "same-origin": only the Host check stops it.
  const rebinding: Record<string, string>[] = [
    { host: `evil.example:${port}` },
    { host: `evil.example:${port}`, origin: `http://evil.example:${port}` },
    { host: `127.0.0.1.evil.example:${port}` },
    { host: `localhost.evil.example:${port}` },
  ];
  for (const headers of rebinding) {
    assert.equal(await RawSocket.status(gw.wsUrl, headers), 403, JSON.stringify(headers));
  }
  assert.equal(gw.gateway.connections.size, 1);

  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
    (await admitted(gw.wsUrl, { host }, host)).destroy();
  }
  await bystander.leave();
});

test("a malformed Host is refused with a client error (400 from the guard; a runtime may refuse it earlier) and the server goes on", async () => {
  await using gw = await startGateway({ methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl);
  for (const host of ["[::1", "[", "127.0.0.1:99999999", "exa mple", "%%"]) {
    // Never admitted, and never a server error (Bun answered 500 and Deno admitted one before the guard checked).
    const status = await RawSocket.status(gw.wsUrl, { host });
    assert.ok(status >= 400 && status < 500, `${JSON.stringify(host)} → ${status}`);
  }
  assert.equal(gw.gateway.connections.size, 1);
  await bystander.leave();
});

test("tokenAuth: no token or a wrong one gets 401; a bearer token in Authorization connects as its principal", async () => {
  await using gw = await startGateway({ auth: tokenAuth({ tokens: { [TOKEN]: "alice" } }), methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl, withToken());

  const refused: Record<string, string>[] = [
    {},
    { authorization: "Bearer wrong" },
    { authorization: `Bearer ${TOKEN}x` },
    { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    { authorization: `Basic ${btoa(`alice:${TOKEN}`)}` },
    { "sec-websocket-protocol": withToken("wrong").join(", ") },
  ];
  for (const headers of refused) assert.equal(await RawSocket.status(gw.wsUrl, headers), 401, JSON.stringify(headers));
  assert.equal(gw.gateway.connectionsOf("alice"), 1, "only the bystander");

  const bearer = await admitted(gw.wsUrl, { authorization: `Bearer ${TOKEN}` }, "bearer");
  assert.equal(gw.gateway.connectionsOf("alice"), 2);
  bearer.send(Opcode.Text, JSON.stringify({ jsonrpc: "2.0", id: 7, method: "echo", params: ["by bearer"] }));
  assert.deepEqual(await bearer.next(), { jsonrpc: "2.0", id: 7, result: ["by bearer"] });
  bearer.destroy();
  await bystander.leave();
});

test("tokenAuth: a token in the query (?token=) gets 401 unless queryToken opts in; then it connects as its principal, a wrong one still 401", async () => {
  const withQuery = (url: string, token: string) => `${url}?token=${encodeURIComponent(token)}`;
  {
    await using gw = await startGateway({ auth: tokenAuth({ tokens: { [TOKEN]: "alice" } }), methods: { echo } });
    assert.equal(await RawSocket.status(withQuery(gw.wsUrl, TOKEN)), 401);
  }
  await using gw = await startGateway({
    auth: tokenAuth({ tokens: { [TOKEN]: "alice" }, queryToken: true }),
    methods: { echo },
  });
  assert.equal(await RawSocket.status(withQuery(gw.wsUrl, "wrong")), 401);
  assert.equal(await RawSocket.status(withQuery(gw.wsUrl, "")), 401);
  const { client } = await TestClient.ready(withQuery(gw.wsUrl, TOKEN));
  assert.equal(gw.gateway.connectionsOf("alice"), 1);
  assert.deepEqual((await client.call("echo", ["by query"])).result, ["by query"]);
  await client.close();
});

test("tokenAuth: a token after switchboard.v1 in the subprotocol list connects and the server answers exactly switchboard.v1; without switchboard.v1 first → 400", async () => {
  await using gw = await startGateway({ auth: tokenAuth({ tokens: { [TOKEN]: "alice" } }), methods: { echo } });
  const bystander = await Bystander.join(gw.wsUrl, withToken());
  assert.equal(bystander.client.socket.protocol, SUBPROTOCOL, "a real client sees switchboard.v1");

  // Separated by a comma and a space (browsers), or by a comma alone (the `ws` package).
  for (const separator of [", ", ","]) {
    const raw = await admitted(
      gw.wsUrl,
      { "sec-websocket-protocol": withToken().join(separator) },
      `token in the subprotocol list, after ${JSON.stringify(separator)}`,
    );
    assert.equal(raw.headers["sec-websocket-protocol"], SUBPROTOCOL, "the answered subprotocol, on the wire");
    assert.ok(!JSON.stringify(raw.headers).includes(TOKEN), "the token is in no response header");
    raw.destroy();
  }

  // Hono's helpers would answer the first offered protocol: the token must never be first.
  for (
    const offered of [
      `${TOKEN_PROTOCOL_PREFIX}${TOKEN}`,
      `${TOKEN_PROTOCOL_PREFIX}${TOKEN}, ${SUBPROTOCOL}`,
      `other, ${TOKEN_PROTOCOL_PREFIX}${TOKEN}`,
    ]
  ) {
    const socket = await RawSocket.open(gw.wsUrl, { "sec-websocket-protocol": offered });
    assert.equal(socket.status, 400, offered);
    assert.ok(!JSON.stringify(socket.headers).includes(TOKEN), `${offered}: the token is in no response header`);
  }
  assert.equal(gw.gateway.connections.size, 1);
  await bystander.leave();
});

test("tickets: the mint route needs the app's own auth; a ticket connects once, then 401; an unknown ticket 401", async () => {
  const tickets = new Tickets();
  const app = new Hono();
  app.post("/api/ticket", tickets.route(tokenAuth({ tokens: { [TOKEN]: "alice" } })));
  await using gw = await startGateway(
    { auth: tokenAuth({ tokens: { [TOKEN]: "alice" }, tickets }), methods: { echo } },
    { app },
  );
  const bystander = await Bystander.join(gw.wsUrl, withToken());

  const anonymous = await fetch(`${gw.server.url}api/ticket`, { method: "POST" });
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();
  const minted = await fetch(`${gw.server.url}api/ticket`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const { ticket, expires_in_ms } = (await minted.json()) as { ticket: string; expires_in_ms: number };
  assert.equal(expires_in_ms, 30_000);
  assert.ok(ticket.length >= 32, "a ticket is long and random");

  const client = await TestClient.open(`${gw.wsUrl}?ticket=${encodeURIComponent(ticket)}`);
  assert.equal((await client.next()).params.type, "gateway.ready");
  assert.equal(gw.gateway.connectionsOf("alice"), 2, "the ticket's principal");
  assert.equal(await RawSocket.status(`${gw.wsUrl}?ticket=${encodeURIComponent(ticket)}`), 401, "used once");
  assert.equal(
    await RawSocket.status(`${gw.wsUrl}?ticket=${encodeURIComponent(tickets.mint("alice"))}x`),
    401,
    "unknown",
  );
  assert.deepEqual((await client.call("echo", ["by ticket"])).result, ["by ticket"]);
  await client.close();
  await bystander.leave();
});

test("tickets: an expired ticket gets 401 and is dropped", async () => {
  const tickets = new Tickets({ ttlMs: 1 });
  await using gw = await startGateway({
    auth: tokenAuth({ tokens: { [TOKEN]: "alice" }, tickets }),
    methods: { echo },
  });
  const bystander = await Bystander.join(gw.wsUrl, withToken());
  const ticket = tickets.mint("alice");
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(await RawSocket.status(`${gw.wsUrl}?ticket=${encodeURIComponent(ticket)}`), 401);
  assert.equal(tickets.size, 0);
  await bystander.leave();
});

test("connection caps: a principal's connection over maxConnectionsPerPrincipal gets 503 while others connect; over maxConnections 503 for anyone", async () => {
  const tokens = { "tok-alice-0123456789": "alice", "tok-bob-0123456789": "bob", "tok-carol-0123456789": "carol" };
  await using gw = await startGateway({
    auth: tokenAuth({ tokens }),
    limits: { maxConnectionsPerPrincipal: 2, maxConnections: 4 },
    methods: { echo },
  });
  const bystander = await Bystander.join(gw.wsUrl, withToken("tok-bob-0123456789"));
  const as = (token: string) => ({ authorization: `Bearer ${token}` });

  const alice = [
    await admitted(gw.wsUrl, as("tok-alice-0123456789"), "alice 1"),
    await admitted(gw.wsUrl, as("tok-alice-0123456789"), "alice 2"),
  ];
  assert.equal(await RawSocket.status(gw.wsUrl, as("tok-alice-0123456789")), 503, "alice's third");
  const carol = await admitted(gw.wsUrl, as("tok-carol-0123456789"), "carol, under both caps");
  assert.equal(gw.gateway.connections.size, 4);
  assert.equal(await RawSocket.status(gw.wsUrl, as("tok-carol-0123456789")), 503, "carol's second: over the total");
  await bystander.check("bob, at the caps");

  // A released connection frees its place under the principal's cap.
  alice[0]!.destroy();
  await until(() => gw.gateway.connectionsOf("alice") === 1, 3_000, "alice's closed connection to be released");
  alice[0] = await admitted(gw.wsUrl, as("tok-alice-0123456789"), "alice again");
  for (const socket of [...alice, carol]) socket.destroy();
  await bystander.leave();
});

test(`per client address on ${runtime}: attempts over connectsPerSecondPerAddress get 429, connections over maxConnectionsPerAddress 503; loopback is exempt unless limitLoopback`, async () => {
  const limits = { connectsPerSecondPerAddress: 3, maxConnectionsPerAddress: 2 };
  {
    await using gw = await startGateway({ limits, limitLoopback: true, methods: { echo } });
    const open = [await admitted(gw.wsUrl, {}, "first"), await admitted(gw.wsUrl, {}, "second")];
    assert.equal(await RawSocket.status(gw.wsUrl), 503, "a third open connection from the same address");
    open.pop()!.destroy();
    await until(() => gw.gateway.connections.size === 1, 3_000, "the closed connection to be released");
    // The bucket held 3 attempts and refills 3 a second: a reconnect loop gets no more than that.
    const started = performance.now();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const socket = await RawSocket.open(gw.wsUrl);
      statuses.push(socket.status);
      socket.destroy();
      if (socket.status === 101) {
        await until(() => gw.gateway.connections.size === 1, 3_000, "the reconnect to be released");
      }
    }
    const refilled = Math.floor(((performance.now() - started) * 3) / 1_000);
    const admittedCount = statuses.filter((status) => status === 101).length;
    assert.ok(admittedCount <= 1 + refilled, `admitted ${admittedCount}: ${statuses}`);
    assert.ok(statuses.includes(429), `${statuses}`);
    assert.ok(statuses.every((status) => status === 101 || status === 429), `${statuses}`);
    // A second later the bucket is full again.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const again = await admitted(gw.wsUrl, {}, "after a second");
    again.destroy();
    open[0]!.destroy();
  }
  {
    // The default: loopback peers share one address (a dev's tabs, a local reverse proxy), so no per-address limit.
    await using gw = await startGateway({ limits, methods: { echo } });
    const sockets = [];
    for (let i = 0; i < 6; i++) sockets.push(await admitted(gw.wsUrl, {}, `loopback connection ${i + 1}`));
    for (const socket of sockets) socket.destroy();
  }
});

test("logs carry no token, no ticket and no message body; a client-supplied id appears only as a short preview", async () => {
  const tickets = new Tickets();
  await using gw = await startGateway({
    auth: tokenAuth({ tokens: { [TOKEN]: "alice" }, tickets }),
    methods: {
      echo,
      crash: () => {
        throw new Error("boom");
      },
    },
  });
  const bystander = await Bystander.join(gw.wsUrl, withToken());
  const body = "BODY-7d1e2f-secret-payload";
  const longId = `id-${"i".repeat(5_000)}`;

  // Refused with the token in every place it can be offered, then admitted the same ways.
  assert.equal(await RawSocket.status(gw.wsUrl, { authorization: `Bearer ${TOKEN}x` }), 401);
  assert.equal(await RawSocket.status(gw.wsUrl, { "sec-websocket-protocol": `${TOKEN_PROTOCOL_PREFIX}${TOKEN}` }), 400);
  const ticket = tickets.mint("alice");
  const byTicket = await admitted(`${gw.wsUrl}?ticket=${encodeURIComponent(ticket)}`, {}, "ticket");
  assert.equal(await RawSocket.status(`${gw.wsUrl}?ticket=${encodeURIComponent(ticket)}`), 401);
  const bySubprotocol = await admitted(gw.wsUrl, { "sec-websocket-protocol": withToken().join(", ") }, "subprotocol");
  const byBearer = await admitted(gw.wsUrl, { authorization: `Bearer ${TOKEN}` }, "bearer");

  // Things that are logged: a crash (with the request's id), a reply to an unknown server request.
  byBearer.send(Opcode.Text, JSON.stringify({ jsonrpc: "2.0", id: longId, method: "crash", params: { body } }));
  assert.equal(((await byBearer.next()) as { error: { code: number } }).error.code, -32603);
  bySubprotocol.send(Opcode.Text, JSON.stringify({ jsonrpc: "2.0", id: longId, result: { body } }));
  byTicket.send(Opcode.Text, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "echo", params: { body } }));
  assert.deepEqual(await byTicket.next(), { jsonrpc: "2.0", id: 1, result: { body } });
  await until(
    () => gw.logs.some((entry) => entry.message === "response dropped"),
    3_000,
    "the dropped reply to be logged",
  );
  for (const socket of [byTicket, bySubprotocol, byBearer]) socket.destroy();
  await until(() => gw.gateway.connections.size === 1, 3_000, "the three connections to close");
  await bystander.check();

  const text = JSON.stringify(
    gw.logs,
    (_key, value) => (value instanceof Error ? `${value.message}\n${value.stack}` : value),
  );
  assert.ok(gw.logs.filter((entry) => entry.message === "connection closed").length >= 3, "teardown lines were logged");
  for (const secret of [TOKEN, ticket, body, longId]) {
    assert.ok(!text.includes(secret), `logs must not contain ${secret.slice(0, 20)}…`);
  }
  const crash = gw.logs.find((entry) => entry.message === "handler failed")!;
  assert.equal(crash.fields!.id, `${longId.slice(0, 64)}… (${longId.length} chars)`);
  assert.equal(gw.logs.find((entry) => entry.message === "response dropped")!.fields!.id, crash.fields!.id);
  await bystander.leave();
});
