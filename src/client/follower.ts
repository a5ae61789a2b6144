/**
 * The sessions a client follows: the last seq seen of each, so that events seen before a
 * reconnect are dropped when the resume replays them; a new epoch (the gateway restarted)
 * voids every seq; and what each resume found, for `onResume`.
 */
import type { RpcError } from "../jsonrpc/errors.ts";

/** What a resume after a reconnect found, for each followed session. */
export interface ResumeReport {
  /** The session resumed (or lost). */
  session_id: string;
  /** Events the client missed were evicted: refetch the session's state. */
  truncated: boolean;
  /** Events replayed before the resume's answer (0 on error). */
  replayed: number;
  /**
   * The gateway restarted (new epoch in `gateway.ready`), or the session's own epoch changed (a shared store lost some
   * of its events): the seqs seen before mean nothing now.
   */
  epochChanged: boolean;
  /** The session is gone (-32001 or another error); it is no longer followed. */
  error?: RpcError;
}

/** Followed sessions and their watermarks. */
export class SessionFollower {
  /** Followed sessions and the last seq seen of each. */
  readonly sessions: Map<string, number> = new Map();
  #epoch: string | undefined;
  /** The epoch each followed session's seqs count in, as its last resume answered. */
  #epochs = new Map<string, string>();
  #listeners = new Set<(report: ResumeReport) => void>();

  /** Follows `sessionId` from `afterSeq` (no change if it is followed already). */
  follow(sessionId: string, afterSeq = 0): void {
    if (!this.sessions.has(sessionId)) this.sessions.set(sessionId, afterSeq);
  }

  /** Stops following `sessionId`. */
  unfollow(sessionId: string): void {
    this.sessions.delete(sessionId);
    this.#epochs.delete(sessionId);
  }

  /** The epoch `sessionId`'s watermark counts in, if a resume told it. */
  epochOf(sessionId: string): string | undefined {
    return this.#epochs.get(sessionId);
  }

  /**
   * A resume answered `epoch` for `sessionId`: true if it differs from the one its watermark
   * counted in (the gateway replayed it from the start, `truncated`).
   */
  resumed(sessionId: string, epoch: string | undefined): boolean {
    if (epoch === undefined) return false;
    const before = this.#epochs.get(sessionId);
    this.#epochs.set(sessionId, epoch);
    return before !== undefined && before !== epoch;
  }

  /** A `gateway.ready` with `epoch` arrived: true if the epoch changed, which resets every watermark. */
  ready(epoch: string): boolean {
    const changed = this.#epoch !== undefined && this.#epoch !== epoch;
    this.#epoch = epoch;
    if (changed) {
      for (const id of this.sessions.keys()) this.sessions.set(id, 0);
      this.#epochs.clear();
    }
    return changed;
  }

  /**
   * Whether a session event is new: false for one at or below its followed session's watermark
   * (seen before a reconnect). A new one moves the watermark; `session.closed` ends the following.
   */
  admit(sessionId: string, seq: number, type: string): boolean {
    const last = this.sessions.get(sessionId);
    if (last === undefined) return true; // not followed: delivered as it comes
    if (seq <= last) return false;
    this.sessions.set(sessionId, seq);
    if (type === "session.closed") this.unfollow(sessionId);
    return true;
  }

  /** Listens for resume reports; returns the unsubscribe function. */
  onResume(listener: (report: ResumeReport) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reports a resume's outcome; a session lost (`report.error`) is no longer followed. */
  report(report: ResumeReport): void {
    if (report.error) this.unfollow(report.session_id);
    for (const listener of this.#listeners) listener(report);
  }
}
