/**
 * The gateway's decoding of a client's frames: a message or a batch, valid ones classified by
 * the hand-written check of `message.ts` (on every message's path), invalid ones explained by
 * the valibot schemas of `schema.ts` (`error.data.issues`).
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { ErrorCode, type ErrorObject, errorObject } from "./errors.ts";
import { classifyValid, type Id } from "./message.ts";
import { MessageSchema, NotificationSchema, RequestSchema } from "./schema.ts";

export type { Id, Notification, Params, Request, Response } from "./message.ts";

/** Something that is not a valid message; `error` is what to answer (with `id`). */
export interface Invalid {
  kind: "invalid";
  id: Id;
  error: ErrorObject;
}

/** A message from a client, valid or not. */
export type Message = import("./message.ts").ValidMessage | Invalid;

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
  const message = classifyValid(value);
  if (message) return message;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return invalid(null, { reason: "not an object" });
  }
  const o = value as Record<string, unknown>;
  const id = o.id;
  // An invalid request keeps its id when the id itself is valid, so its sender can match the error.
  const validId = typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
  return explainInvalid(o, validId ? id : null);
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
