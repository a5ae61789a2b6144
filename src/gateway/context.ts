import type { Id } from "../jsonrpc/message.ts";
import type { ResumeResult } from "../jsonrpc/protocol.ts";
import type { SessionRegistry, SessionSummary, SinceResult } from "../sessions/registry.ts";
import type { CreateSessionOptions, SessionHandle, SessionViewer } from "../sessions/session.ts";
import type { Logger } from "./logger.ts";

/** The calling connection, as a handler sees it. */
export interface ConnectionHandle {
  /** Random per connection; also sent in `gateway.ready`. */
  readonly id: string;
  /** The peer's address where the runtime tells, else "unknown" (stdio: "stdio"). */
  readonly peer: string;
  /** Who is on the other end: what `auth(c)` returned, or "anonymous" without auth. Sessions belong to it. */
  readonly principal: string;
  /**
   * What the client said it supports, for the application to keep (e.g. from a handshake
   * method): a copy of `createGateway({ capabilities })` at first. The gateway reads
   * `serverRequests`: while it is `false`, this connection gets no server → client requests.
   */
  readonly capabilities: Record<string, unknown>;
  /**
   * Sends a connection-wide event `{type, payload}` (no `session_id`, no `seq`) to this
   * connection only. Returns false once the connection is closed.
   */
  emit(type: string, payload?: unknown): boolean;
}

/** What a method handler gets beside its params. */
export interface HandlerContext {
  /** The request id; undefined for a notification. */
  readonly id: Id | undefined;
  /** The method name as the client sent it. */
  readonly method: string;
  /** Aborted by `rpc.cancel` for this request, or when the connection closes. */
  readonly signal: AbortSignal;
  /** The connection the call came on. */
  readonly connection: ConnectionHandle;
  /** The gateway's logger. */
  readonly log: Logger;
  /** Sessions of the calling principal. */
  readonly sessions: SessionsHandle;
  /**
   * The session `id` if the caller's principal may use it, else throws `RpcError` -32001.
   * It also binds this call to the session: when the connection drops, the call's `signal`
   * is left running (the session's work goes on, its answer is dropped) and is aborted only
   * if the session ends. A call binds to the first session it touches.
   */
  session(id: string): SessionHandle;
}

/** `ctx.sessions`. */
export interface SessionsHandle {
  /** Creates a session owned by the caller's principal, with the calling connection attached; binds this call to it. */
  create(options?: CreateSessionOptions): SessionHandle;
  /** The caller's live sessions on this node, in creation order. */
  list(): SessionHandle[];
  /**
   * The caller's session `id`, wherever it lives: with a shared store, read from the store
   * (its state loaded) when it is not on this node. Binds this call to it, like
   * `ctx.session(id)`. Rejects with -32001 like it (-32005 if the store is unreachable).
   */
  open(id: string): Promise<SessionHandle>;
  /**
   * The caller's sessions on every node (in memory: the live ones), oldest first, at most 1,000
   * (the newest), each with its state at its latest seq.
   */
  all(): Promise<SessionSummary[]>;
  /**
   * Interrupts the work of the caller's session `id`, wherever it runs (`session.interrupt()`).
   * Unlike `open`, it does not bind this call to the session, so this call is not interrupted
   * (unless it is bound to that session already). Rejects like `open`.
   */
  interrupt(id: string): Promise<boolean>;
  /**
   * Attaches the calling connection to the caller's session `id`, wherever it lives, as
   * `session.resume` does: with `afterSeq`, the kept events after it are written first (all
   * kept ones, `truncated`, if `epoch` is not the session's); without it, only events from now
   * on. Open server requests are re-sent (if the connection takes them). Does not bind this call.
   */
  resume(id: string, options?: { afterSeq?: number; epoch?: string }): Promise<ResumeResult>;
  /**
   * A pull-style replay of the caller's session `id`, as `session.events.since` answers: the
   * kept events after `afterSeq` in the result, with the open server requests. Does not attach.
   */
  since(id: string, afterSeq: number, epoch?: string): Promise<SinceResult>;
  /**
   * Answers the open server request `requestId` of the caller's session `id` with `result`, as
   * a client's reply would (e.g. for a client that answers by a method call instead). The first
   * answer wins, on any node; resolves false if the request was not open (or already answered).
   */
  answer(id: string, requestId: string, result: unknown): Promise<boolean>;
}

/**
 * What the built-in methods see of a call (internal): its connection's own `cancel` and the
 * gateway's session registry besides what every handler gets. Every call's context is one.
 */
export interface CallContext extends HandlerContext {
  readonly connection: ConnectionHandle & SessionViewer & {
    /** Cancels this connection's in-flight request `id`; false if there is none. */
    cancel(id: Id): boolean;
    /** Holds this connection's later calls until `until` settles (a resume reading a shared store). */
    holdCalls(until: Promise<unknown>): void;
    readonly sessionRegistry: SessionRegistry;
  };
}
