/**
 * The app's operator options, run as `npm start` runs it: `--metrics` serves Prometheus text at
 * `/metrics` behind the page's token, `--log-format json` writes one JSON object per log line.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, parseConfig } from "../src/app/config.ts";
import { startApp } from "./helpers/app.ts";
import { TestClient } from "./helpers/client.ts";
import { until } from "./helpers/runtime.ts";

const TOKEN = "ops-token-9f2a";

test("parseConfig: --metrics and SWITCHBOARD_METRICS, --log-format and SWITCHBOARD_LOG_FORMAT", () => {
  assert.equal(parseConfig(["--metrics"], {}).metrics, true);
  assert.equal(parseConfig([], { SWITCHBOARD_METRICS: "1" }).metrics, true);
  assert.equal(parseConfig([], { SWITCHBOARD_METRICS: "0" }).metrics, false);
  assert.equal(parseConfig(["--log-format", "json"], {}).logFormat, "json");
  assert.equal(parseConfig([], { SWITCHBOARD_LOG_FORMAT: "json" }).logFormat, "json");
  assert.equal(parseConfig(["--log-format=human"], { SWITCHBOARD_LOG_FORMAT: "json" }).logFormat, "human");
  for (
    const [args, env] of [
      [["--metrics", "--stdio"], {}],
      [[], { SWITCHBOARD_METRICS: "yes please" }],
      [["--log-format", "xml"], {}],
    ] as const
  ) {
    assert.throws(() => parseConfig(args, env), ConfigError, JSON.stringify({ args, env }));
  }
});

test("the app with --metrics and --log-format json: /metrics behind the token, JSON log lines", async () => {
  const app = await startApp(["--metrics", "--log-format", "json"], { SWITCHBOARD_TOKEN: TOKEN });
  try {
    assert.equal((await fetch(`${app.base}metrics`)).status, 401);
    assert.equal((await fetch(`${app.base}metrics`, { headers: { authorization: "Bearer wrong" } })).status, 401);
    const scrape = async () => {
      const response = await fetch(`${app.base}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(response.status, 200);
      return response.text();
    };
    const { client } = await TestClient.ready(`${app.wsUrl}?ticket=${await ticket(app.base)}`);
    assert.equal((await client.call("gateway.ping")).result !== undefined, true);
    await client.close();
    await until(() => app.stderr().includes('"connection closed"'), 5_000, "the teardown line");
    const text = await scrape();
    assert.match(text, /^switchboard_connections_opened_total\{otel_scope_name="switchboard"\} 1$/m);
    assert.match(text, /^switchboard_connections_closed_total\{switchboard_close_code="1000",.*\} 1$/m);
    assert.match(text, /^rpc_server_duration_count\{[^}]*rpc_method="gateway\.ping",switchboard_outcome="ok".*\} 1$/m);

    // Every gateway log line on stderr is one JSON object; the token appears in none.
    const lines = app.stderr().split("\n").filter((line) => line.startsWith("{"));
    assert.ok(lines.length >= 1);
    const closed = lines.map((line) => JSON.parse(line)).find((entry) => entry.message === "connection closed");
    assert.equal(closed.level, "info");
    assert.equal(closed.reason, "peer_closed_1000");
    assert.ok(!app.stderr().includes(TOKEN));
  } finally {
    await app.close();
  }
});

/** A single-use ticket from the app's ticket route, as the page gets one. */
async function ticket(base: string): Promise<string> {
  const response = await fetch(`${base}api/ticket`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
  return encodeURIComponent(((await response.json()) as { ticket: string }).ticket);
}
