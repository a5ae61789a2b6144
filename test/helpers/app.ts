/**
 * The reference agent app (`src/app/main.ts`) as a child process on the runtime running the
 * tests, exactly as `npm start` runs it (serving, or run to its end), and a fake
 * OpenAI-compatible endpoint on loopback.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { runtimeCommand } from "./runtime.ts";

/** The app's entry, relative to the repository root. */
export const APP = "src/app/main.ts";
const root = fileURLToPath(new URL("../..", import.meta.url));

/** A running app: the URL it printed, split into its parts. */
export interface RunningApp {
  /** The printed URL, e.g. `http://127.0.0.1:PORT/#token=…` (with `--protocol hermes`: `ws://127.0.0.1:PORT/api/ws?token=…`). */
  readonly url: string;
  /** `http://127.0.0.1:PORT/` */
  readonly base: string;
  readonly token: string;
  readonly wsUrl: string;
  /** Everything the app wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` by PID (SIGKILL: a crash, nothing cleaned up); resolves once it has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL if it lingers; resolves when it has exited. */
  close(): Promise<void>;
}

/** Starts the app on a free port with `args` and `env` added; resolves once it printed its URL (or rejects within `timeoutMs`). */
export async function startApp(
  args: string[] = [],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<RunningApp> {
  const [command, commandArgs] = runtimeCommand(APP, ["--port", "0", ...args]);
  const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(
      () => fail(new Error(`the app printed no URL within ${timeoutMs} ms; stderr:\n${stderr}`)),
      timeoutMs,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(error);
    };
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      // The page's URL, or with `--protocol hermes` the one a hermes client dials.
      const line = stdout.match(/^(http:\/\/\S+#token=\S+|ws:\/\/\S+\?token=\S+)$/m)?.[1];
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once(
      "exit",
      (code) => fail(new Error(`the app exited (${code}) before printing its URL; stderr:\n${stderr}`)),
    );
  });
  const parsed = new URL(url);
  const base = `${parsed.origin.replace(/^ws/, "http")}/`;
  return {
    url,
    base,
    token: (parsed.protocol === "ws:" ? parsed.searchParams : new URLSearchParams(parsed.hash.slice(1))).get("token")!,
    wsUrl: `${base.replace(/^http/, "ws")}api/ws`,
    stderr: () => stderr,
    kill: (signal) => {
      process.kill(child.pid!, signal);
      return exited;
    },
    close: () => stop(child, exited),
  };
}

/** How a run of the app ended, and all it wrote. */
export interface AppRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** How `runApp` feeds the app: `feed` writes its input (and may wait for stdout lines first); `env` adds to the environment. */
export interface RunOptions {
  feed?: (write: (text: string) => void, lines: () => string[]) => Promise<void>;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Runs the app with `args` in the repository root, writes its input with `feed`, then ends its
 * input; resolves with its exit and full output, killing it after `timeoutMs`.
 */
export function runApp(
  args: string[],
  { feed = async () => {}, env = {}, timeoutMs = 20_000 }: RunOptions = {},
): Promise<AppRun> {
  const [command, commandArgs] = runtimeCommand(APP, args);
  const child = spawn(command, commandArgs, {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exited = new Promise<AppRun>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  }).finally(() => clearTimeout(timer));
  const fed = feed((text) => child.stdin.write(text), () => stdout.split("\n").slice(0, -1)).then(
    () => child.stdin.end(),
    (error: unknown) => {
      child.kill("SIGKILL");
      throw error;
    },
  );
  return Promise.all([exited, fed]).then(([result]) => result);
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A request to the fake endpoint: its JSON body as `openAIAgent` sends it, and its headers. */
export interface FakeRequest {
  body: {
    model: string;
    stream: boolean;
    /** The conversation, then this turn's assistant messages with `tool_calls` and `role: "tool"` results. */
    messages: Record<string, unknown>[];
    tools: { type: string; function: { name: string } }[];
  };
  headers: IncomingMessage["headers"];
}

/** What the fake endpoint does with one request. */
export type FakeReply = (request: FakeRequest, response: ServerResponse) => void | Promise<void>;

/** A fake OpenAI-compatible server on 127.0.0.1: each request to `/v1/chat/completions` is answered by `reply`. */
export async function fakeOpenAI(reply: FakeReply) {
  const requests: FakeRequest[] = [];
  /** Requests whose connection closed before the reply ended (the client aborted). */
  let aborted = 0;
  const server = createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    const request: FakeRequest = { body: JSON.parse(text), headers: req.headers };
    requests.push(request);
    res.on("close", () => {
      if (!res.writableEnded) aborted++;
    });
    await reply(request, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    get aborted() {
      return aborted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes an SSE response: each chunk as a `data:` event with a chat-completion delta, then a stop and `[DONE]`. */
export function streamChunks(words: string[]): FakeReply {
  return (_, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const word of words) {
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: word } }] })}\n\n`);
    }
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`);
    res.end("data: [DONE]\n\n");
  };
}

/** A tool call for `streamToolCalls`: `args` is the arguments' text, streamed in two pieces. */
export interface FakeToolCall {
  id: string;
  name: string;
  args: string;
}

/**
 * Writes an SSE response that calls tools: `text` first (if any), then the calls as
 * `delta.tool_calls` chunks by index — each call's id and name, then the first half of each
 * one's arguments, then the second halves (interleaved, so only the index tells them apart) —
 * then `finish_reason: "tool_calls"` and `[DONE]`.
 */
export function streamToolCalls(calls: FakeToolCall[], text = ""): FakeReply {
  return (_, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    const send = (delta: unknown, finish_reason: string | null = null) =>
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason }] })}\n\n`);
    if (text) send({ role: "assistant", content: text });
    calls.forEach(({ id, name }, index) =>
      send({ tool_calls: [{ index, id, type: "function", function: { name, arguments: "" } }] })
    );
    for (const half of [0, 1]) {
      calls.forEach(({ args }, index) => {
        const middle = Math.ceil(args.length / 2);
        send({ tool_calls: [{ index, function: { arguments: half ? args.slice(middle) : args.slice(0, middle) } }] });
      });
    }
    send({}, "tool_calls");
    res.end("data: [DONE]\n\n");
  };
}
