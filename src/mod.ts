/**
 * Switchboard: a JSON-RPC 2.0 session gateway for Hono. One dispatch serves every client of a
 * long-running backend over WebSocket or stdio, on Node, Deno and Bun; sessions keep their
 * events for replay, so a client that reconnects misses nothing.
 *
 * Serve a gateway with `serve()` from `switchboard/node`, `switchboard/deno` or
 * `switchboard/bun`, mount `gateway.handler` in your own Hono app, or serve it over stdio
 * with `switchboard/stdio`. Clients connect with `switchboard/client`.
 *
 * @example Serve a gateway on Node
 * ```ts
 * import { createGateway } from "switchboard";
 * import { serve } from "switchboard/node";
 *
 * const gateway = createGateway({ methods: { "math.add": ([a, b]: [number, number]) => a + b } });
 * const server = await serve(gateway, { port: 0 });
 * console.log(`gateway at ${server.url}api/ws`);
 * await server.close();
 * ```
 *
 * @module
 */
export { ANONYMOUS, createGateway, defaultLimits } from "./gateway/gateway.ts";
export type { CloseOptions, Gateway, GatewayOptions, Limits, StartupTask } from "./gateway/gateway.ts";
export { method } from "./gateway/method.ts";
export type { BareMethod, MethodDefinition, MethodTable } from "./gateway/method.ts";
export type { ConnectionHandle, HandlerContext, SessionsHandle } from "./gateway/context.ts";
export type { BuiltinName } from "./gateway/builtins.ts";
export type { Id } from "./jsonrpc/codec.ts";
export { consoleLogger, silentLogger } from "./gateway/logger.ts";
export { jsonLogger } from "./gateway/json-logger.ts";
export type { LogFields, Logger, LogLevel } from "./gateway/logger.ts";
export { ErrorCode, RpcError } from "./jsonrpc/errors.ts";
export type { ErrorObject } from "./jsonrpc/errors.ts";
export { CloseCode } from "./transport/transport.ts";
export type {
  GatewaySessions,
  SessionHooks,
  SessionOptions,
  SessionSummary,
  SinceResult,
} from "./sessions/registry.ts";
export type {
  CreateSessionOptions,
  EndReason,
  OpenRequest,
  OrphanDecision,
  OrphanPolicy,
  ResumeResult,
  SessionEvent,
  SessionHandle,
  SessionRequestOptions,
  SessionState,
  ViewerInfo,
} from "./sessions/session.ts";
export { MemoryStore } from "./sessions/store.ts";
export type { ReplayLimits, ReplayRead, SessionStore } from "./sessions/store.ts";
export type {
  Acquired,
  Appended,
  NodeMessage,
  SessionMessage,
  SharedMeta,
  SharedRead,
  SharedStore,
  StoredSession,
} from "./sessions/shared-store.ts";
export { constantTimeEqual, SUBPROTOCOL, Tickets, TOKEN_PROTOCOL_PREFIX, tokenAuth } from "./gateway/auth.ts";
export type { TokenAuthOptions } from "./gateway/auth.ts";
export { LOOPBACK_HOSTS } from "./gateway/hono.ts";
export type { GuardOptions } from "./gateway/hono.ts";
