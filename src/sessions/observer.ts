/**
 * `SessionObserver`: what sessions tell the gateway's telemetry (`src/gateway/telemetry.ts`
 * implements it). The registry holds one only when an OpenTelemetry SDK is registered, so
 * without one each hook is an `undefined` check.
 */
import type { ResumeResult } from "../jsonrpc/protocol.ts";

/** Counts and server → client requests, as the gateway's metrics and traces see them. */
export interface SessionObserver {
  /** Events stamped with a seq on this node (an increment per event: read when metrics are collected). */
  eventsAppended: number;
  /** A server → client request `id` was sent; `answer` settles as the session's `request()` does. */
  requestOpened(id: string, method: string, answer: Promise<unknown>): void;
  /** A `session.resume` was answered. */
  resumed(result: ResumeResult): void;
}
