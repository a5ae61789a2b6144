/** Names the server and its clients share on the wire (`switchboard/1`; docs/protocol.md). */

/** The subprotocol a client offers first; the only one the server ever answers. */
export const SUBPROTOCOL = "switchboard.v1";

/** A token in the subprotocol list is offered as `switchboard.token.<token>`, after `SUBPROTOCOL`. */
export const TOKEN_PROTOCOL_PREFIX = "switchboard.token.";
