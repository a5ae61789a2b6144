/**
 * The session registry: creates sessions, checks who may use them, routes replies to server
 * requests, and ends sessions left behind — detached past their grace period, idle past
 * their TTL, or the least recently active when the cap is reached.
 */
import { ErrorCode, RpcError } from "../jsonrpc/errors.ts";
import {
  type CreateSessionOptions,
  type EndReason,
  type OrphanPolicy,
  randomId,
  type ResumeResult,
  Session,
  type SessionHandle,
  type SessionHost,
  type SessionViewer,
  type ViewerInfo,
} from "./session.ts";
import { MemoryStore, type ReplayLimits, type SessionStore } from "./store.ts";

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
  /** Where ownership and events are kept. Default: a `MemoryStore` with the bounds above. */
  store?: SessionStore;
}

/** What the registry reports into a connection's teardown log line. */
export interface ReleaseCounts {
  /** `closeOnDisconnect` sessions ended by this disconnect. */
  reaped: number;
  /** Sessions left without viewers, waiting for a resume. */
  detached: number;
}

type Log = (message: string, fields: Record<string, unknown>) => void;

const NOT_FOUND = "Session not found";

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
  readonly epoch: string;
  #sessions = new Map<string, Session>();
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

  constructor(options: SessionOptions, epoch: string, logError: Log) {
    this.epoch = epoch;
    this.#graceMs = options.graceMs ?? 20_000;
    this.#idleTtlMs = options.idleTtlMs ?? 24 * 60 * 60_000;
    this.#maxSessions = options.maxSessions ?? 10_000;
    this.#onOrphan = options.onOrphan;
    this.#hooks = options.hooks ?? {};
    this.#logError = logError;
    this.store = options.store ??
      new MemoryStore(
        { maxEvents: options.replay?.maxEvents ?? 512, maxBytes: options.replay?.maxBytes ?? 4 << 20 },
        options.replayBudgetBytes ?? 64 << 20,
      );
    this.#host = {
      store: this.store,
      requestOpened: (id, session) => this.#requests.set(id, session),
      requestSettled: (id) => this.#requests.delete(id),
      ended: (session, reason) => this.#ended(session, reason),
    };
  }

  /** Live sessions. */
  get size(): number {
    return this.#sessions.size;
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
    const session = new Session(this.#host, randomId(), viewer.principal, options);
    this.store.create(session.id, session.principal);
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
    if (!session || this.store.owner(id) !== principal) throw new RpcError(ErrorCode.SessionNotFound, NOT_FOUND);
    session.lastActive = performance.now();
    return session;
  }

  /** `session.resume`: attach `viewer`, replay after `afterSeq`, re-send open requests. */
  resume(viewer: SessionViewer, id: string, afterSeq: number): ResumeResult {
    const session = this.use(id, viewer.principal);
    const result = session.resume(viewer, afterSeq, this.epoch);
    this.#call("attached", () => this.#hooks.attached?.(session, viewer));
    return result;
  }

  /** `session.events.since`: the kept events after `afterSeq`, without attaching. */
  since(
    principal: string,
    id: string,
    afterSeq: number,
  ): { events: unknown[]; latest_seq: number; truncated: boolean } {
    const session = this.use(id, principal);
    const { frames, truncated } = this.store.read(id, afterSeq);
    return {
      events: frames.map((frame) => (JSON.parse(frame) as { params: unknown }).params),
      latest_seq: session.latestSeq,
      truncated,
    };
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
    return session.reply(id, result, error);
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
      } else {
        this.#startOrphanTimer(session);
        counts.detached++;
      }
    }
    return counts;
  }

  /** Ends every session (`shutdown`) and stops the timers: the gateway is closing. */
  shutdown(): void {
    for (const session of [...this.#sessions.values()]) session.close("shutdown");
    clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
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
    this.#sessions.delete(session.id);
    this.store.delete(session.id);
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
