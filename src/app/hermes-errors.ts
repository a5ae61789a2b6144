/** The error codes hermes' clients know, and how Switchboard's own codes are renumbered to them on the wire. */
import { ErrorCode } from "../mod.ts";

/** Hermes' application error codes that the app answers. */
export const HERMES_ERRORS = {
  /** Session not found: unknown, ended, or another principal's. */
  sessionNotFound: 4001,
  /** Invalid or refused params (also: a chat that is full, a queue that is full). */
  refused: 4002,
  /** No pending request with that id. */
  noPending: 4009,
  /** The session store cannot be reached. */
  storeUnavailable: 5031,
} as const;

/** `createGateway({ errorCodes })`: Switchboard's codes that hermes' clients know by another number. */
export const HERMES_ERROR_CODES: Record<number, number> = {
  [ErrorCode.SessionNotFound]: HERMES_ERRORS.sessionNotFound,
  [ErrorCode.InvalidParams]: HERMES_ERRORS.refused,
  [ErrorCode.StoreUnavailable]: HERMES_ERRORS.storeUnavailable,
};
