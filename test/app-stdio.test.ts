/**
 * The reference agent app's entry (`src/app/main.ts`): its configuration, `--help`, a busy
 * port, and the whole method set over `--stdio` as a child process on this runtime — the demo
 * agent with approvals, interrupts, history and the session list, and the OpenAI-compatible
 * backend against a fake endpoint on loopback.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { connectStdio } from "../src/runtime/stdio-client.ts";
import type { SessionEvent } from "../src/client/mod.ts";
import { demoScript, listFiles } from "../src/app/agent.ts";
import { ConfigError, parseConfig } from "../src/app/config.ts";
import type { AgentGateway } from "../src/app/gateway.ts";
import type { Snapshot } from "../src/app/transcript.ts";
import { APP, fakeOpenAI, runApp, streamChunks } from "./helpers/app.ts";
import { runtimeCommand, until } from "./helpers/runtime.ts";

test("parseConfig: a flag beats its environment variable, which beats the default; bad values are errors", () => {
  const defaults = parseConfig([], {});
  assert.deepEqual(defaults, {
    help: false,
    stdio: false,
    host: "127.0.0.1",
    port: 8787,
    delayMs: 50,
    token: undefined,
    redis: undefined,
    metrics: false,
    logFormat: "human",
    protocol: "switchboard",
    openai: undefined,
  });
  const env = {
    SWITCHBOARD_PORT: "9000",
    SWITCHBOARD_DELAY_MS: "5",
    SWITCHBOARD_TOKEN: "t0k.en",
    SWITCHBOARD_OPENAI_BASE_URL: "http://127.0.0.1:11434/v1",
    SWITCHBOARD_OPENAI_API_KEY: "k",
    SWITCHBOARD_REDIS_URL: "redis://127.0.0.1:6379",
  };
  assert.deepEqual(parseConfig(["--port", "0", "--openai-model=llama3", "--stdio"], env), {
    help: false,
    stdio: true,
    host: "127.0.0.1",
    port: 0,
    delayMs: 5,
    token: "t0k.en",
    redis: "redis://127.0.0.1:6379",
    metrics: false,
    logFormat: "human",
    protocol: "switchboard",
    openai: { baseUrl: "http://127.0.0.1:11434/v1", apiKey: "k", model: "llama3" },
  });
  assert.equal(parseConfig(["-h"], {}).help, true);
  assert.equal(parseConfig(["--", "--port", "0"], {}).port, 0, "`deno task start -- …` passes the `--` on");
  assert.equal(parseConfig(["--redis", "rediss://db:6380/1"], env).redis, "rediss://db:6380/1");
  for (
    const [args, env] of [
      [["--port", "x"], {}],
      [["--port"], {}],
      [["--nope"], {}],
      [[], { SWITCHBOARD_PORT: "70000" }],
      [[], { SWITCHBOARD_TOKEN: "a b" }],
      [["--openai-base-url", "ftp://x"], {}],
      [["--redis", "127.0.0.1:6379"], {}],
      [[], { SWITCHBOARD_REDIS_URL: "http://127.0.0.1:6379" }],
    ] as const
  ) {
    assert.throws(() => parseConfig(args, env), ConfigError, JSON.stringify({ args, env }));
  }
});

test("--help prints every option and exits 0; an unknown option exits 2 with a message", async () => {
  const help = await runApp(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  for (
    const option of [
      "--host",
      "--port",
      "--stdio",
      "--delay-ms",
      "--redis",
      "SWITCHBOARD_REDIS_URL",
      "--openai-base-url",
      "--openai-model",
      "SWITCHBOARD_OPENAI_API_KEY",
      "SWITCHBOARD_TOKEN",
    ]
  ) {
    assert.ok(help.stdout.includes(option), `--help names ${option}`);
  }
  const bad = await runApp(["--frobnicate"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option --frobnicate/);
});

test("a port already in use: one line that names the fix, exit status 1, no stack trace", async () => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const { port } = holder.address() as AddressInfo;
  try {
    const run = await runApp(["--port", String(port)]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, "");
    assert.equal(
      run.stderr,
      `switchboard: 127.0.0.1:${port} is in use: start with --port 0 for any free port, or pick one with --port N or SWITCHBOARD_PORT\n`,
    );
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
});

/** A client of the app over `--stdio`, recording every session event; `decide` answers approvals, `answer` questions. */
function stdioApp(env: Record<string, string>, decide: () => "allow" | "deny" | "hold" = () => "hold") {
  const [command, args] = runtimeCommand(APP, ["--stdio"]);
  const client = connectStdio<AgentGateway>([command, ...args], { reconnect: false, env: { ...process.env, ...env } });
  const events: SessionEvent[] = [];
  client.on("*", (event) => events.push(event));
  client.handle("approval", () => {
    const decision = decide();
    return decision === "hold" ? new Promise(() => {}) : { decision };
  });
  const of = (turnId: string, type?: string) =>
    events.filter((e) => e.payload?.turn_id === turnId && (type === undefined || e.type === type));
  const text = (turnId: string) => of(turnId, "message.delta").map((e) => e.payload.text).join("");
  const app = { client, events, of, text, answer: null as string | null };
  client.handle("clarify", () => ({ answer: app.answer }));
  return app;
}

test("--stdio, demo agent: deltas then complete; allow and deny lead to different answers; a question's answer too; interrupt; history and list agree", async () => {
  let decision: "allow" | "deny" | "hold" = "allow";
  const app = stdioApp({ SWITCHBOARD_DELAY_MS: "2" }, () => decision);
  const { client } = app;
  try {
    const ready = await client.ready;
    assert.equal(ready.agent, "demo");
    const { session_id } = await client.call("session.create", {});

    assert.deepEqual(await client.call("prompt.submit", { session_id, text: "hello there" }), {
      turn_id: "t1",
      status: "complete",
    });
    const plain = demoScript("hello there");
    assert.deepEqual([...new Set(app.of("t1").map((e) => e.type))], [
      "message.user",
      "message.start",
      "message.delta",
      "message.complete",
    ]);
    assert.equal(app.of("t1").at(-1)!.type, "message.complete", "complete comes last");
    assert.equal(app.text("t1"), plain.intro);

    const files = demoScript("which files are there?");
    assert.equal(files.wantsTool, true);
    assert.deepEqual(await client.call("prompt.submit", { session_id, text: "which files are there?" }), {
      turn_id: "t2",
      status: "complete",
    });
    assert.deepEqual(app.of("t2", "tool.complete")[0]!.payload, {
      turn_id: "t2",
      tool_id: "t2-tool1",
      name: "list_files",
      outcome: "allowed",
      result: listFiles(),
    });
    assert.equal(app.text("t2"), files.intro + files.allowed);

    decision = "deny";
    await client.call("prompt.submit", { session_id, text: "which files are there?" });
    assert.equal(app.of("t3", "tool.complete")[0]!.payload.outcome, "denied");
    assert.equal(app.text("t3"), files.intro + files.denied);
    assert.notEqual(files.allowed, files.denied);

    // Interrupted mid-answer: the answer stops, and the call says so.
    const running = client.call("prompt.submit", { session_id, text: "hello there" });
    await until(() => app.of("t4", "message.delta").length >= 3, 10_000, "the answer to start");
    assert.deepEqual(await client.call("session.interrupt", { session_id }), { interrupted: 1 });
    assert.deepEqual(await running, { turn_id: "t4", status: "interrupted" });
    assert.ok(
      plain.intro.startsWith(app.text("t4")) && app.text("t4").length < plain.intro.length,
      "a strict prefix of the answer",
    );

    // Interrupted while waiting for approval: the request is cancelled, the tool never runs.
    decision = "hold";
    const waiting = client.call("prompt.submit", { session_id, text: "list the files" });
    await until(() => app.of("t5", "tool.start").length === 1, 10_000, "the approval request");
    await client.call("session.interrupt", { session_id });
    assert.deepEqual(await waiting, { turn_id: "t5", status: "interrupted" });
    assert.equal(app.of("t5", "tool.complete")[0]!.payload.outcome, "cancelled");
    assert.ok(app.events.some((e) => e.type === "request.cancel" && e.payload.reason === "interrupted"));

    // A question: the answer picks what follows.
    const asking = demoScript("please clarify");
    app.answer = "long";
    assert.deepEqual(await client.call("prompt.submit", { session_id, text: "please clarify" }), {
      turn_id: "t6",
      status: "complete",
    });
    assert.deepEqual(app.of("t6", "clarify.complete")[0]!.payload, {
      turn_id: "t6",
      clarify_id: "t6-clarify1",
      answer: "long",
    });
    assert.equal(app.text("t6"), asking.intro + asking.answered("long"));
    assert.notEqual(asking.answered("long"), asking.answered("short"));

    const history = (await client.call("session.history", { session_id })) as Snapshot;
    assert.equal(history.seq, app.events.at(-1)!.seq, "the snapshot is at the last event");
    assert.deepEqual(history.turns.map((t) => t.status), [
      "complete",
      "complete",
      "complete",
      "interrupted",
      "interrupted",
      "complete",
    ]);
    const said = history.turns.map((t) => t.parts.flatMap((p) => (p.kind === "text" ? [p.text] : [])).join(""));
    assert.deepEqual(said, ["t1", "t2", "t3", "t4", "t5", "t6"].map(app.text));
    assert.deepEqual(history.turns[1]!.parts.map((p) => p.kind), ["text", "tool", "text"]);
    assert.deepEqual(history.turns[5]!.parts.map((p) => p.kind), ["text", "clarify", "text"]);

    const { sessions } = await client.call("session.list", {});
    assert.deepEqual(sessions.map((s) => [s.session_id, s.title, s.turns, s.running]), [[
      session_id,
      "hello there",
      6,
      0,
    ]]);
    const seqs = app.events.filter((e) => e.session_id === session_id).map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "every seq once, in order");
  } finally {
    client.close();
  }
});

test("--stdio with SWITCHBOARD_OPENAI_BASE_URL: the answer streams from the endpoint; a failing endpoint ends the turn with a clear error", async () => {
  let fail = false;
  const stream = streamChunks(["Streamed ", "from ", "the fake."]);
  const fake = await fakeOpenAI((request, res) => {
    if (fail) res.writeHead(500).end("boom");
    else return stream(request, res);
  });
  const app = stdioApp({ SWITCHBOARD_OPENAI_BASE_URL: fake.baseUrl, SWITCHBOARD_OPENAI_MODEL: "fake-1" });
  try {
    assert.equal((await app.client.ready).agent, "openai:fake-1");
    const { session_id } = await app.client.call("session.create", {});
    assert.deepEqual(await app.client.call("prompt.submit", { session_id, text: "hi" }), {
      turn_id: "t1",
      status: "complete",
    });
    assert.equal(app.text("t1"), "Streamed from the fake.");
    fail = true;
    const failed = await app.client.call("prompt.submit", { session_id, text: "again" });
    assert.equal(failed.status, "error");
    assert.match(failed.error!, /^http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions answered HTTP 500: boom$/);
    assert.deepEqual(app.of("t2", "message.complete")[0]!.payload, {
      turn_id: "t2",
      status: "error",
      text: "",
      error: failed.error,
    });
    // The second request carried the first exchange as history.
    assert.deepEqual(fake.requests[1]!.body.messages, [
      { role: "user", content: "hi" },
      { role: "assistant", content: "Streamed from the fake." },
      { role: "user", content: "again" },
    ]);
  } finally {
    app.client.close();
    await fake.close();
  }
});
