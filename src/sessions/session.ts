/**
 * A session: the unit of work that outlives connections (docs/architecture.md, Sessions). It numbers its events,
 * keeps them in the store's replay ring before routing them, fans them out to its viewers,
 * and owns its open server → client requests.
 */
import { ErrorCode, type ErrorObject, RpcError } from "../jsonrpc/errors.ts";
import { request, sessionEventFrame, sessionEventPrefix } from "../jsonrpc/message.ts";
import type { ResumeResult } from "../jsonrpc/protocol.ts";
import { PendingRequests } from "../jsonrpc/peer.ts";

export type { ResumeResult };
import type { SessionStore } from "./store.ts";
import type { SharedLink } from "./shared-link.ts";
import type { SessionObserver } from "./observer.ts";

/**
 * Why a session ended. With a shared store, `moved` means this node let go of it (it goes on
 * in the store): its last viewer here left and nothing of it runs here; `store_lost` that the
 * store lost it (e.g. Redis restarted without persistence).
 */
export type EndReason =
  | "closed"
  | "disconnect"
  | "orphan_reap"
  | "idle_timeout"
  | "evicted"
  | "shutdown"
  | "moved"
  | "store_lost";

/** A session event, as a `SessionState` folds it. */
export interface SessionEvent {
  /** Its number within the session: 1, 2, 3 …, folded in that order. */
  readonly seq: number;
  /** What `emit` was given as its type. */
  readonly type: string;
  /** What `emit` was given as its payload (a copy with a shared store). */
  readonly payload: unknown;
}

/**
 * Application state kept with every session (the `sessions.state` option of `createGateway`):
 * folded from the session's events, so it is the same on every node that holds the session,
 * and with a shared store it is saved there and loaded with the session on another node.
 */
export interface SessionState<S = unknown> {
  /** A new session's state. It must be JSON-serialisable (a shared store keeps it as JSON). */
  initial(): S;
  /**
   * Folds one event into `state` (in seq order, each once) and returns the new state; it may
   * change `state` in place. It must not throw, nor keep `event.payload` to change it later.
   */
  apply(state: S, event: SessionEvent): S;
}

/** What the orphan policy decides when a detached session's grace period ends. */
export type OrphanDecision = "reap" | "defer";

/** Decides the fate of a session left without viewers for `graceMs` (default: reap). */
export type OrphanPolicy = (session: SessionHandle) => OrphanDecision;

/** A connection attached to a session, as session hooks see it. */
export interface ViewerInfo {
  /** The connection's id (also in its `gateway.ready`). */
  readonly id: string;
  /** The connection's principal. */
  readonly principal: string;
}

/**
 * A session, as application code sees it: from `ctx.sessions.create()`, `ctx.session(id)`,
 * `gateway.sessions` and the session hooks.
 */
export interface SessionHandle {
  /** 128 random bits in hex; clients name the session by it. */
  readonly id: string;
  /** The principal that created it; only it may resume, read or close it. */
  readonly principal: string;
  /** Seqs count within it: it changes only when the store lost the session's history. */
  readonly epoch: string;
  /** Whether the session ends when its last viewer disconnects. */
  readonly closeOnDisconnect: boolean;
  /** The seq of the last event emitted (0 before the first). */
  readonly latestSeq: number;
  /** Connections attached now. */
  readonly viewers: number;
  /** Handlers bound to this session still running (e.g. a turn): an orphan policy may defer for them. */
  readonly running: number;
  /** Server → client requests still waiting for a reply. */
  readonly openRequests: number;
  /** Why it ended, or undefined while it is live. */
  readonly endReason: EndReason | undefined;
  /** True once it has ended. */
  readonly closed: boolean;
  /** Aborted when the session ends, with the end reason. */
  readonly signal: AbortSignal;
  /** When it was created, in milliseconds since the Unix epoch (the same on every node). */
  readonly createdAt: number;
  /** The application state folded from its events (undefined without the `sessions.state` option). */
  readonly state: unknown;
  /**
   * The seq of the last event folded into `state`. In memory an event is folded as it is
   * emitted; with a shared store, once the store confirmed it (on every node that holds it).
   */
  readonly stateSeq: number;
  /**
   * Emits a session event: stamps the next seq, keeps it for replay, then writes it to every
   * viewer (a write never waits, so a slow viewer holds up nobody). Returns the seq, or 0 once
   * the session has ended. Throws (and uses no seq) if `payload` cannot be serialised.
   */
  emit(type: string, payload?: unknown): number;
  /**
   * Asks the client a question (`srq-…` id) and resolves with the first reply's result. It
   * rejects with an `RpcError`: the client's error, or -32800 with `data.reason` `timeout`,
   * `cancelled` or `session_closed` (those also emit `request.cancel {id, reason}`). The
   * request belongs to the session: viewers attached later, or resuming, get it too.
   */
  request(method: string, params?: unknown, options?: SessionRequestOptions): Promise<unknown>;
  /** Ends the session: open requests are cancelled, viewers get `session.closed {reason}`, bound handlers are aborted. */
  close(reason?: EndReason): void;
  /**
   * Interrupts the session's work, wherever it runs: the handlers bound to it are aborted (their
   * `ctx.signal`, with an `RpcError` -32800 `{reason: "interrupted"}`), here or, with a shared
   * store, on the node that owns it; a session whose owner died mid-work is taken over, which
   * emits `session.interrupted {reason: "owner_lost"}`. The session goes on. Resolves true if
   * some work was running (or a node owned it and was told).
   */
  interrupt(): Promise<boolean>;
  /**
   * Runs `work` bound to the session rather than to a call: it counts in `running` (so the
   * orphan policy may defer for it, and with a shared store this node keeps the lease), its
   * `signal` is aborted by `interrupt()` (an `RpcError` -32800 `{reason: "interrupted"}`) and
   * when the session ends. For work that goes on after the call that started it has answered.
   */
  run<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

/** An open server → client request, as pull-style replay lists it. */
export interface OpenRequest {
  /** Its `srq-…` id. */
  id: string;
  /** The method the server asks the client to run. */
  method: string;
  /** Its params, if it has any. */
  params?: unknown;
}

/** A connection, as a session sees it. */
export interface SessionViewer extends ViewerInfo {
  /** Queues a serialised frame; false once the viewer is gone. Never blocks. */
  writeText(text: string): boolean;
  /** Whether it takes server → client requests (its `serverRequests` capability is not false). */
  readonly takesRequests: boolean;
  /** The sessions this viewer is attached to (kept in step by the session). */
  readonly sessions: Set<Session>;
}

/** A running handler bound to a session: aborted when the session ends, not when its connection does. */
export interface SessionTask {
  abort(reason: unknown): void;
}

/** Options of `ctx.sessions.create()`. */
export interface CreateSessionOptions {
  /** Close the session when its last viewer disconnects, instead of keeping it for resume. */
  closeOnDisconnect?: boolean;
  /** Overrides the gateway's orphan policy for this session. */
  onOrphan?: OrphanPolicy;
}

/** Options of `session.request()`. */
export interface SessionRequestOptions {
  /** Rejects and emits `request.cancel {reason: "timeout"}` after this long. Default: no timeout. */
  timeoutMs?: number;
  /** Aborting it rejects and emits `request.cancel {reason: "cancelled"}`. */
  signal?: AbortSignal;
}

/** What a session needs from its registry. */
export interface SessionHost {
  readonly store: SessionStore;
  /** A server request was opened (`srq-…` id) or settled: the registry routes replies by id. */
  requestOpened(id: string, session: Session): void;
  requestSettled(id: string): void;
  /** The session ended; called once, after its viewers were told. */
  ended(session: Session, reason: EndReason): void;
  /** With a shared store: the session may have nothing left here (no viewer, no work). */
  idle(session: Session): void;
  /** The application state kept with each session, if the gateway keeps one. */
  readonly state: SessionState | undefined;
  /** A `SessionState.apply` threw: logged, the event is not folded. */
  stateFailed(session: Session, seq: number, error: unknown): void;
  /** The gateway's telemetry, with an OpenTelemetry SDK. */
  readonly observer: SessionObserver | undefined;
}

/** The type and payload of a serialised session event frame. */
export function eventOfFrame(frame: string): { type: string; payload: unknown } {
  return (JSON.parse(frame) as { params: { type: string; payload: unknown } }).params;
}

/** 128 random bits, hex. */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** A session and what the registry needs of it besides `SessionHandle`. */
export class Session implements SessionHandle {
  readonly id: string;
  /** The principal that created it; only it may resume, read or close it. */
  readonly principal: string;
  readonly closeOnDisconnect: boolean;
  readonly onOrphan: OrphanPolicy | undefined;
  epoch: string;
  /** With a shared store: what keeps this session in step with the store (undefined with a local one). */
  link: SharedLink | undefined;
  /**
   * `performance.now()` of the last request, attach or handler access; the idle TTL counts from
   * it. Events count through `noteEvents` when the registry looks: a clock read per event cost
   * ~8% of a streamed event's CPU on Bun.
   */
  lastActive: number = performance.now();
  /** The seq `noteEvents` last saw. */
  #seqNoted = 0;
  /** The orphan timer while detached. */
  orphanTimer: ReturnType<typeof setTimeout> | undefined;
  #host: SessionHost;
  #seq = 0;
  #viewers = new Set<SessionViewer>();
  /** Open server → client requests by id, each with its frame (re-sent to viewers that attach). */
  #requests = new PendingRequests<string, string>((id, _frame, why, cause) => {
    const reason = why === "timeout" ? "timeout" : isInterrupt(cause) ? "interrupted" : "cancelled";
    this.#host.requestSettled(id);
    this.emit("request.cancel", { id, reason });
    this.link?.settleRequest(id);
    this.#host.idle(this);
    return cancelled(id, reason);
  });
  #tasks = new Set<SessionTask>();
  #controller: AbortController | undefined;
  #ended: EndReason | undefined;
  /** `end` ran (with a shared store `#ended` is set first, while the store closes the session). */
  #over = false;
  /** The fixed start of every event frame, so an emit serialises only what changes. */
  #framePrefix: string;
  /** When it was created (ms since the Unix epoch); a session read from a shared store gets the store's. */
  createdAt: number = Date.now();
  #state: unknown;
  #stateSeq = 0;

  constructor(host: SessionHost, id: string, principal: string, epoch: string, options: CreateSessionOptions) {
    this.#host = host;
    this.id = id;
    this.principal = principal;
    this.epoch = epoch;
    this.closeOnDisconnect = options.closeOnDisconnect ?? false;
    this.onOrphan = options.onOrphan;
    this.#framePrefix = sessionEventPrefix(id);
    this.#state = host.state?.initial();
  }

  get state(): unknown {
    return this.#state;
  }

  get stateSeq(): number {
    return this.#stateSeq;
  }

  /** With a shared store: the state as saved at `seq` (events after it are folded next). */
  restoreState(state: unknown, seq: number): void {
    this.#state = state;
    this.#stateSeq = seq;
  }

  /** Folds event `seq` into the state (a no-op without one). */
  fold(seq: number, type: string, payload: unknown): void {
    const state = this.#host.state;
    if (!state) return;
    try {
      this.#state = state.apply(this.#state, { seq, type, payload });
    } catch (error) {
      this.#host.stateFailed(this, seq, error);
    }
    this.#stateSeq = seq;
  }

  /** Folds a serialised event frame (with a shared store, as it reaches this node). */
  foldFrame(seq: number, frame: string): void {
    if (!this.#host.state) return;
    const { type, payload } = eventOfFrame(frame);
    this.fold(seq, type, payload);
  }

  /** Counts any event emitted since the last call as activity at `now`. */
  noteEvents(now: number): void {
    if (this.#seq === this.#seqNoted) return;
    this.#seqNoted = this.#seq;
    this.lastActive = now;
  }

  /** The seq of the last event emitted (0 before the first). */
  get latestSeq(): number {
    return this.#seq;
  }

  /** The fixed start of this session's event frames. */
  get framePrefix(): string {
    return this.#framePrefix;
  }

  /** With a shared store: events up to `seq` exist (emitted elsewhere, or renumbered here). */
  seqAt(seq: number): void {
    this.#seq = seq;
  }

  /** Connections attached now. */
  get viewers(): number {
    return this.#viewers.size;
  }

  /** Handlers bound to this session still running (e.g. a turn): an orphan policy may defer for them. */
  get running(): number {
    return this.#tasks.size;
  }

  /** Server → client requests still waiting for a reply. */
  get openRequests(): number {
    return this.#requests.size;
  }

  /** Why it ended, or undefined while it is live. */
  get endReason(): EndReason | undefined {
    return this.#ended;
  }

  get closed(): boolean {
    return this.#ended !== undefined;
  }

  /** Aborted when the session ends, with the end reason. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#ended) this.#controller.abort(this.#ended);
    }
    return this.#controller.signal;
  }

  /**
   * Emits a session event: stamps the next seq, appends it to the replay ring, then writes it
   * to every viewer (a write never waits, so a slow viewer holds up nobody). Returns the seq,
   * or 0 once the session has ended. Throws (and uses no seq) if `payload` cannot be serialised.
   */
  emit(type: string, payload?: unknown): number {
    if (this.#ended) return 0;
    const seq = this.#seq + 1;
    const frame = sessionEventFrame(this.#framePrefix, seq, type, payload);
    this.#seq = seq;
    const observer = this.#host.observer;
    if (observer) observer.eventsAppended++;
    if (this.link) {
      // Written to the viewers once the store confirms it (`deliver`).
      this.link.append(seq, frame, type, payload);
      return seq;
    }
    this.#host.store.append(this.id, seq, frame);
    this.fold(seq, type, payload);
    for (const viewer of this.#viewers) viewer.writeText(frame);
    return seq;
  }

  /** Writes a frame to every attached viewer. */
  deliver(frame: string): void {
    for (const viewer of this.#viewers) viewer.writeText(frame);
  }

  /** Writes a server request's frame to every attached viewer that takes requests. */
  deliverRequest(frame: string): void {
    for (const viewer of this.#viewers) if (viewer.takesRequests) viewer.writeText(frame);
  }

  /** The open server requests, oldest first. */
  openRequestList(): OpenRequest[] {
    return [...this.#requests.requests()].map(([, frame]) => openRequestOf(frame));
  }

  /**
   * Asks the client a question (`srq-…` id) and resolves with the first reply's result. It
   * rejects with an `RpcError`: the client's error, or -32800 with `data.reason` `timeout`,
   * `cancelled` or `session_closed` (those also emit `request.cancel {id, reason}`). The
   * request belongs to the session: viewers attached later, or resuming, get it too.
   */
  request(method: string, params?: unknown, options: SessionRequestOptions = {}): Promise<unknown> {
    if (this.#ended) return Promise.reject(cancelled("", "session_closed"));
    const id = `srq-${randomId()}`;
    if (options.signal?.aborted) return Promise.reject(cancelled(id, "cancelled"));
    const frame = request(id, method, params);
    const answer = this.#requests.add(id, frame, options);
    this.#host.requestOpened(id, this);
    this.#host.observer?.requestOpened(id, method, answer);
    this.lastActive = performance.now();
    if (this.link) this.link.openRequest(id, frame);
    else this.deliverRequest(frame);
    return answer;
  }

  /** Fails an open request here without telling anyone (its cancel is in the store's events already). */
  dropRequest(id: string, error: RpcError): void {
    this.#host.requestSettled(id);
    this.#requests.fail(id, error);
  }

  /** Settles the open request `id` with a client's reply; false if it is not open. */
  reply(id: string, result: unknown, error: ErrorObject | undefined): boolean {
    if (!this.#requests.answer(id, result, error)) return false;
    this.#host.requestSettled(id);
    this.#host.idle(this);
    return true;
  }

  /** Ends the session: open requests are cancelled, viewers get `session.closed {reason}`, bound handlers are aborted. */
  close(reason: EndReason = "closed"): void {
    if (this.#ended) return;
    if (this.link) {
      // The store appends the cancels and `session.closed` (whichever node owns it), then the viewers here get them.
      this.#ended = reason;
      this.link.close(reason).then(() => this.end(reason));
      return;
    }
    for (const [id] of [...this.#requests.requests()]) {
      this.#host.requestSettled(id);
      this.emit("request.cancel", { id, reason: "session_closed" });
      this.#requests.fail(id, cancelled(id, "session_closed"));
    }
    this.emit("session.closed", { reason });
    this.end(reason);
  }

  /**
   * Ends the session here without emitting anything: after `close`, or (with a shared store)
   * when it was closed elsewhere or this node let go of it. Its open requests here fail, its
   * bound handlers are aborted.
   */
  end(endReason: EndReason): void {
    if (this.#over) return;
    this.#over = true;
    // A close under way keeps its reason (the store's notice of it may come first).
    const reason = (this.#ended ??= endReason);
    for (const [id] of [...this.#requests.requests()]) this.dropRequest(id, cancelled(id, "session_closed"));
    clearTimeout(this.orphanTimer);
    for (const viewer of this.#viewers) viewer.sessions.delete(this);
    this.#viewers.clear();
    for (const task of this.#tasks) task.abort(new RpcError(ErrorCode.SessionNotFound, `Session ${reason}`));
    this.#tasks.clear();
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
    this.#host.ended(this, reason);
  }

  /**
   * With a shared store, another node took the session over: the work here stops (its handlers
   * are aborted with `error`, its requests fail), the session stays for its viewers here.
   */
  stopWork(error: RpcError): void {
    for (const [id] of [...this.#requests.requests()]) this.dropRequest(id, error);
    for (const task of this.#tasks) task.abort(error);
    this.#tasks.clear();
  }

  async interrupt(): Promise<boolean> {
    const here = this.interruptHere();
    // The owner elsewhere is told (or, dead mid-work, taken over); work here was just aborted.
    return (await this.link?.interrupt()) === true || here;
  }

  /** Aborts the handlers bound to this session on this node; true if there were some. */
  interruptHere(): boolean {
    const error = new RpcError(ErrorCode.RequestCancelled, "Interrupted", INTERRUPTED);
    for (const task of this.#tasks) task.abort(error);
    return this.#tasks.size > 0;
  }

  /** Whether `viewer` is attached. */
  hasViewer(viewer: SessionViewer): boolean {
    return this.#viewers.has(viewer);
  }

  /** Attaches a viewer (idempotent) and stops the orphan timer. */
  attach(viewer: SessionViewer): void {
    this.#viewers.add(viewer);
    viewer.sessions.add(this);
    clearTimeout(this.orphanTimer);
    this.orphanTimer = undefined;
    this.lastActive = performance.now();
  }

  /** Detaches a viewer; returns how many remain. */
  detach(viewer: SessionViewer): number {
    this.#viewers.delete(viewer);
    viewer.sessions.delete(this);
    return this.#viewers.size;
  }

  /**
   * Writes every kept event after `afterSeq` to `viewer` (none without it: from now on),
   * attaches it, re-sends the open server requests, and returns the `session.resume` answer.
   * All in one synchronous run, so no event can fall between the replay and live delivery,
   * nor arrive twice.
   */
  resume(viewer: SessionViewer, afterSeq: number | undefined, epoch?: string): ResumeResult {
    // Seqs of another epoch mean nothing here: replay all that is kept, and tell the reader it missed some.
    const otherEpoch = afterSeq !== undefined && epoch !== undefined && epoch !== this.epoch;
    const read = afterSeq === undefined
      ? { frames: [], truncated: false }
      : this.#host.store.read(this.id, otherEpoch ? 0 : afterSeq);
    for (const frame of read.frames) viewer.writeText(frame);
    this.attach(viewer);
    if (viewer.takesRequests) { for (const [, frame] of this.#requests.requests()) viewer.writeText(frame); }
    const truncated = read.truncated || otherEpoch;
    return { session_id: this.id, latest_seq: this.#seq, replayed: read.frames.length, truncated, epoch: this.epoch };
  }

  run<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const task: SessionTask = { abort: (reason) => controller.abort(reason) };
    this.track(task);
    this.lastActive = performance.now();
    let running: Promise<T>;
    try {
      running = work(controller.signal);
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.finally(() => this.untrack(task));
  }

  /** Binds a running handler to this session (see `SessionTask`). */
  track(task: SessionTask): void {
    if (this.#ended) task.abort(new RpcError(ErrorCode.SessionNotFound, `Session ${this.#ended}`));
    else this.#tasks.add(task);
  }

  untrack(task: SessionTask): void {
    if (this.#tasks.delete(task) && this.#tasks.size === 0) this.#host.idle(this);
  }
}

const INTERRUPTED = { reason: "interrupted" } as const;

/** Whether an abort's reason is an interrupt's (`interruptHere`). */
function isInterrupt(cause: unknown): boolean {
  return cause instanceof RpcError && cause.data === INTERRUPTED;
}

/** An open request's id, method and params, from its frame. */
export function openRequestOf(frame: string): OpenRequest {
  const { id, method, params } = JSON.parse(frame) as OpenRequest;
  return params === undefined ? { id, method } : { id, method, params };
}

function cancelled(id: string, reason: string): RpcError {
  return new RpcError(
    ErrorCode.RequestCancelled,
    `Server request ${
      reason === "session_closed" ? "cancelled: session closed" : reason === "timeout" ? "timed out" : "cancelled"
    }`,
    { id, reason },
  );
}
