/**
 * Switchboard: a JSON-RPC 2.0 session gateway for Hono.
 *
 * @example
 * import { createGateway, method } from "switchboard";
 * const gateway = createGateway({ methods: { "math.add": ([a, b]: [number, number]) => a + b } });
 * app.get("/api/ws", gateway.guard(), upgradeWebSocket(gateway.handler));
 */
export { ANONYMOUS, createGateway, defaultLimits } from "./gateway/gateway.ts";
export type { CloseOptions, Gateway, GatewayOptions, Limits, StartupTask } from "./gateway/gateway.ts";
export { method } from "./gateway/method.ts";
export type { BareMethod, MethodDefinition, MethodTable } from "./gateway/method.ts";
export type { ConnectionHandle, HandlerContext, SessionsHandle } from "./gateway/context.ts";
export type { Connection, ConnectionStats } from "./gateway/connection.ts";
export type { SocketAdapter } from "./gateway/hono.ts";
export { consoleLogger, silentLogger } from "./gateway/logger.ts";
export type { LogFields, Logger, LogLevel } from "./gateway/logger.ts";
export { ErrorCode, RpcError } from "./jsonrpc/errors.ts";
export type { ErrorObject } from "./jsonrpc/errors.ts";
export { CloseCode } from "./transport/transport.ts";
export type { Transport, TransportSocket } from "./transport/transport.ts";
export { SessionRegistry } from "./sessions/registry.ts";
export type { ReleaseCounts, SessionHooks, SessionOptions } from "./sessions/registry.ts";
export { Session } from "./sessions/session.ts";
export type {
  CreateSessionOptions,
  EndReason,
  OrphanDecision,
  OrphanPolicy,
  ResumeResult,
  SessionRequestOptions,
  SessionViewer,
} from "./sessions/session.ts";
export { MemoryStore } from "./sessions/store.ts";
export type { ReplayLimits, ReplayRead, SessionStore } from "./sessions/store.ts";
export { constantTimeEqual, SUBPROTOCOL, Tickets, TOKEN_PROTOCOL_PREFIX, tokenAuth } from "./gateway/auth.ts";
export type { TokenAuthOptions } from "./gateway/auth.ts";
export { LOOPBACK_HOSTS } from "./gateway/hono.ts";
export type { GuardOptions } from "./gateway/hono.ts";
