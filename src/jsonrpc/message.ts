/**
 * JSON-RPC 2.0 messages as both peers see them: their types, the hand-written check that
 * classifies a parsed value (a few `typeof`s, no closures: it is on every message's path),
 * and the builders of every frame either side sends. No schema library here, so the client
 * can use it in a browser bundle; `codec.ts` adds the server's explanations of invalid input.
 */
import type { ErrorObject } from "./errors.ts";

/** A request id: a string, a number, or null (for errors about a request whose id could not be read). */
export type Id = string | number | null;

/** Structured params: by position or by name. */
export type Params = unknown[] | Record<string, unknown>;

/** A request: expects exactly one response with the same id. */
export interface Request {
  kind: "request";
  id: Id;
  method: string;
  params: Params | undefined;
}

/** A notification: a request without `id`; never answered. */
export interface Notification {
  kind: "notification";
  method: string;
  params: Params | undefined;
}

/** A response to a request this side sent. */
export interface Response {
  kind: "response";
  id: Id;
  result?: unknown;
  error?: ErrorObject;
}

/** A valid message of either direction. */
export type ValidMessage = Request | Notification | Response;

/** The message `value` is, or undefined when it is none (the caller explains or ignores it). */
export function classifyValid(value: unknown): ValidMessage | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  if (o.jsonrpc !== "2.0") return undefined;
  const id = o.id;
  const validId = id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
  const method = o.method;
  if (typeof method === "string") {
    const params = o.params;
    if (params !== undefined && (typeof params !== "object" || params === null)) return undefined;
    if (!("id" in o)) return { kind: "notification", method, params: params as Params | undefined };
    return validId ? { kind: "request", id: id as Id, method, params: params as Params | undefined } : undefined;
  }
  if (method !== undefined || !validId || ("result" in o) === ("error" in o)) return undefined;
  const error = o.error;
  if (error === undefined) return { kind: "response", id: id as Id, result: o.result };
  if (typeof error === "object" && error !== null && typeof (error as ErrorObject).code === "number") {
    return { kind: "response", id: id as Id, error: error as ErrorObject };
  }
  return undefined;
}

/** A request frame. */
export function request(id: Id, method: string, params?: unknown): string {
  return JSON.stringify(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params });
}

/** A notification frame. */
export function notification(method: string, params?: unknown): string {
  return JSON.stringify(params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params });
}

/** A success response (a handler that returns nothing answers null: `undefined` is not JSON). */
export function resultResponse(id: Id, result: unknown): string {
  return JSON.stringify({ jsonrpc: "2.0", id, result: result === undefined ? null : result });
}

/** An error response. */
export function errorResponse(id: Id, error: ErrorObject): string {
  return JSON.stringify({ jsonrpc: "2.0", id, error });
}

/** An event notification: `{type, payload}`, for one connection (no session, no seq). */
export function eventFrame(type: string, payload?: unknown): string {
  return JSON.stringify({ jsonrpc: "2.0", method: "event", params: { type, payload } });
}

/**
 * The fixed start of every event frame of one session (`…"params":{"session_id":…,"seq":`):
 * a session serialises it once, then only what changes per event (`sessionEventFrame`).
 */
export function sessionEventPrefix(sessionId: string): string {
  return `{"jsonrpc":"2.0","method":"event","params":{"session_id":${JSON.stringify(sessionId)},"seq":`;
}

/**
 * A session's event frame from its prefix. Joined, not concatenated: a concatenation is a rope
 * that the runtime flattens when it sends the frame, which on Bun cost ~10% more CPU per event.
 */
export function sessionEventFrame(prefix: string, seq: number, type: string, payload: unknown): string {
  const body = payload === undefined ? "" : `,"payload":${JSON.stringify(payload)}`;
  return [prefix, seq, ',"type":', JSON.stringify(type), body, "}}"].join("");
}

/** What follows a session event frame's prefix and seq (`,"type":…}}`): the same whatever its seq. */
export function sessionEventTail(frame: string, prefix: string, seq: number): string {
  return frame.slice(prefix.length + String(seq).length);
}

/** A session event frame from its prefix, its seq and the tail of one (`sessionEventTail`). */
export function sessionEventFromTail(prefix: string, seq: number, tail: string): string {
  return [prefix, seq, tail].join("");
}
