/**
 * One session kept in step with a shared store on this node (docs/architecture.md, Several
 * nodes). The node that owns the session (holds its lease) appends its events, fenced, and
 * writes each to its viewers here once the store confirmed it; a node that only views it
 * subscribes to its channel and writes what arrives in seq order. Pub/sub delivers at most
 * once, so seqs are what make delivery exactly-once: a seq already written is skipped, a gap
 * is filled by reading the store.
 */
import { ErrorCode, RpcError } from "../jsonrpc/errors.ts";
import { sessionEventFrame, sessionEventFromTail, sessionEventTail } from "../jsonrpc/message.ts";
import type { EndReason, ResumeResult, Session, SessionViewer } from "./session.ts";
import { randomId } from "./session.ts";
import type { SessionMessage, SharedRead, SharedStore } from "./shared-store.ts";

/** What a link needs from its registry. */
export interface LinkHost {
  readonly store: SharedStore;
  /** A server request of the session is open (seen here): replies to it are routed to the session. */
  requestSeen(id: string, session: Session): void;
  /** Something worth an operator's attention happened (events dropped, ownership lost). */
  logError(message: string, fields: Record<string, unknown>): void;
}

/**
 * An event emitted here, not yet confirmed by the store. Its type and payload are kept so the
 * state folds them once it is confirmed, without parsing the frame back.
 */
interface Pending {
  seq: number;
  frame: string;
  type: string;
  payload: unknown;
}

/** What a resuming viewer receives while it catches up: event frames with their seqs, and request frames (seq 0). */
type CatchUp = { seq: number; frame: string }[];

/** Appends of one session on their way to the store at once (each at most half a ring). */
const APPENDS_IN_FLIGHT = 4;

/**
 * After a failed append or reset (the store refused it, or did not answer in time), the link
 * sends again by itself after this long, doubling up to `RETRY_MAX_MS` while it keeps failing: a
 * store that is back without a reconnect (out of memory, a slow command) gets what waits.
 */
const RETRY_MS = 250;
const RETRY_MAX_MS = 5_000;

/** How long a node waits for another node to let go of a session it wants to emit on. */
const OWNER_WAIT_MS = 30_000;

/**
 * The owner saves the session's state (`sessions.state`) after this many events folded since
 * the last save, or `STATE_SAVE_MS` after the first of them: a node that loads the session
 * folds the events after the saved seq, which the store keeps (512 by default).
 */
const STATE_SAVE_EVENTS = 64;
const STATE_SAVE_MS = 1_000;

/** The id of a server request's frame. */
const requestIdOf = (frame: string): string => (JSON.parse(frame) as { id: string }).id;

export class SharedLink {
  #host: LinkHost;
  #store: SharedStore;
  #session: Session;
  /** The fencing token of the lease this node holds, 0 when it holds none. */
  #fence = 0;
  /** Taking the lease is under way. */
  #acquiring: Promise<void> | undefined;
  /**
   * Emitted here, not yet confirmed: the first `#sent` are on their way to the store, in
   * `#inFlight` appends. What is emitted in one turn of the event loop goes out together (no
   * timer), in appends of at most half a ring, up to `APPENDS_IN_FLIGHT` of them at once: they
   * share one connection, so the store takes them in order, and one append a round trip would
   * cap a session at half a ring per round trip.
   */
  #pending: Pending[] = [];
  #sent = 0;
  #inFlight = 0;
  /** The bytes of the `#pending` frames, kept as they come and go (the bound below is checked at every emit). */
  #pendingBytes = 0;
  #flushQueued = false;
  /** A reset (new epoch) is on its way: nothing is appended until it is in. */
  #resetting = false;
  /** Bumped when appends fail or what waits is dropped: answers to appends sent before are ignored. */
  #generation = 0;
  /** Events emitted here were lost before the store took them: the next append starts a new epoch. */
  #hole = 0;
  /** The next retry after a failed append or reset, and how long it waits (0: nothing failed since the last success). */
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryMs = 0;
  /** Appended since the last lease tick: the lease is kept one more tick. */
  appendedSinceTick = false;
  /** The seq of the last event written to the viewers here. */
  #delivered = 0;
  #subscribed = false;
  /** Channel messages waiting while the link reads the store (at start, or to fill a gap). */
  #queued: SessionMessage[] | undefined;
  #reading: Promise<void> | undefined;
  #catchUps = new Map<SessionViewer, CatchUp>();
  /** Closing: no lease is taken any more. */
  #closing = false;
  /** The store could not record the session (created here): the call that created it answers this error. */
  #notCreated: RpcError | undefined;
  /** Events folded into the state since it was last saved (owner only), and the save under way or scheduled. */
  #unsaved = 0;
  #saving: Promise<void> | undefined;
  #saveTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(host: LinkHost, session: Session) {
    this.#host = host;
    this.#store = host.store;
    this.#session = session;
    session.link = this;
  }

  /** A link for a session created here: this node owns it once the store has recorded it. */
  static created(host: LinkHost, session: Session): SharedLink {
    const link = new SharedLink(host, session);
    link.#acquiring = host.store.create(session.id, session.principal, session.epoch, session.createdAt).then(
      (fence) => {
        link.#fence = fence;
        link.#acquiring = undefined;
        link.#queueFlush();
      },
      (error: unknown) => {
        link.#acquiring = undefined;
        link.#notCreated = storeError(error);
        link.#failPending("session not recorded: store unavailable", error);
        session.end("store_lost");
      },
    );
    return link;
  }

  /** A link for a session this node views, from the store's read of it (`last` is where live delivery starts). */
  static viewed(host: LinkHost, session: Session, last: number): SharedLink {
    const link = new SharedLink(host, session);
    link.#delivered = last;
    session.seqAt(last);
    return link;
  }

  /** Whether this node holds the lease. */
  get owned(): boolean {
    return this.#fence > 0;
  }

  get fence(): number {
    return this.#fence;
  }

  /** Nothing of the session is in flight here: no pending event, no viewer catching up. */
  get settled(): boolean {
    return this.#pending.length === 0 && this.#catchUps.size === 0 && this.#acquiring === undefined &&
      this.#reading === undefined;
  }

  /** An event was emitted here: it goes to the store (taking the lease first if need be), then to the viewers. */
  append(seq: number, frame: string, type: string, payload: unknown): void {
    this.#push({ seq, frame, type, payload });
    const { maxEvents, maxBytes } = this.#store.replay;
    // Events waiting for the store (unreachable, or slower than the emitter) are bounded: past
    // sixteen rings' events or four rings' bytes, all those not yet sent are dropped at once (what
    // waits stays contiguous), and the next append starts a new epoch, so every reader learns it
    // missed some (`truncated`). The count leaves room for a burst while Redis is briefly slow
    // (8,192 events by default: ~25 ms at 300,000 events/s).
    const waiting = this.#pending.length - this.#sent;
    if (waiting > maxEvents * 16 || (waiting > maxEvents && this.#pendingBytes > maxBytes * 4)) {
      const dropped = this.#take(this.#sent, this.#pending.length - this.#sent);
      this.#hole = dropped.at(-1)!.seq;
      this.#host.logError("events dropped: the store is not keeping up", {
        session: this.#session.id,
        dropped: dropped.length,
        from_seq: dropped[0]!.seq,
      });
      // Their seqs stay used: the next event continues after them, past the gap. Who waited for
      // them alone (nothing is in flight) is woken: they are dropped.
      if (this.#pending.length === 0) this.#wakeStored(Infinity);
      return;
    }
    if (this.#fence > 0) this.#queueFlush();
    else this.#acquire();
  }

  /** A server request opened here: recorded in the store (taking the lease first if need be), then sent to the viewers. */
  openRequest(id: string, frame: string): void {
    const open = async () => {
      if (this.#fence === 0) await this.#acquire();
      await this.#flushed();
      if (this.#fence === 0 || !(await this.#store.openRequest(this.#session.id, this.#fence, id, frame))) {
        throw new RpcError(ErrorCode.SessionBusy, "Session busy on another node");
      }
      this.#writeRequest(frame);
    };
    open().catch((error: unknown) => {
      this.#session.dropRequest(id, storeError(error));
    });
  }

  /** An open request was settled here (timeout, cancel): removed from the store. */
  settleRequest(id: string): void {
    this.#store.settleRequest(this.#session.id, id).catch(() => {
      // Unreachable store: the request stays until the session expires; a reply to it is dropped by the owner.
    });
  }

  /** Closes the session in the store once this node's events are in, and writes the closing events here. */
  async close(reason: EndReason): Promise<void> {
    this.#closing = true;
    try {
      await this.#flushed();
      const closed = await this.#store.closeSession(this.#session.id, reason);
      closed?.frames.forEach((frame, i) => this.#deliver(closed.first + i, frame));
    } catch (error) {
      this.#host.logError("session close not recorded: store unavailable", { session: this.#session.id, error });
    } finally {
      this.#fence = 0;
      await this.#setSubscribed(false);
    }
  }

  /** Another node closed the session while this one owned it: the viewers here get the closing events. */
  closedElsewhere(first: number, frames: string[]): void {
    this.#fence = 0;
    this.#dropPending();
    frames.forEach((frame, i) => this.#deliver(first + i, frame));
    this.#session.end("closed");
  }

  /**
   * `session.resume` here: writes the kept events after `afterSeq` to `viewer`, then what
   * arrived meanwhile, attaches it, re-sends the open requests. Events are written in seq
   * order, each once.
   */
  async resume(viewer: SessionViewer, afterSeq: number | undefined, epoch: string | undefined): Promise<ResumeResult> {
    const buffer: CatchUp = [];
    // A viewer attached already gets what arrives meanwhile live: buffering it too would write it twice.
    if (!this.#session.hasViewer(viewer)) this.#catchUps.set(viewer, buffer);
    try {
      await this.#ensureLive();
      const requests = viewer.takesRequests ? await this.#store.requests(this.#session.id) : [];
      // Without `afterSeq`: from now on, so only what comes after the store's last seq.
      const fromNow = afterSeq === undefined;
      let after = afterSeq ?? Number.MAX_SAFE_INTEGER;
      let read = await this.#store.read(this.#session.id, after);
      if (!read) throw new RpcError(ErrorCode.SessionNotFound, "Session not found");
      this.#session.epoch = read.epoch;
      // Seqs of another epoch mean nothing now: replay all that is kept, and tell the reader it missed some.
      const otherEpoch = !fromNow && epoch !== undefined && epoch !== read.epoch;
      if (otherEpoch && after > 0) {
        after = 0;
        read = await this.#store.read(this.#session.id, after);
        if (!read) throw new RpcError(ErrorCode.SessionNotFound, "Session not found");
      }
      const truncated = !fromNow && (otherEpoch || after + 1 < read.first || after > read.last);
      // A reader past the last seq gets nothing more; live events continue after the last.
      after = Math.min(after, read.last);
      let replayed = 0;
      for (;;) {
        const from = Math.max(after + 1, read.first);
        for (const frame of read.frames) viewer.writeText(frame);
        replayed += read.frames.length;
        if (read.frames.length > 0) after = from + read.frames.length - 1;
        if (read.frames.length === 0 || after >= read.last) break;
        const next = await this.#store.read(this.#session.id, after);
        if (!next) throw new RpcError(ErrorCode.SessionNotFound, "Session not found");
        read = next;
      }
      // The store can be ahead of what reached this node (pub/sub, or an append's answer, still on
      // its way): catch up first, or those events would reach this viewer twice.
      for (let tries = 0; tries < 3 && this.#delivered < after; tries++) await this.#fill();
      // What reached this node while the replay was read: events past it, then live.
      const sent = new Set<string>();
      for (const frame of requests) {
        viewer.writeText(frame);
        sent.add(requestIdOf(frame));
      }
      for (const item of buffer) {
        if (item.seq === 0) {
          const id = requestIdOf(item.frame);
          if (viewer.takesRequests && !sent.has(id)) viewer.writeText(item.frame);
        } else if (item.seq > after) {
          viewer.writeText(item.frame);
          after = item.seq;
        }
      }
      this.#catchUps.delete(viewer);
      this.#session.attach(viewer);
      for (const frame of requests) this.#host.requestSeen(requestIdOf(frame), this.#session);
      return {
        session_id: this.#session.id,
        latest_seq: Math.max(after, read.last),
        replayed,
        truncated,
        epoch: this.#session.epoch,
      };
    } finally {
      this.#catchUps.delete(viewer);
    }
  }

  /** The registry's lease tick found the lease lost (it lapsed; maybe another node took it). */
  leaseLost(): void {
    this.#fence = 0;
    this.#onLost("lease lost");
  }

  /** Lets the lease go (nothing runs here): another node may take the session without waiting. */
  async release(): Promise<void> {
    if (this.#fence === 0 || this.#pending.length > 0 || this.#acquiring) return;
    // The state folded here goes to the store first (a save already under way may leave some for a second one).
    for (let tries = 0; tries < 2 && this.#unsaved > 0; tries++) await this.#saveState();
    const fence = this.#fence;
    if (fence === 0 || this.#pending.length > 0) return;
    this.#fence = 0;
    await this.#store.release(this.#session.id, fence).catch(() => {});
    if (this.#session.viewers > 0) await this.#setSubscribed(true);
  }

  /** Keeps the channel subscription in step: a node that views without owning listens to it. */
  viewersChanged(): Promise<void> {
    return this.#setSubscribed(this.#fence === 0 && this.#session.viewers + this.#catchUps.size > 0);
  }

  /** This node lets go of the session: its lease and its subscription. */
  async detach(): Promise<void> {
    await this.release();
    await this.#setSubscribed(false);
  }

  /**
   * `session.interrupt()` from here, when the work does not run here: the owner is told; a
   * session whose owner died mid-work is taken over. A dead owner's lease may still run: then
   * it is looked at again once that lease would have lapsed.
   */
  async interrupt(): Promise<boolean> {
    if (this.#fence > 0 || this.#acquiring) return false;
    const work = await this.#store.work(this.#session.id, true).catch((error) => {
      throw storeError(error);
    });
    if (work === "lapsed") await this.#ownNow();
    if (work === "owned") {
      unref(setTimeout(() => void this.takeOverLapsed().catch(() => {}), this.#store.leaseMs + 100));
    }
    return work !== "idle";
  }

  /**
   * Takes the session over if its owner died mid-work (no lease, work recorded): the viewers
   * are told with `session.interrupted`, which is stored and folded here when this resolves.
   */
  async takeOverLapsed(): Promise<void> {
    if (this.#fence > 0 || this.#acquiring || this.#session.closed) return;
    if ((await this.#store.work(this.#session.id, false)) === "lapsed") await this.#ownNow();
  }

  /** Takes the lease (emitting what a take-over emits) and waits until those events are stored. */
  async #ownNow(): Promise<void> {
    await this.#acquire();
    await this.#flushed();
  }

  /** The store is reachable again: re-send what waits, read what this node missed. */
  recovered(): void {
    if (this.#fence > 0) {
      this.#queueFlush();
    } else if (this.#pending.length > 0) {
      this.#acquire();
    }
    if (this.#subscribed) this.#fill();
  }

  // ---- owning: appends ----

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // One append per turn of the event loop carries every event emitted in it.
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#fence === 0 || this.#resetting) return;
    if (this.#hole > 0) {
      // The reset re-sends from the first pending event: it waits for the appends in flight.
      if (this.#inFlight === 0 && this.#pending.length > 0) this.#resetAfterLoss();
      return;
    }
    while (this.#inFlight < APPENDS_IN_FLIGHT && this.#sent < this.#pending.length) this.#sendNext();
  }

  /**
   * Sends the next events waiting in one append. What waits is contiguous: a drop takes every
   * event not sent, and a reset starts after it.
   */
  #sendNext(): void {
    const batch = this.#nextBatch();
    this.#sent += batch.length;
    this.#inFlight++;
    const generation = this.#generation;
    this.appendedSinceTick = true;
    this.#store.append(this.#session.id, this.#fence, batch[0]!.seq, batch.map((item) => item.frame)).then(
      (result) => {
        if (generation !== this.#generation) return;
        this.#inFlight--;
        if (typeof result === "number") {
          this.#retryMs = 0;
          this.#confirmed(result);
          this.#flush();
        } else this.#appendRefused(result);
      },
      () => {
        // Everything not confirmed is sent again: once the store is back (`recovered`), or by the retry.
        if (generation !== this.#generation) return;
        this.#forgetInFlight();
        this.#retryLater();
      },
    );
  }

  /** Flushes again after a failure, once, later and later while failures go on. */
  #retryLater(): void {
    if (this.#retryTimer !== undefined) return;
    this.#retryMs = Math.min(Math.max(RETRY_MS, this.#retryMs * 2), RETRY_MAX_MS);
    this.#retryTimer = unref(setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#fence > 0 && this.#pending.length > 0) this.#queueFlush();
    }, this.#retryMs));
  }

  /** Answers to the appends (or the reset) in flight are ignored from now on; their events count as not sent. */
  #forgetInFlight(): void {
    this.#generation++;
    this.#sent = 0;
    this.#inFlight = 0;
    this.#resetting = false;
  }

  /**
   * The events of the next append: those waiting, up to half a ring's count and a quarter of
   * its bytes (at least one), so that a store trimming whole appends keeps several.
   */
  #nextBatch(): Pending[] {
    const { maxEvents, maxBytes } = this.#store.replay;
    const start = this.#sent;
    const end = Math.min(this.#pending.length, start + Math.max(1, maxEvents >> 1));
    let count = start;
    let bytes = 0;
    while (count < end) {
      bytes += this.#pending[count]!.frame.length;
      if (count > start && bytes > maxBytes / 4) break;
      count++;
    }
    return this.#pending.slice(start, count);
  }

  /** The store holds every event up to `last`: write the pending ones up to it to the viewers here. */
  #confirmed(last: number): void {
    let count = 0;
    while (count < this.#pending.length && this.#pending[count]!.seq <= last) count++;
    const done = this.#take(0, count);
    this.#sent = Math.max(0, this.#sent - count);
    for (const item of done) this.#deliver(item.seq, item.frame, item);
    this.#wakeStored(this.#pending.length === 0 ? Infinity : last);
  }

  #appendRefused(why: "fenced" | "gone" | "closed" | "gap"): void {
    this.#forgetInFlight();
    if (why === "closed") {
      this.#dropPending();
      this.#session.end("closed");
    } else if (why === "gone") {
      this.#storeLost();
    } else if (why === "gap") {
      // The store misses events before these (dropped here while it was away): start a new epoch.
      this.#hole = Math.max(this.#hole, 1);
      this.#resetAfterLoss();
    } else {
      this.leaseLost();
    }
  }

  /** Records the session anew after a loss (new epoch), then appends what waits. */
  #resetAfterLoss(): void {
    // Events before the hole still waiting (in flight when the connection went) cannot go in the
    // new epoch, which starts after the hole: they are part of the loss.
    let lost = 0;
    while (lost < this.#pending.length && this.#pending[lost]!.seq <= this.#hole) lost++;
    if (lost > 0) {
      this.#take(0, lost);
      this.#wakeStored(this.#hole);
    }
    const first = this.#pending[0]?.seq ?? this.#session.latestSeq + 1;
    const epoch = randomId();
    const generation = ++this.#generation;
    this.#resetting = true;
    this.#store.reset(this.#session.id, this.#session.principal, epoch, first - 1).then(
      (fence) => {
        if (generation !== this.#generation) return;
        this.#resetting = false;
        this.#host.logError("session history lost in the store: new epoch", {
          session: this.#session.id,
          from_seq: first,
        });
        // A drop while the reset was on its way took every event waiting: the next reset starts after it.
        if (this.#hole < first) this.#hole = 0;
        this.#retryMs = 0;
        this.#fence = fence;
        this.#session.epoch = epoch;
        this.#flush();
      },
      () => {
        // `recovered`, the retry or the next emit tries again.
        if (generation !== this.#generation) return;
        this.#resetting = false;
        this.#retryLater();
      },
    );
  }

  /** Another node owns the session now: the work here stops, the events not in the store are dropped (and said so). */
  #onLost(why: string): void {
    const dropped = this.#dropPending();
    this.#host.logError("session taken over by another node", { session: this.#session.id, why, dropped });
    this.#session.stopWork(new RpcError(ErrorCode.SessionBusy, "Session taken over by another node"));
    this.#session.seqAt(this.#delivered);
    void this.viewersChanged().then(() => this.#fill());
  }

  /**
   * The store has no such session: it lost it (or it was closed and this node missed it). The
   * viewers here are told with `session.closed {reason: "store_lost"}` (not stored: there is
   * nowhere to), the work here stops, the session ends here too.
   */
  #storeLost(): void {
    if (this.#session.closed) return;
    this.#fence = 0;
    const dropped = this.#dropPending();
    this.#host.logError("session lost by the store", { session: this.#session.id, dropped });
    const seq = this.#delivered + 1;
    this.#deliver(seq, sessionEventFrame(this.#session.framePrefix, seq, "session.closed", { reason: "store_lost" }));
    this.#session.end("store_lost");
  }

  /** Forgets every event not stored (nothing will store them) and wakes who waits; returns how many. */
  #dropPending(): number {
    const dropped = this.#pending.length;
    this.#take(0, dropped);
    this.#forgetInFlight();
    this.#wakeStored(Infinity);
    return dropped;
  }

  #failPending(message: string, error: unknown): void {
    const dropped = this.#dropPending();
    this.#host.logError(message, { session: this.#session.id, dropped, error });
    this.#session.stopWork(storeError(error));
  }

  /** Who waits for a seq to be stored (`stored`, `#flushed`), in seq order. */
  #storedWaiters: { seq: number; wake: () => void }[] = [];

  /**
   * Resolves once the session is recorded and the events emitted here so far are stored and
   * written to the viewers here (or dropped); with the error to answer if the session could not
   * be recorded. Undefined when nothing is on its way.
   */
  stored(): Promise<RpcError | undefined> | undefined {
    if (this.#notCreated) return Promise.resolve(this.#notCreated);
    const last = this.#pending.at(-1);
    const creating = this.#acquiring;
    if (!last) return creating?.then(() => this.#notCreated);
    return this.#flushed().then(() => this.#notCreated);
  }

  /** Resolves once every event emitted here so far is in the store (or dropped). */
  #flushed(): Promise<void> {
    const last = this.#pending.at(-1);
    if (!last) return Promise.resolve();
    return new Promise((wake) => this.#storedWaiters.push({ seq: last.seq, wake }));
  }

  #wakeStored(upTo: number): void {
    let count = 0;
    while (count < this.#storedWaiters.length && this.#storedWaiters[count]!.seq <= upTo) count++;
    for (const { wake } of this.#storedWaiters.splice(0, count)) wake();
  }

  #push(item: Pending): void {
    this.#pending.push(item);
    this.#pendingBytes += item.frame.length;
  }

  /** Removes `count` pending events from `start` and returns them. */
  #take(start: number, count: number): Pending[] {
    const taken = this.#pending.splice(start, count);
    for (const item of taken) this.#pendingBytes -= item.frame.length;
    return taken;
  }

  // ---- the application state ----

  /** An event was folded into the state here, the owner: save it when enough are. */
  #stateFolded(): void {
    if (this.#session.state === undefined) return; // the gateway keeps no state
    this.#unsaved++;
    this.#scheduleSave();
  }

  #scheduleSave(): void {
    if (this.#unsaved >= STATE_SAVE_EVENTS) void this.#saveState();
    else if (this.#unsaved > 0 && this.#saveTimer === undefined && !this.#saving) {
      this.#saveTimer = unref(setTimeout(() => void this.#saveState(), STATE_SAVE_MS));
    }
  }

  /** Saves the state as folded now (one save at a time; what is folded meanwhile is saved next). */
  #saveState(): Promise<void> {
    if (this.#saving) return this.#saving;
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    // A session that ended here as `moved` goes on in the store: its state is saved all the same.
    if (this.#unsaved === 0 || this.#fence === 0) return Promise.resolve();
    const count = this.#unsaved;
    this.#unsaved = 0;
    const session = this.#session;
    const save = this.#store.saveState(session.id, this.#fence, session.stateSeq, JSON.stringify(session.state));
    this.#saving = save.then(
      () => {},
      () => {
        // Unreachable store (it logs that itself): saved later, with what is folded by then.
        this.#unsaved += count;
      },
    ).finally(() => {
      this.#saving = undefined;
      if (this.#fence > 0) this.#scheduleSave();
    });
    return this.#saving;
  }

  // ---- taking the lease ----

  /** Takes the lease, waiting (bounded) for another node to let go; then sends what waits. */
  #acquire(): Promise<void> {
    if (this.#acquiring) return this.#acquiring;
    if (this.#closing) return Promise.resolve();
    const run = async () => {
      const deadline = Date.now() + OWNER_WAIT_MS;
      for (;;) {
        const got = await this.#store.acquire(this.#session.id);
        if (got.kind === "missing") {
          this.#storeLost();
          return;
        }
        if (got.kind === "owned") {
          await this.#takeOver(got.fence, got.last, got.lapsed, got.requests);
          return;
        }
        if (Date.now() > deadline) throw new RpcError(ErrorCode.SessionBusy, "Session busy on another node");
        await new Promise((resolve) => setTimeout(resolve, Math.min(got.retryMs, 100)));
      }
    };
    this.#acquiring = run().catch((error: unknown) => this.#failPending("events dropped: session not owned", error))
      .finally(() => {
        this.#acquiring = undefined;
        // Events renumbered by the take-over are on their way: those waiting are woken when they are stored.
        if (this.#pending.length === 0) this.#wakeStored(Infinity);
      });
    return this.#acquiring;
  }

  /**
   * This node owns the session from now: it catches up with the store, tells the viewers
   * if the previous owner died mid-work (`session.interrupted`, its requests cancelled),
   * renumbers what it emitted meanwhile after the store's last seq, and sends it.
   */
  async #takeOver(fence: number, last: number, lapsed: boolean, requests: string[]): Promise<void> {
    if (this.#delivered < last) await this.#fill();
    // From the fence on, nothing awaits until what waits is renumbered and sent: an emit meanwhile
    // would flush the old numbers, and that append's answer would then take renumbered events off
    // the queue without writing them here.
    this.#fence = fence;
    const waiting = this.#take(0, this.#pending.length);
    this.#forgetInFlight();
    // Events dropped here before never reached the store or a viewer, and what waits is renumbered
    // right after the store's last seq: the store has no gap, so no new epoch is needed.
    this.#hole = 0;
    this.#session.seqAt(last);
    const prefix = this.#session.framePrefix;
    const stamp = (type: string, payload: unknown) => {
      const seq = this.#session.latestSeq + 1;
      this.#session.seqAt(seq);
      this.#push({ seq, frame: sessionEventFrame(prefix, seq, type, payload), type, payload });
    };
    if (lapsed) {
      stamp("session.interrupted", { reason: "owner_lost" });
      for (const id of requests) {
        stamp("request.cancel", { id, reason: "owner_lost" });
        this.settleRequest(id);
      }
    }
    // Who waits for the renumbered events waits for their new seqs (they move by one amount).
    const shift = waiting.length > 0 ? this.#session.latestSeq + 1 - waiting[0]!.seq : 0;
    for (const waiter of this.#storedWaiters) waiter.seq += shift;
    for (const item of waiting) {
      const seq = this.#session.latestSeq + 1;
      this.#session.seqAt(seq);
      // Only the seq changes.
      this.#push({
        ...item,
        seq,
        frame: sessionEventFromTail(prefix, seq, sessionEventTail(item.frame, prefix, item.seq)),
      });
    }
    this.#flush();
    // Owning, it no longer listens: its own appends are written here as they are stored.
    await this.#setSubscribed(false);
  }

  // ---- viewing: the channel ----

  async #setSubscribed(on: boolean): Promise<void> {
    if (on === this.#subscribed) return;
    this.#subscribed = on;
    if (!on) {
      await this.#store.unsubscribe(this.#session.id).catch(() => {});
      return;
    }
    this.#queued = [];
    try {
      await this.#store.subscribe(this.#session.id, (message) => this.#onMessage(message));
    } catch (error) {
      this.#subscribed = false;
      this.#queued = undefined;
      throw storeError(error);
    }
    // Events published before the subscription took are in the store.
    await this.#fill();
  }

  /** Subscribed or owning, and caught up with the store. */
  async #ensureLive(): Promise<void> {
    if (this.#fence === 0 && !this.#acquiring) await this.viewersChanged();
    if (this.#reading) await this.#reading;
  }

  #onMessage(message: SessionMessage): void {
    if (this.#queued) {
      this.#queued.push(message);
      return;
    }
    if (message.kind === "request") {
      this.#writeRequest(message.frame);
      return;
    }
    if (message.first > this.#delivered + 1) {
      // Pub/sub lost something (or it was published before we listened): read it from the store.
      this.#queued = [message];
      void this.#fill();
      return;
    }
    message.frames.forEach((frame, i) => this.#deliver(message.first + i, frame));
    if (message.closed) this.#session.end("closed");
  }

  /** Reads the store after the last seq written here, writes what is new, then what queued meanwhile. */
  #fill(): Promise<void> {
    if (this.#reading) return this.#reading;
    this.#queued ??= [];
    const run = async () => {
      for (;;) {
        // The frames read start after `after`; `#delivered` may move on meanwhile (an append's answer,
        // pub/sub), and `#deliver` then skips those it wrote already.
        const after = this.#delivered;
        const read: SharedRead | undefined = await this.#store.read(this.#session.id, after);
        if (!read) {
          this.#storeLost();
          return;
        }
        if (read.first > after + 1 && read.first > this.#delivered + 1) {
          // Evicted before this node read them: the viewers here resume to learn it (`truncated`).
          this.#host.logError("events evicted before this node read them", {
            session: this.#session.id,
            from_seq: this.#delivered + 1,
            to_seq: read.first - 1,
          });
          this.#delivered = read.first - 1;
        }
        this.#session.epoch = read.epoch;
        const start = Math.max(after + 1, read.first);
        read.frames.forEach((frame, i) => this.#deliver(start + i, frame));
        if (read.frames.length === 0 || this.#delivered >= read.last) return;
      }
    };
    this.#reading = run().catch(() => {
      // Unreachable store: `recovered` reads again.
    }).finally(() => {
      this.#reading = undefined;
      const queued = this.#queued ?? [];
      this.#queued = undefined;
      for (const message of queued) this.#onMessage(message);
    });
    return this.#reading;
  }

  // ---- writing to the viewers here ----

  /** Writes event `seq` to the viewers here unless it was written already; viewers catching up buffer it. */
  #deliver(seq: number, frame: string, emitted?: Pending): void {
    if (seq <= this.#delivered) return;
    this.#delivered = seq;
    if (seq > this.#session.latestSeq) this.#session.seqAt(seq);
    if (emitted) this.#session.fold(seq, emitted.type, emitted.payload);
    else this.#session.foldFrame(seq, frame);
    if (this.#fence > 0) this.#stateFolded();
    this.#session.deliver(frame);
    for (const buffer of this.#catchUps.values()) buffer.push({ seq, frame });
  }

  #writeRequest(frame: string): void {
    this.#host.requestSeen(requestIdOf(frame), this.#session);
    this.#session.deliverRequest(frame);
    for (const buffer of this.#catchUps.values()) buffer.push({ seq: 0, frame });
  }
}

/** Lets `timer` not keep the process alive by itself (Node, Deno and Bun timers all have `unref`). */
export function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

/** The JSON-RPC error a store failure answers with. */
export function storeError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  return new RpcError(ErrorCode.StoreUnavailable, "Session store unavailable");
}
