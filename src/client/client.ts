/**
 * The Switchboard client: calls, events and server requests over one channel (a WebSocket,
 * or a child process's stdio), and the part every app gets wrong by hand — reconnect with
 * backoff, resume of every session it follows, de-duplication by seq, and heartbeats.
 *
 * `Client` runs the channel: connecting (with a deadline), reconnecting with backoff, the
 * outbox while disconnected, calls awaiting answers (`PendingRequests`), heartbeats. The
 * sessions it follows are `SessionFollower`'s; server requests are `ServedRequests`'.
 *
 * Order on each (re)connection: wait for `gateway.ready`; resume the followed sessions;
 * then send what was queued while disconnected (idempotent calls being retried, then new
 * calls and notifications in the order they were made).
 */
import { ErrorCode, type ErrorObject, RpcError } from "../jsonrpc/errors.ts";
import { exceedsBytes } from "../jsonrpc/bytes.ts";
import { classifyValid, notification, request } from "../jsonrpc/message.ts";
import { type GiveUpReason, PendingRequests } from "../jsonrpc/peer.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { type ResumeReport, SessionFollower } from "./follower.ts";
import { type RequestHandler, ServedRequests } from "./served.ts";
import type { SessionEvent, Signature, SignaturesOf } from "./types.ts";

export type { RequestHandler, ResumeReport };

/** What the client speaks over. */
export interface Channel {
  /** Sends one frame (a message or a batch, as JSON text). Called only after `gateway.ready` arrived on it. */
  send(text: string): void;
  /** Closes it (the client gives 1000 "client closed", or 4000 with why it gave up); a later `onClose` is ignored. */
  close(code?: number, reason?: string): void;
}

/** How a channel reports to the client. */
export interface ChannelEvents {
  /** A frame arrived: the text of one message or a batch. */
  onMessage(text: string): void;
  /** The channel is gone (closed, failed, or its process exited): the client reconnects with backoff. Only the first report counts. */
  onClose(code: number, reason: string): void;
}

/** Opens a new channel (called again for every reconnect). */
export type Dial = (events: ChannelEvents) => Channel | Promise<Channel>;

/** The connection's state, for user interfaces. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** The `gateway.ready` payload. */
export interface ReadyPayload {
  /** `switchboard/1`. */
  protocol: string;
  /** Random per connection, for logs and support. */
  connection_id: string;
  /** Random per gateway instance: when it changes, the gateway restarted and every seq held is void. */
  epoch: string;
  /** How often the server suggests sending `gateway.ping`; the default of `heartbeatMs`. */
  heartbeat_ms: number;
  /** `max_message_bytes`, `max_batch`, `max_in_flight`. */
  limits: Record<string, number>;
  /** Fields the gateway's `ready` option added. */
  [extra: string]: unknown;
}

/** Thrown to calls in flight when the connection drops (or the client closes). */
export class ConnectionLost extends Error {
  /** `message` defaults to "connection lost"; after `close()` it is "client closed". */
  constructor(message = "connection lost") {
    super(message);
    this.name = "ConnectionLost";
  }
}

/** Options common to every client. */
export interface ClientOptions {
  /** Reconnect timing, or false to stay closed after a drop. */
  reconnect?: BackoffOptions | false;
  /** How often to send `gateway.ping`. Default: the server's `heartbeat_ms`. 0 = never. */
  heartbeatMs?: number;
  /** A ping unanswered this long means the connection is dead: drop it and reconnect. Default: `heartbeatMs`. */
  heartbeatTimeoutMs?: number;
  /**
   * How long a connection attempt may take until `gateway.ready` (the dial, the handshake, the
   * first frame); past it the attempt is dropped and retried after a backoff delay. Default 10 s.
   */
  connectTimeoutMs?: number;
  /**
   * How long a call or batch waits for its answer unless it says otherwise (`timeoutMs`);
   * `Infinity` waits for ever. Default 60 s: a frame the gateway refuses whole, or drops unread
   * in a flood, is never answered, and without a bound its call would wait for ever.
   */
  callTimeoutMs?: number;
}

/** `ClientOptions.connectTimeoutMs` when not given. */
const CONNECT_TIMEOUT_MS = 10_000;
/** `ClientOptions.callTimeoutMs` when not given. */
const CALL_TIMEOUT_MS = 60_000;

/** Options of one call. */
export interface CallOptions {
  /**
   * Reject with a -32800 `RpcError` (`data.reason` "timeout"; `rpc.cancel` is sent) after this
   * long. Default: the client's `callTimeoutMs` (60 s); `Infinity` waits for ever.
   */
  timeoutMs?: number;
  /** Aborting sends `rpc.cancel` and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Safe to run twice: sent again after a reconnect instead of rejecting with `ConnectionLost`. */
  idempotent?: boolean;
}

/** A call sent or queued, awaiting its answer. */
interface OutgoingCall {
  readonly id: number;
  readonly method: string;
  readonly text: string;
  readonly idempotent: boolean;
  /** Given up after this long (ms; `Infinity`: never). */
  readonly timeoutMs: number;
  /** Whether a result naming a session makes the client follow it (not for its own resumes). */
  readonly follows: boolean;
  /** Handed to the current channel (not just queued). */
  sent: boolean;
}

/** A Switchboard client. Create one with `connect()` (or `connectStdio()`), or over a channel of your own with `new Client(dial)`. */
export class Client<G = unknown> {
  /** Resolves with the first `gateway.ready` payload (it is never missed: this promise holds it). */
  readonly ready: Promise<ReadyPayload>;
  #resolveReady!: (payload: ReadyPayload) => void;
  #rejectReady!: (error: unknown) => void;
  #dial: Dial;
  #options: ClientOptions;
  #backoff: Backoff | undefined;
  #state: ConnectionState = "connecting";
  #channel: Channel | undefined;
  /** Bumped per channel, so a late event from a dropped channel is ignored. */
  #generation = 0;
  #open = false;
  #nextId = 1;
  #calls = new PendingRequests<number, OutgoingCall>((id, call, why, reason) => this.#gaveUp(id, call, why, reason));
  /** Frames made while not open, in order (a call's frame goes only if it still awaits its answer). */
  #outbox: ({ call: OutgoingCall } | { text: string })[] = [];
  #listeners = new Map<string, Set<(event: SessionEvent) => void>>();
  #stateListeners = new Set<(state: ConnectionState) => void>();
  #follower = new SessionFollower();
  #served = new ServedRequests((reply) => {
    if (this.#open) this.#channel!.send(reply);
  });
  /** The limits of the latest `gateway.ready`: frames over them are refused here, not sent. */
  #limits: Record<string, number> = {};
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  /**
   * Starts connecting at once: `dial` is called now and again for every reconnect. `connect()`
   * and `connectStdio()` pass their own; pass yours for another kind of channel.
   */
  constructor(dial: Dial, options: ClientOptions = {}) {
    this.#dial = dial;
    this.#options = options;
    this.#backoff = options.reconnect === false ? undefined : new Backoff(options.reconnect);
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A client closed before its first ready rejects `ready`; nobody need listen for that.
    this.ready.catch(() => {});
    void this.#connect();
  }

  /** The state now; `onStateChange` reports each change. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The sessions followed (resumed after a reconnect) and the last seq seen of each. */
  get sessions(): ReadonlyMap<string, number> {
    return this.#follower.sessions;
  }

  /**
   * Calls `method` and resolves with its result; rejects with an `RpcError` for an error
   * answer (or a -32600 one, unsent, if the frame is over the gateway's `max_message_bytes`),
   * a -32800 one when it times out, or `ConnectionLost` if the connection drops first (unless
   * `idempotent`).
   */
  call<K extends keyof SignaturesOf<G> & string>(
    method: K,
    params?: SignaturesOf<G>[K] extends Signature<infer P, unknown> ? P : never,
    options: CallOptions = {},
  ): Promise<SignaturesOf<G>[K] extends Signature<unknown, infer R> ? R : never> {
    return this.#call(method, params, options, true) as Promise<never>;
  }

  #call(method: string, params: unknown, options: CallOptions, follows: boolean): Promise<unknown> {
    if (this.#state === "closed") return Promise.reject(new ConnectionLost("client closed"));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const [call, answer] = this.#pending(method, params, options, follows);
    this.#sendCall(call);
    return answer;
  }

  /** A new call awaiting its answer, given up by its timeout (the client's default unless set) or signal. */
  #pending(method: string, params: unknown, options: CallOptions, follows: boolean): [OutgoingCall, Promise<unknown>] {
    const id = this.#nextId++;
    const call: OutgoingCall = {
      id,
      method,
      text: request(id, method, params),
      idempotent: options.idempotent ?? false,
      timeoutMs: options.timeoutMs ?? this.#options.callTimeoutMs ?? CALL_TIMEOUT_MS,
      follows,
      sent: false,
    };
    return [call, this.#calls.add(id, call, { timeoutMs: call.timeoutMs, signal: options.signal })];
  }

  /** A call given up by its timeout or signal: tell the server to stop, if it has it; the error to reject with. */
  #gaveUp(id: number, call: OutgoingCall, why: GiveUpReason, reason: unknown): unknown {
    if (call.sent && this.#open) this.notify("rpc.cancel", { id });
    if (why === "abort") return reason;
    return new RpcError(ErrorCode.RequestCancelled, `${call.method} timed out after ${call.timeoutMs} ms`, {
      reason: "timeout",
    });
  }

  /**
   * Sends a notification (no answer). Queued while disconnected. Throws a -32600 `RpcError`
   * if it is over the gateway's `max_message_bytes`.
   */
  notify(method: string, params?: unknown): void {
    if (this.#state === "closed") return;
    const text = notification(method, params);
    const refused = this.#refusal(text, 1);
    if (refused) throw refused;
    this.#send(text);
  }

  /**
   * Sends several calls in one frame and resolves with each one's outcome, in order:
   * `{ok: true, result}` or `{ok: false, error}`. Each call is given up as `call`'s are, by
   * `options.timeoutMs` (default: the client's `callTimeoutMs`) or `options.signal`. Rejects,
   * sending nothing, with `ConnectionLost` after `close()`, or a -32600 `RpcError` if the batch is
   * over the gateway's `max_batch` or `max_message_bytes`.
   */
  batch(
    calls: { method: string; params?: unknown }[],
    options: Omit<CallOptions, "idempotent"> = {},
  ): Promise<({ ok: true; result: unknown } | { ok: false; error: unknown })[]> {
    if (this.#state === "closed") return Promise.reject(new ConnectionLost("client closed"));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    if (calls.length === 0) return Promise.resolve([]);
    const texts = calls.map(({ method, params }, i) => request(this.#nextId + i, method, params));
    const frame = `[${texts.join(",")}]`;
    const refused = this.#refusal(frame, calls.length);
    if (refused) return Promise.reject(refused);
    const pending = calls.map(({ method, params }) => this.#pending(method, params, options, true));
    if (this.#open) {
      for (const [call] of pending) call.sent = true;
      this.#channel!.send(frame);
    } else {
      // Queued as separate frames: on reconnect each goes out in order.
      for (const [call] of pending) this.#outbox.push({ call });
    }
    return Promise.all(
      pending.map(([, answer]) =>
        answer.then((result) => ({ ok: true as const, result }), (error: unknown) => ({ ok: false as const, error }))
      ),
    );
  }

  /**
   * Listens for events of `type` (`"*"` for all). Session events arrive once each, in seq
   * order, across reconnects. Returns the unsubscribe function.
   */
  // deno-lint-ignore no-explicit-any -- as `SessionEvent`'s default: untyped listeners read `payload` without casts
  on<P = any>(type: string, listener: (event: SessionEvent<P>) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(listener as (event: SessionEvent) => void);
    return () => set!.delete(listener as (event: SessionEvent) => void);
  }

  /**
   * Answers server → client requests for `method` (e.g. `approval`). A request re-sent after
   * a reconnect reaches the handler once; its answer is sent again from memory. Without a
   * handler the client answers -32601; a handler that throws answers -32603 (or its `RpcError`).
   */
  handle(method: string, handler: RequestHandler): () => void {
    return this.#served.handle(method, handler);
  }

  /** Listens for state changes (connecting / open / reconnecting / closed). */
  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Listens for the outcome of each automatic resume after a reconnect. */
  onResume(listener: (report: ResumeReport) => void): () => void {
    return this.#follower.onResume(listener);
  }

  /** Follows a session: its events are de-duplicated and it is resumed after every reconnect. */
  follow(sessionId: string, afterSeq = 0): void {
    this.#follower.follow(sessionId, afterSeq);
  }

  /** Stops following a session. */
  unfollow(sessionId: string): void {
    this.#follower.unfollow(sessionId);
  }

  /** Closes for good: calls in flight reject with `ConnectionLost`. */
  close(): void {
    if (this.#state === "closed") return;
    this.#setState("closed");
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#stopHeartbeat();
    const channel = this.#channel;
    this.#dropChannel();
    channel?.close(1000, "client closed");
    this.#calls.failAll(new ConnectionLost("client closed"));
    this.#outbox = [];
    this.#rejectReady(new ConnectionLost("client closed"));
  }

  async #connect(): Promise<void> {
    const generation = ++this.#generation;
    // An attempt that has not reached `gateway.ready` in time (a peer that accepts TCP and never
    // answers, a ticket fetch that hangs) is dropped like a lost connection: backoff, retry.
    this.#later(() => {
      if (generation === this.#generation && !this.#open) this.#drop("no gateway.ready in time");
    }, this.#options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
    const events: ChannelEvents = {
      onMessage: (text) => {
        if (generation === this.#generation) this.#receive(text);
      },
      onClose: () => {
        if (generation === this.#generation) this.#lost();
      },
    };
    try {
      const channel = await this.#dial(events);
      if (generation !== this.#generation || this.#state === "closed") return channel.close(1000, "client closed");
      this.#channel = channel;
    } catch {
      if (generation === this.#generation) this.#lost();
    }
  }

  #receive(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return; // not ours to answer: the server never sends invalid JSON
    }
    if (Array.isArray(frame)) { for (const message of frame) this.#receiveOne(message); }
    else this.#receiveOne(frame);
  }

  #receiveOne(value: unknown): void {
    const message = classifyValid(value);
    if (!message) return;
    if (message.kind === "notification") {
      if (message.method === "event") this.#event(message.params as SessionEvent | undefined);
    } else if (message.kind === "request") this.#served.serve(message.id, message.method, message.params);
    else if (typeof message.id === "number") this.#answer(message.id, message.result, message.error);
  }

  #event(event: SessionEvent | undefined): void {
    if (!event || typeof event.type !== "string") return;
    if (event.type === "gateway.ready" && event.session_id === undefined) {
      return this.#ready(event.payload as ReadyPayload);
    }
    const sessionId = event.session_id;
    if (sessionId !== undefined && typeof event.seq === "number") {
      if (!this.#follower.admit(sessionId, event.seq, event.type)) return; // seen before this reconnect
    }
    if (event.type === "request.cancel") this.#served.cancel(event.payload as { id?: unknown } | undefined);
    this.#emit(event.type, event);
  }

  #emit(type: string, event: SessionEvent): void {
    for (const key of [type, "*"]) {
      for (const listener of this.#listeners.get(key) ?? []) {
        try {
          listener(event);
        } catch (error) {
          // A listener's bug must not stop delivery to the others.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    }
  }

  #ready(payload: ReadyPayload): void {
    const epochChanged = this.#follower.ready(payload.epoch);
    this.#limits = payload.limits ?? {};
    this.#open = true;
    this.#resolveReady(payload);
    for (const [sessionId, afterSeq] of this.#follower.sessions) this.#resume(sessionId, afterSeq, epochChanged);
    const outbox = this.#outbox;
    this.#outbox = [];
    for (const item of outbox) {
      if ("text" in item) this.#channel!.send(item.text);
      else if (this.#calls.get(item.call.id)) this.#sendCall(item.call);
    }
    this.#setState("open");
    this.#startHeartbeat(payload.heartbeat_ms);
    const generation = this.#generation;
    if (this.#backoff) {
      this.#later(() => generation === this.#generation && this.#backoff!.reset(), this.#backoff.stableMs);
    }
  }

  #resume(sessionId: string, afterSeq: number, epochChanged: boolean): void {
    const channel = this.#channel;
    // Its answer does not follow the session: `unfollow()` while it is on its way must stick.
    // The session's epoch (known from its last resume) lets the gateway tell seqs of another epoch.
    const epoch = this.#follower.epochOf(sessionId);
    const params = epoch === undefined ? { session_id: sessionId, after_seq: afterSeq } : {
      session_id: sessionId,
      after_seq: afterSeq,
      epoch,
    };
    this.#call("session.resume", params, {}, false).then(
      (result) => {
        const answer = result as { truncated: boolean; replayed: number; epoch?: string };
        const sessionEpochChanged = this.#follower.resumed(sessionId, answer.epoch);
        this.#follower.report({
          session_id: sessionId,
          truncated: answer.truncated,
          replayed: answer.replayed,
          epochChanged: epochChanged || sessionEpochChanged,
        });
      },
      (error: unknown) => {
        if (error instanceof ConnectionLost) return; // the next reconnect resumes it again
        if (error instanceof RpcError && error.code === ErrorCode.RequestCancelled) {
          // Unanswered in time: this connection does not serve; the next one resumes again.
          if (this.#channel === channel) this.#drop("resume unanswered");
          return;
        }
        this.#follower.report({
          session_id: sessionId,
          truncated: true,
          replayed: 0,
          epochChanged,
          error: error as RpcError,
        });
      },
    );
  }

  #answer(id: number, result: unknown, error: ErrorObject | undefined): void {
    const call = this.#calls.get(id);
    if (!call) return;
    // A result naming a session (as `session.create` answers) makes the client follow it.
    const sessionId = (result as { session_id?: unknown } | null)?.session_id;
    if (!error && call.follows && typeof sessionId === "string") this.follow(sessionId);
    this.#calls.answer(id, result, error);
  }

  #sendCall(call: OutgoingCall): void {
    if (!this.#open) {
      this.#outbox.push({ call });
      return;
    }
    const refused = this.#refusal(call.text, 1);
    if (refused) {
      this.#calls.fail(call.id, refused);
      return;
    }
    call.sent = true;
    this.#channel!.send(call.text);
  }

  /**
   * Why the gateway would refuse `frame` (of `count` messages) whole, if it would. Checked
   * before sending because the gateway's answer cannot be matched to the calls: an oversized
   * frame closes the connection (1009), and a batch over `max_batch` is answered with id null.
   */
  #refusal(frame: string, count: number): RpcError | undefined {
    const { max_batch: maxBatch = Infinity, max_message_bytes: maxBytes = Infinity } = this.#limits;
    if (count > maxBatch) return new RpcError(ErrorCode.InvalidRequest, "Batch too large", { max_batch: maxBatch });
    if (exceedsBytes(frame, maxBytes)) {
      return new RpcError(ErrorCode.InvalidRequest, "Message too big", { max_message_bytes: maxBytes });
    }
    return undefined;
  }

  #send(text: string): void {
    if (this.#open) this.#channel!.send(text);
    else this.#outbox.push({ text });
  }

  /** The channel dropped: fail or re-queue calls, and reconnect after a backoff delay. */
  #lost(): void {
    if (this.#state === "closed") return;
    this.#dropChannel();
    this.#stopHeartbeat();
    const retried: { call: OutgoingCall }[] = [];
    for (const [id, call] of [...this.#calls.requests()]) {
      if (!call.sent) continue; // still queued: goes out after the reconnect
      if (call.idempotent) {
        call.sent = false;
        retried.push({ call });
      } else this.#calls.fail(id, new ConnectionLost());
    }
    // First out after the reconnect's resumes, in the order they were made.
    this.#outbox.unshift(...retried);
    if (!this.#backoff) {
      this.close();
      return;
    }
    this.#setState("reconnecting");
    this.#later(() => void this.#connect(), this.#backoff.next());
  }

  /** Gives up on the current connection (attempt) as if it were lost, and closes its channel. */
  #drop(reason: string): void {
    const channel = this.#channel;
    this.#lost();
    channel?.close(4000, reason);
  }

  #dropChannel(): void {
    this.#generation++;
    this.#channel = undefined;
    this.#open = false;
  }

  #startHeartbeat(serverMs: number): void {
    this.#stopHeartbeat();
    const every = this.#options.heartbeatMs ?? serverMs;
    if (!every) return;
    const timeoutMs = this.#options.heartbeatTimeoutMs ?? every;
    const channel = this.#channel;
    this.#heartbeat = setInterval(() => {
      this.#call("gateway.ping", undefined, { timeoutMs }, false).catch((error: unknown) => {
        // Unanswered: the connection is dead even if the socket has not noticed. Drop it.
        const unanswered = error instanceof RpcError && error.code === ErrorCode.RequestCancelled;
        if (unanswered && this.#channel === channel) this.#drop("heartbeat timeout");
      });
    }, every);
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #later(run: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of this.#stateListeners) listener(state);
  }
}
