import type { Id } from "../jsonrpc/codec.ts";
import type { Logger } from "./logger.ts";

/** The calling connection, as a handler sees it. */
export interface ConnectionHandle {
  /** Random per connection; also sent in `gateway.ready`. */
  readonly id: string;
  /** The peer's address where the runtime tells, else "unknown" (stdio: "stdio"). */
  readonly peer: string;
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
  readonly method: string;
  /** Aborted by `rpc.cancel` for this request, or when the connection closes. */
  readonly signal: AbortSignal;
  readonly connection: ConnectionHandle;
  readonly log: Logger;
}
