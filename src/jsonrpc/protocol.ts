/** Names and shapes the server and its clients share on the wire (docs/protocol.md). */

/** The protocol and version `gateway.ready` announces. */
export const PROTOCOL = "switchboard/1";

/** The subprotocol a client offers first; the only one the server ever answers. */
export const SUBPROTOCOL = "switchboard.v1";

/** A token in the subprotocol list is offered as `switchboard.token.<token>`, after `SUBPROTOCOL`. */
export const TOKEN_PROTOCOL_PREFIX = "switchboard.token.";

/** The answer of `session.resume`. */
export interface ResumeResult {
  /** The session resumed. */
  session_id: string;
  /** The seq of its last event (0 before the first); live events continue after it. */
  latest_seq: number;
  /** Events written before this answer (those kept with seq > `after_seq`). */
  replayed: number;
  /** Some events after `after_seq` are no longer kept, or `after_seq` is past the latest: refetch the session's state. */
  truncated: boolean;
  /** The gateway's epoch, as in `gateway.ready`: seqs count within it. */
  epoch: string;
}
