/**
 * One client connection: decodes its frames, schedules its calls and answers them.
 *
 * Scheduling (docs/protocol.md, Scheduling and order): `inline` methods run one at a time in arrival order; `concurrent`
 * methods start at once beside them; `immediate` built-ins (`gateway.ping`, `rpc.cancel`)
 * are answered before anything queued. A synchronous inline handler with an idle queue is
 * answered in the same turn, with no promise and no bookkeeping: the common case stays cheap.
 */
import { decode, type Message } from "../jsonrpc/codec.ts";
import { resumeSession } from "./builtins.ts";
import { ErrorCode, type ErrorObject, errorObject, RpcError } from "../jsonrpc/errors.ts";
import {
  errorResponse,
  eventFrame,
  type Id,
  type Notification,
  type Request,
  resultResponse,
} from "../jsonrpc/message.ts";
import { answerError, INTERNAL_ERROR, methodNotFound } from "../jsonrpc/peer.ts";
import { idBeforeNesting, nestedDeeperThan, textDepth } from "../jsonrpc/depth.ts";
import { exceedsBytes } from "../jsonrpc/bytes.ts";
import {
  type BacklogLimits,
  SocketTransport,
  type TransportEvents,
  type TransportFailure,
} from "../transport/socket-transport.ts";
import { CloseCode, type FrameSink, type FrameSocket } from "../transport/transport.ts";
import type { SessionRegistry } from "../sessions/registry.ts";
import type { CreateSessionOptions, Session, SessionViewer } from "../sessions/session.ts";
import type { ConnectionHandle, HandlerContext, SessionsHandle } from "./context.ts";
import { type Logger, preview } from "./logger.ts";
import type { MethodEntry } from "./method.ts";
import type { RequestTrace, Telemetry } from "./telemetry.ts";

/** What a connection needs from its gateway. */
export interface ConnectionHost {
  readonly methods: ReadonlyMap<string, MethodEntry>;
  /** Error codes renumbered on the wire (`createGateway({ errorCodes })`). */
  readonly errorCodes: ReadonlyMap<number, number> | undefined;
  /** What each connection's `capabilities` start as. */
  readonly capabilities: Readonly<Record<string, unknown>>;
  readonly limits: {
    readonly maxMessageBytes: number;
    readonly maxBatch: number;
    readonly maxInFlight: number;
    readonly maxParamsDepth: number;
    readonly messagesPerSecond: number;
  };
  /** Every connection's backlog limits (one object for all of them). */
  readonly backlog: BacklogLimits;
  readonly log: Logger;
  readonly sessions: SessionRegistry;
  /** Metrics and traces; undefined (and nothing recorded) without an OpenTelemetry SDK. */
  readonly telemetry: Telemetry | undefined;
  /** Called once when the connection has torn down. */
  release(connection: Connection): void;
  /** An asynchronous handler started; the gateway's `close()` waits for it (even past its connection's teardown). */
  handlerStarted(): void;
  /** An asynchronous handler finished. */
  handlerFinished(): void;
}

/** Counters reported in the teardown log line. */
export interface ConnectionStats {
  messages: number;
  parse_errors: number;
  dispatch_crashes: number;
  /** Messages refused by the rate limit. */
  rate_limited: number;
}

/** A reply destination that collects a batch's responses into one frame. */
class Batch {
  readonly replies: string[] = [];
  /** Responses still to come, plus one while the batch is being read. */
  open = 1;
}

/** One request or notification in flight: also the handler's `ctx`. */
class Call implements HandlerContext {
  readonly id: Id | undefined;
  readonly method: string;
  readonly params: unknown;
  readonly entry: MethodEntry;
  readonly batch: Batch | undefined;
  readonly connection: Connection;
  /** Counted against `maxInFlight` (queued, or running past its first turn). */
  counted = false;
  done = false;
  /** The session this call is bound to (see `HandlerContext.session`). */
  bound: Session | undefined;
  /** Its span and duration, with telemetry. */
  trace: RequestTrace | undefined;
  #controller: AbortController | undefined;
  #abortReason: unknown;
  #sessions: SessionsHandle | undefined;

  constructor(connection: Connection, entry: MethodEntry, message: Request | Notification, batch: Batch | undefined) {
    this.connection = connection;
    this.entry = entry;
    this.method = message.method;
    this.params = message.params;
    this.id = message.kind === "request" ? message.id : undefined;
    this.batch = batch;
  }

  get log(): Logger {
    return this.connection.log;
  }

  // Most handlers never look at their signal, so the controller is made on first use.
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  get sessions(): SessionsHandle {
    return (this.#sessions ??= {
      create: (options?: CreateSessionOptions) =>
        this.#bind(this.connection.sessionRegistry.create(this.connection, options)),
      list: () => this.connection.sessionRegistry.list(this.connection.principal),
      open: async (id: string) => this.#bind(await this.connection.sessionRegistry.open(id, this.connection.principal)),
      all: () => this.connection.sessionRegistry.all(this.connection.principal),
      interrupt: async (id: string) =>
        (await this.connection.sessionRegistry.open(id, this.connection.principal)).interrupt(),
      resume: async (id: string, options: { afterSeq?: number; epoch?: string } = {}) =>
        await resumeSession(this.connection, id, options.afterSeq, options.epoch),
      since: async (id: string, afterSeq: number, epoch?: string) =>
        await this.connection.sessionRegistry.since(this.connection.principal, id, afterSeq, epoch),
      answer: (id: string, requestId: string, result: unknown) =>
        this.connection.sessionRegistry.answer(this.connection.principal, id, requestId, result),
    });
  }

  session(id: string): Session {
    return this.#bind(this.connection.sessionRegistry.use(id, this.connection.principal));
  }

  #bind(session: Session): Session {
    if (!this.bound && !this.done) {
      this.bound = session;
      session.track(this);
    }
    return session;
  }

  abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}

const BINARY = "Binary frames are not supported: send JSON-RPC as text frames";
/** Frames longer than this are scanned for depth before parsing; shorter ones parse in microseconds however they nest. */
const SCAN_BEFORE_PARSE_CHARS = 4_096;
/** Refusals of a flood answered -32003; later refused frames are dropped unparsed until the flood ends or is closed. */
const ANSWERED_REFUSALS = 100;
/** Past this depth a long frame is refused whole, unparsed. */
const scanLimit = (maxParamsDepth: number) => Math.max(256, 8 * maxParamsDepth);
const CANCELLED: ErrorObject = { code: ErrorCode.RequestCancelled, message: "Request cancelled" };

/** A client connection over one socket. Create it with `gateway.open()`. */
export class Connection implements ConnectionHandle, SessionViewer, TransportEvents, FrameSink {
  readonly id: string;
  readonly peer: string;
  readonly principal: string;
  readonly transport: SocketTransport;
  readonly stats: ConnectionStats = { messages: 0, parse_errors: 0, dispatch_crashes: 0, rate_limited: 0 };
  #host: ConnectionHost;
  /**
   * Calls counted in flight, and those with an id by id (for `rpc.cancel` and duplicates).
   * These and `sessions` are made on first use: most connections never need them, and empty
   * ones cost ~0.4 KB per idle connection.
   */
  #open: Set<Call> | undefined;
  #byId: Map<Id, Call> | undefined;
  #sessions: Set<Session> | undefined;
  #capabilities: Record<string, unknown> | undefined;
  #inline: Call[] = [];
  #inlineBusy: Call | undefined;
  /** Resumes reading a shared store: calls that arrive meanwhile wait in `#held`, in order. */
  #holds = 0;
  #held: Call[] = [];
  #closeReason: string | undefined;
  /** The close code sent or received first: what `switchboard.connections.closed` counts. */
  #closeCode: number | undefined;
  #closed = false;
  /** Token bucket of `messagesPerSecond`, refilled continuously. */
  #tokens: number;
  #refilledAt = performance.now();
  /** Messages refused since the bucket was last full; a flood that goes on past another second's worth is closed 1008. */
  #refused = 0;
  /** Whether the current frame is long enough to hold params nested past the depth cap. */
  #mayBeDeep = false;
  /** Who waits in `idle()`. */
  #onIdle: (() => void) | undefined;

  /** A connection over `socket`, which delivers its frames here from now on. */
  constructor(host: ConnectionHost, socket: FrameSocket, peer: string, principal: string) {
    this.#host = host;
    this.transport = new SocketTransport(socket, host.backlog, this);
    this.peer = peer;
    this.principal = principal;
    this.id = crypto.randomUUID();
    this.#tokens = host.limits.messagesPerSecond;
    socket.attach(this);
  }

  get log(): Logger {
    return this.#host.log;
  }

  get sessionRegistry(): SessionRegistry {
    return this.#host.sessions;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sessions this connection is attached to. */
  get sessions(): Set<Session> {
    return (this.#sessions ??= new Set());
  }

  // Copied from the gateway's on first use: most connections never look at them.
  get capabilities(): Record<string, unknown> {
    return (this.#capabilities ??= { ...this.#host.capabilities });
  }

  get takesRequests(): boolean {
    return (this.#capabilities ?? this.#host.capabilities).serverRequests !== false;
  }

  /** Requests and notifications queued or running past their first turn. */
  get inFlight(): number {
    return this.#open?.size ?? 0;
  }

  /** Resolves once nothing is queued or running (`inFlight` is 0), or the connection has closed. */
  idle(): Promise<void> {
    if (this.inFlight === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => (this.#onIdle = resolve));
  }

  emit(type: string, payload?: unknown): boolean {
    const text = eventFrame(type, payload);
    const written = this.transport.writeText(text);
    if (written) this.#host.telemetry?.wrote("event", text);
    return written;
  }

  /** From a session: one of its events or requests. */
  writeText(text: string): boolean {
    const written = this.transport.writeText(text);
    if (written) this.#host.telemetry?.wrote("session", text);
    return written;
  }

  /** From the socket: a text frame. */
  text(frame: string): void {
    try {
      this.#receive(frame);
    } catch {
      // Not expected (bad input is answered, never thrown), but never leave a socket open that
      // the gateway no longer serves.
      this.close(CloseCode.Internal, "receive_failed");
      this.teardown("receive_failed");
    }
  }

  /** From the socket: a binary frame, answered -32600 (the connection goes on). */
  binary(): void {
    this.#reject(BINARY);
  }

  /** From the socket: it closed (or failed). */
  ended(code: number): void {
    this.#closeCode ??= code;
    this.teardown(`peer_closed_${code}`);
  }

  /** From the socket (stdio): a frame over `maxMessageBytes` was skipped unread; answered -32600. */
  oversized(): void {
    this.#reject("Message too big", { max_bytes: this.#host.limits.maxMessageBytes });
  }

  /** From the socket: send what is queued now, before a close the runtime makes on its own. */
  flushQueued(): void {
    this.transport.flushQueued();
  }

  #receive(text: string): void {
    if (this.#closed) return;
    if (exceedsBytes(text, this.#host.limits.maxMessageBytes)) {
      this.close(CloseCode.TooBig, "message_too_big");
      return;
    }
    // Deep in a flood, a frame is refused before it is parsed: answering each one -32003 cost
    // as much as serving it, and the flooder has been told often enough.
    if (this.#refused >= ANSWERED_REFUSALS && !this.#hasToken()) {
      this.stats.messages++;
      this.#refuse(undefined, undefined);
      return;
    }
    const maxDepth = this.#host.limits.maxParamsDepth;
    if (text.length > SCAN_BEFORE_PARSE_CHARS) {
      // A long frame is scanned before it is parsed: parsing a 100,000-deep array costs
      // milliseconds, scanning it stops after a few hundred characters. The bound is loose (a
      // few hundred levels parse in microseconds), so a request nested past the cap inside a
      // valid batch still gets its own -32602 below, with its id.
      const depth = textDepth(text, scanLimit(maxDepth));
      if (depth > scanLimit(maxDepth)) {
        this.#reject("Nested too deep", { max_depth: maxDepth }, idBeforeNesting(text));
        return;
      }
      // Params sit inside the request object, so a frame no deeper than the cap has no params past it.
      this.#mayBeDeep = depth > maxDepth;
    } else {
      // Depth d needs at least 2d characters, so the common small message skips the walk.
      this.#mayBeDeep = text.length > 2 * maxDepth;
    }
    const frame = decode(text);
    if (frame === undefined) {
      // A blank frame: nothing to answer, but a message all the same (a flood of them is one).
      this.stats.messages++;
      if (!this.#takeToken()) this.#refuse(undefined, undefined);
      return;
    }
    if (!Array.isArray(frame)) {
      this.#receiveOne(frame, undefined);
      return;
    }
    if (frame.length > this.#host.limits.maxBatch) {
      this.#reject("Batch too large", { max_batch: this.#host.limits.maxBatch });
      return;
    }
    const batch = new Batch();
    for (const message of frame) this.#receiveOne(message, batch);
    this.#release(batch);
  }

  /**
   * Answers -32600 for a frame refused whole: binary, a batch over `maxBatch`, one nested too
   * deep to parse, a line over the size limit on stdio. The id is null unless the frame's own
   * could be read without parsing it.
   */
  #reject(message: string, data?: unknown, id: Id = null): void {
    // As one invalid message, so that a flood of such frames is rate-limited like any other.
    this.#receiveOne(
      { kind: "invalid", id, error: errorObject(ErrorCode.InvalidRequest, message, data) },
      undefined,
    );
  }

  /** Cancels the in-flight request `id`; it answers -32800. Returns false if there is none. */
  cancel(id: Id): boolean {
    const call = this.#byId?.get(id);
    if (!call || call.done) return false;
    this.#finish(call);
    call.abort(new RpcError(CANCELLED.code, CANCELLED.message));
    const queued = this.#inline.indexOf(call);
    if (queued !== -1) this.#inline.splice(queued, 1);
    const held = this.#held.indexOf(call);
    if (held !== -1) this.#held.splice(held, 1);
    this.#write(call.batch, call.id!, CANCELLED);
    if (call.batch) this.#release(call.batch);
    // A cancelled inline handler no longer holds the queue, even if it ignores its signal.
    if (this.#inlineBusy === call) {
      this.#inlineBusy = undefined;
      queueMicrotask(() => this.#drainInline());
    }
    return true;
  }

  /** Holds the calls that arrive from now until `until` settles, then runs them in arrival order. */
  holdCalls(until: Promise<unknown>): void {
    this.#holds++;
    const resume = () => {
      if (--this.#holds > 0) return;
      const held = this.#held;
      this.#held = [];
      for (const call of held) if (!call.done && !this.#closed) this.#schedule(call);
    };
    until.then(resume, resume);
  }

  /** From the transport: the backlog passed `backlogWarnBytes` (once per episode). */
  onSlow(backlogBytes: number): void {
    this.#host.log.warn("slow consumer", { peer: this.peer, connection_id: this.id, backlog_bytes: backlogBytes });
  }

  /** From the transport: it closed itself. */
  onFailure(reason: TransportFailure): void {
    this.#closeCode ??= reason === "slow_consumer" ? CloseCode.TryAgainLater : CloseCode.Internal;
    this.teardown(reason);
  }

  /** Flushes what is queued and closes the socket; teardown follows when the socket reports it. */
  close(code: number = CloseCode.Normal, reason = "closed"): void {
    this.#closeReason ??= reason;
    this.#closeCode ??= code;
    this.transport.close(code, reason);
  }

  /**
   * Tears the connection down (once): stops writing, aborts in-flight handlers, releases it
   * from the gateway and logs one line. Call it when the socket has closed or failed.
   */
  teardown(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.transport.detach();
    const aborted = new Error("connection closed");
    for (const call of this.#open ?? []) {
      call.done = true;
      // A call bound to a live session goes on (its answer is dropped); the session aborts it if it ends.
      if (!call.bound || call.bound.closed) call.abort(aborted);
    }
    this.#open = undefined;
    this.#byId = undefined;
    this.#inline = [];
    this.#wakeIdle();
    const { reaped, detached } = this.#host.sessions.release(this);
    this.#host.release(this);
    // 1006: the socket went without a close code (a dropped peer).
    this.#host.telemetry?.closed.add(this.#closeCode ?? 1006);
    this.#host.log.info("connection closed", {
      peer: this.peer,
      connection_id: this.id,
      reason: this.#closeReason ?? reason,
      ...this.stats,
      send_failures: this.transport.stats.sendFailures,
      reaped_sessions: reaped,
      detached_sessions: detached,
    });
  }

  #receiveOne(message: Message, batch: Batch | undefined): void {
    this.stats.messages++;
    this.#host.telemetry?.received.add(message.kind);
    if (!this.#takeToken()) return this.#refuse(message, batch);
    switch (message.kind) {
      case "request":
      case "notification":
        return this.#dispatch(message, batch);
      case "response":
        // A reply to a session's server → client request; one to an unknown id is dropped.
        if (!this.#host.sessions.reply(this, message.id, message.result, message.error)) {
          this.#host.log.debug("response dropped", { peer: this.peer, id: preview(message.id) });
        }
        return;
      case "invalid":
        this.stats.parse_errors++;
        return this.#write(batch, message.id, message.error);
    }
  }

  /**
   * Takes one message's token from the bucket; false when it is empty. The clock is read only
   * when the bucket looks empty (reading it per message cost a fifth of the gateway's own work
   * per request on Bun), so a burst after a half-used, long-quiet bucket may reach twice the
   * rate before refusals start; a sustained flood is held to the rate.
   */
  #takeToken(): boolean {
    if (!this.#hasToken()) return false;
    this.#tokens--;
    return true;
  }

  #hasToken(): boolean {
    if (this.#tokens < 1) this.#refill();
    return this.#tokens >= 1;
  }

  #refill(): void {
    const rate = this.#host.limits.messagesPerSecond;
    const now = performance.now();
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#refilledAt) * rate) / 1000);
    this.#refilledAt = now;
    // Only a full bucket (a second within the rate) ends a flood: a token comes back every
    // 1/rate s, so resetting whenever one is taken would never let a steady flood reach the close.
    if (this.#tokens === rate) this.#refused = 0;
  }

  /**
   * Answers a rate-limited message -32003 (a notification or reply is dropped, and so is a frame
   * refused unparsed); a flood that goes on is closed 1008.
   */
  #refuse(message: Message | undefined, batch: Batch | undefined): void {
    this.stats.rate_limited++;
    const telemetry = this.#host.telemetry;
    if (telemetry) telemetry.rateLimited++;
    const rate = this.#host.limits.messagesPerSecond;
    if (++this.#refused > rate) {
      this.close(CloseCode.Policy, "rate_limited");
      return;
    }
    if (message?.kind === "request") {
      this.#write(
        batch,
        message.id,
        errorObject(ErrorCode.Overloaded, "Overloaded: too many messages per second", { messages_per_second: rate }),
      );
    }
  }

  #dispatch(message: Request | Notification, batch: Batch | undefined): void {
    const entry = this.#host.methods.get(message.method);
    const id = message.kind === "request" ? message.id : undefined;
    if (this.#mayBeDeep && nestedDeeperThan(message.params, this.#host.limits.maxParamsDepth)) {
      if (id !== undefined) {
        this.#write(
          batch,
          id,
          errorObject(ErrorCode.InvalidParams, "Invalid params: nested too deeply", {
            max_depth: this.#host.limits.maxParamsDepth,
          }),
        );
      }
      return;
    }
    if (!entry) {
      if (id !== undefined) {
        this.#write(batch, id, methodNotFound(message.method));
      }
      return;
    }
    if (entry.mode !== "immediate") {
      if (this.inFlight >= this.#host.limits.maxInFlight) {
        if (id !== undefined) {
          this.#write(
            batch,
            id,
            errorObject(ErrorCode.Overloaded, "Overloaded: too many requests in flight", {
              max_in_flight: this.#host.limits.maxInFlight,
            }),
          );
        } else {this.#host.log.warn("notification dropped: too many in flight", {
            peer: this.peer,
            method: preview(message.method),
          });}
        return;
      }
      if (id !== undefined && id !== null && this.#byId?.get(id)?.done === false) {
        this.#write(
          batch,
          id,
          errorObject(ErrorCode.InvalidRequest, "Duplicate id: a request with this id is in flight"),
        );
        return;
      }
    }
    const call = new Call(this, entry, message, batch);
    if (batch && id !== undefined) batch.open++;
    if (this.#holds > 0 && entry.mode !== "immediate") {
      this.#count(call);
      this.#held.push(call);
      return;
    }
    this.#schedule(call);
  }

  #schedule(call: Call): void {
    if (call.entry.mode === "inline" && (this.#inlineBusy || this.#inline.length > 0)) {
      if (!call.counted) this.#count(call);
      this.#inline.push(call);
      return;
    }
    this.#run(call);
  }

  #run(call: Call): void {
    const telemetry = this.#host.telemetry;
    if (telemetry) call.trace = telemetry.requestStarted(call.method, call.id);
    let out: unknown;
    try {
      out = call.trace
        ? call.trace.run(() => call.entry.invoke(call.params, call))
        : call.entry.invoke(call.params, call);
    } catch (error) {
      this.#settle(call, undefined, error);
      return;
    }
    if (!isThenable(out)) {
      this.#settle(call, out, undefined);
      return;
    }
    if (!call.counted) this.#count(call);
    if (call.entry.mode === "inline") this.#inlineBusy = call;
    this.#host.handlerStarted();
    out.then(
      (value) => this.#settleAsync(call, value, undefined),
      (error: unknown) => this.#settleAsync(call, undefined, error ?? new Error("rejected")),
    );
  }

  #settleAsync(call: Call, value: unknown, error: unknown): void {
    this.#host.handlerFinished();
    this.#settle(call, value, error);
    if (this.#inlineBusy === call) {
      this.#inlineBusy = undefined;
      this.#drainInline();
    }
  }

  #drainInline(): void {
    while (!this.#inlineBusy && this.#inline.length > 0 && !this.#closed) {
      this.#run(this.#inline.shift()!);
    }
  }

  #count(call: Call): void {
    call.counted = true;
    (this.#open ??= new Set()).add(call);
    if (call.id !== undefined && call.id !== null) (this.#byId ??= new Map()).set(call.id, call);
  }

  #finish(call: Call): void {
    call.done = true;
    if (!call.counted) return;
    this.#open?.delete(call);
    if (call.id !== undefined && call.id !== null) this.#byId?.delete(call.id);
    if (this.inFlight === 0) this.#wakeIdle();
  }

  #wakeIdle(): void {
    const wake = this.#onIdle;
    this.#onIdle = undefined;
    wake?.();
  }

  #settle(call: Call, value: unknown, error: unknown): void {
    call.trace?.end(error);
    const session = call.bound;
    session?.untrack(call);
    if (call.done) return; // cancelled, or the connection closed
    // With a shared store a session's events reach its viewers once stored: the answer waits for
    // those the handler emitted, so it follows them as it does with the in-memory store.
    const stored = session?.link?.stored();
    if (stored) {
      stored.then((failed) => failed ? this.#answer(call, undefined, failed) : this.#answer(call, value, error));
    } else this.#answer(call, value, error);
  }

  #answer(call: Call, value: unknown, error: unknown): void {
    if (call.done) return;
    this.#finish(call);
    const wire = error === undefined ? undefined : this.#errorFor(call, error);
    if (call.id === undefined) return; // a notification is never answered
    this.#write(call.batch, call.id, wire, value);
    if (call.batch) this.#release(call.batch);
  }

  #errorFor(call: Call, error: unknown): ErrorObject {
    return answerError(error, () => {
      this.stats.dispatch_crashes++;
      this.#host.log.error("handler failed", {
        peer: this.peer,
        method: preview(call.method),
        id: preview(call.id),
        error,
      });
    });
  }

  /** Serialises a response (an error if `error` is set) onto the transport, or into `batch`. */
  #write(batch: Batch | undefined, id: Id, error: ErrorObject | undefined, result?: unknown): void {
    if (this.#closed) return;
    let text: string;
    const code = error && this.#host.errorCodes?.get(error.code);
    if (code !== undefined) error = { ...error!, code };
    try {
      text = error ? errorResponse(id, error) : resultResponse(id, result);
    } catch (cause) {
      this.stats.dispatch_crashes++;
      this.#host.log.error("result not serialisable", { peer: this.peer, id: preview(id), error: cause });
      text = errorResponse(id, INTERNAL_ERROR);
    }
    const telemetry = this.#host.telemetry;
    if (telemetry) telemetry.answered(error, batch ? undefined : text);
    if (!batch) {
      this.transport.writeText(text);
      return;
    }
    batch.replies.push(text);
  }

  #release(batch: Batch): void {
    if (--batch.open > 0 || batch.replies.length === 0) return;
    const text = `[${batch.replies.join(",")}]`;
    const telemetry = this.#host.telemetry;
    if (telemetry) telemetry.sentChars += text.length;
    this.transport.writeText(text);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}
