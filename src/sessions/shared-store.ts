/**
 * The contract of a store shared by several gateway nodes (docs/architecture.md, Several
 * nodes): sessions, their event logs and open server requests kept where every node reaches
 * them, ownership leases with fencing tokens, and live fan-out. `RedisStore`
 * (`switchboard/redis`) implements it; `SharedLink` drives it for one session.
 *
 * Unlike `SessionStore`, it is asynchronous: a node holds a session's live state only while a
 * viewer or work of it is here, and learns the rest from the store.
 */

import type { ReplayLimits } from "./store.ts";

/** What `load` and `read` tell about a session. */
export interface SharedMeta {
  /** The principal that created it. */
  principal: string;
  /** Changes only when the store lost the session's history. */
  epoch: string;
  /** The seq of its last event. */
  last: number;
}

/** What `read` returns: `SharedMeta` and the kept events after the seq asked for. */
export interface SharedRead extends SharedMeta {
  /** The serialised event frames, in order, at most the store's page size. */
  frames: string[];
  /** The seq of the oldest event kept (`last + 1` when none is). */
  first: number;
  /** When the session was created (ms since the Unix epoch). */
  createdAt: number;
}

/** A session as `list` finds it. */
export interface StoredSession {
  /** The session's id. */
  id: string;
  /** When it was created (ms since the Unix epoch). */
  createdAt: number;
  /** The seq of its last event. */
  last: number;
  /** Its application state as last saved (JSON) and the seq it is at, if it was saved. */
  state: { seq: number; state: string } | undefined;
}

/** The outcome of `acquire`. */
export type Acquired =
  /** This node owns the session now, with `fence`; `lapsed` if the previous owner's lease ran out mid-work. */
  | { kind: "owned"; fence: number; last: number; epoch: string; lapsed: boolean; requests: string[] }
  /** Another node holds a live lease for `retryMs` more. */
  | { kind: "held"; retryMs: number }
  /** No such session (or it was closed). */
  | { kind: "missing" };

/**
 * The outcome of `append`: the seq of the last event now stored, or why nothing was:
 * `fenced` (the lease is someone else's or lapsed), `gone` (the store lost the session),
 * `closed`, `gap` (the first seq is past the last + 1).
 */
export type Appended = number | "fenced" | "gone" | "closed" | "gap";

/** A message on a session's channel, as a viewing node receives it. */
export type SessionMessage =
  /** Events `first`, `first + 1`, … (appended, or the closing ones). */
  | { kind: "events"; first: number; frames: string[]; closed: boolean }
  /** A server request opened by the session's owner. */
  | { kind: "request"; frame: string };

/** A message on this node's channel, for the sessions it owns. */
export type NodeMessage =
  /** A client's reply to server request `id` won (it was the first). */
  | { kind: "answer"; session: string; id: string; response: string }
  /** Another node closed the session: its closing events `first`, `first + 1`, …. */
  | { kind: "closed"; session: string; first: number; frames: string[] }
  /** A node asks this one, the session's owner, to interrupt the session's work. */
  | { kind: "interrupt"; session: string };

/** A store shared by several gateway nodes. */
export interface SharedStore {
  /** Marks it as shared (a `SessionStore` has no such member). */
  readonly shared: true;
  /** This node's id, random per process. */
  readonly node: string;
  /** The store's epoch, in `gateway.ready`: the same on every node; changes only when the store lost its data. */
  readonly epoch: string;
  /** How long a lease lasts without renewal. */
  readonly leaseMs: number;
  /** How long a session with no viewer on any node and no work is kept (0: until closed). */
  readonly graceMs: number;
  /** Called for each message on this node's channel. Set once by the registry. */
  onNodeMessage: (message: NodeMessage) => void;
  /** Called when the store is reachable again after an outage. Set once by the registry. */
  onRecovered: () => void;
  /** Called when the store becomes unreachable or reachable again. Set once by the registry (it logs). */
  onTrouble: (message: string, fields: Record<string, unknown>) => void;

  /** Per-session bounds of the kept events. */
  readonly replay: ReplayLimits;

  /** Records a new session with `epoch`, owned by this node (lease and fence); resolves with the fence. */
  create(id: string, principal: string, epoch: string, createdAt: number): Promise<number>;
  /**
   * Records the session anew, owned by this node, after the store lost it or some of its
   * events: a new `epoch`, no events kept, seqs going on after `last`. Resolves with the fence.
   */
  reset(id: string, principal: string, epoch: string, last: number): Promise<number>;
  /** Takes the session's lease if it is free. */
  acquire(id: string): Promise<Acquired>;
  /** Renews the leases held (true for each still held) and keeps the sessions with viewers here from expiring. */
  renew(leases: { id: string; fence: number; working: boolean }[], viewed: string[]): Promise<boolean[]>;
  /** Lets the lease go (the session has no work here). */
  release(id: string, fence: number): Promise<void>;
  /**
   * Appends events `first`, `first + 1`, … with fencing; a re-sent event (seq ≤ last) is skipped.
   * Each frame is `sessionEventPrefix(id)`, its seq, then the rest, as `sessionEventFrame` makes
   * it: a store may keep only the rest and put the start back when it reads.
   */
  append(id: string, fence: number, first: number, frames: string[]): Promise<Appended>;
  /** The kept events after `afterSeq` (one page) and the session's meta, or undefined if there is no such session. */
  read(id: string, afterSeq: number): Promise<SharedRead | undefined>;
  /** Records an open server request (with fencing) and publishes it to viewing nodes; false if fenced. */
  openRequest(id: string, fence: number, requestId: string, frame: string): Promise<boolean>;
  /** Removes an open request (settled by its owner); true if it was still open. */
  settleRequest(id: string, requestId: string): Promise<boolean>;
  /** A client's reply: the first one for `requestId` wins and goes to the owner; false for any later one. */
  answer(id: string, requestId: string, response: string): Promise<boolean>;
  /** The frames of the session's open server requests. */
  requests(id: string): Promise<string[]>;
  /**
   * Closes the session (no lease needed): appends `request.cancel` for each open request and
   * `session.closed {reason}`, publishes them, tells the owner, forgets the session. Resolves
   * with the first seq of those events and their frames, or undefined if it was gone.
   */
  closeSession(id: string, reason: string): Promise<{ first: number; frames: string[] } | undefined>;
  /** Saves the session's application state as of event `seq` (JSON), with fencing; false if fenced. */
  saveState(id: string, fence: number, seq: number, state: string): Promise<boolean>;
  /** The session's application state as last saved, and the seq it is at. */
  loadState(id: string): Promise<{ seq: number; state: string } | undefined>;
  /** The live sessions of `principal`, oldest first, at most `limit` (the newest). */
  list(principal: string, limit: number): Promise<StoredSession[]>;
  /**
   * Where the session's work is: `owned` (a node holds its lease; with `interrupt`, that node is
   * asked to interrupt the work), `lapsed` (no node does, but its last owner stopped mid-work:
   * it died), or `idle`.
   */
  work(id: string, interrupt: boolean): Promise<"owned" | "lapsed" | "idle">;
  /** Starts delivering the session's channel to `listener` (resolves once subscribed). */
  subscribe(id: string, listener: (message: SessionMessage) => void): Promise<void>;
  /** Stops delivering the session's channel. */
  unsubscribe(id: string): Promise<void>;
  /** Closes the store's connections. */
  quit(): Promise<void>;
}

/** Whether `store` is shared by several nodes. */
export function isShared(store: object): store is SharedStore {
  return (store as Partial<SharedStore>).shared === true;
}
