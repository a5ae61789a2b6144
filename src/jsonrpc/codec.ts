/**
 * Frame decoding and response building for JSON-RPC 2.0.
 *
 * `decode` is on every message's path, so it checks the wire shapes of `schema.ts` by hand
 * (a few `typeof`s, no closures, one small object per message) and asks valibot only when
 * a message is invalid, to say why.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { ErrorCode, type ErrorObject } from "./errors.ts";
import { MessageSchema, NotificationSchema, RequestSchema } from "./schema.ts";
import type { Id, Params } from "./schema.ts";

export type { Id, Params };

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

/** A response from the peer (to a server → client request). */
export interface Response {
  kind: "response";
  id: Id;
  result?: unknown;
  error?: ErrorObject;
}

/** Something that is not a valid message; `error` is what to answer (with `id`). */
export interface Invalid {
  kind: "invalid";
  id: Id;
  error: ErrorObject;
}

export type Message = Request | Notification | Response | Invalid;

/** What a frame holds: nothing (blank), one message, or a batch of them. */
export type Frame = Message | Message[] | undefined;

/** One validation problem, as sent in `error.data.issues`. */
export interface Issue {
  path: (string | number)[];
  message: string;
}

const PARSE_ERROR: ErrorObject = { code: ErrorCode.ParseError, message: "Parse error" };

/**
 * Decodes one text frame. Leading and trailing white space is ignored; a blank frame is
 * `undefined` (skip it). A parse error or an empty batch is a single `Invalid` message
 * (answered with id null); a batch is an array whose invalid items carry their own errors.
 */
export function decode(text: string): Frame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // JSON.parse accepts surrounding white space, so only a blank frame gets here legitimately.
    if (text.trim() === "") return undefined;
    return { kind: "invalid", id: null, error: PARSE_ERROR };
  }
  if (!Array.isArray(value)) return classify(value);
  if (value.length === 0) return invalid(null, { reason: "empty batch" });
  const messages = new Array<Message>(value.length);
  for (let i = 0; i < value.length; i++) messages[i] = classify(value[i]);
  return messages;
}

/** Classifies one parsed JSON value as a request, notification, response or invalid message. */
export function classify(value: unknown): Message {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return invalid(null, { reason: "not an object" });
  }
  const o = value as Record<string, unknown>;
  const id = o.id;
  const validId = id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
  if (o.jsonrpc === "2.0") {
    const method = o.method;
    if (typeof method === "string") {
      const params = o.params;
      if (params === undefined || (typeof params === "object" && params !== null)) {
        if (!("id" in o)) return { kind: "notification", method, params: params as Params | undefined };
        if (validId) return { kind: "request", id: id as Id, method, params: params as Params | undefined };
      }
    } else if (method === undefined && validId && ("result" in o) !== ("error" in o)) {
      const error = o.error;
      if (error === undefined) return { kind: "response", id: id as Id, result: o.result };
      if (typeof error === "object" && error !== null && typeof (error as ErrorObject).code === "number") {
        return { kind: "response", id: id as Id, error: error as ErrorObject };
      }
    }
  }
  return explainInvalid(o, validId ? (id as Id) ?? null : null);
}

/** The slow path: ask the schemas why `o` is not a message. */
function explainInvalid(o: Record<string, unknown>, id: Id): Invalid {
  const schema = "method" in o ? ("id" in o ? RequestSchema : NotificationSchema) : MessageSchema;
  const result = schema["~standard"].validate(o) as StandardSchemaV1.Result<unknown>;
  const issues = result.issues ? toIssues(result.issues) : [];
  return invalid(id, issues.length ? { issues } : undefined);
}

function invalid(id: Id, data?: unknown): Invalid {
  return { kind: "invalid", id, error: errorObject(ErrorCode.InvalidRequest, "Invalid Request", data) };
}

/** Converts Standard Schema issues to the wire form `{path, message}`. */
export function toIssues(issues: readonly StandardSchemaV1.Issue[]): Issue[] {
  return issues.map((issue) => ({
    path: (issue.path ?? []).map((segment) => {
      const key = typeof segment === "object" ? segment.key : segment;
      return typeof key === "number" ? key : String(key);
    }),
    message: issue.message,
  }));
}

/** Builds an error object, leaving out `data` when there is none. */
export function errorObject(code: number, message: string, data?: unknown): ErrorObject {
  return data === undefined ? { code, message } : { code, message, data };
}

/** A success response. */
export function resultResponse(id: Id, result: unknown): { jsonrpc: "2.0"; id: Id; result: unknown } {
  // `undefined` is not JSON; a handler that returns nothing answers null.
  return { jsonrpc: "2.0", id, result: result === undefined ? null : result };
}

/** An error response. */
export function errorResponse(id: Id, error: ErrorObject): { jsonrpc: "2.0"; id: Id; error: ErrorObject } {
  return { jsonrpc: "2.0", id, error };
}

/** A notification from the server. */
export function notification(method: string, params?: Params): { jsonrpc: "2.0"; method: string; params?: Params } {
  return params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params };
}
