/**
 * The session registry: creates sessions, checks who may use them, routes replies to server
 * requests, and ends sessions left behind — detached past their grace period, idle past
 * their TTL, or the least recently active when the cap is reached.
 */
import { ErrorCode, RpcError } from "../jsonrpc/errors.ts";
import {
  type CreateSessionOptions,
  type EndReason,
  eventOfFrame,
  type OpenRequest,
  openRequestOf,
  type OrphanPolicy,
  randomId,
  type ResumeResult,
  Session,
  type SessionHandle,
  type SessionHost,
  type SessionState,
  type SessionViewer,
  type ViewerInfo,
} from "./session.ts";
import { MemoryStore, type ReplayLimits, type SessionStore } from "./store.ts";
import { isShared, type NodeMessage, type SharedStore, type StoredSession } from "./shared-store.ts";
import { type LinkHost, SharedLink, storeError, unref } from "./shared-link.ts";
import type { SessionObserver } from "./observer.ts";

/** Called when sessions change; a hook that throws is logged and ignored. */
export interface SessionHooks {
  /** A session was created (its creator is attached next). */
  created?(session: SessionHandle): void;
  /** A connection attached: the creator, or a resume. */
  attached?(session: SessionHandle, connection: ViewerInfo): void;
  /** A connection detached: it closed, or the session ended. */
  detached?(session: SessionHandle, connection: ViewerInfo): void;
  /** The session ended, for `reason`. */
  closed?(session: SessionHandle, reason: EndReason): void;
}

/** The `sessions` option of `createGateway`. */
export interface SessionOptions {
  /** How long a session without viewers is kept for resume. Default 20 s; 0 keeps it until another rule ends it. */
  graceMs?: number;
  /** A session with no event, request, attach or handler access for this long ends (`idle_timeout`). Default 24 h. */
  idleTtlMs?: number;
  /** Live sessions at most; creating one more ends the least recently active (`evicted`). Default 10,000. */
  maxSessions?: number;
  /** Per-session replay ring bounds (in-memory store). Default 512 events, 4 MiB. */
  replay?: Partial<ReplayLimits>;
  /** Replay bytes across all sessions (in-memory store); over it, the least recently appended rings are emptied. Default 64 MiB. */
  replayBudgetBytes?: number;
  /** What to do when a detached session's grace period ends. Default: reap (`orphan_reap`). */
  onOrphan?: OrphanPolicy;
  /** Called as sessions are created, attached, detached and closed. */
  hooks?: SessionHooks;
  /**
   * Application state kept with every session, folded from its events (`session.state`); with
   * a shared store it is saved there, so another node that takes the session has it too.
   */
  // deno-lint-ignore no-explicit-any
  state?: SessionState<any>;
  /**
   * Where ownership and events are kept. Default: a `MemoryStore` with the bounds above. A
   * shared store (`RedisStore` from `switchboard/redis`) lets several gateway nodes serve the
   * same sessions (docs/guide.md, Several nodes); the gateway closes it when it closes.
   */
  store?: SessionStore | SharedStore;
}

/** What the registry reports into a connection's teardown log line. */
export interface ReleaseCounts {
  /** `closeOnDisconnect` sessions ended by this disconnect. */
  reaped: number;
  /** Sessions left without viewers, waiting for a resume. */
  detached: number;
}

type Log = (message: string, fields: Record<string, unknown>) => void;

/** The answer of `session.events.since` and `ctx.sessions.since()`: a pull-style replay. */
export interface SinceResult {
  /** The kept events after the seq asked for, as bare event objects `{session_id, seq, type, payload}`. */
  events: unknown[];
  /** How many events `events` holds. */
  count: number;
  /** The seq of the session's last event. */
  latest_seq: number;
  /** Events after the seq asked for are missing: evicted, of another epoch, or the seq is past `latest_seq`. */
  truncated: boolean;
  /** The epoch the seqs count in. */
  epoch: string;
  /** The server requests still waiting for an answer. */
  open_requests: OpenRequest[];
}

type ErrorObjectLike = { code: number; message: string; data?: unknown };

const NOT_FOUND = "Session not found";

/** A session of the caller's, as `ctx.sessions.all()` lists it. */
export interface SessionSummary {
  /** The session's id. */
  readonly id: string;
  /** When it was created, in milliseconds since the Unix epoch. */
  readonly createdAt: number;
  /** The seq of its last event. */
  readonly latestSeq: number;
  /** Its application state (`sessions.state`) at `latestSeq`. */
  readonly state: unknown;
}

/** A pull-style replay's answer from what the store read. */
function sinceResult(
  frames: string[],
  latest: number,
  truncated: boolean,
  epoch: string,
  requests: OpenRequest[],
): SinceResult {
  return {
    events: frames.map((frame) => (JSON.parse(frame) as { params: unknown }).params),
    count: frames.length,
    latest_seq: latest,
    truncated,
    epoch,
    open_requests: requests,
  };
}

/** How many sessions `all()` lists at most (the newest). */
export const LIST_LIMIT = 1_000;

/** `gateway.sessions`: the live sessions, for application code outside handlers. */
export interface GatewaySessions {
  /** Live sessions. */
  readonly size: number;
  /** A live session by id (no ownership check). */
  get(id: string): SessionHandle | undefined;
  /** The live sessions of `principal`. */
  list(principal: string): SessionHandle[];
}

/** The sessions of one gateway. */
export class SessionRegistry implements GatewaySessions {
  readonly store: SessionStore;
  /** The shared store, when sessions live across nodes (then `store` is an empty local one). */
  readonly shared: SharedStore | undefined;
  #epoch: string;
  #leaseTimer: ReturnType<typeof setInterval> | undefined;
  #linkHost: LinkHost | undefined;
  #sessions = new Map<string, Session>();
  /**
   * Sessions read from the shared store and not yet handed to who asked for them: the lease tick
   * must not end them as idle (nothing views them yet), or a resume would attach to an ended one.
   */
  #opening = new Set<Session>();
  /** Open server requests by id, to route replies. */
  #requests = new Map<string, Session>();
  #graceMs: number;
  #idleTtlMs: number;
  #maxSessions: number;
  #onOrphan: OrphanPolicy | undefined;
  #hooks: SessionHooks;
  #logError: Log;
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  #host: SessionHost;

  /** The gateway's telemetry, with an OpenTelemetry SDK. */
  readonly observer: SessionObserver | undefined;

  constructor(options: SessionOptions, epoch: string, logError: Log, observer?: SessionObserver) {
    this.#epoch = epoch;
    this.observer = observer;
    this.#graceMs = options.graceMs ?? 20_000;
    this.#idleTtlMs = options.idleTtlMs ?? 24 * 60 * 60_000;
    this.#maxSessions = options.maxSessions ?? 10_000;
    this.#onOrphan = options.onOrphan;
    this.#hooks = options.hooks ?? {};
    this.#logError = logError;
    const given = options.store;
    this.shared = given && isShared(given) ? given : undefined;
    this.store = given && !isShared(given) ? given : new MemoryStore(
      { maxEvents: options.replay?.maxEvents ?? 512, maxBytes: options.replay?.maxBytes ?? 4 << 20 },
      options.replayBudgetBytes ?? 64 << 20,
    );
    this.#host = {
      store: this.store,
      requestOpened: (id, session) => this.#requests.set(id, session),
      requestSettled: (id) => this.#requests.delete(id),
      ended: (session, reason) => this.#ended(session, reason),
      idle: (session) => this.#idle(session),
      state: options.state,
      stateFailed: (session, seq, error) => logError("session state apply failed", { session: session.id, seq, error }),
      observer,
    };
    if (this.shared) this.#share(this.shared, logError);
  }

  /** The epoch in `gateway.ready`: the gateway's own, or with a shared store the store's (the same on every node). */
  get epoch(): string {
    return this.shared?.epoch ?? this.#epoch;
  }

  /** Live sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Live sessions here with a viewer (`attached`) and without (`orphaned`), and open server requests: for metrics. */
  gauges(): { attached: number; orphaned: number; requests: number } {
    let attached = 0;
    for (const session of this.#sessions.values()) if (session.viewers > 0) attached++;
    return { attached, orphaned: this.#sessions.size - attached, requests: this.#requests.size };
  }

  /** A live session by id, for application code outside handlers (no ownership check). */
  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  /** The live sessions owned by `principal`. */
  list(principal: string): Session[] {
    return [...this.#sessions.values()].filter((session) => session.principal === principal);
  }

  /** Creates a session owned by `viewer`'s principal, with `viewer` attached. */
  create(viewer: SessionViewer, options: CreateSessionOptions = {}): Session {
    if (this.#sessions.size >= this.#maxSessions) this.#leastRecent()?.close("evicted");
    const session = new Session(
      this.#host,
      randomId(),
      viewer.principal,
      this.shared ? randomId() : this.epoch,
      options,
    );
    if (this.#linkHost) SharedLink.created(this.#linkHost, session);
    else this.store.create(session.id, session.principal);
    this.#sessions.set(session.id, session);
    this.#call("created", () => this.#hooks.created?.(session));
    this.#attach(session, viewer);
    this.#scheduleSweep();
    return session;
  }

  /**
   * The session `id` if `principal` may use it; otherwise -32001, the same for a session that
   * does not exist and one that belongs to someone else, so existence is not leaked.
   */
  use(id: string, principal: string): Session {
    const session = this.#sessions.get(id);
    const owner = this.shared ? session?.principal : this.store.owner(id);
    if (!session || session.closed || owner !== principal) throw new RpcError(ErrorCode.SessionNotFound, NOT_FOUND);
    session.lastActive = performance.now();
    return session;
  }

  /** `ctx.sessions.open()`: the session `id` of `principal`, read from the shared store if it is not here. */
  open(id: string, principal: string): Promise<Session> {
    return this.shared ? this.#sharedSession(id, principal) : Promise.resolve().then(() => this.use(id, principal));
  }

  /** `ctx.sessions.all()`: the sessions of `principal` on every node, oldest first. */
  async all(principal: string): Promise<SessionSummary[]> {
    const summary = (session: Session): SessionSummary => ({
      id: session.id,
      createdAt: session.createdAt,
      latestSeq: session.latestSeq,
      state: session.state,
    });
    if (!this.shared) return this.list(principal).slice(-LIST_LIMIT).map(summary);
    const store = this.shared;
    const stored = await store.list(principal, LIST_LIMIT).catch((error) => {
      throw storeError(error);
    });
    return await Promise.all(stored.map(async (entry) => {
      const local = this.#sessions.get(entry.id);
      if (local && !local.closed) return summary(local);
      const state = await this.#storedState(store, entry);
      return { id: entry.id, createdAt: entry.createdAt, latestSeq: entry.last, state };
    }));
  }

  /** A listed session's state at its last seq: as saved, with the events stored after it folded in. */
  async #storedState(store: SharedStore, entry: StoredSession): Promise<unknown> {
    const fold = this.#host.state;
    if (!fold) return undefined;
    let state = entry.state ? JSON.parse(entry.state.state) : fold.initial();
    await this.#foldStored(store, entry.id, entry.state?.seq ?? 0, entry.last, (seq, frame) => {
      try {
        state = fold.apply(state, { seq, ...eventOfFrame(frame) });
      } catch (error) {
        this.#logError("session state apply failed", { session: entry.id, seq, error });
      }
    }).catch(() => {
      // Unreachable store or a session gone meanwhile: the state as far as it was folded.
    });
    return state;
  }

  /**
   * Reads the events of session `id` stored after `after` (in pages, up to `last` and whatever
   * came since) and hands each to `fold`; resolves with the seq reached. Rejects with -32001 if
   * the session is gone, -32005 if the store is unreachable.
   */
  async #foldStored(
    store: SharedStore,
    id: string,
    after: number,
    last: number,
    fold: (seq: number, frame: string) => void,
  ): Promise<number> {
    while (after < last) {
      const read = await store.read(id, after).catch((error) => {
        throw storeError(error);
      });
      if (!read) throw new RpcError(ErrorCode.SessionNotFound, NOT_FOUND);
      if (read.first > after + 1) {
        this.#logError("session state misses evicted events", { session: id, from_seq: after + 1 });
      }
      const start = Math.max(after + 1, read.first);
      read.frames.forEach((frame, i) => fold(start + i, frame));
      after = read.frames.length > 0 ? start + read.frames.length - 1 : read.last;
      last = read.last;
    }
    return after;
  }

  /**
   * `session.resume`: attach `viewer`, replay after `afterSeq` (from the start if `epoch` is
   * not the session's), re-send open requests. With a shared store it reads the store, so it
   * answers asynchronously (and finds sessions of other nodes).
   */
  resume(
    viewer: SessionViewer,
    id: string,
    afterSeq: number | undefined,
    epoch?: string,
  ): ResumeResult | Promise<ResumeResult> {
    if (this.#linkHost) return this.#resumeShared(viewer, id, afterSeq, epoch);
    const session = this.use(id, viewer.principal);
    const result = session.resume(viewer, afterSeq, epoch);
    this.#call("attached", () => this.#hooks.attached?.(session, viewer));
    return result;
  }

  async #resumeShared(
    viewer: SessionViewer,
    id: string,
    afterSeq: number | undefined,
    epoch?: string,
  ): Promise<ResumeResult> {
    const session = await this.#sharedSession(id, viewer.principal);
    const result = await session.link!.resume(viewer, afterSeq, epoch);
    await session.link!.viewersChanged();
    this.#call("attached", () => this.#hooks.attached?.(session, viewer));
    return result;
  }

  /** With a shared store: the session here, or (read from the store) a new one here that views it. */
  async #sharedSession(id: string, principal: string): Promise<Session> {
    const local = this.#sessions.get(id);
    if (local && !local.closed) return this.use(id, principal);
    const store = this.shared!;
    const read = await this.#readOwned(store, id, principal, Number.MAX_SAFE_INTEGER);
    const session = new Session(this.#host, id, principal, read.epoch, {});
    session.createdAt = read.createdAt;
    const last = this.#host.state ? await this.#loadState(store, session, read.last) : read.last;
    const again = this.#sessions.get(id);
    if (again && !again.closed) return again;
    const link = SharedLink.viewed(this.#linkHost!, session, last);
    this.#sessions.set(id, session);
    this.#opening.add(session);
    try {
      // A session whose owner died mid-work is taken over now, so what is read here shows that work ended.
      await link.takeOverLapsed().catch(() => {});
    } finally {
      this.#opening.delete(session);
    }
    return session;
  }

  /** Restores the session's state as saved and folds the events after it; resolves with the seq it is at. */
  async #loadState(store: SharedStore, session: Session, last: number): Promise<number> {
    const saved = await store.loadState(session.id).catch((error) => {
      throw storeError(error);
    });
    if (saved) session.restoreState(JSON.parse(saved.state), saved.seq);
    return await this.#foldStored(
      store,
      session.id,
      session.stateSeq,
      last,
      (seq, frame) => session.foldFrame(seq, frame),
    );
  }

  /**
   * `session.events.since`: the kept events after `afterSeq` (all kept ones, truncated, if
   * `epoch` is not the session's) and the open requests, without attaching.
   */
  since(principal: string, id: string, afterSeq: number, epoch?: string): SinceResult | Promise<SinceResult> {
    if (this.shared) return this.#sinceShared(this.shared, principal, id, afterSeq, epoch);
    const session = this.use(id, principal);
    const otherEpoch = epoch !== undefined && epoch !== session.epoch;
    const { frames, truncated } = this.store.read(id, otherEpoch ? 0 : afterSeq);
    return sinceResult(frames, session.latestSeq, truncated || otherEpoch, session.epoch, session.openRequestList());
  }

  /** The store's read of session `id` after `afterSeq`, if `principal` owns it; else -32001 (-32005 if unreachable). */
  async #readOwned(store: SharedStore, id: string, principal: string, afterSeq: number) {
    const read = await store.read(id, afterSeq).catch((error) => {
      throw storeError(error);
    });
    if (!read || read.principal !== principal) throw new RpcError(ErrorCode.SessionNotFound, NOT_FOUND);
    return read;
  }

  async #sinceShared(
    store: SharedStore,
    principal: string,
    id: string,
    afterSeq: number,
    epoch?: string,
  ): Promise<SinceResult> {
    let read = await this.#readOwned(store, id, principal, afterSeq);
    const otherEpoch = epoch !== undefined && epoch !== read.epoch;
    if (otherEpoch && afterSeq > 0) read = await this.#readOwned(store, id, principal, 0);
    const after = otherEpoch ? 0 : afterSeq;
    const truncated = otherEpoch || after + 1 < read.first || after > read.last;
    // The store answers a page at a time: read on to the last seq of the first read.
    const frames = [...read.frames];
    const last = read.last;
    await this.#foldStored(store, id, Math.max(after, read.first - 1) + read.frames.length, last, (_, frame) => {
      frames.push(frame);
    });
    const requests = await store.requests(id).catch((error) => {
      throw storeError(error);
    });
    return sinceResult(frames, last, truncated, read.epoch, requests.map(openRequestOf));
  }

  /**
   * `ctx.sessions.answer()`: settles the open request `requestId` of `principal`'s session `id`
   * as a client's reply would (the first answer wins, on any node); false if it is not open.
   */
  async answer(principal: string, id: string, requestId: string, result: unknown): Promise<boolean> {
    if (!this.shared) return this.use(id, principal).reply(requestId, result, undefined);
    const store = this.shared;
    if (this.#sessions.has(id)) this.use(id, principal);
    else await this.#readOwned(store, id, principal, Number.MAX_SAFE_INTEGER);
    const response = JSON.stringify({ result: result === undefined ? null : result });
    return await store.answer(id, requestId, response).catch((error) => {
      throw storeError(error);
    });
  }

  /** `session.close`: ends the session (with a shared store, also one that lives on another node). */
  close(principal: string, id: string): void | Promise<void> {
    if (!this.shared || this.#sessions.has(id)) {
      this.use(id, principal).close("closed");
      return;
    }
    const store = this.shared;
    return (async () => {
      await this.#readOwned(store, id, principal, Number.MAX_SAFE_INTEGER);
      await store.closeSession(id, "closed").catch((error) => {
        throw storeError(error);
      });
    })();
  }

  /** Routes a client's reply to the session request it answers; false (dropped) if none is open for this viewer. */
  reply(
    viewer: SessionViewer,
    id: unknown,
    result: unknown,
    error: { code: number; message: string; data?: unknown } | undefined,
  ): boolean {
    if (typeof id !== "string") return false;
    const session = this.#requests.get(id);
    if (!session || !session.hasViewer(viewer)) return false;
    if (!this.shared) return session.reply(id, result, error);
    // The first reply on any node wins; the owner (maybe this node) settles it.
    this.#requests.delete(id);
    const response = JSON.stringify(error ? { error } : { result: result === undefined ? null : result });
    this.shared.answer(session.id, id, response).catch((cause: unknown) => {
      this.#logError("reply not delivered: store unavailable", { session: session.id, id, error: cause });
    });
    return true;
  }

  /**
   * A viewer's connection closed: sessions with other viewers carry on, `closeOnDisconnect`
   * ones end (`disconnect`), the rest wait `graceMs` for a resume.
   */
  release(viewer: SessionViewer): ReleaseCounts {
    const counts: ReleaseCounts = { reaped: 0, detached: 0 };
    for (const session of [...viewer.sessions]) {
      const left = session.detach(viewer);
      this.#call("detached", () => this.#hooks.detached?.(session, viewer));
      if (left > 0 || session.closed) continue;
      if (session.closeOnDisconnect) {
        session.close("disconnect");
        counts.reaped++;
      } else if (session.link) {
        // The store keeps it (and expires it after `graceMs` without viewers anywhere).
        void session.link.viewersChanged();
        this.#idle(session);
        counts.detached++;
      } else {
        this.#startOrphanTimer(session);
        counts.detached++;
      }
    }
    return counts;
  }

  /**
   * Ends every session (`shutdown`) and stops the timers: the gateway is closing. With a shared
   * store the sessions go on in the store: this node only lets go of them, then closes the store.
   */
  async shutdown(): Promise<void> {
    clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
    if (!this.shared) {
      for (const session of [...this.#sessions.values()]) session.close("shutdown");
      return;
    }
    clearInterval(this.#leaseTimer);
    this.#leaseTimer = undefined;
    const sessions = [...this.#sessions.values()];
    for (const session of sessions) session.end("shutdown");
    await Promise.all(sessions.map((session) => session.link!.detach()));
    await this.shared.quit().catch(() => {});
  }

  /**
   * With a shared store: a session with no viewer and nothing running here is let go of
   * (`moved`): its lease released, its channel left. It lives on in the store.
   */
  #idle(session: Session): void {
    const link = session.link;
    if (!link || session.closed || session.viewers > 0 || session.running > 0 || session.openRequests > 0) return;
    if (this.#opening.has(session)) return;
    if (!link.settled) return; // the lease tick looks again
    session.end("moved");
    void link.detach();
  }

  #share(store: SharedStore, logError: Log): void {
    this.#linkHost = {
      store,
      requestSeen: (id, session) => this.#requests.set(id, session),
      logError,
    };
    store.onNodeMessage = (message) => this.#nodeMessage(message);
    store.onTrouble = logError;
    store.onRecovered = () => {
      for (const session of this.#sessions.values()) session.link?.recovered();
    };
    // One tick renews the leases this node holds and keeps the sessions viewed here from expiring.
    // Often enough for the lease and for the expiry of sessions viewed here.
    const every = Math.min(store.leaseMs, store.graceMs > 0 ? store.graceMs : Infinity) / 3;
    this.#leaseTimer = unref(setInterval(() => this.#leaseTick(store), Math.max(50, every)));
  }

  #nodeMessage(message: NodeMessage): void {
    const session = this.#sessions.get(message.session);
    if (!session) return;
    if (message.kind === "closed") {
      session.link!.closedElsewhere(message.first, message.frames);
      return;
    }
    if (message.kind === "interrupt") {
      session.interruptHere();
      return;
    }
    const { result, error } = JSON.parse(message.response) as { result?: unknown; error?: ErrorObjectLike };
    session.reply(message.id, result, error);
  }

  #leaseTick(store: SharedStore): void {
    const leases: { id: string; fence: number; working: boolean }[] = [];
    const owners: Session[] = [];
    const viewed: string[] = [];
    for (const session of this.#sessions.values()) {
      const link = session.link!;
      if (session.viewers > 0) viewed.push(session.id);
      if (!link.owned) {
        this.#idle(session);
        continue;
      }
      const working = session.running > 0 || session.openRequests > 0 || !link.settled;
      if (!working && !link.appendedSinceTick) {
        // Nothing runs here: let another node take the session at once.
        void link.release().then(() => this.#idle(session));
        continue;
      }
      link.appendedSinceTick = false;
      leases.push({ id: session.id, fence: link.fence, working });
      owners.push(session);
    }
    if (leases.length === 0 && viewed.length === 0) return;
    store.renew(leases, viewed).then(
      (held) => {
        held.forEach((ok, i) => {
          const link = owners[i]!.link!;
          if (!ok && link.fence === leases[i]!.fence) link.leaseLost();
        });
      },
      () => {
        // Unreachable store: a lease that lapses meanwhile is found out by the next append.
      },
    );
  }

  #attach(session: Session, viewer: SessionViewer): void {
    session.attach(viewer);
    this.#call("attached", () => this.#hooks.attached?.(session, viewer));
  }

  #startOrphanTimer(session: Session): void {
    if (this.#graceMs === 0) return;
    session.orphanTimer = setTimeout(() => this.#orphaned(session), this.#graceMs);
  }

  #orphaned(session: Session): void {
    session.orphanTimer = undefined;
    if (session.closed || session.viewers > 0) return;
    const policy = session.onOrphan ?? this.#onOrphan;
    let decision = "reap";
    this.#call("onOrphan", () => (decision = policy?.(session) ?? "reap"));
    if (decision === "defer") this.#startOrphanTimer(session);
    else session.close("orphan_reap");
  }

  #ended(session: Session, reason: EndReason): void {
    if (this.#sessions.get(session.id) === session) this.#sessions.delete(session.id);
    if (!this.shared) this.store.delete(session.id);
    this.#call("closed", () => this.#hooks.closed?.(session, reason));
    if (this.#sessions.size === 0) {
      clearTimeout(this.#sweepTimer);
      this.#sweepTimer = undefined;
    }
  }

  #leastRecent(): Session | undefined {
    const now = performance.now();
    let oldest: Session | undefined;
    for (const session of this.#sessions.values()) {
      session.noteEvents(now);
      if (!oldest || session.lastActive < oldest.lastActive) oldest = session;
    }
    return oldest;
  }

  /**
   * One timer for the idle TTL across all sessions, running only while there are some. Events
   * count as activity when it (or an eviction) next looks, so a session idle since its last
   * event ends up to two sweeps past its TTL (one when the last activity was not an event).
   */
  #scheduleSweep(): void {
    if (this.#sweepTimer !== undefined) return;
    const every = Math.max(10, Math.min(this.#idleTtlMs / 2, 60_000));
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = undefined;
      const now = performance.now();
      for (const session of [...this.#sessions.values()]) {
        session.noteEvents(now);
        if (session.lastActive <= now - this.#idleTtlMs) session.close("idle_timeout");
      }
      if (this.#sessions.size > 0) this.#scheduleSweep();
    }, every);
  }

  #call(hook: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#logError("session hook failed", { hook, error });
    }
  }
}
