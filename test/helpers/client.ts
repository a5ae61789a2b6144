/**
 * A raw WebSocket test client: sends exactly what a test gives it and keeps every frame it
 * receives, so tests can assert on the wire itself.
 */
import { Inbox } from "./inbox.ts";
import { webSocketClass } from "./runtime.ts";

/**
 * A JSON-RPC frame as a test received it. Its shape is what the tests assert (results, errors
 * and event payloads differ per method), so it stays untyped and the assertions check it.
 */
// deno-lint-ignore no-explicit-any
export type Frame = any;

export class TestClient {
  readonly socket: WebSocket;
  /** Every frame received and not yet taken by `take`/`next`. */
  readonly inbox: Frame[];
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #received = new Inbox<Frame>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.inbox = this.#received.items;
    socket.addEventListener(
      "message",
      (event) => this.#received.push(JSON.parse(String((event as MessageEvent).data))),
    );
    this.closed = new Promise((resolve) => {
      socket.addEventListener("close", (event) => {
        resolve({ code: (event as CloseEvent).code, reason: (event as CloseEvent).reason });
        this.#received.wake();
      });
    });
  }

  /** Connects and waits for the socket to open. */
  static async open(url: string, protocols?: string[]): Promise<TestClient> {
    const WS = await webSocketClass();
    const socket = new WS(url, protocols);
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve());
      socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)));
    });
    return client;
  }

  /** Connects and returns the client with the `gateway.ready` payload it got first. */
  static async ready(url: string): Promise<{ client: TestClient; ready: Frame }> {
    const client = await TestClient.open(url);
    const first = await client.next();
    if (first?.params?.type !== "gateway.ready") {
      throw new Error(`first frame was not gateway.ready: ${JSON.stringify(first)}`);
    }
    return { client, ready: first.params.payload };
  }

  /** Sends a value as JSON, or a string as it is. */
  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Sends a request with a fresh id and resolves with its response. */
  call(method: string, params?: unknown, timeoutMs?: number): Promise<Frame> {
    const id = this.#nextId++;
    this.send(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params });
    return this.take((frame) => frame.id === id && !("method" in frame), timeoutMs);
  }

  /** Takes the first received frame (in order). */
  next(timeoutMs?: number): Promise<Frame> {
    return this.take(() => true, timeoutMs);
  }

  /** Takes the first received frame that matches, waiting for it if needed. */
  take(match: (frame: Frame) => boolean, timeoutMs = 3_000): Promise<Frame> {
    return this.#received.take(
      match,
      timeoutMs,
      () => `no matching frame within ${timeoutMs} ms; inbox: ${JSON.stringify(this.inbox).slice(0, 300)}`,
    );
  }

  /** Takes every received frame that matches, in order, without waiting. */
  takeAll(match: (frame: Frame) => boolean): Frame[] {
    const taken: Frame[] = [];
    for (let at = 0; at < this.inbox.length;) {
      if (match(this.inbox[at])) taken.push(this.inbox.splice(at, 1)[0]);
      else at++;
    }
    return taken;
  }

  /** Resolves with true if no frame arrives within `ms`. */
  async silentFor(ms: number): Promise<boolean> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.inbox.length === 0;
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close(1000);
    return this.closed;
  }
}
