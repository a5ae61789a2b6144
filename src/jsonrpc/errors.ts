/** JSON-RPC error codes used on the wire (JSON-RPC 2.0 §5.1 plus Switchboard's own). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  RequestCancelled: -32800,
  SessionNotFound: -32001,
  Overloaded: -32003,
  SessionBusy: -32004,
  StoreUnavailable: -32005,
} as const;

/** One of the codes in `ErrorCode`. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The `error` member of a JSON-RPC error response. */
export interface ErrorObject {
  /** An integer: one of `ErrorCode`, or the application's own. */
  code: number;
  /** A short description, e.g. "Invalid params". */
  message: string;
  /** Details, e.g. `{issues}` for -32602; absent when there are none. */
  data?: unknown;
}

/**
 * An error a method handler throws to answer with a specific JSON-RPC error.
 * Anything else a handler throws answers -32603 without details.
 *
 * @example
 * ```ts
 * import { createGateway, RpcError } from "switchboard";
 *
 * const gateway = createGateway({
 *   methods: {
 *     "upload.start": () => {
 *       throw new RpcError(-32050, "Quota exceeded", { retry_after: 5 });
 *     },
 *   },
 * });
 * ```
 */
export class RpcError extends Error {
  /** The JSON-RPC error code answered. */
  readonly code: number;
  /** Sent as the error's `data` unless undefined. */
  readonly data: unknown;

  /** An error answering `code` and `message`, with `data` if given. */
  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }

  /** The wire form of this error. */
  toJSON(): ErrorObject {
    return errorObject(this.code, this.message, this.data);
  }
}

/** An error object, leaving out `data` when there is none. */
export function errorObject(code: number, message: string, data?: unknown): ErrorObject {
  return data === undefined ? { code, message } : { code, message, data };
}
