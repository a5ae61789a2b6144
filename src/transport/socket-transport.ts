import { CloseCode, type FrameSocket } from "./transport.ts";

/** Why a transport closed itself; the connection logs it and tears down. */
export type TransportFailure = "send_failed" | "slow_consumer" | "send_stalled";

const CORK_FRAMES = 256;
/** Characters sent at once (`corked`) after which the backlog is looked at, however few the frames. */
const LOOK_AFTER_CHARS = 1 << 16;
/** Stall checks per `stallMs`: a socket is closed once a whole `stallMs` of checks saw nothing drain. */
const CHECKS_PER_STALL = 4;

/** Backlog limits for one connection. */
export interface BacklogLimits {
  /** Backlog (queued + socket-buffered bytes) at which a slow consumer is reported, once per episode. */
  warnBytes: number;
  /** Backlog at which the connection is closed with 1013 (the client may reconnect and resume). */
  maxBytes: number;
  /**
   * A socket whose buffer has not drained at all for this long is closed with 1011 (noticed
   * within a quarter of it more: the checks run every `stallMs / 4`).
   */
  stallMs: number;
}

/** What the transport tells its owner. */
export interface TransportEvents {
  /** The backlog passed `warnBytes` (once per episode). */
  onSlow?(backlogBytes: number): void;
  /** The transport closed itself; the owner should tear the connection down. */
  onFailure?(reason: TransportFailure, error?: unknown): void;
}

/**
 * A connection's outgoing side over a `FrameSocket`: ordered, batched per tick, never throwing
 * on a dead socket.
 *
 * `write` appends to a FIFO; a microtask at the end of the tick hands what is queued to the socket
 * (inside `socket.cork` where the runtime offers it, so a tick's frames leave in a few large
 * writes: one per run of 256 frames, which measured faster on Node than one enormous writev).
 * A run that fills up goes out at once. A handler emitting thousands of events in one
 * synchronous run thus costs one write per run, and nothing written later can overtake
 * anything written earlier. While the runtime holds the socket corked itself (`corked`), a
 * frame written to an empty queue goes to the socket at once: no queue, no microtask.
 *
 * Backlog is counted in UTF-16 code units for queued frames (cheap, and equal to bytes for
 * ASCII) plus the socket's own `bufferedAmount` in bytes where it has one.
 */
export class SocketTransport {
  #socket: FrameSocket;
  #limits: BacklogLimits;
  #events: TransportEvents;
  #queue: string[] = [];
  #queuedChars = 0;
  #closed = false;
  #scheduled = false;
  #warned = false;
  /** Socket-buffered bytes seen at the last flush or stall check. */
  #buffered = 0;
  /** The stall checks this transport is in, while its socket holds unsent bytes. */
  #stallChecks: StallChecks | undefined;
  /** Socket-buffered bytes at the last stall check (or when the checks began). */
  #bufferedAtCheck = 0;
  /** Characters handed to the socket since the last stall check. */
  #sentSinceCheck = 0;
  /** Stall checks in a row that saw nothing drain. */
  #quietChecks = 0;
  /** Frames and characters sent at once since the backlog was last looked at. */
  #unwatchedFrames = 0;
  #unwatchedChars = 0;

  /** Each set of limits' stall checks (a gateway has one set for all its connections). */
  static #checks = new WeakMap<BacklogLimits, StallChecks>();

  /**
   * Transports with frames queued for the end of this tick. One microtask flushes them all:
   * no closure kept per transport, and one microtask per tick however many connections were
   * written to (a session's event to a hundred viewers).
   */
  static #due: SocketTransport[] = [];

  static #flushDue(): void {
    const due = SocketTransport.#due;
    SocketTransport.#due = [];
    for (const transport of due) transport.#flush();
  }

  /** Sends that failed (each one latches the transport closed). */
  readonly stats = { sendFailures: 0 };

  constructor(socket: FrameSocket, limits: BacklogLimits, events: TransportEvents = {}) {
    this.#socket = socket;
    this.#limits = limits;
    this.#events = events;
  }

  /** True once closed (by `close`, a failure, or `detach`): writes are refused. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues a serialised frame; the queue is flushed at the end of the tick, in order. Returns
   * false once the transport is closed.
   */
  writeText(text: string): boolean {
    if (this.#closed) return false;
    if (this.#queue.length === 0 && this.#socket.corked) return this.#sendNow(text);
    this.#queue.push(text);
    this.#queuedChars += text.length;
    if (this.#queuedChars + this.#buffered > this.#limits.maxBytes) {
      this.#fail("slow_consumer");
      return false;
    }
    // A full run goes out at once, the rest at the end of the tick: in a long burst each frame
    // then dies young instead of all of them staying alive until the tick ends (on Bun that
    // halved the CPU per streamed event). Order is the same either way.
    if (this.#queue.length >= CORK_FRAMES) {
      this.#send();
      return !this.#closed;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      if (SocketTransport.#due.push(this) === 1) queueMicrotask(SocketTransport.#flushDue);
    }
    return true;
  }

  /** Flushes what is queued, then closes the socket with `code`. Idempotent. */
  close(code: number = CloseCode.Normal, reason = ""): void {
    if (this.#closed) return;
    this.#send();
    this.#latch();
    try {
      this.#socket.close(code, reason);
    } catch {
      // Already closing or closed: nothing more to do.
    }
  }

  /** Hands every queued frame to the socket now (nothing if closed or empty). */
  flushQueued(): void {
    this.#send();
  }

  /** Stops writing without touching the socket, which is already closed. */
  detach(): void {
    if (!this.#closed) this.#latch();
    this.#queue = [];
    this.#queuedChars = 0;
  }

  #flush(): void {
    this.#scheduled = false;
    this.#send();
  }

  /** Hands every queued frame to the socket, in runs of CORK_FRAMES. */
  #send(): void {
    if (this.#closed || this.#queue.length === 0) return;
    const queue = this.#queue;
    this.#queue = [];
    const chars = this.#queuedChars;
    this.#queuedChars = 0;
    try {
      const cork = this.#socket.cork;
      // A single frame is one write anyway (the common case for request/response traffic).
      if (!cork || queue.length === 1) this.#sendAll(queue, 0, queue.length);
      else {
        // One write per CORK_FRAMES frames: a tick's frames in a few large writes, not one huge writev.
        for (let at = 0; at < queue.length; at += CORK_FRAMES) {
          const end = Math.min(queue.length, at + CORK_FRAMES);
          cork.call(this.#socket, () => this.#sendAll(queue, at, end));
        }
      }
    } catch (error) {
      this.stats.sendFailures++;
      this.#fail("send_failed", error);
      return;
    }
    this.#sentSinceCheck += chars;
    this.#watchBacklog();
  }

  /**
   * Sends one frame at once. The backlog is looked at once per run of frames sent this way, as a
   * flush looks once per run: reading it is a call into the runtime, and on Bun doing so after
   * every frame of a stream cost ~0.05 µs per event, a tenth of the whole.
   */
  #sendNow(text: string): boolean {
    try {
      this.#socket.send(text);
    } catch (error) {
      this.stats.sendFailures++;
      this.#fail("send_failed", error);
      return false;
    }
    this.#sentSinceCheck += text.length;
    this.#unwatchedChars += text.length;
    if (++this.#unwatchedFrames >= CORK_FRAMES || this.#unwatchedChars >= LOOK_AFTER_CHARS) {
      this.#unwatchedFrames = 0;
      this.#unwatchedChars = 0;
      this.#watchBacklog();
    }
    return !this.#closed;
  }

  #sendAll(queue: string[], from: number, to: number): void {
    const socket = this.#socket;
    for (let i = from; i < to; i++) socket.send(queue[i]!);
  }

  /** After a flush: report a slow consumer, cut one over the cap, and watch for a stall. */
  #watchBacklog(): void {
    const buffered = this.#socket.bufferedAmount;
    if (!buffered) {
      this.#buffered = 0;
      this.#warned = false;
      return;
    }
    this.#buffered = buffered;
    if (buffered > this.#limits.maxBytes) return this.#fail("slow_consumer");
    if (buffered > this.#limits.warnBytes && !this.#warned) {
      this.#warned = true;
      this.#events.onSlow?.(buffered);
    }
    if (!this.#stallChecks) this.#watchForStall(buffered);
  }

  /**
   * Puts this transport in its limits' stall checks until its socket drains. One timer for all
   * of them: a timer per socket cost ~0.4 KB per connection, and on Deno, whose sends complete
   * asynchronously, almost every connection had one armed after its first frame.
   */
  #watchForStall(buffered: number): void {
    let checks = SocketTransport.#checks.get(this.#limits);
    if (!checks) {
      checks = new StallChecks(this.#limits.stallMs / CHECKS_PER_STALL, (transport) => transport.#checkStall());
      SocketTransport.#checks.set(this.#limits, checks);
    }
    this.#stallChecks = checks;
    this.#bufferedAtCheck = buffered;
    this.#sentSinceCheck = 0;
    // The first check comes within an interval, not after a whole one: it does not count.
    this.#quietChecks = -1;
    checks.add(this);
  }

  /** One stall check; false once there is nothing left to watch (drained, or closed). */
  #checkStall(): boolean {
    if (this.#closed) return false;
    const now = this.#socket.bufferedAmount ?? 0;
    this.#buffered = now;
    if (now === 0) {
      this.#warned = false;
      this.#stallChecks = undefined;
      return false;
    }
    // Drained = what was buffered + what was added since - what is buffered now. Four quiet
    // checks after one that saw a drain (or after the start) span `stallMs`: the socket is
    // closed after 1–1.25 × `stallMs` without a drained byte.
    if (this.#bufferedAtCheck + this.#sentSinceCheck - now > 0) this.#quietChecks = 0;
    else if (++this.#quietChecks >= CHECKS_PER_STALL) {
      this.#fail("send_stalled");
      return false;
    }
    if (now < this.#limits.warnBytes) this.#warned = false;
    this.#bufferedAtCheck = now;
    this.#sentSinceCheck = 0;
    return true;
  }

  #fail(reason: TransportFailure, error?: unknown): void {
    if (this.#closed) return;
    this.#latch();
    this.#queue = [];
    this.#queuedChars = 0;
    // The owner hears the reason first: some runtimes (Bun) report the close synchronously
    // from inside `close()`, which would otherwise look like the peer's doing.
    this.#events.onFailure?.(reason, error);
    try {
      this.#socket.close(
        reason === "send_stalled" || reason === "send_failed" ? CloseCode.Internal : CloseCode.TryAgainLater,
        reason,
      );
    } catch {
      // The socket is already gone.
    }
  }

  #latch(): void {
    this.#closed = true;
    this.#stallChecks?.delete(this);
    this.#stallChecks = undefined;
  }
}

/**
 * The transports of one set of limits whose sockets hold unsent bytes, each checked every
 * `intervalMs` on one shared timer, which runs only while there is one to check.
 */
class StallChecks {
  readonly #transports = new Set<SocketTransport>();
  readonly #intervalMs: number;
  readonly #check: (transport: SocketTransport) => boolean;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(intervalMs: number, check: (transport: SocketTransport) => boolean) {
    this.#intervalMs = Math.max(1, intervalMs);
    this.#check = check;
  }

  add(transport: SocketTransport): void {
    this.#transports.add(transport);
    this.#timer ??= setInterval(() => this.#run(), this.#intervalMs);
  }

  delete(transport: SocketTransport): void {
    if (this.#transports.delete(transport)) this.#stopWhenEmpty();
  }

  #run(): void {
    for (const transport of this.#transports) {
      if (!this.#check(transport)) this.#transports.delete(transport);
    }
    this.#stopWhenEmpty();
  }

  #stopWhenEmpty(): void {
    if (this.#transports.size > 0 || this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
