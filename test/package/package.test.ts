/**
 * Switchboard as its users get it: this repository packed (`npm pack`, which builds it),
 * the tarball installed into an empty project, and that project run with plain `node` (no
 * TypeScript loader), `deno` and `bun`. Then every code block of README.md and docs/ is tried
 * in that project, and every command of the README in a copy of this repository.
 *
 * Run by `npm test` on Node only: it drives all three runtimes itself.
 */
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bin, consumer, repo, run, start } from "./consumer.ts";
import { blocksOf, commandsOf, markdownFiles, type TsBlock, tsBlock } from "./docs.ts";
import { connect } from "../../src/client/mod.ts";
import { webSocketClass } from "../helpers/runtime.ts";
import { RedisServer } from "../helpers/redis-server.ts";

const runtimes = ["node", "deno", "bun"] as const;
type Runtime = (typeof runtimes)[number];

/** The command that runs a JavaScript file of the consumer project on `runtime`. */
function runner(runtime: Runtime, file: string): [string, string[]] {
  if (runtime === "deno") return [bin.deno, ["run", "-A", file]];
  if (runtime === "bun") return [bin.bun, [file]];
  return [process.execPath, [file]];
}

const APP_MAIN = join("node_modules", "switchboard", "dist", "app", "main.js");

test("the tarball holds the built package, README and LICENSE, and nothing of tests, benchmarks or sources", async () => {
  const { files } = await consumer();
  const outside = files.filter((file) => !file.startsWith("dist/"));
  assert.deepEqual(outside.sort(), ["LICENSE", "README.md", "package.json"]);
  const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
  // Every condition of every entry point, and the bin, name a file that ships.
  for (const [entry, conditions] of Object.entries<Record<string, string>>(manifest.exports)) {
    assert.deepEqual(Object.keys(conditions), ["types", "import", "default"], entry);
    for (const target of Object.values(conditions)) assert.ok(files.includes(target.slice(2)), `${entry}: ${target}`);
  }
  assert.ok(files.includes(manifest.bin.switchboard.slice(2)));
  for (const page of ["index.html", "style.css", "app.js"]) assert.ok(files.includes(`dist/app/page/${page}`), page);
  assert.equal(manifest.sideEffects, false);
});

for (const runtime of runtimes) {
  test(`on ${runtime}, from the tarball: every entry point imports, a gateway serves, and the clients make round trips`, async () => {
    const { dir } = await consumer();
    copyFileSync(join(import.meta.dirname, "smoke.mjs"), join(dir, "smoke.mjs"));
    const [command, args] = runner(runtime, "smoke.mjs");
    await using redis = await RedisServer.start();
    const env = { ...process.env, NODE_BIN: process.execPath, APP_MAIN: join(dir, APP_MAIN), REDIS_URL: redis.url };
    const outcome = await run(command, args, { cwd: dir, env });
    assert.equal(outcome.code, 0, outcome.stderr);
    const seen = JSON.parse(outcome.stdout.trim().split("\n").at(-1)!);
    assert.equal(seen.runtime, runtime);
    assert.equal(seen.protocol, "switchboard/1");
    assert.equal(seen.sum, 5);
    assert.equal(seen.stdioSum, 9);
    assert.equal(seen.childSession, "string");
    // The public surface: what a user needs, no internals (connections, registries, adapters).
    assert.deepEqual(seen.exports["switchboard"], [
      "ANONYMOUS",
      "CloseCode",
      "ErrorCode",
      "LOOPBACK_HOSTS",
      "MemoryStore",
      "RpcError",
      "SUBPROTOCOL",
      "TOKEN_PROTOCOL_PREFIX",
      "Tickets",
      "consoleLogger",
      "constantTimeEqual",
      "createGateway",
      "defaultLimits",
      "jsonLogger",
      "method",
      "silentLogger",
      "tokenAuth",
    ]);
    const runtimeExports = runtime === "node"
      ? ["serve", "stdioStreams", "upgradeWebSocket"]
      : ["serve", "stdioStreams"];
    assert.deepEqual(seen.exports[`switchboard/${runtime}`], runtimeExports);
    assert.deepEqual(seen.exports["switchboard/stdio"], ["serveStdio"]);
    assert.deepEqual(seen.exports["switchboard/client"], [
      "Client",
      "ConnectionLost",
      "ErrorCode",
      "RpcError",
      "connect",
    ]);
    assert.deepEqual(seen.exports["switchboard/client/stdio"], ["connectStdio"]);
    assert.deepEqual(seen.exports["switchboard/redis"], ["RedisStore", "redisStore"]);
    assert.equal(seen.redisReplayed, 1);
  });
}

test("the package's types check in a TypeScript project of the user's (nodenext, no skipLibCheck)", async () => {
  const { dir } = await consumer();
  writeFileSync(
    join(dir, "typed.ts"),
    [
      `import { createGateway, method, type SessionHandle } from "switchboard";`,
      `import { serve } from "switchboard/node";`,
      `import { connect } from "switchboard/client";`,
      `import { connectStdio } from "switchboard/client/stdio";`,
      `const gateway = createGateway({ methods: { "math.add": ([a, b]: [number, number]) => a + b } });`,
      `const server = await serve(gateway, { port: 0 });`,
      `const client = connect<typeof gateway>(server.url);`,
      `const sum: number = await client.call("math.add", [1, 2]);`,
      `// @ts-expect-error: the result of math.add is a number`,
      `const wrong: string = await client.call("math.add", [1, 2]);`,
      `export const used = [sum, wrong, method, connectStdio] as const;`,
      `export type Used = SessionHandle;`,
    ].join("\n"),
  );
  writeTsconfig(dir, "tsconfig.typed.json", ["typed.ts"], ["node"]);
  const outcome = await run(bin.tsc, ["-p", "tsconfig.typed.json"], { cwd: dir });
  assert.equal(outcome.code, 0, outcome.stdout + outcome.stderr);
});

for (const runtime of runtimes) {
  test(`on ${runtime}, the package's bin starts the reference chat: its URL, /healthz and the page`, async () => {
    const { dir } = await consumer();
    const [command, args] = runtime === "node" ? ["npx", ["switchboard"]] : runner(runtime, APP_MAIN);
    const app = await start(command, [...args, "--port", "0"], /^(http:\/\/127\.0\.0\.1:\d+\/)#token=\w+$/m, {
      cwd: dir,
    });
    try {
      const base = app.match[1]!;
      assert.deepEqual(await (await fetch(`${base}healthz`)).json(), { ok: true });
      assert.match(await (await fetch(base)).text(), /<html/);
      const script = await fetch(`${base}app.js`);
      assert.equal(script.status, 200);
      // Bundled at build time: no bare import is left for the browser to fail on.
      assert.doesNotMatch(await script.text(), /from\s*"switchboard/);
    } finally {
      await app.stop();
    }
  });
}

for (const runtime of runtimes) {
  test(`on ${runtime}, the package's bin with --metrics and --log-format json: /metrics behind the token, JSON logs`, async () => {
    const { dir } = await consumer();
    const [command, args] = runtime === "node" ? ["npx", ["switchboard"]] : runner(runtime, APP_MAIN);
    const flags = ["--port", "0", "--metrics", "--log-format", "json"];
    const app = await start(command, [...args, ...flags], /^(http:\/\/127\.0\.0\.1:\d+\/)#token=(\w+)$/m, { cwd: dir });
    try {
      const [, base, token] = app.match;
      assert.equal((await fetch(`${base}metrics`)).status, 401);
      // As the page connects: a ticket for the token, then the socket, closed after gateway.ready.
      const auth = { authorization: `Bearer ${token}` };
      const { ticket } = await (await fetch(`${base}api/ticket`, { method: "POST", headers: auth })).json();
      const WS = await webSocketClass();
      const socket = new WS(`${base!.replace(/^http/, "ws")}api/ws?ticket=${encodeURIComponent(ticket)}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise((resolve, reject) => {
        socket.addEventListener("message", resolve, { once: true });
        socket.addEventListener("error", () => reject(new Error("the socket failed")));
        timer = setTimeout(() => reject(new Error("no gateway.ready within 10 s")), 10_000);
      }).finally(() => clearTimeout(timer));
      socket.close();
      const metrics = await fetch(`${base}metrics`, { headers: auth });
      assert.match(await metrics.text(), /^switchboard_connections_opened_total\{[^}]*\} 1$/m);
    } finally {
      const { stderr } = await app.stop();
      const lines = stderr.split("\n").filter((line) => line.startsWith("{"));
      assert.ok(lines.some((line) => JSON.parse(line).message === "connection closed"), stderr);
    }
  });
}

/** A tsconfig for checking files of the consumer project as a user's own code would be. */
function writeTsconfig(dir: string, name: string, files: string[], types: string[]): void {
  const compilerOptions = {
    target: "ES2023",
    module: "nodenext",
    moduleResolution: "nodenext",
    lib: ["ES2023", "DOM", "DOM.Iterable"],
    strict: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    types,
    // The repository's @types (node, bun, ws), as the user's own devDependencies would hold them.
    typeRoots: [join(repo, "node_modules", "@types")],
    paths: { ws: [join(repo, "node_modules", "@types", "ws", "index.d.ts")] },
  };
  writeFileSync(join(dir, name), JSON.stringify({ compilerOptions, files }, null, 2));
}

const blocks = markdownFiles(repo).flatMap((file) => blocksOf(repo, file));
const tsBlocks = blocks.filter((block) => block.language === "ts").map(tsBlock);

test("every code block in README.md and docs/ is in a language the docs test checks", () => {
  const unknown = blocks.filter((block) => !["ts", "sh", "json", "text"].includes(block.language));
  assert.deepEqual(unknown.map((block) => `${block.where} (${block.language})`), []);
  for (const block of blocks.filter((block) => block.language === "json")) {
    assert.doesNotThrow(() => JSON.parse(block.code), block.where);
  }
});

test("every TypeScript block in README.md and docs/ type-checks against the installed package", async () => {
  const { dir } = await consumer();
  for (const block of tsBlocks) writeFileSync(join(dir, block.file), block.code);
  const node = tsBlocks.filter((block) => block.runtime === "node").map((block) => block.file);
  const bun = tsBlocks.filter((block) => block.runtime === "bun").map((block) => block.file);
  const deno = tsBlocks.filter((block) => block.runtime === "deno").map((block) => block.file);
  const problems: string[] = [];
  for (const [name, files, types] of [["node", node, ["node"]], ["bun", bun, ["bun"]]] as const) {
    if (files.length === 0) continue;
    writeTsconfig(dir, `tsconfig.${name}.json`, [...files], [...types]);
    const outcome = await run(bin.tsc, ["-p", `tsconfig.${name}.json`], { cwd: dir });
    if (outcome.code !== 0) problems.push(outcome.stdout + outcome.stderr);
  }
  if (deno.length > 0) {
    const outcome = await run(bin.deno, ["check", ...deno], { cwd: dir, env: { ...process.env, NO_COLOR: "1" } });
    if (outcome.code !== 0) problems.push(outcome.stdout + outcome.stderr);
  }
  // Map the generated file names back to the docs' own places.
  const report = problems.join("\n").replace(/(\w+)_md_(\d+)_\.ts/g, (_, doc, line) => `${doc}.md:${line}`);
  assert.equal(report, "");
});

/** Runs one TypeScript block in the consumer project the way its fence says. */
async function tryBlock(dir: string, block: TsBlock, env: Record<string, string | undefined>): Promise<void> {
  const [command, args] = block.runtime === "deno"
    ? [bin.deno, ["run", "-A", block.file]]
    : block.runtime === "bun"
    ? [bin.bun, [block.file]]
    : [bin.tsx, [block.file]];
  if (block.mode === "run") {
    const outcome = await run(command, args, { cwd: dir, timeoutMs: 30_000, env });
    assert.equal(outcome.code, 0, `${block.where}: ${outcome.stdout}${outcome.stderr}`);
    return;
  }
  // A server: connect to the gateway it printed, and see `gateway.ready`.
  const server = await start(command, args, /ws:\/\/\S+/, { cwd: dir, timeoutMs: 30_000 });
  try {
    const client = connect(server.match[0], { WebSocket: await webSocketClass(), reconnect: false });
    const ready = await client.ready;
    assert.equal(ready.protocol, "switchboard/1", block.where);
    client.close();
  } finally {
    await server.stop();
  }
}

test("every runnable TypeScript block in README.md and docs/ runs in the installed package", async () => {
  const { dir } = await consumer();
  // The examples of several nodes read REDIS_URL: a private redis-server, as a user would point them at theirs.
  await using redis = await RedisServer.start();
  const env = { ...process.env, REDIS_URL: redis.url };
  for (const block of tsBlocks.filter((block) => block.mode !== "check")) {
    writeFileSync(join(dir, block.file), block.code);
    await tryBlock(dir, block, env);
  }
});

test("every command in the README works as written, and CI runs exactly its test command", async () => {
  const commands = blocks
    .filter((block) => block.where.startsWith("README.md") && block.language === "sh")
    .flatMap(commandsOf);
  const ci = readFileSync(join(repo, ".ci", "run"), "utf8");
  assert.ok(commands.includes("npm run setup && npm test"), "the README names the test command");
  assert.ok(ci.split("\n").includes("npm run setup && npm test"), ".ci/run runs the README's test command");
  const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
  for (const command of commands) {
    // The set-up and test commands are what CI runs from a fresh clone; running them from inside
    // the suite would run the suite again. The package's installation is the tarball test above.
    if (/^npm run setup && npm test$|^npm install switchboard\b|^deno add |^bun add /.test(command)) continue;
    if (APP_COMMAND.test(command)) {
      await tryAppCommand(command);
      continue;
    }
    const script = /^npm run (\S+)/.exec(command)?.[1];
    assert.ok(script && manifest.scripts[script], `a README command the test does not know how to try: ${command}`);
  }
});

test("every command in docs/ that starts the app works as written; the others need a service and are named here", async () => {
  const commands = blocks
    .filter((block) => block.where.startsWith("docs/") && block.language === "sh")
    .flatMap(commandsOf);
  // These need a Redis server on the default port, the app already running on 8787, or a fixed port range: the
  // options they use are tried on free ports by test/app-redis.test.ts, test/app-cluster.test.ts and test/app-metrics.test.ts.
  const needsService = /--redis redis:\/\/127\.0\.0\.1:6379|^(SWITCHBOARD_PORT=\d+ )?npm run cluster\b|^curl /;
  const tried: string[] = [];
  for (const command of commands) {
    if (needsService.test(command)) continue;
    assert.match(command, APP_COMMAND, `a docs/ command the test does not know how to try: ${command}`);
    await tryAppCommand(command);
    tried.push(command);
  }
  assert.ok(tried.some((command) => command.includes("--protocol hermes")), "the hermes mode's commands were tried");
});

/** How an app command starts the reference app on one of the runtimes. */
const APP_COMMAND = /\b(npm start|npx deno task start|npx bun run start)\b/;

/**
 * Runs an app command in this repository on a free port (its documented SWITCHBOARD_PORT) until it prints its URL
 * (the page's, or a hermes client's); with `--stdio`, until it answers on stdout.
 */
async function tryAppCommand(command: string): Promise<void> {
  const line = command.replace(/^npm install && /, "");
  const env = { ...process.env, SWITCHBOARD_PORT: "0" };
  if (line.includes("--stdio")) {
    const outcome = await run("sh", ["-c", line], { cwd: repo, env, timeoutMs: 60_000 });
    assert.equal(outcome.code, 0, `${command}: ${outcome.stderr}`);
    assert.match(outcome.stdout, /"jsonrpc":"2.0"/, command);
    return;
  }
  const url = /^(http:\/\/127\.0\.0\.1:\d+\/#|ws:\/\/127\.0\.0\.1:\d+\/api\/ws\?)token=[\w.~-]+$/m;
  const app = await start("sh", ["-c", line], url, { cwd: repo, env });
  await app.stop();
}
