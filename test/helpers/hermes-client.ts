/**
 * A WebSocket client of hermes-agent's gateway protocol, written from its description and
 * behaving as hermes' desktop does, to test the app's `--protocol hermes` over real sockets:
 * the token in the URL's query, `gateway.ready` as the first frame, a heartbeat when the server
 * asks for one, a seq watermark per session, and after a reconnect one `session.events.since`
 * per session it has seen events of, with that session's live events parked meanwhile, so that
 * each event reaches the handlers exactly once, in order.
 */
import { webSocketClass } from "./runtime.ts";

/** An event as hermes frames carry it: the `params` of a `method: "event"` notification. */
export interface HermesEvent {
  type: string;
  session_id?: string;
  seq?: number;
  // deno-lint-ignore no-explicit-any
  payload?: any;
}

/** A server → client request as the client's handler sees it. */
export interface HermesRequest {
  id: string;
  method: string;
  // deno-lint-ignore no-explicit-any
  params: any;
  /** True when it came back in an `open_requests` list rather than as a frame of its own. */
  replayed: boolean;
}

/** An error answer to a call. */
export class HermesRpcError extends Error {
  readonly code: number;
  readonly data: unknown;
  constructor(error: { code: number; message: string; data?: unknown }) {
    super(error.message);
    this.name = "HermesRpcError";
    this.code = error.code;
    this.data = error.data;
  }
}

/** Options of `HermesClient.connect`. */
export interface HermesClientOptions {
  /** The gateway's URL with its query auth already on it (`ws://…/api/ws?token=…`), or a function giving a fresh one per dial. */
  url: string | (() => string | Promise<string>);
  /** Send `client.capabilities {server_requests: true}` after each `gateway.ready`, and answer server requests. */
  serverRequests?: boolean;
  /** Answers a server request (only with `serverRequests`); its result is sent back. */
  onRequest?: (request: HermesRequest) => unknown;
  /** How often to send `gateway.ping` when the server asks for a heartbeat (hermes: 15 s). */
  heartbeatMs?: number;
  /** Bound on the wait for the upgrade and `gateway.ready` (hermes: 15 s). */
  connectTimeoutMs?: number;
}

type Pending = { resolve: (result: unknown) => void; reject: (error: Error) => void };

/** A hermes-style client: `connect`, `call`, `events`, and `reconnect` after a drop. */
export class HermesClient {
  /** Every event dispatched to the handlers, in dispatch order (replayed and parked ones included, once each). */
  readonly events: HermesEvent[] = [];
  /** Every server request received, once per id (one sent again, or listed in `open_requests`, is not counted again). */
  readonly serverRequests: HermesRequest[] = [];
  /** The last `gateway.ready` payload. */
  // deno-lint-ignore no-explicit-any
  ready: any;
  /** Heartbeats answered so far. */
  heartbeats = 0;
  /** Events dispatched from `session.events.since` results (not parked or live ones). */
  replayed = 0;
  /** Server requests received again: sent again on a new socket, or listed in `open_requests`. */
  resent = 0;
  readonly #options: HermesClientOptions;
  /** The highest seq dispatched, per session. */
  readonly #watermarks = new Map<string, number>();
  /** Live events of sessions whose replay is in flight, held back until it is dispatched. */
  readonly #parked = new Map<string, HermesEvent[]>();
  /** Answers given to server requests, by id, so a re-sent one gets the same answer. */
  readonly #answered = new Map<string, unknown>();
  readonly #pending = new Map<string, Pending>();
  readonly #waiters = new Set<() => void>();
  #epoch: string | undefined;
  #socket: WebSocket | undefined;
  #nextId = 1;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #lastHeard = 0;

  private constructor(options: HermesClientOptions) {
    this.#options = options;
  }

  /** Dials, waits for `gateway.ready`, and announces server requests if asked to. */
  static async connect(options: HermesClientOptions): Promise<HermesClient> {
    const client = new HermesClient(options);
    await client.#dial();
    return client;
  }

  /** True while the socket is open. */
  get open(): boolean {
    return this.#socket?.readyState === 1;
  }

  /** The seq watermark of `sessionId` (0 if none). */
  watermark(sessionId: string): number {
    return this.#watermarks.get(sessionId) ?? 0;
  }

  /** Sends a request (`r1`, `r2`, …) and resolves with its result; rejects with `HermesRpcError`, or after `timeoutMs`. */
  // deno-lint-ignore no-explicit-any
  call(method: string, params: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<any> {
    return this.#request(`r${this.#nextId++}`, method, params, timeoutMs);
  }

  /** Resolves with the first dispatched event (from the start of the client's life) that matches; rejects after `timeoutMs`. */
  async waitFor(match: (event: HermesEvent) => boolean, timeoutMs = 15_000, what = "an event"): Promise<HermesEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
        function done() {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  }

  /** Opens a new socket after the old one dropped and replays what was missed (see the module comment). */
  async reconnect(): Promise<void> {
    this.#socket?.close();
    await this.#dial();
  }

  /** Closes the socket for good. */
  close(): void {
    clearInterval(this.#heartbeat);
    this.#socket?.close();
  }

  async #dial(): Promise<void> {
    const url = typeof this.#options.url === "string" ? this.#options.url : await this.#options.url();
    const WS = await webSocketClass();
    const socket = new WS(url);
    this.#socket = socket;
    const timeoutMs = this.#options.connectTimeoutMs ?? 15_000;
    this.ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no gateway.ready within ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.close();
        reject(error);
      };
      let first = true;
      socket.addEventListener("message", (event) => {
        this.#lastHeard = Date.now();
        const frame = parse((event as MessageEvent).data);
        if (!first) return this.#receive(frame);
        first = false;
        // Hermes clients fail a connection whose first frame is anything else.
        if (frame?.method !== "event" || frame.params?.type !== "gateway.ready") {
          return fail(new Error(`the first frame was not gateway.ready: ${JSON.stringify(frame)}`));
        }
        clearTimeout(timer);
        resolve(frame.params.payload);
      });
      socket.addEventListener("close", (event) => {
        fail(new Error(`closed before gateway.ready (${(event as CloseEvent).code})`));
        this.#closed(socket);
      });
      socket.addEventListener("error", () => fail(new Error(`cannot connect to ${url.replace(/\?.*/, "")}`)));
    });
    this.#startHeartbeat();
    // A new epoch: the server restarted, every seq held is void.
    if (this.#epoch !== undefined && this.ready.replay_epoch !== this.#epoch) this.#watermarks.clear();
    this.#epoch = this.ready.replay_epoch;
    if (this.#options.serverRequests) await this.call("client.capabilities", { server_requests: true });
    await Promise.all([...this.#watermarks.keys()].map((sessionId) => this.#replay(sessionId)));
  }

  /** `session.events.since` for one session, its live events parked meanwhile. */
  async #replay(sessionId: string): Promise<void> {
    this.#parked.set(sessionId, []);
    try {
      const result = await this.call("session.events.since", {
        session_id: sessionId,
        last_seen: this.watermark(sessionId),
        replay_epoch: this.#epoch,
      }, 10_000);
      if (result.epoch !== this.#epoch) {
        // Numbered in another epoch: nothing in it can be matched against the watermark.
        this.#watermarks.delete(sessionId);
      } else {
        // Bare event objects only: an element shaped like a whole frame is not an event.
        for (const event of result.events as HermesEvent[]) {
          if (!("jsonrpc" in event) && this.#dispatch(event)) this.replayed++;
        }
      }
      for (const request of result.open_requests ?? []) this.#serverRequest({ ...request, replayed: true });
    } catch {
      // Hermes clients ignore a failed replay; the session's live events still flow.
    } finally {
      const parked = this.#parked.get(sessionId) ?? [];
      this.#parked.delete(sessionId);
      for (const event of parked) this.#dispatch(event);
    }
  }

  #startHeartbeat(): void {
    clearInterval(this.#heartbeat);
    // Exactly `true`, as hermes' clients check it.
    if (this.ready.heartbeat !== true) return;
    let n = 0;
    const every = this.#options.heartbeatMs ?? 15_000;
    this.#heartbeat = setInterval(() => {
      // Any inbound frame counts; silence for three beats (hermes: 45 s) means a dead link.
      if (Date.now() - this.#lastHeard > 3 * every) return this.#socket?.close();
      this.#request(`heartbeat-${++n}`, "gateway.ping", {}, 45_000).then(() => this.heartbeats++, () => {});
    }, every);
  }

  // deno-lint-ignore no-explicit-any
  #request(id: string, method: string, params: unknown, timeoutMs: number): Promise<any> {
    const socket = this.#socket;
    if (socket?.readyState !== 1) return Promise.reject(new Error(`${method}: not connected`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (result) => (clearTimeout(timer), resolve(result)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  // deno-lint-ignore no-explicit-any
  #receive(frame: any): void {
    if (frame === undefined || typeof frame !== "object") return;
    if (frame.method === "event") {
      const event = frame.params as HermesEvent | undefined;
      if (typeof event?.type !== "string") return;
      const parked = event.session_id === undefined ? undefined : this.#parked.get(event.session_id);
      if (parked && event.seq !== undefined) parked.push(event);
      else this.#dispatch(event);
      return;
    }
    if (typeof frame.method === "string" && frame.id !== undefined) {
      this.#serverRequest({ id: frame.id, method: frame.method, params: frame.params, replayed: false });
      return;
    }
    const pending = this.#pending.get(frame.id);
    if (!pending) return;
    this.#pending.delete(frame.id);
    if (frame.error) pending.reject(new HermesRpcError(frame.error));
    else pending.resolve(frame.result);
  }

  /** Hands an event to the handlers (here: `events`), unless its seq is at or below its session's watermark; whether it did. */
  #dispatch(event: HermesEvent): boolean {
    if (event.session_id !== undefined && event.seq !== undefined) {
      if (event.seq <= this.watermark(event.session_id)) return false;
      this.#watermarks.set(event.session_id, event.seq);
    }
    this.events.push(event);
    for (const wake of [...this.#waiters]) wake();
    this.#waiters.clear();
    return true;
  }

  /** Answers a server request with `onRequest`; one answered before gets the same answer again, one being answered nothing. */
  #serverRequest(request: HermesRequest): void {
    const reply = (body: Record<string, unknown>) =>
      this.#socket?.readyState === 1 && this.#socket.send(JSON.stringify({ jsonrpc: "2.0", id: request.id, ...body }));
    if (this.#answered.has(request.id)) {
      this.resent++;
      const answer = this.#answered.get(request.id);
      if (answer !== undefined) reply({ result: answer });
      return;
    }
    this.#answered.set(request.id, undefined);
    this.serverRequests.push(request);
    const handler = this.#options.onRequest;
    if (!this.#options.serverRequests || !handler) {
      reply({ error: { code: -32601, message: "no handler" } });
      return;
    }
    Promise.resolve(handler(request)).then(
      (result) => {
        this.#answered.set(request.id, result);
        reply({ result });
      },
      (error) => {
        this.#answered.delete(request.id);
        reply({ error: { code: -32603, message: String(error) } });
      },
    );
  }

  #closed(socket: WebSocket): void {
    if (socket !== this.#socket) return;
    clearInterval(this.#heartbeat);
    for (const pending of this.#pending.values()) pending.reject(new Error("connection closed"));
    this.#pending.clear();
  }
}

// deno-lint-ignore no-explicit-any
function parse(data: unknown): any {
  try {
    return JSON.parse(String(data));
  } catch {
    return undefined;
  }
}
